"""How the storage activities answer a failed Blob Storage call: one classification for
`check_output_blob`, `read_result_record` and `create_share_link`.

- No identity (the credential could not get a token): configuration, not retryable.
- An HTTP refusal: the service's own code (`AuthorizationFailure`, `ServerBusy`); retryable on
  5xx, 429 or no status, not on 403 (a retry will not grant a missing role).
- No answer at all: retryable.
- `ValueError` (a setting the SDK could not use): configuration.
- Anything else is unexpected: logged with its traceback, answered retryable.
"""

from __future__ import annotations

import logging
from typing import Any

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

from videojob.contract.wire import JobError
from videojob.domain.activity_wire import CONFIGURATION, UNEXPECTED

logger = logging.getLogger(__name__)


def failure_answer(code: str, message: str, retryable: bool) -> dict[str, Any]:
    return {"ok": False, "error": JobError(code, " ".join(str(message).split())[:300], retryable).to_wire()}


def storage_error_code(error: HttpResponseError, default: str) -> str:
    """The service's error code (`AuthorizationFailure`), not the SDK enum's repr."""
    code = getattr(error, "error_code", None)
    return str(getattr(code, "value", code) or default)[:64]


def storage_failure_answer(
    error: Exception, *, activity: str, failed_code: str, identity_use: str, refused: str
) -> dict[str, Any]:
    """The answer for `error`, raised by `activity` while it called storage. `identity_use` and
    `refused` word the message: "no identity to <identity_use>", "<refused> refused (<status>)"."""
    if isinstance(error, ClientAuthenticationError):
        return failure_answer(CONFIGURATION, f"no identity to {identity_use}: {type(error).__name__}", False)
    if isinstance(error, HttpResponseError):
        status = error.status_code
        retryable = status is None or status >= 500 or status == 429
        return failure_answer(storage_error_code(error, failed_code), f"{refused} refused ({status})", retryable)
    if isinstance(error, ServiceRequestError):
        return failure_answer(failed_code, f"output storage not reachable: {type(error).__name__}", True)
    if isinstance(error, ValueError):
        return failure_answer(CONFIGURATION, str(error), False)
    logger.error("%s failed unexpectedly", activity, exc_info=error)
    return failure_answer(UNEXPECTED, f"{type(error).__name__}: {error}", True)
