"""The upload in two steps against a real Azurite: staged blocks are invisible until committed."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from tests.support.services import Azurite
from videojob.contract import ErrorCode, JobError
from worker.blob_sink import MAX_BLOCKS, AzureBlobSink, BlobProperties, block_size_for
from worker.errors import JobFailed

KiB = 1024


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "media.mp4"
    path.write_bytes(os.urandom(300 * KiB + 123))
    return path


@pytest.fixture(scope="module", autouse=True)
def sink_container(blob_service: BlobServiceClient) -> None:
    if not blob_service.get_container_client("sink-tests").exists():
        blob_service.create_container("sink-tests")


def sink(azurite: Azurite, container: str = "sink-tests") -> AzureBlobSink:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return AzureBlobSink(service, container, block_bytes=64 * KiB, concurrency=3)


def names(blob_service: BlobServiceClient, container: str, prefix: str) -> list[str]:
    return [b.name for b in blob_service.get_container_client(container).list_blobs(name_starts_with=prefix)]


def test_staged_blocks_become_the_blob_only_on_commit(
    azurite: Azurite, blob_service: BlobServiceClient, payload: Path
) -> None:
    name = f"{uuid.uuid4().hex}/media.mp4"
    progress: list[tuple[int, int]] = []
    container = f"c{uuid.uuid4().hex[:12]}"  # does not exist yet: created on first use
    target = sink(azurite, container)

    staged = target.stage(payload, name, lambda done, total: progress.append((done, total)), lambda: None)
    assert names(blob_service, container, name) == [], "an uncommitted upload is visible"
    assert len(staged.block_ids) == 5  # 300 KiB + 123 bytes in 64 KiB blocks
    assert progress[-1] == (payload.stat().st_size, payload.stat().st_size)

    result = target.commit(staged, BlobProperties("video/mp4", {"jobid": "j1"}, 'attachment; filename="media.mp4"'))
    data = blob_service.get_blob_client(container, name).download_blob().readall()
    assert data == payload.read_bytes()
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.size_bytes == len(data)
    props = blob_service.get_blob_client(container, name).get_blob_properties()
    assert props.content_settings.content_type == "video/mp4"
    assert props.metadata == {"jobid": "j1"}


def test_a_cancelled_staging_stops_and_leaves_no_blob(
    azurite: Azurite, blob_service: BlobServiceClient, payload: Path
) -> None:
    name = f"{uuid.uuid4().hex}/media.mp4"
    calls = []

    def checkpoint() -> None:
        calls.append(1)
        if len(calls) > 2:
            raise JobFailed(JobError(ErrorCode.CANCELLED, "the job was cancelled"))

    target = sink(azurite)
    with pytest.raises(JobFailed):
        target.stage(payload, name, lambda done, total: None, checkpoint)
    assert len(calls) == 3, "staging went on after the checkpoint said stop"
    assert names(blob_service, "sink-tests", name) == []


def test_committing_again_replaces_the_blob(azurite: Azurite, blob_service: BlobServiceClient, tmp_path: Path) -> None:
    name = f"{uuid.uuid4().hex}/media.mp4"
    target = sink(azurite)
    for content in (os.urandom(200 * KiB), os.urandom(70 * KiB)):
        path = tmp_path / "f.bin"
        path.write_bytes(content)
        target.commit(target.stage(path, name, lambda d, t: None, lambda: None), BlobProperties("video/mp4", {}))
    assert blob_service.get_blob_client("sink-tests", name).download_blob().readall() == content


def test_huge_files_get_bigger_blocks_to_stay_under_the_block_limit() -> None:
    assert block_size_for(10 * 1024**2, 8 * 1024**2) == 8 * 1024**2
    big = 500 * 1024**3
    assert block_size_for(big, 8 * 1024**2) * MAX_BLOCKS >= big
