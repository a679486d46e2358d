from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.durable_functions.models.DurableOrchestrationContext import DurableOrchestrationContext

import activities
from orchestrators import download_job
from tests.orchestration.fakes import FakeBackend
from tests.support.replay import ORCHESTRATOR_STARTED, ReplayHost, RunResult, format_time, run_activity_function
from videojob import bootstrap
from videojob.contract.output_blob import blob_url
from videojob.contract.wire import CUSTOM_STATUS_MAX_BYTES, DownloadRequest, JobPlan, custom_status_bytes
from videojob.domain import job_slots as slots
from videojob.domain.activity_wire import (
    CREATE_CONTAINER_GROUP,
    CREATE_SHARE_LINK,
    DELETE_CONTAINER_GROUP,
    INSPECT_CONTAINER_GROUP,
    NOTIFY_COMPLETION,
    PUBLISH_OUTPUT_BLOB,
    READ_RESULT_RECORD,
    STOP_CONTAINER_GROUP,
)
from videojob.domain.container_spec import attempt_group_name, run_token
from videojob.domain.settings import Settings, load_settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
JOB_ID = "job-0001"


def run_key_of(instance_id: str, start: datetime) -> str:
    """The run token `download_job` takes from the SDK's replay-safe `new_uuid()` (its first call)
    in a run of `instance_id` that started at `start`."""
    started = {"EventType": ORCHESTRATOR_STARTED, "EventId": -1, "IsPlayed": False, "Timestamp": format_time(start)}
    return run_token(DurableOrchestrationContext([started], instance_id, False, None).new_uuid())


RUN_KEY = run_key_of(JOB_ID, T0)
GROUP = attempt_group_name(JOB_ID, 1, RUN_KEY)
"""The first attempt's group of the run the `host` fixture starts (at T0)."""
VIDEO_URL = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
SIX_DAYS = timedelta(days=6)

CONTAINER_ACTIVITIES = (CREATE_CONTAINER_GROUP, INSPECT_CONTAINER_GROUP, STOP_CONTAINER_GROUP, DELETE_CONTAINER_GROUP)
ACTIVITY_RUNNERS = {name: run_activity_function(getattr(activities, name)) for name in CONTAINER_ACTIVITIES}
SHARE_LINK_EXPIRES = "2026-01-02T00:01:10Z"


def share_link_url(container: str, name: str) -> str:
    return f"https://account.blob.core.windows.net/{container}/{name}?sv=2025-01-05&sp=r&sig=signature"


OUTPUT_ENDPOINT = "http://127.0.0.1:10000/devstoreaccount1"  # UseDevelopmentStorage=true (test_settings)


def scripted_side_activity(name: str, payload: Any) -> dict[str, Any]:
    """Blob checks, share links, webhooks and result records, answered as their activities would when all goes
    well: the worker's blob is stored as reported (`BLOB`'s size); a user-delegation SAS cannot be
    signed here (no Entra ID; Azurite refuses it); the webhook activity has its own tests. Tests
    that need other answers wrap `run_activity` or run the real check on Azurite
    (test_reported_results.py)."""
    if name == PUBLISH_OUTPUT_BLOB:
        url = blob_url(OUTPUT_ENDPOINT, payload["container"], payload["name"])
        return {"ok": True, "exists": True, "sizeBytes": BLOB["sizeBytes"], "sha256": BLOB["sha256"], "url": url}
    if name == CREATE_SHARE_LINK:
        return {"ok": True, "url": share_link_url(payload["container"], payload["name"]),
                "expiresAt": SHARE_LINK_EXPIRES}
    if name == NOTIFY_COMPLETION:
        return {"ok": True, "status": 204}
    if name == slots.ANNOUNCE_GRANTS:  # its own tests: tests/devhost (the durable client raises the events)
        return {"ok": True, "told": len(payload["ids"])}
    if name == READ_RESULT_RECORD:  # the worker recorded nothing (tests/orchestration/test_generations.py: a record)
        return {"ok": True, "found": False}
    raise AssertionError(f"unexpected activity {name}")


def test_settings() -> Settings:
    return load_settings(
        environ={
            "CONTAINER_BACKEND": "local",
            "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
            "CALLBACK_SIGNING_KEY": "k" * 40,
            "OUTPUT_CONNECTION_STRING": "UseDevelopmentStorage=true",
        }
    )


test_settings.__test__ = False  # a factory, not a test


def plan(**changes: Any) -> JobPlan:
    values: dict[str, Any] = {
        "request": DownloadRequest(url=VIDEO_URL),
        "deadline_seconds": 3600,
        "heartbeat_timeout_seconds": 600,
        "provision_max_attempts": 4,
        "failed_group_policy": "stop",
        "provision_backoff_seconds": 5,
        "cleanup_max_attempts": 3,
        "output_container": "downloads",
    }
    values.update(changes)
    return JobPlan(**values)


def started(seq: int = 0) -> dict[str, Any]:
    return {"jobId": JOB_ID, "seq": seq, "state": "started", "sentAt": "2026-01-01T00:00:10Z"}


def progress(seq: int, percent: float, phase: str = "downloading", **numbers: Any) -> dict[str, Any]:
    p = {"percent": percent, "downloadedBytes": int(percent * 1000), "totalBytes": 100_000, **numbers}
    return {"jobId": JOB_ID, "seq": seq, "state": "progress", "phase": phase, "progress": p}


BLOB = {
    "url": "http://127.0.0.1:10000/devstoreaccount1/downloads/job-0001/video.mp4",
    "container": "downloads",
    "name": "job-0001/video.mp4",
    "sizeBytes": 123456,
    "sha256": "ab" * 32,
    "contentType": "video/mp4",
}
MEDIA = {"title": "A video", "durationSeconds": 12.5, "width": 640, "height": 360, "extractor": "youtube"}


def succeeded(seq: int) -> dict[str, Any]:
    return {"jobId": JOB_ID, "seq": seq, "state": "succeeded", "phase": "uploading",
            "result": {"blob": BLOB, "media": MEDIA}}


def failed(seq: int, code: str, message: str = "the worker gave up", retryable: bool = False) -> dict[str, Any]:
    return {"jobId": JOB_ID, "seq": seq, "state": "failed",
            "error": {"code": code, "message": message, "retryable": retryable}}


CANCEL = {"state": "cancelled"}


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    fake = FakeBackend()
    bootstrap.override(settings=test_settings(), backend=fake)
    yield fake
    bootstrap.reset()


def run_activity(name: str, input_json: str) -> str:
    if name in ACTIVITY_RUNNERS:
        return ACTIVITY_RUNNERS[name](input_json)
    return json.dumps(scripted_side_activity(name, json.loads(input_json)))


@pytest.fixture
def host(backend: FakeBackend) -> Callable[..., ReplayHost]:
    """A replay host for `download_job` whose activities are the real ones, on the fake backend."""

    def make(job_plan: JobPlan | None = None, **kw: Any) -> ReplayHost:
        kw.setdefault("activities", run_activity)
        return ReplayHost(
            download_job, instance_id=JOB_ID, input=(job_plan or plan()).to_wire(), start=T0, **kw
        )

    return make


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def status_at(result: RunResult, seconds: float) -> Any:
    """The customStatus the orchestration had after the episode at `seconds`."""
    matching = [e.state.get("customStatus") for e in result.episodes if e.at == at(seconds)]
    assert matching, f"no episode at {seconds} s"
    return matching[-1]


def check_invariants(result: RunResult) -> None:
    """What must hold for every run: small customStatus, short timers, no timer left running,
    failure messages under 1 KB, and a failed run's customStatus explains it."""
    for status in result.custom_statuses:
        assert custom_status_bytes(status) < CUSTOM_STATUS_MAX_BYTES
    for timer in result.timers:
        assert timer.fire_at - timer.created_at < SIX_DAYS
        assert timer.fired or timer.cancelled, f"timer {timer} left running"
    if result.status == "Failed":
        assert len(result.error.encode()) < 1024
        assert result.custom_status["phase"] == "failed"
        assert result.error.startswith(result.custom_status["error"]["code"] + ": ")
    json.dumps(result.output)
