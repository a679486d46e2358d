"""What the callback endpoint sees: order, seq, token, throttling, retries and stopping."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from tests.support.services import Azurite
from tests.worker.callback_receiver import CallbackReceiver, run_callback_receiver
from tests.worker.conftest import FAST, TOKEN, worker_env
from tests.worker.media_server import MediaServer
from videojob.contract import container_env as E
from videojob.contract.wire import JobError, JobResult, JobStatus, Progress
from worker.reporter import HttpCallbackTransport, Reporter
from worker.runner import main


def test_a_job_reports_started_progress_per_phase_then_succeeded(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, workspace: Path
) -> None:
    jid = uuid.uuid4().hex
    env = worker_env(
        job_id=jid, url=media_server.url("dash/manifest.mpd"), callbacks=callbacks, azurite=azurite,
        **{E.PROGRESS_INTERVAL_SECONDS: "3600"},
    )  # fmt: skip
    assert main(env, tuning=FAST) == 0

    received = callbacks.received
    assert all(r.authorization == f"Bearer {TOKEN}" for r in received)
    assert all(r.path == f"/api/jobs/{jid}/status" for r in received)
    events = [JobStatus.from_wire(r.body) for r in received]
    assert all(e.job_id == jid and e.sent_at for e in events)
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # With an hour between progress events, only phase changes get through.
    assert [(e.state, e.phase) for e in events] == [
        ("started", "downloading"),
        ("progress", "processing"),
        ("progress", "uploading"),
        ("succeeded", None),
    ]


def test_without_throttling_download_progress_is_reported(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, workspace: Path
) -> None:
    env = worker_env(
        job_id=uuid.uuid4().hex, url=media_server.url("hls/master.m3u8"), callbacks=callbacks, azurite=azurite
    )
    assert main(env, tuning=FAST) == 0
    downloading = [b for b in callbacks.accepted() if b["state"] == "progress" and b["phase"] == "downloading"]
    assert downloading
    assert all(b["progress"]["downloadedBytes"] > 0 for b in downloading)
    amounts = [b["progress"]["downloadedBytes"] for b in downloading]
    assert amounts == sorted(amounts)


def test_the_reporter_retries_on_503_and_keeps_the_order() -> None:
    with run_callback_receiver(answers=[503, 503, 202, 503]) as receiver:
        reporter = Reporter(
            "job-1", HttpCallbackTransport(receiver.url("job-1"), TOKEN), progress_interval_seconds=0,
            max_attempts=5, backoff_seconds=0.01, backoff_max_seconds=0.05,
        )  # fmt: skip
        reporter.started()
        assert reporter.failed(JobError("internal", "boom"), timeout=10)
    statuses = [(r.body["seq"], r.body["state"], r.status) for r in receiver.received]
    assert statuses == [
        (1, "started", 503), (1, "started", 503), (1, "started", 202), (2, "failed", 503), (2, "failed", 202)
    ]  # fmt: skip


def test_the_reporter_gives_up_after_its_attempts() -> None:
    with run_callback_receiver(answers=[500] * 10) as receiver:
        reporter = Reporter(
            "job-3", HttpCallbackTransport(receiver.url("job-3"), TOKEN), progress_interval_seconds=0,
            max_attempts=3, backoff_seconds=0.01, final_give_up_seconds=0,
        )  # fmt: skip
        assert not reporter.failed(JobError("internal", "boom"), timeout=10)
    assert [r.status for r in receiver.received] == [500, 500, 500]


def test_the_reporter_stops_for_good_on_410() -> None:
    with run_callback_receiver(answers=[410]) as receiver:
        reporter = Reporter(
            "job-2", HttpCallbackTransport(receiver.url("job-2"), TOKEN), progress_interval_seconds=0,
            max_attempts=5, backoff_seconds=0.01,
        )  # fmt: skip
        reporter.started()
        assert receiver.wait_for(lambda r: len(r) == 1)
        reporter.progress("downloading", Progress(percent=50.0))
        assert not reporter.failed(JobError("internal", "boom"), timeout=10)
        assert reporter.rejected_status == 410
    assert [r.body["state"] for r in receiver.received] == ["started"]


def test_a_job_whose_callback_answers_410_stops_and_sends_nothing_more(
    media_server: MediaServer, azurite: Azurite, workspace: Path
) -> None:
    with run_callback_receiver(answers=[410]) as receiver:
        env = worker_env(
        job_id=uuid.uuid4().hex, url=media_server.url("hls/master.m3u8"), callbacks=receiver, azurite=azurite
    )
        assert main(env, tuning=FAST) != 0
    assert len(receiver.received) == 1
    assert list(workspace.iterdir()) == []


class _Unreachable:
    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def post(self, body: bytes) -> int:
        self.bodies.append(json.loads(body))
        raise ConnectionError("callback unreachable")


class _StepClock:
    """Every reading is `step` seconds after the last: the reporter's time passes without waiting."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_final_report_given_up_after_bounded_time() -> None:
    """A terminal report is retried past `max_attempts`, until `final_give_up_seconds` passed
    since its first try (issue 12: the outcome is recorded, the container must end)."""
    transport = _Unreachable()
    reporter = Reporter("job-4", transport, progress_interval_seconds=0, max_attempts=3, backoff_seconds=0.001,
                        backoff_max_seconds=0.001, clock=_StepClock(5.0), final_give_up_seconds=120)
    assert not reporter.succeeded(JobResult(entries=()), timeout=30)
    tries = [b for b in transport.bodies if b["state"] == "succeeded"]
    assert 3 < len(tries) < 30  # more than the attempts, bounded by the time


def test_progress_still_bounded_by_attempts() -> None:
    transport = _Unreachable()
    reporter = Reporter("job-5", transport, progress_interval_seconds=0, max_attempts=3, backoff_seconds=0.001,
                        backoff_max_seconds=0.001, clock=_StepClock(0.001), final_give_up_seconds=120)
    reporter.started()
    deadline = time.monotonic() + 30
    while len(transport.bodies) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert [b["state"] for b in transport.bodies] == ["started"] * 3


def test_outcome_event_is_the_report_to_come() -> None:
    with run_callback_receiver(answers=[202]) as receiver:
        reporter = Reporter("job-6", HttpCallbackTransport(receiver.url("job-6"), TOKEN),
                            progress_interval_seconds=0, attempt=2)
        recorded = reporter.outcome_event("failed", error=JobError("network", "down", True))
        assert reporter.failed(JobError("network", "down", True), timeout=10)
    [sent] = [r.body for r in receiver.received]
    assert (recorded.seq, recorded.job_id, recorded.attempt, recorded.state) == (
        sent["seq"], sent["jobId"], sent["attempt"], sent["state"])
