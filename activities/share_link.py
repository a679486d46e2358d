"""The `create_share_link` activity: a read-only SAS URL for one output blob.

Input `{"jobId", "container", "name", "hours"}`; answer `{"ok": true, "url", "expiresAt"}` or
`{"ok": false, "error": {code, message, retryable}}`. Only a blob of that job in `OUTPUT_CONTAINER`
(`videojob.contract.output_blob`) is signed; anything else is `invalid_result`. The orchestrator checked
already; this is the last gate before a signature, so a regression there cannot sign a link to
another job's file or another container.

- In Azure (`OUTPUT_ACCOUNT_URL`): a user-delegation SAS, signed with a delegation key the
  function app's identity asks Blob Storage for (no account key exists). The identity needs
  `generateUserDelegationKey` on the account (Storage Blob Delegator) and read on the container.
- With an account key (`OUTPUT_CONNECTION_STRING`, i.e. Azurite in development): a service SAS
  signed with that key.
Both grant read only (`sp=r`) on that one blob (the same signers sign a worker's write-only staging
SAS, `activities/upload_grant.py`), HTTPS only when the endpoint is HTTPS, and
start a few minutes in the past to absorb clock skew.

The SDK sits behind `DelegationKeySource` (what `BlobServiceClient` offers) so the user-delegation
path runs with a stub key in tests; `generate_blob_sas` itself always runs for real.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from azure.storage.blob import BlobSasPermissions, BlobServiceClient, UserDelegationKey, generate_blob_sas

from videojob.adapters.azure_credential import default_credential
from videojob.contract.output_blob import blob_url, output_blob_problem
from videojob.contract.wire import ErrorCode, is_url_safe_instance_id
from videojob.domain.activity_wire import INVALID_INPUT, format_utc
from videojob.domain.settings import Settings

from .storage_failures import failure_answer, storage_failure_answer

logger = logging.getLogger(__name__)

MAX_HOURS = 168  # a user-delegation key (and so its SAS) lives at most 7 days
CLOCK_SKEW = timedelta(minutes=5)
SHARE_LINK_FAILED = "share_link_failed"
READ_ONLY = "r"


class DelegationKeySource(Protocol):
    """The one call the user-delegation path needs (`BlobServiceClient` has it)."""

    def get_user_delegation_key(self, key_start_time: datetime, key_expiry_time: datetime, **kw: Any) -> Any: ...


@dataclass(frozen=True)
class ShareLink:
    url: str
    expires_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return {"ok": True, "url": self.url, "expiresAt": format_utc(self.expires_at)}


@dataclass(frozen=True)
class AccountKeySigner:
    """Development: Azurite's (or any) account key from the connection string."""

    endpoint: str
    account_name: str
    account_key: str

    def sign(
        self, container: str, name: str, start: datetime, expiry: datetime, permission: str = READ_ONLY
    ) -> str:
        return generate_blob_sas(
            self.account_name, container, name, account_key=self.account_key,
            permission=BlobSasPermissions.from_string(permission), start=start, expiry=expiry,
            protocol=_protocol(self.endpoint),
        )


@dataclass(frozen=True)
class DelegationSigner:
    """Azure: a user-delegation SAS, the key fetched with the function app's identity."""

    endpoint: str
    account_name: str
    keys: DelegationKeySource

    def sign(
        self, container: str, name: str, start: datetime, expiry: datetime, permission: str = READ_ONLY
    ) -> str:
        key: UserDelegationKey = self.keys.get_user_delegation_key(key_start_time=start, key_expiry_time=expiry)
        return generate_blob_sas(
            self.account_name, container, name, user_delegation_key=key,
            permission=BlobSasPermissions.from_string(permission), start=start, expiry=expiry,
            protocol=_protocol(self.endpoint),
        )


Signer = AccountKeySigner | DelegationSigner


def _protocol(endpoint: str) -> str:
    return "https" if endpoint.lower().startswith("https://") else "https,http"


def create_share_link(signer: Signer, container: str, name: str, hours: int, now: datetime) -> ShareLink:
    start = now - CLOCK_SKEW
    expiry = now + timedelta(hours=hours)
    sas = signer.sign(container, name, start, expiry)
    return ShareLink(f"{blob_url(signer.endpoint, container, name)}?{sas}", expiry)


def output_service(
    settings: Settings, credential_factory: Callable[[], Any], **client_options: Any
) -> BlobServiceClient:
    """The output account's client: the connection string (Azurite) when set, else `OUTPUT_ACCOUNT_URL`
    with the app's identity. `client_options` go to `BlobServiceClient` (tests pass a `transport`)."""
    if settings.output_connection_string:
        return BlobServiceClient.from_connection_string(settings.output_connection_string, **client_options)
    if not settings.output_account_url:
        raise ValueError("the output storage needs OUTPUT_ACCOUNT_URL or OUTPUT_CONNECTION_STRING")
    return BlobServiceClient(settings.output_account_url, credential=credential_factory(), **client_options)


def signer_from_settings(settings: Settings, credential_factory: Callable[[], Any], **client_options: Any) -> Signer:
    """The account-key signer when the connection string carries a key, else user delegation."""
    if settings.output_connection_string:
        client = BlobServiceClient.from_connection_string(settings.output_connection_string)
        key = getattr(client.credential, "account_key", None)
        if key:
            return AccountKeySigner(client.url, client.account_name or "", key)
    if not settings.output_account_url:
        raise ValueError("share links need OUTPUT_ACCOUNT_URL or a connection string with an account key")
    client = BlobServiceClient(settings.output_account_url, credential=credential_factory(), **client_options)
    return DelegationSigner(client.url, client.account_name or "", client)


def parse_blob_ref(payload: Any) -> tuple[str, str, str]:
    """`jobId`, `container` and `name` of an activity input about one job's blob (ValueError if unusable)."""
    if not isinstance(payload, dict):
        raise ValueError("the input must be an object")
    job_id, container, name = payload.get("jobId"), payload.get("container"), payload.get("name")
    if not is_url_safe_instance_id(job_id):
        raise ValueError("the input needs a valid 'jobId'")
    if not isinstance(container, str) or not container or not isinstance(name, str) or not name:
        raise ValueError("the input needs 'container' and 'name'")
    return job_id, container, name


def foreign_blob(settings: Settings, job_id: str, container: str, name: str) -> dict[str, Any] | None:
    """The `invalid_result` answer for a blob that is not the job's own in `OUTPUT_CONTAINER`, else None."""
    problem = output_blob_problem(job_id, settings.output_container, container, name, 0)
    if problem is None:
        return None
    logger.warning("refused a blob outside job %s's output: %s", job_id, problem)
    return failure_answer(ErrorCode.INVALID_RESULT, problem, False)


def _parse(payload: Any) -> tuple[str, str, str, int]:
    job_id, container, name = parse_blob_ref(payload)
    hours = payload.get("hours")
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_HOURS:
        raise ValueError(f"'hours' must be a whole number from 1 to {MAX_HOURS}")
    return job_id, container, name, hours


def share_link_activity(
    payload: Any,
    settings: Callable[[], Settings],
    *,
    credential_factory: Callable[[], Any] = default_credential,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    signer: Signer | None = None,
) -> dict[str, Any]:
    try:
        job_id, container, name, hours = _parse(payload)
    except ValueError as e:
        return failure_answer(INVALID_INPUT, str(e), False)
    try:
        current = settings()
        if (refused := foreign_blob(current, job_id, container, name)) is not None:
            return refused
        chosen = signer or signer_from_settings(current, credential_factory)
        link = create_share_link(chosen, container, name, hours, clock())
    except Exception as e:  # noqa: BLE001 - answered, not raised (see activity_wire)
        # A 403 here: the identity lacks Storage Blob Delegator.
        return storage_failure_answer(
            e, activity="create_share_link", failed_code=SHARE_LINK_FAILED,
            identity_use="sign with", refused="delegation key",
        )
    logger.info("share link created for %s/%s (%d h)", container, name, hours)
    return link.to_wire()
