"""Fixtures for the worker: generated media served on loopback, a callback receiver, Azurite,
and the container env the worker reads."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from tests.support.services import Azurite
from tests.worker import media
from tests.worker.callback_receiver import CallbackReceiver, run_callback_receiver
from tests.worker.media_server import MediaServer, serve_media
from videojob import container_env as E
from worker.config import Tuning

TOKEN = "test-callback-token-0123456789"
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
        E.OUTPUT_CONNECTION_STRING: azurite.connection_string,
        E.CALLBACK_URL: callbacks.url(job_id),
        E.CALLBACK_TOKEN: TOKEN,
        E.ALLOWED_HOSTS: "127.0.0.1,localhost",
        E.ALLOW_PRIVATE_ADDRESSES: "true",
        E.PROGRESS_INTERVAL_SECONDS: "0",
    }
    env.update(overrides)
    return env


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
