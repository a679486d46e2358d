"""`publish_output_blob` on a real Azurite (issue 19, item 2): the attempt's staging blob is copied
to the reported name in the output container, the COPY is read back and hashed, a copy that is not
what the worker reported is deleted, and the staging blob goes either way."""

from __future__ import annotations

import hashlib
import json
import os
import tracemalloc
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContentSettings

from activities.publish import publish_output_blob_activity, read_back, wait_for_copy
from tests.share_link.test_share_link import settings_with
from tests.support.replay import run_activity_function
from tests.support.services import Azurite
from videojob import bootstrap
from videojob.contract.staging import staged_media_name
from videojob.domain.settings import Settings

JOB, RUN = "job-7", "0a1b2c3d"
MiB = 1024 * 1024


@pytest.fixture
def stack(azurite: Azurite) -> tuple[Settings, BlobServiceClient]:
    suffix = uuid.uuid4().hex[:10]
    settings = settings_with(OUTPUT_CONNECTION_STRING=azurite.connection_string,
                             OUTPUT_CONTAINER=f"out-{suffix}", STAGING_CONTAINER=f"stage-{suffix}")
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.create_container(settings.staging_container)  # the output container is created on first use
    return settings, service


def stage(stack: tuple[Settings, BlobServiceClient], content: bytes) -> None:
    settings, service = stack
    service.get_blob_client(settings.staging_container, staged_media_name(JOB, RUN, 1)).upload_blob(
        content, overwrite=True, metadata={"jobid": JOB},
        content_settings=ContentSettings("video/mp4", content_disposition='attachment; filename="v.mp4"'))


def publish(stack: tuple[Settings, BlobServiceClient], content: bytes, name: str = f"{JOB}/My video.mp4",
            **changes: Any) -> dict[str, Any]:
    """Through the registered activity function, as the Functions host calls it."""
    settings, _ = stack
    payload = {"jobId": JOB, "run": RUN, "attempt": 1, "container": settings.output_container, "name": name,
               "sizeBytes": len(content), "sha256": hashlib.sha256(content).hexdigest(), **changes}
    bootstrap.override(settings=settings)
    try:
        import activities

        return json.loads(run_activity_function(activities.publish_output_blob)(json.dumps(payload)))
    finally:
        bootstrap.reset()


def names(service: BlobServiceClient, container: str) -> list[str]:
    client = service.get_container_client(container)
    return sorted(b.name for b in client.list_blobs()) if client.exists() else []


def test_the_staged_blob_is_copied_under_the_reported_name_verified_and_the_staging_blob_removed(stack, azurite):
    settings, service = stack
    content = os.urandom(300_000)
    stage(stack, content)

    answer = publish(stack, content)

    digest = hashlib.sha256(content).hexdigest()
    assert answer == {"ok": True, "exists": True, "sizeBytes": len(content), "sha256": digest,
                      "url": f"{azurite.blob_endpoint}/{settings.output_container}/{JOB}/My%20video.mp4"}
    copy = service.get_blob_client(settings.output_container, f"{JOB}/My video.mp4")
    assert copy.download_blob().readall() == content
    props = copy.get_blob_properties()
    assert props.content_settings.content_type == "video/mp4"  # properties and metadata come along
    assert props.content_settings.content_disposition == 'attachment; filename="v.mp4"'
    assert props.metadata == {"jobid": JOB}
    assert names(service, settings.staging_container) == []


def test_a_copy_whose_sha256_is_not_the_reported_one_is_deleted(stack):
    settings, service = stack
    stage(stack, b"s" * 5000)

    answer = publish(stack, b"s" * 5000, sha256=hashlib.sha256(b"h" * 5000).hexdigest())

    assert answer["ok"] and answer["sha256"] == hashlib.sha256(b"s" * 5000).hexdigest()  # what was read
    assert names(service, settings.output_container) == []  # nothing left to serve
    assert names(service, settings.staging_container) == []


def test_nothing_staged_is_answered_missing_and_nothing_is_made(stack):
    settings, service = stack
    answer = publish(stack, b"x" * 10)
    assert answer["ok"] and answer["exists"] is False
    assert names(service, settings.output_container) == []


def test_run_again_after_the_staging_blob_is_gone_it_verifies_the_copy(stack):
    """Activities run at least once: a second run finds the copy and hashes it again."""
    content = b"v" * 7777
    stage(stack, content)
    first = publish(stack, content)
    again = publish(stack, content)
    assert first == again and again["exists"] is True


@pytest.mark.parametrize("name", ["job-8/video.mp4", "job-7/../job-8/v.mp4", "job-7/.hidden.mp4"])
def test_a_name_outside_the_jobs_output_is_refused_before_any_copy(stack, name: str):
    settings, service = stack
    stage(stack, b"x" * 10)
    answer = publish(stack, b"x" * 10, name=name)
    assert answer["ok"] is False and answer["error"]["code"] == "invalid_result"
    assert names(service, settings.output_container) == []


def test_the_copy_is_read_back_in_bounded_memory(stack):
    """Measured: the peak is about 9 x the 4 MiB range (the SDK's copies of one response), the same
    for an 8 MiB and a 40 MiB blob; the SDK's own download would hold its first 32 MiB at once."""
    settings, service = stack
    service.create_container(settings.output_container)
    peaks = {}
    for size in (8 * MiB, 40 * MiB):
        blob = service.get_blob_client(settings.output_container, f"{JOB}/{size}.mp4")
        blob.upload_blob(b"\x5a" * size)
        tracemalloc.start()
        try:
            found = read_back(blob)
            _, peaks[size] = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert found.size == size and found.sha256 == hashlib.sha256(b"\x5a" * size).hexdigest()
    assert abs(peaks[40 * MiB] - peaks[8 * MiB]) < 2 * MiB, peaks  # independent of the blob's size
    assert peaks[40 * MiB] < 40 * MiB, peaks


def test_a_copy_still_pending_at_the_bound_is_given_up():
    """Within an account Azurite copies at once; Azure may not. The wait is bounded."""
    now = [0.0]
    looks: list[float] = []

    class Pending:
        def get_blob_properties(self) -> Any:
            looks.append(now[0])
            return SimpleNamespace(copy=SimpleNamespace(status="pending", id="c1"))

    def sleep(seconds: float) -> None:
        now[0] += seconds

    assert wait_for_copy(Pending(), wait_seconds=30, sleep=sleep, clock=lambda: now[0]) == "pending"
    assert looks[-1] == pytest.approx(30) and len(looks) < 20


def test_publish_reads_no_more_than_the_activity_answers(stack):
    """The answer never carries the staging name or a SAS: the orchestration sees only the copy."""
    content = b"q" * 100
    stage(stack, content)
    text = json.dumps(publish(stack, content))
    assert "sig=" not in text and RUN not in text and "stage-" not in text


def test_a_signed_but_unusable_input_is_invalid_input(stack):
    assert publish(stack, b"x", sha256="not-a-digest")["error"]["code"] == "invalid_input"
    assert publish_output_blob_activity({"jobId": "a/b"}, lambda: stack[0])["error"]["code"] == "invalid_input"
