"""What the callback endpoint sees: order, seq, token, throttling, retries and stopping."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.support.services import Azurite
from tests.worker.callback_receiver import CallbackReceiver, run_callback_receiver
from tests.worker.conftest import FAST, TOKEN, worker_env
from tests.worker.media_server import MediaServer
from videojob import container_env as E
from videojob.contract import JobError, JobStatus, Progress
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
            max_attempts=3, backoff_seconds=0.01,
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
