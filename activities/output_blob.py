"""The `check_output_blob` activity: what the output storage holds under a reported blob name.

Kept for orchestrations that scheduled it before publishing existed (issue 19); `download_job` now
calls `publish_output_blob` (`publish.py`), which copies the attempt's staging blob and hashes the copy.

Input `{"jobId", "container", "name"}`; answer `{"ok": true, "exists", "sizeBytes", "url"}` or
`{"ok": false, "error": {code, message, retryable}}`.

The orchestrator does not take a worker's word for its file: before a job succeeds it asks here
whether the blob exists and how big it is (Get Blob Properties, read on the output container is
all it needs), and uses `url`, built from the settings (`OUTPUT_ACCOUNT_URL` or the connection
string's endpoint, `OUTPUT_CONTAINER`, the quoted name), instead of the URL the worker sent. A blob
outside `OUTPUT_CONTAINER` or the job's prefix is refused (`invalid_result`) before any storage call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from videojob.contract.output_blob import blob_url
from videojob.domain.activity_wire import INVALID_INPUT, BlobCheckResult
from videojob.domain.settings import Settings

from .share_link import default_credential, foreign_blob, output_service, parse_blob_ref
from .storage_failures import failure_answer, storage_failure_answer

logger = logging.getLogger(__name__)

CHECK_FAILED = "blob_check_failed"


def check_output_blob_activity(
    payload: Any,
    settings: Callable[[], Settings],
    *,
    credential_factory: Callable[[], Any] = default_credential,
    **client_options: Any,
) -> dict[str, Any]:
    try:
        job_id, container, name = parse_blob_ref(payload)
    except ValueError as e:
        return failure_answer(INVALID_INPUT, str(e), False)
    try:
        current = settings()
        if (refused := foreign_blob(current, job_id, container, name)) is not None:
            return refused
        service = output_service(current, credential_factory, **client_options)
        url = blob_url(service.url, container, name)
        try:
            size = service.get_blob_client(container, name).get_blob_properties().size
        except ResourceNotFoundError:  # no such blob (or no such container)
            return BlobCheckResult(True, exists=False, url=url).to_wire()
    except Exception as e:  # noqa: BLE001 - answered, not raised (see activity_wire)
        return storage_failure_answer(
            e, activity="check_output_blob", failed_code=CHECK_FAILED,
            identity_use="read the output with", refused="blob properties",
        )
    return BlobCheckResult(True, exists=True, size_bytes=int(size), url=url).to_wire()
