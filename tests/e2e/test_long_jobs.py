"""Long jobs at constant cost (issue 12) through the devhost, with the real worker: a terminal
report that never arrives, and a burst of reports against the callback's rate limit."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from devhost import media
from tests.e2e.harness import Body, Job, LocalStack, http, sha256
from videojob.domain import orchestration as policy
from videojob.domain.activity_wire import INSPECT_CONTAINER_GROUP, READ_RESULT_RECORD
from videojob.domain.container_port import ACTIVE_CONTAINER_STATES
from videojob.domain.generation import carry_of

pytestmark = pytest.mark.timeout(300)

BURST = 500
BURST_THREADS = 8
HELD_CHUNK_BYTES = 8 * 1024
HELD_CHUNK_SECONDS = 0.25


def history(job: Job) -> list[Body]:
    """The current execution's history events, with results (the devhost's status API)."""
    code, body = http("GET", job.links["statusQueryGetUri"] + "&showHistory=true&showHistoryOutput=true")
    assert code in (200, 202), (code, body)
    return body["historyEvents"]


def generation(status: Body) -> int:
    """Which execution of the job the status shows: 1, or the carry's count after a hand-over."""
    carry = carry_of(json.loads(status["input"]) if isinstance(status.get("input"), str) else status.get("input"))
    return 1 if carry is None else carry.generation


def completions(events: list[Body], function: str) -> list[Body]:
    return [e for e in events if e["EventType"] == "TaskCompleted" and e.get("FunctionName") == function]


def test_a_final_report_that_never_arrives_still_completes_the_job_from_its_result_record(
    local: LocalStack, fast_media: media.MediaServer, clips: Path
) -> None:
    # The worker under `/lost-final/` (fake_worker.py) records its outcome, then its `succeeded`
    # report is refused with 503 until it gives up, and it exits 0.
    (clips / "lost-final").mkdir(exist_ok=True)
    shutil.copyfile(clips / "sample.mp4", clips / "lost-final" / "sample.mp4")
    job = local.submit(fast_media.url("lost-final/sample.mp4"))

    final = job.wait_done(timeout=180)

    assert final["runtimeStatus"] == "Completed", (final.get("customStatus"), final.get("output"))
    output = final["output"]
    blob = output["blob"]
    assert sha256(local.blob_bytes(blob)) == blob["sha256"]
    [attempt] = output["attempts"]
    assert (attempt["outcome"], attempt.get("recovered")) == ("succeeded", True), attempt
    # One container check found the worker ended, and the record was read right after it: the
    # job did not wait for another heartbeat window, a retry or its deadline.
    events = history(job)
    inspected = completions(events, INSPECT_CONTAINER_GROUP)
    ended = [e for e in inspected if e["Result"].get("state") not in ACTIVE_CONTAINER_STATES]
    assert len(ended) == 1, inspected
    assert ended[0]["Result"]["state"] == "Succeeded" and ended[0]["Result"].get("finishedAt"), ended
    assert ended[0] is inspected[-1]
    [read] = completions(events, READ_RESULT_RECORD)
    assert events.index(read) > events.index(ended[0])
    assert read["Result"]["event"]["state"] == "succeeded"


class HeldMedia:
    """Serves one file at a trickle (32 KB/s) until `release()`, then at once: the job keeps
    downloading, reporting progress, for as long as the test needs."""

    def __init__(self, file: Path):
        self.released = threading.Event()
        data, released = file.read_bytes(), self.released

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                sent = 0
                try:
                    while sent < len(data) and not released.is_set():
                        self.wfile.write(data[sent:sent + HELD_CHUNK_BYTES])
                        sent += HELD_CHUNK_BYTES
                        time.sleep(HELD_CHUNK_SECONDS)
                    self.wfile.write(data[sent:])
                except (BrokenPipeError, ConnectionResetError):
                    return

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{file.name}"

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def held_media(clips: Path) -> Iterator[HeldMedia]:
    held = HeldMedia(clips / "big.mp4")
    thread = threading.Thread(target=held.server.serve_forever, name="held-media", daemon=True)
    thread.start()
    try:
        yield held
    finally:
        held.release()
        held.server.shutdown()
        held.server.server_close()


def _report(url: str, token: str, body: Body) -> tuple[int, Any]:
    return http("POST", url, body, {"Authorization": f"Bearer {token}"})


def test_a_burst_of_reports_is_mostly_coalesced_and_the_history_stays_bounded(
    local: LocalStack, held_media: HeldMedia
) -> None:
    job = local.submit(held_media.url)
    watching = job.wait(lambda b: (b.get("customStatus") or {}).get("phase") == "downloading"
                        and (b.get("customStatus") or {}).get("attempt") == 1, timeout=120)
    token = local.worker_token(job.id, watching["customStatus"])
    callback = f"{local.devhost.base_url}/api/jobs/{job.id}/status"
    # Far above the worker's own `seq`s, so that none of the worker's reports is taken for one of these.
    bodies = [{"jobId": job.id, "seq": 1_000_000 + i, "state": "progress", "phase": "downloading", "attempt": 1,
               "progress": {"percent": 1.0}} for i in range(BURST)]

    with ThreadPoolExecutor(max_workers=BURST_THREADS) as pool:
        answers = list(pool.map(lambda body: _report(callback, token, body), bodies))
    during = job.status()
    events_after_burst = history(job)
    # The worker's own reports (one a second, the e2e limit) go on: the job hands over to a new
    # execution and its history starts again.
    handed_over = job.wait(lambda b: generation(b) >= 2 or b["runtimeStatus"] != "Running", timeout=120)
    events_after_hand_over = history(job)
    held_media.release()
    final = job.wait_done(timeout=180)

    assert [code for code, _ in answers] == [202] * BURST, {code for code, _ in answers}
    coalesced = sum(1 for _, body in answers if body.get("coalesced") is True)
    assert coalesced >= BURST * 9 // 10, coalesced
    assert during["runtimeStatus"] == "Running", during
    # Few reports reach the orchestration, and a generation holds at most a bounded number of
    # steps whatever the job's age: the history read right after the burst stays small.
    assert len(events_after_burst) <= HISTORY_BOUND, [e["EventType"] for e in events_after_burst]
    assert handed_over["runtimeStatus"] == "Running" and generation(handed_over) >= 2, handed_over
    assert len(events_after_hand_over) <= HISTORY_BOUND, [e["EventType"] for e in events_after_hand_over]
    # ... and the job goes on to its normal end: the worker's own reports, its blob.
    assert final["runtimeStatus"] == "Completed", (final.get("customStatus"), final.get("output"))
    output = final["output"]
    assert sha256(local.blob_bytes(output["blob"])) == output["blob"]["sha256"]
    [attempt] = output["attempts"]
    assert attempt["outcome"] == "succeeded" and not attempt.get("recovered"), attempt


# A generation's history as the status API shows it (no TaskScheduled rows): its start, the first
# one's provisioning and slot messages (under a dozen rows), then at most GENERATION_MAX_WEIGHT steps
# of at most two rows each (TimerCreated/TimerFired, a TaskCompleted, an EventRaised), plus the
# reports taken in the episode that crossed the bound (it settles them before it hands over).
HISTORY_BOUND = 20 + 2 * policy.GENERATION_MAX_WEIGHT + 2 * BURST_THREADS
