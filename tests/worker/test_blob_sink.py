"""The upload in two steps against a real Azurite, through nothing but the attempt's SAS URLs:
staged blocks are invisible until committed, and the committed blob is the staging blob."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from tests.support.services import Azurite
from tests.worker.conftest import STAGING, staged_media, upload_target
from videojob.contract.wire import ErrorCode, JobError
from worker.blob_sink import MAX_BLOCKS, AzureBlobSink, BlobProperties, block_size_for
from worker.errors import JobFailed

KiB = 1024


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "media.mp4"
    path.write_bytes(os.urandom(300 * KiB + 123))
    return path


def names(blob_service: BlobServiceClient, prefix: str) -> list[str]:
    return [b.name for b in blob_service.get_container_client(STAGING).list_blobs(name_starts_with=prefix)]


def test_staged_blocks_become_the_staging_blob_only_on_commit(
    azurite: Azurite, blob_service: BlobServiceClient, payload: Path
) -> None:
    jid = uuid.uuid4().hex
    name = f"{jid}/My clip.mp4"
    progress: list[tuple[int, int]] = []
    target = AzureBlobSink(upload_target(azurite, jid))

    staged = target.stage(payload, name, lambda done, total: progress.append((done, total)), lambda: None)
    assert names(blob_service, f"{jid}/") == [], "an uncommitted upload is visible"
    assert len(staged.block_ids) == 5  # 300 KiB + 123 bytes in 64 KiB blocks
    assert progress[-1] == (payload.stat().st_size, payload.stat().st_size)

    result = target.commit(staged, BlobProperties("video/mp4", {"jobid": "j1"}, 'attachment; filename="media.mp4"'))
    blob = staged_media(blob_service, jid)
    data = blob.download_blob().readall()
    assert data == payload.read_bytes()
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.size_bytes == len(data)
    # The report proposes the final name in the output container; the app publishes it there.
    assert (result.container, result.name) == ("downloads", name)
    props = blob.get_blob_properties()
    assert props.content_settings.content_type == "video/mp4"
    assert props.metadata == {"jobid": "j1"}
    assert names(blob_service, f"{jid}/") == [blob.blob_name]


def test_a_cancelled_staging_stops_and_leaves_no_blob(
    azurite: Azurite, blob_service: BlobServiceClient, payload: Path
) -> None:
    jid = uuid.uuid4().hex
    calls = []

    def checkpoint() -> None:
        calls.append(1)
        if len(calls) > 2:
            raise JobFailed(JobError(ErrorCode.CANCELLED, "the job was cancelled"))

    target = AzureBlobSink(upload_target(azurite, jid))
    with pytest.raises(JobFailed):
        target.stage(payload, f"{jid}/media.mp4", lambda done, total: None, checkpoint)
    assert len(calls) == 3, "staging went on after the checkpoint said stop"
    assert names(blob_service, f"{jid}/") == []


def test_a_record_goes_only_to_the_name_its_sas_names(azurite: Azurite, blob_service: BlobServiceClient) -> None:
    jid = uuid.uuid4().hex
    target = AzureBlobSink(upload_target(azurite, jid))
    with pytest.raises(JobFailed) as raised:
        target.put_record(f"{jid}/elsewhere.json", b"{}")
    assert raised.value.error.code == ErrorCode.INTERNAL
    assert names(blob_service, f"{jid}/") == []


def test_huge_files_get_bigger_blocks_to_stay_under_the_block_limit() -> None:
    assert block_size_for(10 * 1024**2, 8 * 1024**2) == 8 * 1024**2
    big = 500 * 1024**3
    assert block_size_for(big, 8 * 1024**2) * MAX_BLOCKS >= big
