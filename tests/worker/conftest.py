"""Fixtures for the worker: generated media served on loopback, a callback receiver, Azurite,
and the container env the worker reads."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import BlobClient, BlobServiceClient

from activities.upload_grant import issue_upload_grant
from tests.support.services import Azurite
from tests.worker import media
from tests.worker.callback_receiver import CallbackReceiver, run_callback_receiver
from tests.worker.media_server import MediaServer, serve_media
from videojob.contract import container_env as E
from videojob.contract.staging import staged_media_name, staged_record_name
from videojob.contract.wire import DownloadRequest
from videojob.domain.activity_wire import CreateInput
from videojob.domain.settings import Settings, load_settings
from worker.blob_sink import UploadTarget
from worker.config import Tuning

TOKEN = "test-callback-token-0123456789"
STAGING = "staging"
FAST = Tuning(
    socket_timeout_seconds=10,
    download_retries=0,
    callback_backoff_seconds=0.05,
    callback_backoff_max_seconds=0.2,
    callback_max_attempts=4,
    cancel_grace_seconds=5,
)


@pytest.fixture(scope="session")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    source = media.make_progressive(root / "clip.mp4")
    media.make_hls(source, root / "hls")
    media.make_hls_separate_audio_no_codecs(source, root / "hls-nocodecs")
    media.make_dash(source, root / "dash")
    media.make_html_without_media(root / "page.html")
    return root


@pytest.fixture(scope="session")
def media_server(media_root: Path) -> Iterator[MediaServer]:
    with serve_media(media_root) as server:
        yield server


@pytest.fixture
def callbacks() -> Iterator[CallbackReceiver]:
    with run_callback_receiver() as receiver:
        yield receiver


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp dir the worker works in (in-process): must be empty again after every job."""
    path = tmp_path / "worker-tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture(scope="session")
def blob_service(azurite: Azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


def worker_env(
    *,
    job_id: str,
    url: str,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    fmt: str = "video",
    **overrides: str,
) -> dict[str, str]:
    env = {
        E.JOB_ID: job_id,
        E.JOB_URL: url,
        E.JOB_FORMAT: fmt,
        E.JOB_MAX_BYTES: str(200 * 1024 * 1024),
        E.JOB_TIMEOUT_SECONDS: "120",
        E.OUTPUT_CONTAINER: "downloads",
        **upload_env(azurite, job_id, overrides.get(E.JOB_RUN), _attempt(overrides.get(E.JOB_ATTEMPT)),
                     overrides.get(E.JOB_MODE, "download")),
        E.CALLBACK_URL: callbacks.url(job_id),
        E.CALLBACK_TOKEN: TOKEN,
        E.ALLOWED_HOSTS: "127.0.0.1,localhost",
        E.ALLOW_PRIVATE_ADDRESSES: "true",
        E.PROGRESS_INTERVAL_SECONDS: "0",
    }
    env.update(overrides)
    return env


def _attempt(raw: str | None) -> int:
    """The attempt the SAS is for (a test may hand the worker a malformed `JOB_ATTEMPT`)."""
    return int(raw) if raw and raw.isdigit() and int(raw) >= 1 else 1


def app_settings(azurite: Azurite) -> Settings:
    """The function app's settings on Azurite: it signs the worker's SAS with the account key."""
    return load_settings(environ={
        "CONTAINER_BACKEND": "local", "CALLBACK_BASE_URL": "http://127.0.0.1:7071", "CALLBACK_SIGNING_KEY": "k" * 40,
        "OUTPUT_CONNECTION_STRING": azurite.connection_string,
    })


def upload_env(azurite: Azurite, job_id: str, run: str | None = None, attempt: int = 1,
               mode: str = "download") -> dict[str, str]:
    """The worker's storage credential, signed as the create activity signs it (`issue_upload_grant`)."""
    now = datetime.now(UTC)
    job = CreateInput(job_id, DownloadRequest("https://example.com/v"), now, now + timedelta(hours=1), attempt,
                      mode=mode, max_items=5 if mode == "list" else None, run=run)
    grant = issue_upload_grant(app_settings(azurite), job)
    media = {E.STAGING_MEDIA_URL: grant.media_url} if grant.media_url else {}
    return {E.STAGING_RECORD_URL: grant.record_url, **media}


def upload_target(azurite: Azurite, job_id: str, **overrides: object) -> UploadTarget:
    """What the worker's upload side is configured with for `job_id`'s first attempt."""
    env = upload_env(azurite, job_id)
    fields: dict[str, object] = {
        "output_container": "downloads",
        "record_url": env[E.STAGING_RECORD_URL],
        "media_url": env[E.STAGING_MEDIA_URL],
        "block_bytes": 64 * 1024,
        "concurrency": 3,
    }
    fields.update(overrides)
    return UploadTarget(**fields)  # type: ignore[arg-type]


def staged_media(blob_service: BlobServiceClient, job_id: str, run: str | None = None, attempt: int = 1) -> BlobClient:
    """Where the worker of that attempt put its file (the app publishes it from there)."""
    return blob_service.get_blob_client(STAGING, staged_media_name(job_id, run, attempt))


def staged_record(blob_service: BlobServiceClient, job_id: str, run: str | None = None, attempt: int = 1) -> BlobClient:
    return blob_service.get_blob_client(STAGING, staged_record_name(job_id, run, attempt))


def staged_names(blob_service: BlobServiceClient, job_id: str) -> list[str]:
    return sorted(b.name for b in blob_service.get_container_client(STAGING).list_blobs(name_starts_with=f"{job_id}/"))


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
