"""The upload process (`worker.blob_process`) against a real Azurite: the job process's requests,
what ends up in Blob Storage, and failures of the child classified as `upload_failed`."""

from __future__ import annotations

import hashlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from tests.support.services import Azurite
from tests.worker.conftest import STAGING, staged_media, upload_target
from videojob.contract.wire import ErrorCode, JobError
from worker.blob_process import BlobProcess, BlobTarget, ProcessBlobSink
from worker.blob_sink import BlobProperties
from worker.errors import JobFailed

KiB = 1024


@pytest.fixture
def process() -> Iterator[BlobProcess]:
    # `spawn`: this test process has threads (pytest, Azurite's runner), which `fork` must not copy.
    handle = BlobProcess.start("spawn")
    try:
        yield handle
    finally:
        handle.close()


def target(azurite: Azurite, job_id: str, **overrides: object) -> BlobTarget:
    return upload_target(azurite, job_id, **overrides)


def visible(blob_service: BlobServiceClient, job_id: str) -> list[str]:
    return [b.name for b in blob_service.get_container_client(STAGING).list_blobs(name_starts_with=f"{job_id}/")]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_commit_makes_the_blob_with_the_sha256_of_its_content(
    azurite: Azurite, blob_service: BlobServiceClient, process: BlobProcess, tmp_path: Path
) -> None:
    payload = tmp_path / "media.mp4"
    payload.write_bytes(os.urandom(300 * KiB + 17))
    jid = uuid.uuid4().hex
    name = f"{jid}/media.mp4"
    progress: list[tuple[int, int]] = []
    sink = ProcessBlobSink(process, target(azurite, jid))

    staged = sink.stage(payload, name, lambda done, total: progress.append((done, total)), lambda: None)
    assert visible(blob_service, jid) == [], "staged blocks are visible before the commit"
    assert progress[-1] == (payload.stat().st_size, payload.stat().st_size)

    properties = BlobProperties("video/mp4", {"jobid": "j1"}, 'attachment; filename="media.mp4"')
    result = sink.commit(staged, properties)
    blob = staged_media(blob_service, jid)
    data = blob.download_blob().readall()
    assert data == payload.read_bytes()
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.size_bytes == len(data)
    assert result.url == f"{azurite.blob_endpoint}/downloads/{jid}/media.mp4" and result.content_type == "video/mp4"
    props = blob.get_blob_properties()
    assert props.content_settings.content_type == "video/mp4"
    assert props.content_settings.content_disposition == 'attachment; filename="media.mp4"'
    assert props.metadata == {"jobid": "j1"}

    pid = process.pid
    assert pid is not None
    assert process.close() is not None, "the upload process did not report its peak RSS"
    assert not alive(pid)


def test_an_abort_stops_the_staging_and_commits_nothing(
    azurite: Azurite, blob_service: BlobServiceClient, process: BlobProcess, tmp_path: Path
) -> None:
    payload = tmp_path / "media.mp4"
    payload.write_bytes(os.urandom(4 * 1024 * KiB))
    jid = uuid.uuid4().hex
    name = f"{jid}/media.mp4"
    sink = ProcessBlobSink(process, target(azurite, jid))
    progress: list[int] = []
    cancelled = JobError(ErrorCode.CANCELLED, "the job was cancelled")

    def checkpoint() -> None:
        if progress:
            raise JobFailed(cancelled)

    with pytest.raises(JobFailed) as raised:
        sink.stage(payload, name, lambda done, total: progress.append(done), checkpoint)
    assert raised.value.error == cancelled
    assert visible(blob_service, jid) == []

    # The process is still usable afterwards, and only what was committed then is there.
    small = tmp_path / "small.mp4"
    small.write_bytes(b"x" * 1000)
    sink.commit(sink.stage(small, name, lambda d, t: None, lambda: None), BlobProperties("video/mp4", {}))
    assert staged_media(blob_service, jid).download_blob().readall() == b"x" * 1000


def test_a_malformed_sas_url_is_upload_failed_without_quoting_it(azurite: Azurite, process: BlobProcess) -> None:
    secret = "sig=very-secret-signature"
    with pytest.raises(JobFailed) as raised:
        ProcessBlobSink(process, target(azurite, "j", media_url=f"not a url?{secret}"))
    assert raised.value.error.code == ErrorCode.UPLOAD_FAILED
    assert secret not in raised.value.error.message
    assert "sig=" not in repr(target(azurite, "j"))


def test_a_sas_the_service_refuses_is_upload_failed_not_retried(
    azurite: Azurite, process: BlobProcess, tmp_path: Path
) -> None:
    payload = tmp_path / "media.mp4"
    payload.write_bytes(b"x" * 1000)
    good = target(azurite, "j")
    forged = good.media_url.replace("sig=", "sig=AAAA")  # type: ignore[union-attr]
    sink = ProcessBlobSink(process, target(azurite, "j", media_url=forged))
    with pytest.raises(JobFailed) as raised:
        sink.stage(payload, "j/media.mp4", lambda d, t: None, lambda: None)
    assert (raised.value.error.code, raised.value.error.retryable) == (ErrorCode.UPLOAD_FAILED, False)


def test_a_dead_upload_process_is_upload_failed(azurite: Azurite, process: BlobProcess, tmp_path: Path) -> None:
    payload = tmp_path / "media.mp4"
    payload.write_bytes(b"x" * 1000)
    sink = ProcessBlobSink(process, target(azurite, "j"))
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    with pytest.raises(JobFailed) as raised:
        sink.stage(payload, "a/media.mp4", lambda d, t: None, lambda: None)
    assert (raised.value.error.code, raised.value.error.retryable) == (ErrorCode.UPLOAD_FAILED, True)


def test_the_upload_process_ignores_sigterm_the_job_process_decides(
    azurite: Azurite, blob_service: BlobServiceClient, process: BlobProcess, tmp_path: Path
) -> None:
    payload = tmp_path / "media.mp4"
    payload.write_bytes(b"y" * 5000)
    jid = uuid.uuid4().hex
    sink = ProcessBlobSink(process, target(azurite, jid))  # answered: its signal handling is in place
    assert process.pid is not None
    os.kill(process.pid, signal.SIGTERM)  # e.g. a signal sent to the whole process group
    staged = sink.stage(payload, f"{jid}/media.mp4", lambda d, t: None, lambda: None)
    sink.commit(staged, BlobProperties("video/mp4", {}))
    assert visible(blob_service, jid) == [staged_media(blob_service, jid).blob_name]
