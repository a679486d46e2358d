"""The `publish_output_blob` activity: what the service serves is what it has verified (issue 19).

Input `{"jobId", "run", "attempt", "container", "name", "sizeBytes", "sha256"}` (the reported
result of that attempt); answer `{"ok": true, "exists", "sizeBytes", "sha256", "url"}` or
`{"ok": false, "error": {code, message, retryable}}`.

A worker writes only its attempt's staging blob (`videojob.contract.staging`), through a write-only SAS it
holds until the job's deadline, so it can still rewrite that blob. The app therefore never checks
the staging blob and then serves it. With its own identity (or, on Azurite, the account key):
1. refuse a reported name outside `OUTPUT_CONTAINER` / the job's prefix (`invalid_result`, no call);
2. copy the staging blob `<job>/<run>/a<attempt>/media` to the reported final name in
   `OUTPUT_CONTAINER` (Copy Blob, source authorized by a short read-only SAS; properties and
   metadata come along), waiting for a pending copy at most `COPY_WAIT_SECONDS`;
3. read the COPY back, streamed in chunks (bounded memory, whatever its size), counting and hashing
   it, and compare with the report (`videojob.contract.output_blob.copy_problem`): a mismatch deletes the
   copy and is answered as found, so the orchestrator fails the job `invalid_result`;
4. delete the staging blob.
No worker ever holds a credential for the copy's name, so the bytes hashed are the bytes served
(the share link is signed for the copy). Copy first, hash the copy: a worker that rewrites its
staging blob after reporting changes nothing the service serves.

Run again (activities are at least once) after the staging blob is gone, it verifies the copy
that is there. A copy that is neither done nor failed within the bound is aborted and answered
retryable.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from videojob.contract.output_blob import blob_url, copy_problem
from videojob.contract.staging import staged_media_name
from videojob.domain.activity_wire import INVALID_INPUT, BlobCheckResult, parse_publish_input
from videojob.domain.settings import Settings

from .share_link import (
    CLOCK_SKEW,
    READ_ONLY,
    Signer,
    default_credential,
    foreign_blob,
    output_service,
    signer_from_settings,
)
from .storage_failures import failure_answer, storage_failure_answer
from .upload_grant import ensure_container, signed_url

logger = logging.getLogger(__name__)

PUBLISH_FAILED = "publish_failed"
COPY_PENDING = "copy_pending"
COPY_WAIT_SECONDS = 600.0
"""How long one activity run waits for a pending copy (within an account it is usually done at once)."""
COPY_POLL_SECONDS = (0.2, 5.0)
"""First and largest pause between looks at a pending copy."""
SOURCE_SAS_LIFETIME = timedelta(hours=1)
READ_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Read:
    size: int
    sha256: str


def read_back(blob: Any, chunk_bytes: int = READ_CHUNK_BYTES) -> Read:
    """Size and sha256 of the stored blob, read in order one ranged Get Blob at a time, so memory
    stays at a few chunks whatever the size (the SDK's own download holds its first 32 MiB at once).
    Every range must come from the same version of the blob (`If-Match` its ETag)."""
    from azure.core import MatchConditions

    props = blob.get_blob_properties()
    digest = hashlib.sha256()
    size = 0
    while size < props.size:
        length = min(chunk_bytes, props.size - size)
        chunk = blob.download_blob(offset=size, length=length, max_concurrency=1, etag=props.etag,
                                   match_condition=MatchConditions.IfNotModified).readall()
        if len(chunk) != length:
            raise OSError(f"a range of {length} bytes came back with {len(chunk)}")
        digest.update(chunk)
        size += length
        del chunk
    return Read(size, digest.hexdigest())


def wait_for_copy(
    blob: Any, *, wait_seconds: float, sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """The copy's final status (`success`, `failed`, `aborted`), or `pending` after `wait_seconds`."""
    give_up = clock() + wait_seconds
    pause = COPY_POLL_SECONDS[0]
    while True:
        status = blob.get_blob_properties().copy.status or "success"  # a blob made otherwise has none
        if status != "pending" or clock() >= give_up:
            return str(status)
        sleep(min(pause, max(0.0, give_up - clock())))
        pause = min(pause * 2, COPY_POLL_SECONDS[1])


def _copy(settings: Settings, service: Any, signer: Signer, source_name: str, target: Any, now: datetime) -> bool:
    """Start the copy of staging blob `source_name` to `target`; False when there is no such staging blob."""
    source = signed_url(signer, settings.staging_container, source_name, now - CLOCK_SKEW,
                        now + SOURCE_SAS_LIFETIME, READ_ONLY)
    for first_try in (True, False):
        try:
            target.start_copy_from_url(source)
            return True
        except ResourceNotFoundError as e:
            code = getattr(e, "error_code", None)
            if code == "ContainerNotFound" and first_try and settings.output_connection_string:
                ensure_container(settings, settings.output_container)
                continue
            if code in ("CannotVerifyCopySource", "BlobNotFound", "ContainerNotFound"):
                return False
            raise
        except HttpResponseError as e:
            if getattr(e, "error_code", None) == "CannotVerifyCopySource":  # the source's 404, as Azure words it
                return False
            raise
    return False


def publish_output_blob_activity(
    payload: Any,
    settings: Callable[[], Settings],
    *,
    credential_factory: Callable[[], Any] = default_credential,
    signer: Signer | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    copy_wait_seconds: float = COPY_WAIT_SECONDS,
    **client_options: Any,
) -> dict[str, Any]:
    try:
        ref = parse_publish_input(payload)
    except ValueError as e:
        return failure_answer(INVALID_INPUT, str(e), False)
    try:
        current = settings()
        if (refused := foreign_blob(current, ref.job_id, ref.container, ref.name)) is not None:
            return refused
        service = output_service(current, credential_factory, **client_options)
        chosen = signer or signer_from_settings(current, credential_factory, **client_options)
        url = blob_url(service.url, ref.container, ref.name)
        staged = service.get_blob_client(current.staging_container, staged_media_name(ref.job_id, ref.run, ref.attempt))
        target = service.get_blob_client(ref.container, ref.name)

        copied = _copy(current, service, chosen, staged.blob_name, target, clock())
        if copied:
            status = wait_for_copy(target, wait_seconds=copy_wait_seconds)
            if status == "pending":
                _abort_and_delete(target)
                return failure_answer(COPY_PENDING, f"the copy did not finish within {copy_wait_seconds:.0f} s", True)
            if status != "success":
                _delete(target)
                return failure_answer(PUBLISH_FAILED, f"the copy ended {status}", True)
        try:
            found = read_back(target)
        except ResourceNotFoundError:  # no staging blob and no earlier copy: nothing was uploaded
            return BlobCheckResult(True, exists=False, url=url).to_wire()
        problem = copy_problem(ref.name, ref.size_bytes, ref.sha256, found.size, found.sha256)
        if problem is not None:
            logger.warning("job %s: published copy refused: %s", ref.job_id, problem)
            _delete(target)
        _delete_staged(staged, ref.job_id)
    except Exception as e:  # noqa: BLE001 - answered, not raised (see activity_wire)
        return storage_failure_answer(
            e, activity="publish_output_blob", failed_code=PUBLISH_FAILED,
            identity_use="publish the output with", refused="publish",
        )
    logger.info("job %s: published %s (%d bytes)%s", ref.job_id, ref.name, found.size, " REFUSED" if problem else "")
    return BlobCheckResult(True, exists=True, size_bytes=found.size, url=url, sha256=found.sha256).to_wire()


def _delete(blob: Any) -> None:
    try:
        blob.delete_blob()
    except ResourceNotFoundError:
        pass


def _delete_staged(blob: Any, job_id: str) -> None:
    """The staging blob is done with either way; a failed delete leaves it to retention, no more."""
    try:
        _delete(blob)
    except HttpResponseError as e:
        logger.warning("job %s: staging blob not deleted (%s)", job_id, getattr(e, "status_code", None))


def _abort_and_delete(blob: Any) -> None:
    try:
        copy_id = blob.get_blob_properties().copy.id
        if copy_id:
            blob.abort_copy(copy_id)
    except HttpResponseError:
        pass
    _delete(blob)
