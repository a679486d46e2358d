"""A worker's `succeeded` report is a claim (issue 9, item 1): `download_job` takes it only for the
job's own blob in `OUTPUT_CONTAINER`, as stored, and never signs a link or shows a URL it did not
build itself.

The reports below are what a compromised worker holding this job's callback token could send
(signed and valid per the contract). Replayed like the other orchestration tests; where storage
answers, the real `check_output_blob` and `create_share_link` activities run against Azurite.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

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
from videojob.activity_wire import (
    CHECK_OUTPUT_BLOB,
    CREATE_CONTAINER_GROUP,
    CREATE_SHARE_LINK,
    DELETE_CONTAINER_GROUP,
    STOP_CONTAINER_GROUP,
)
from videojob.contract import JobPlan
from videojob.output_blob import blob_name_problem, job_blob_prefix
from videojob.settings import load_settings
from worker.naming import blob_name

pytestmark = pytest.mark.timeout(120)

CREATE, CHECK, SHARE, STOP, DELETE = (
    CREATE_CONTAINER_GROUP,
    CHECK_OUTPUT_BLOB,
    CREATE_SHARE_LINK,
    STOP_CONTAINER_GROUP,
    DELETE_CONTAINER_GROUP,
)
PHISHING = "https://login.example-phish.net/microsoft/signin?next=video.mp4"


def succeeded(blob: dict[str, Any], seq: int = 1) -> dict[str, Any]:
    return {"jobId": JOB_ID, "seq": seq, "state": "succeeded", "attempt": 1, "result": {"blob": blob, "media": MEDIA}}


def replay(job_plan: JobPlan, activity: Callable[[str, str], str], *events: dict[str, Any]):
    host = ReplayHost(download_job, instance_id=JOB_ID, input=job_plan.to_wire(), start=T0, activities=activity)
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


def on_azurite(name: str, input_json: str) -> str:
    """The real blob check and share link (account-key SAS on Azurite); the rest as in conftest."""
    if name in STORAGE_ACTIVITIES:
        return STORAGE_ACTIVITIES[name](input_json)
    return run_activity(name, input_json)


def stored_blob(output: tuple[BlobServiceClient, str], content: bytes, name: str = "job-0001/video.mp4") -> dict:
    service, container = output
    service.get_blob_client(container, name).upload_blob(content)
    return {**BLOB, "container": container, "name": name, "sizeBytes": len(content)}


def test_the_output_carries_the_url_built_from_the_settings_not_the_workers(output, azurite: Azurite):
    content = b"\x00\x00\x00\x18ftypmp42 media" * 100
    blob = stored_blob(output, content)
    container = blob["container"]

    job_plan = plan(share_link_hours=24, output_container=container)
    result = replay(job_plan, on_azurite, succeeded({**blob, "url": PHISHING}))

    assert result.status == "Completed", result.error
    assert result.activity_names == [CREATE, CHECK, DELETE, SHARE]
    own_url = f"{azurite.blob_endpoint}/{container}/job-0001/video.mp4"
    assert result.output["blob"] == {**blob, "url": own_url}
    assert PHISHING not in json.dumps(result.output)
    link = result.output["shareLink"]["url"]
    assert link.startswith(own_url + "?")


def test_a_blob_name_that_needs_quoting_gets_a_quoted_url(output, azurite: Azurite):
    blob = stored_blob(output, b"x" * 10, name="job-0001/Ünïcode & a #hash? 100%.mp4")

    result = replay(plan(output_container=blob["container"]), on_azurite, succeeded({**blob, "url": PHISHING}))

    assert result.status == "Completed", result.error
    quoted = "job-0001/%C3%9Cn%C3%AFcode%20%26%20a%20%23hash%3F%20100%25.mp4"
    expected = f"{azurite.blob_endpoint}/{blob['container']}/{quoted}"
    assert result.output["blob"]["url"] == expected


def test_a_reported_blob_that_does_not_exist_fails_the_job_and_signs_nothing(output):
    _, container = output
    blob = {**BLOB, "container": container, "name": "job-0001/never-uploaded.mp4"}

    result = replay(plan(share_link_hours=24, output_container=container), on_azurite, succeeded(blob))

    refused(result)
    assert result.activity_names == [CREATE, CHECK, STOP]
    assert "does not exist" in result.error


@pytest.mark.parametrize("claimed", [9_999, 10_001, 0], ids=["smaller", "larger", "empty"])
def test_a_reported_size_that_is_not_the_stored_one_fails_the_job(output, claimed):
    blob = stored_blob(output, b"m" * 10_000)

    job_plan = plan(share_link_hours=24, output_container=blob["container"])
    result = replay(job_plan, on_azurite, succeeded({**blob, "sizeBytes": claimed}))

    refused(result)
    assert f"holds 10000 bytes, not the {claimed} reported" in result.error


def test_a_plan_from_before_the_check_still_refuses_another_container(output):
    # Plans made before `outputContainer` existed carry none: the activity compares with the settings.
    service, container = output
    secrets = "azure-webjobs-secrets-" + container[4:]
    service.create_container(secrets)
    service.get_blob_client(secrets, "job-0001/host.json").upload_blob(b"k" * 64)
    forged = {**BLOB, "container": secrets, "name": "job-0001/host.json", "sizeBytes": 64}

    result = replay(plan(share_link_hours=24, output_container=None), on_azurite, succeeded(forged))

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
    ok = {"ok": True, "exists": True, "sizeBytes": BLOB["sizeBytes"], "url": "http://own.example/downloads/x.mp4"}

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
