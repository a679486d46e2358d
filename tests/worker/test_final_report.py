"""The final report depends on nothing that can fail before it (issue 19, item 8): a result record
that cannot be named or written, an upload side that hangs, a job thread that dies. Whatever goes
wrong, the callback hears a terminal event (and the worker exits), so the orchestration learns the
outcome at once instead of after a lost heartbeat."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import FAST
from videojob.contract import container_env as E
from videojob.contract.wire import ErrorCode, JobError
from worker import job as job_module
from worker.blob_sink import BlobProperties, BlobResult, StagedBlob
from worker.downloader import DownloadedMedia, MediaRequest
from worker.errors import JobFailed
from worker.runner import main

TERMINAL = ("succeeded", "failed")


def env_for(job_id: str, callbacks: CallbackReceiver) -> dict[str, str]:
    return {
        E.JOB_ID: job_id,
        E.JOB_URL: "http://127.0.0.1:9/video",
        E.OUTPUT_CONTAINER: "downloads",
        E.STAGING_MEDIA_URL: "http://127.0.0.1:9/devstoreaccount1/staging/job/a1/media?sp=w&sig=x",
        E.STAGING_RECORD_URL: "http://127.0.0.1:9/devstoreaccount1/staging/job/a1/record.json?sp=w&sig=x",
        E.CALLBACK_URL: callbacks.url(job_id),
        E.CALLBACK_TOKEN: "final-report-token-0123456789",
        E.ALLOWED_HOSTS: "127.0.0.1",
        E.ALLOW_PRIVATE_ADDRESSES: "true",
        E.PROGRESS_INTERVAL_SECONDS: "0",
        E.JOB_TIMEOUT_SECONDS: "120",
    }


class Unavailable:
    def download(self, request: MediaRequest, workdir: Path, *_: Any) -> DownloadedMedia:
        raise JobFailed(JobError(ErrorCode.UNAVAILABLE, "the video is gone"))


class ThreadKiller(BaseException):
    """Not an `Exception`: nothing in the job catches it, as with a `SystemExit` deep in a library."""


class Dies:
    def download(self, request: MediaRequest, workdir: Path, *_: Any) -> DownloadedMedia:
        raise ThreadKiller("the job thread dies")


class Sink:
    """An upload side whose record write does what the test says (raise, or hang)."""

    endpoint_url = "http://127.0.0.1:10000/devstoreaccount1"

    def __init__(self, on_record: Any = None) -> None:
        self.on_record = on_record
        self.records: list[str] = []

    def stage(self, *args: Any) -> StagedBlob:
        raise AssertionError("nothing is staged in these tests")

    def commit(self, staged: StagedBlob, properties: BlobProperties) -> BlobResult:
        raise AssertionError("nothing is committed in these tests")

    def put_record(self, name: str, data: bytes) -> None:
        self.records.append(name)
        if self.on_record is not None:
            self.on_record()


def terminal_events(callbacks: CallbackReceiver) -> list[dict[str, Any]]:
    return [e for e in callbacks.accepted() if e.get("state") in TERMINAL]


def run_in_thread(env: dict[str, str], **kwargs: Any) -> tuple[threading.Thread, list[int]]:
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(main(env, tuning=FAST, **kwargs)), daemon=True)
    thread.start()
    return thread, code


def test_a_job_id_the_record_naming_refuses_still_ends_in_a_failed_report(callbacks: CallbackReceiver) -> None:
    # A '.' is outside the instance-id rule: the result record's name cannot be made for it.
    env = env_for("job.with.dots", callbacks)
    thread, code = run_in_thread(env, downloader=Unavailable(), sink_factory=Sink)

    assert callbacks.wait_for(lambda got: any(r.body.get("state") in TERMINAL for r in got), timeout=30), (
        "no terminal report: the job thread died on the record's name"
    )
    thread.join(30)
    assert code == [1]
    [event] = terminal_events(callbacks)
    assert (event["state"], event["error"]["code"]) == ("failed", "unavailable")


def test_a_record_write_that_raises_anything_does_not_stop_the_report(
    callbacks: CallbackReceiver, monkeypatch: Any
) -> None:
    def broken_record(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("the record side broke")

    monkeypatch.setattr(job_module, "record_outcome", broken_record)
    thread, code = run_in_thread(env_for("job-record-raises", callbacks), downloader=Unavailable(), sink_factory=Sink)

    assert callbacks.wait_for(lambda got: any(r.body.get("state") in TERMINAL for r in got), timeout=30)
    thread.join(30)
    assert code == [1]
    [event] = terminal_events(callbacks)
    assert (event["state"], event["error"]["code"]) == ("failed", "unavailable")


def test_a_record_write_that_hangs_does_not_hold_back_the_report(
    callbacks: CallbackReceiver, monkeypatch: Any
) -> None:
    monkeypatch.setattr(job_module, "RECORD_WRITE_SECONDS", 1.0)
    stuck = threading.Event()
    sink = Sink(on_record=lambda: stuck.wait(120))  # an upload process that never answers
    start = time.monotonic()
    thread, code = run_in_thread(
        env_for("job-record-hangs", callbacks), downloader=Unavailable(), sink_factory=lambda: sink
    )
    try:
        assert callbacks.wait_for(lambda got: any(r.body.get("state") in TERMINAL for r in got), timeout=30), (
            "no terminal report while the record write hangs"
        )
        assert time.monotonic() - start < 20
        thread.join(30)
        assert code == [1] and sink.records
    finally:
        stuck.set()


def test_a_job_thread_that_dies_is_reported_failed_by_the_runner(callbacks: CallbackReceiver) -> None:
    thread, code = run_in_thread(env_for("job-thread-dies", callbacks), downloader=Dies(), sink_factory=Sink)

    assert callbacks.wait_for(lambda got: any(r.body.get("state") in TERMINAL for r in got), timeout=30), (
        "the job thread died and nobody reported"
    )
    thread.join(30)
    assert code == [1]
    [event] = terminal_events(callbacks)
    assert (event["state"], event["error"]["code"]) == ("failed", "internal")
