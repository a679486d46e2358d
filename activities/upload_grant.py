"""A worker's storage credential: the write-only SAS URLs of its attempt's staging blobs
(`videojob.contract.staging`), signed by the function app when it creates the attempt's container group.

- In Azure (`OUTPUT_ACCOUNT_URL`): user-delegation SAS, signed with a delegation key of the app's
  identity (as share links are; the app needs Storage Blob Delegator and a data role on the
  staging container). The worker identity has no storage role at all.
- With an account key (`OUTPUT_CONNECTION_STRING`, Azurite): service SAS signed with that key by
  the app (Azurite 3.35 refuses user-delegation SAS made by the current SDK). The key itself
  never reaches a worker.
Each SAS: one blob (`sr=b`), `sp=w` (`WORKER_BLOB_PERMISSION`), valid from a few minutes before
the attempt's create until the job's deadline, HTTPS only when the endpoint is HTTPS.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.blob import BlobServiceClient

from videojob.contract.output_blob import blob_url
from videojob.contract.staging import WORKER_BLOB_PERMISSION, UploadGrant, staged_media_name, staged_record_name
from videojob.domain.activity_wire import CreateInput
from videojob.domain.settings import Settings

from .share_link import CLOCK_SKEW, Signer, default_credential, signer_from_settings

logger = logging.getLogger(__name__)
_ensured_lock = threading.Lock()
_ensured: set[tuple[str, str]] = set()


def ensure_container(settings: Settings, container: str) -> None:
    """With an account key (Azurite), create `container` once per process: a worker's SAS cannot.
    In Azure the containers are the deployment's (Bicep). Best effort, one try: if it fails, the
    worker's first write says so (`upload_failed`, retried in a new attempt, which tries again)."""
    if not settings.output_connection_string:
        return
    key = (settings.output_connection_string, container)
    with _ensured_lock:
        if key in _ensured:
            return
        try:
            client = BlobServiceClient.from_connection_string(settings.output_connection_string, retry_total=0)
            client.create_container(container, timeout=10)
        except ResourceExistsError:
            pass
        except (AzureError, ValueError) as e:
            logger.warning("container %s not created: %s", container, type(e).__name__)
            return
        _ensured.add(key)


def signed_url(signer: Signer, container: str, name: str, start: datetime, expiry: datetime, permission: str) -> str:
    return f"{blob_url(signer.endpoint, container, name)}?{signer.sign(container, name, start, expiry, permission)}"


def issue_upload_grant(
    settings: Settings, job: CreateInput, *, credential_factory: Callable[[], Any] = default_credential,
    signer: Signer | None = None,
) -> UploadGrant:
    """The SAS URLs for attempt `job.attempt` of run `job.run`: its record's, and its media's for a download."""
    chosen = signer or signer_from_settings(settings, credential_factory)
    ensure_container(settings, settings.staging_container)
    start, expiry = job.created_at - CLOCK_SKEW, job.deadline

    def sign(name: str) -> str:
        return signed_url(chosen, settings.staging_container, name, start, expiry, WORKER_BLOB_PERMISSION)

    media = staged_media_name(job.job_id, job.run, job.attempt) if job.mode == "download" else None
    return UploadGrant(
        record_url=sign(staged_record_name(job.job_id, job.run, job.attempt)),
        media_url=sign(media) if media else None,
    )
