"""A worker's `succeeded` report is a claim (issue 9, item 1): `download_job` takes it only for the
job's own blob in `OUTPUT_CONTAINER`, as stored, and never signs a link or shows a URL it did not
build itself.

The reports below are what a compromised worker holding this job's callback token could send
(signed and valid per the contract). Replayed like the other orchestration tests; where storage
answers, the real `create_container_group` (it signs the worker's staging SAS), `publish_output_blob`
and `create_share_link` activities run against Azurite, and the "worker" writes only through the
SAS URLs its spec carries (issue 19: the service vouches only for bytes it copied and hashed).
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.storage.blob import BlobClient, BlobServiceClient

import activities
from orchestrators import download_job
from tests.orchestration.conftest import (
    BLOB,
    GROUP,
    JOB_ID,
    MEDIA,
    T0,
    check_invariants,
    plan,
    run_activity,
)
from tests.orchestration.fakes import FakeBackend
from tests.support.replay import ReplayHost, run_activity_function
from tests.support.services import Azurite
from videojob import bootstrap
from videojob.contract import container_env as E
from videojob.contract.output_blob import blob_name_problem, job_blob_prefix
from videojob.contract.wire import JobPlan
from videojob.domain.activity_wire import (
    CREATE_CONTAINER_GROUP,
    CREATE_SHARE_LINK,
    DELETE_CONTAINER_GROUP,
    PUBLISH_OUTPUT_BLOB,
    STOP_CONTAINER_GROUP,
)
from videojob.domain.settings import load_settings
from worker.naming import blob_name

pytestmark = pytest.mark.timeout(120)

CREATE, CHECK, SHARE, STOP, DELETE = (
    CREATE_CONTAINER_GROUP,
    PUBLISH_OUTPUT_BLOB,
    CREATE_SHARE_LINK,
    STOP_CONTAINER_GROUP,
    DELETE_CONTAINER_GROUP,
)
PHISHING = "https://login.example-phish.net/microsoft/signin?next=video.mp4"


def succeeded(blob: dict[str, Any], seq: int = 1) -> dict[str, Any]:
    return {"jobId": JOB_ID, "seq": seq, "state": "succeeded", "attempt": 1, "result": {"blob": blob, "media": MEDIA}}


def replay(job_plan: JobPlan, activity: Callable[[str, str], str], *events: dict[str, Any], start: datetime = T0):
    host = ReplayHost(download_job, instance_id=JOB_ID, input=job_plan.to_wire(), start=start, activities=activity)
    for second, event in enumerate(events, start=1):
        host.raise_event(10 * second, event)
    result = host.run()
    check_invariants(result)
    return result


def refused(result: Any) -> dict[str, Any]:
    """The job failed with `invalid_result`, signed nothing, and kept the worker's group stopped."""
    assert result.status == "Failed"
    error = result.custom_status["error"]
    assert error["code"] == "invalid_result" and error["retryable"] is False
    assert result.error.startswith("invalid_result: the worker's result was refused: ")
    assert SHARE not in result.activity_names
    assert result.custom_status["attempts"][0]["outcome"] == "invalid_result"
    assert result.calls(STOP) and not result.calls(DELETE)  # the failed-group policy, not a success's delete
    return error


# --- refused before any storage call -------------------------------------------------------------

FOREIGN = {
    "another job's blob": {"name": "job-0002/video.mp4"},
    "a job whose id extends ours": {"name": "job-00010/video.mp4"},
    "the job id without its slash": {"name": "job-0001video.mp4"},
    "the host's keys": {"container": "azure-webjobs-secrets", "name": "func-app/host.json"},
    "our prefix in the host's container": {"container": "azure-webjobs-secrets", "name": "job-0001/host.json"},
    "the task hub's messages": {"container": "testhubname-largemessages", "name": "job-0001/x.json.gz"},
    "a climb out of the prefix": {"name": "job-0001/../job-0002/video.mp4"},
    "a dot segment": {"name": "job-0001/./video.mp4"},
    "an empty segment": {"name": "job-0001//video.mp4"},
    "a backslash": {"name": "job-0001/..\\job-0002\\video.mp4"},
    "a control character": {"name": "job-0001/video\r\n.mp4"},
    "a name over the blob limit": {"name": "job-0001/" + "v" * 1100 + ".mp4"},
    "a leading slash": {"name": "/job-0001/video.mp4"},
    "a negative size": {"sizeBytes": -1},
}


@pytest.mark.parametrize("forged", FOREIGN.values(), ids=FOREIGN.keys())
def test_a_report_naming_a_blob_outside_the_jobs_prefix_fails_the_job_and_signs_nothing(backend, forged):
    result = replay(plan(share_link_hours=24), run_activity, succeeded({**BLOB, **forged}))

    error = refused(result)
    assert CHECK not in result.activity_names  # refused on the report alone, no storage call
    assert result.activity_names == [CREATE, STOP]
    assert len(error["message"]) <= 1000


def test_a_download_reporting_a_listing_instead_of_a_blob_is_refused(backend):
    entries = {"entries": [{"url": "https://phish.example.net/", "title": "Click me"}]}
    report = {"jobId": JOB_ID, "seq": 1, "state": "succeeded", "attempt": 1, "result": entries}

    result = replay(plan(share_link_hours=24), run_activity, report)

    refused(result)
    assert "a download reported no blob" in result.error


# --- checked against the output storage (Azurite) -------------------------------------------------


@pytest.fixture
def output(azurite: Azurite) -> Iterator[tuple[BlobServiceClient, str]]:
    """A fresh output container on Azurite; the function app's settings point at it."""
    container = f"out-{uuid.uuid4().hex[:12]}"
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.create_container(container)
    settings = load_settings(environ={
        "CONTAINER_BACKEND": "local",
        "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
        "CALLBACK_SIGNING_KEY": "k" * 40,
        "OUTPUT_CONNECTION_STRING": azurite.connection_string,
        "OUTPUT_CONTAINER": container,
    })
    bootstrap.override(settings=settings, backend=FakeBackend())
    yield service, container
    bootstrap.reset()


STORAGE_ACTIVITIES = {name: run_activity_function(getattr(activities, name)) for name in (CHECK, SHARE)}


def worker_sas(name: str = E.STAGING_MEDIA_URL) -> str:
    """The SAS URL the create activity put into the (last) worker's environment."""
    backend = bootstrap.backend()
    assert isinstance(backend, FakeBackend) and backend.specs, "no group was created"
    return backend.specs[-1].environment()[name]


def now() -> datetime:
    """The replay's start for jobs whose SAS a real Azurite checks (valid until the job's deadline)."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def replay_now(job_plan: JobPlan, activity: Callable[[str, str], str], *events: dict[str, Any]):
    return replay(job_plan, activity, *events, start=now())


def on_azurite(uploads: bytes | None = None, before_publish: Callable[[], None] = lambda: None):
    """The real create (signing the staging SAS), publish and share link on Azurite; the rest as in
    conftest. `uploads`: what the worker puts, through its media SAS only, once its group exists."""

    def activity(name: str, input_json: str) -> str:
        if name == CHECK:
            before_publish()
        if name in STORAGE_ACTIVITIES:
            return STORAGE_ACTIVITIES[name](input_json)
        answer = run_activity(name, input_json)
        if name == CREATE and uploads is not None:
            BlobClient.from_blob_url(worker_sas()).upload_blob(uploads, overwrite=True)
        return answer

    return activity


def reported(container: str, content: bytes, name: str = "job-0001/video.mp4") -> dict:
    """What an honest worker reports of `content`."""
    return {**BLOB, "container": container, "name": name, "sizeBytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest()}


def served(result: Any) -> bytes:
    """The bytes the job's share link serves."""
    with urllib.request.urlopen(result.output["shareLink"]["url"], timeout=30) as answer:
        return bytes(answer.read())


def test_the_output_carries_the_url_built_from_the_settings_not_the_workers(output, azurite: Azurite):
    content = b"\x00\x00\x00\x18ftypmp42 media" * 100
    _, container = output
    blob = reported(container, content)

    job_plan = plan(share_link_hours=24, output_container=container)
    result = replay_now(job_plan, on_azurite(content), succeeded({**blob, "url": PHISHING}))

    assert result.status == "Completed", result.error
    assert result.activity_names == [CREATE, CHECK, DELETE, SHARE]
    own_url = f"{azurite.blob_endpoint}/{container}/job-0001/video.mp4"
    assert result.output["blob"] == {**blob, "url": own_url}
    assert PHISHING not in json.dumps(result.output)
    link = result.output["shareLink"]["url"]
    assert link.startswith(own_url + "?")
    assert served(result) == content


def test_a_blob_name_that_needs_quoting_gets_a_quoted_url(output, azurite: Azurite):
    _, container = output
    blob = reported(container, b"x" * 10, name="job-0001/Ünïcode & a #hash? 100%.mp4")

    result = replay_now(plan(output_container=container), on_azurite(b"x" * 10), succeeded({**blob, "url": PHISHING}))

    assert result.status == "Completed", result.error
    quoted = "job-0001/%C3%9Cn%C3%AFcode%20%26%20a%20%23hash%3F%20100%25.mp4"
    expected = f"{azurite.blob_endpoint}/{container}/{quoted}"
    assert result.output["blob"]["url"] == expected


def test_a_reported_blob_that_was_never_uploaded_fails_the_job_and_signs_nothing(output):
    service, container = output
    blob = reported(container, b"v" * 100, name="job-0001/never-uploaded.mp4")

    result = replay_now(plan(share_link_hours=24, output_container=container), on_azurite(None), succeeded(blob))

    refused(result)
    assert result.activity_names == [CREATE, CHECK, STOP]
    assert "never uploaded" in result.error
    assert list(service.get_container_client(container).list_blobs()) == []


@pytest.mark.parametrize("claimed", [9_999, 10_001, 0], ids=["smaller", "larger", "empty"])
def test_a_reported_size_that_is_not_the_stored_one_fails_the_job(output, claimed):
    service, container = output
    blob = reported(container, b"m" * 10_000)

    job_plan = plan(share_link_hours=24, output_container=container)
    result = replay_now(job_plan, on_azurite(b"m" * 10_000), succeeded({**blob, "sizeBytes": claimed}))

    refused(result)
    assert f"holds 10000 bytes, not the {claimed} reported" in result.error
    assert list(service.get_container_client(container).list_blobs()) == []  # the refused copy is gone


def test_a_reported_sha256_that_is_not_the_bytes_fails_the_job_and_serves_nothing(output):
    """Issue 19: the orchestrator checked only the size; a worker's bytes with another hash passed."""
    service, container = output
    content = b"m" * 10_000
    blob = {**reported(container, content), "sha256": hashlib.sha256(b"n" * 10_000).hexdigest()}

    result = replay_now(plan(share_link_hours=24, output_container=container), on_azurite(content), succeeded(blob))

    refused(result)
    assert "sha256" in result.error
    assert list(service.get_container_client(container).list_blobs()) == []


def test_a_same_size_overwrite_of_the_staged_blob_before_publishing_fails_the_job(output):
    """The worker still holds its staging SAS after its report: bytes swapped before the copy are
    hashed in the copy, and do not match what it reported."""
    service, container = output
    honest, swapped = b"h" * 4096, b"s" * 4096

    def swap() -> None:
        BlobClient.from_blob_url(worker_sas()).upload_blob(swapped, overwrite=True)

    result = replay_now(plan(share_link_hours=24, output_container=container), on_azurite(honest, before_publish=swap),
                    succeeded(reported(container, honest)))

    refused(result)
    assert list(service.get_container_client(container).list_blobs()) == []


def test_a_same_size_overwrite_of_the_staged_blob_after_the_report_changes_nothing_served(output):
    """Issue 19: a worker rewrote a finished video with other bytes of the same size and its share
    link served them. After publishing, the worker's SAS reaches only its staging name: whatever
    it writes there (it can, until the deadline), the link serves the verified copy."""
    service, container = output
    honest, swapped = b"h" * 4096, b"s" * 4096

    result = replay_now(plan(share_link_hours=24, output_container=container), on_azurite(honest),
                    succeeded(reported(container, honest)))
    assert result.status == "Completed", result.error
    BlobClient.from_blob_url(worker_sas()).upload_blob(swapped, overwrite=True)  # allowed: its own staging blob

    assert served(result) == honest
    stored = service.get_blob_client(container, "job-0001/video.mp4").download_blob().readall()
    assert stored == honest


def test_a_plan_from_before_the_check_still_refuses_another_container(output):
    # Plans made before `outputContainer` existed carry none: the activity compares with the settings.
    service, container = output
    secrets = "azure-webjobs-secrets-" + container[4:]
    service.create_container(secrets)
    service.get_blob_client(secrets, "job-0001/host.json").upload_blob(b"k" * 64)
    forged = {**reported(secrets, b"k" * 64), "name": "job-0001/host.json"}

    result = replay_now(plan(share_link_hours=24, output_container=None), on_azurite(b"k" * 64), succeeded(forged))

    refused(result)
    assert result.activity_names == [CREATE, CHECK, STOP]
    assert "is not the output container" in result.error


# --- storage that cannot answer -------------------------------------------------------------------


def answering(*answers: dict[str, Any]) -> Callable[[str, str], str]:
    pending = list(answers)

    def activity(name: str, input_json: str) -> str:
        if name == CHECK:
            return json.dumps(pending.pop(0))
        return run_activity(name, input_json)

    return activity


BUSY = {"ok": False, "error": {"code": "ServerBusy", "message": "blob properties refused (503)", "retryable": True}}


def test_a_transient_storage_error_is_retried_then_the_check_decides(backend):
    ok = {"ok": True, "exists": True, "sizeBytes": BLOB["sizeBytes"], "sha256": BLOB["sha256"],
          "url": "http://own.example/downloads/x.mp4"}

    result = replay(plan(), answering(BUSY, BUSY, ok), succeeded(BLOB))

    assert result.status == "Completed"
    assert [c.scheduled_at.second for c in result.calls(CHECK)] == [10, 17, 29]  # 5 s, then 10 s apart
    assert result.output["blob"]["url"] == "http://own.example/downloads/x.mp4"


def test_storage_that_never_answers_fails_the_job_unverified(backend):
    result = replay(plan(share_link_hours=24), answering(BUSY, BUSY, BUSY), succeeded(BLOB))

    assert result.status == "Failed"
    assert result.custom_status["error"]["code"] == "result_unverified"
    assert "ServerBusy" in result.error
    assert len(result.calls(CHECK)) == 3 and SHARE not in result.activity_names
    assert result.custom_status["containerGroup"] == GROUP



# --- the one rule the worker names by and the orchestrator checks --------------------------------

HOSTILE_TITLES = ["../../azure-webjobs-secrets/host", "..", ".", "a/b\\c", "\u202egnp.exe", "x\x00y\r\nz", "",
                  None, "  ...  ", "%2e%2e%2f", "emoji 🎬 title", "ﾃｽﾄ" * 200, "#?&=;"]


@pytest.mark.parametrize("job_id", [JOB_ID, "k-" + "0f" * 16, "batch-1-007", "_", "a__b"])
@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_every_name_the_worker_makes_passes_the_check(job_id: str, title: str | None):
    name = blob_name(job_id, title, "MP4")

    assert name.startswith(job_blob_prefix(job_id))
    assert blob_name_problem(job_id, name) is None


def test_prefixes_are_one_to_one_and_never_cover_another_job():
    assert job_blob_prefix("job-1") == "job-1/"
    assert blob_name_problem("job-1", "job-10/video.mp4") is not None
    # A sanitized id would have merged these two jobs' files (`a__b` and `_a_b` both gave `a_b/`).
    assert {job_blob_prefix(i) for i in ("a__b", "_a_b", "a_b")} == {"a__b/", "_a_b/", "a_b/"}
    for unsafe in ("", "a/b", "..", "a b", "x" * 101, "é"):
        with pytest.raises(ValueError):
            job_blob_prefix(unsafe)
