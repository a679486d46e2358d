"""The service under load: JOBS jobs submitted at once to a devhost capped at CAP running groups.

`make load [JOBS=40] [CAP=3] [USERS=1] [WORKER=real|stub]` prints, last, one line:

    load: jobs=<n> cap=<c> users=<u> max_running=<most groups alive at a sampled moment>
          completed=<k> entity_ops_per_job=<x> episodes_per_job=<y> p50_queue_s=<a> p95_queue_s=<b>
          wall_s=<first submit to last job done> ideal_wall_s=<jobs / cap x one job's own duration>

`WORKER=real`: the real worker (through tests/e2e/fake_worker.py, as in the end-to-end tests) on a
1-second clip served from loopback into Azurite, as local processes. `WORKER=stub`:
bench/stub_worker.py, the real runner, callback and upload with the download replaced by a
copy of the clip (~1 s). A job's own duration is the median from its grant to its end; the
entity operations and episodes are the devhost's own counts (logged when it stops). `USERS` > 1
needs entra mode's principals (not driven here yet): only 1 is accepted. The e2e test
tests/e2e/test_load.py drives the same `LoadRun` and asserts on it.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost import media, stack
from tests.e2e.harness import Job, http
from tests.support.services import REPO, Azurite, run_azurite

JOBS = 40
CAP = 3
FAKE_WORKER = REPO / "tests" / "e2e" / "fake_worker.py"
STUB_WORKER = REPO / "bench" / "stub_worker.py"
SUBMIT_THREADS = 16
POLL_PAUSE_SECONDS = 0.1
SAMPLE_SECONDS = 0.2
FIFO_TOLERANCE_SECONDS = 5.0
"""Start order is FIFO by arrival within this: a freed slot is granted to the head of the queue at
once and the head is told (`SlotGranted`), but arrival here is the orchestration's start, and
jobs submitted together reach the entity in the order their first episodes ran (seconds apart
on a busy machine)."""


def load_env(azurite: Azurite, cap: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    return stack.devhost_env(azurite, {
        "ALLOWED_HOSTS": "127.0.0.1",
        "CALLBACK_SIGNING_KEY": secrets.token_urlsafe(48),
        "MAX_RUNNING_JOBS": str(cap),
        "SWEEP_SCHEDULE": "*/3 * * * * *",
        "PROGRESS_INTERVAL_SECONDS": "1",
        "JOB_DEADLINE_SECONDS": "600",
        "SHARE_LINK_HOURS": "0",
        "CONTAINER_BACKEND": "local",
        "DEVHOST_WORKER_COMMAND": f"{sys.executable} {FAKE_WORKER}",
        **(extra or {}),
    })


@contextmanager
def load_devhost(azurite: Azurite, state: Path, cap: int, extra: dict[str, str] | None = None
                 ) -> Iterator[stack.Devhost]:
    state.mkdir(parents=True, exist_ok=True)
    devhost = stack.Devhost(stack.free_port(), state, state / "devhost.log")
    devhost.start(load_env(azurite, cap, extra), ("--settings", str(state / "local.settings.json")))
    try:
        yield devhost
    finally:
        devhost.stop()
        stack.stop_local_containers(state)


def submit(devhost: stack.Devhost, url: str) -> Job:
    code, body = http("POST", f"{devhost.base_url}/api/downloads", {"url": url})
    assert code == 202, (code, body)
    return Job(body["id"], body)


@dataclass
class LoadRun:
    """Submits jobs at once, samples the live groups and the jobs' statuses while they run."""

    devhost: stack.Devhost
    jobs: list[Job] = field(default_factory=list)
    running_samples: list[int] = field(default_factory=list)
    positions_seen: set[int] = field(default_factory=set)
    finals: dict[str, dict[str, Any]] = field(default_factory=dict)
    done_at: dict[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.running_samples.append(len(stack.running_workers(self.devhost.state_dir)))
            self._stop.wait(SAMPLE_SECONDS)

    def _poll(self) -> None:
        """A poller as a user's page would be: every job's status, round after round."""
        while not self._stop.is_set():
            for job in list(self.jobs):
                if job.id in self.finals:
                    continue
                body = job.status()
                custom = body.get("customStatus") or {}
                if custom.get("phase") == "queued" and isinstance(custom.get("queuePosition"), int):
                    self.positions_seen.add(custom["queuePosition"])
                if body.get("runtimeStatus") in ("Completed", "Failed", "Terminated"):
                    self.finals[job.id] = body
                    self.done_at[job.id] = time.monotonic()
            self._stop.wait(POLL_PAUSE_SECONDS)

    def run(self, urls: list[str], timeout: float) -> LoadRun:
        threads = [threading.Thread(target=self._sample, daemon=True),
                   threading.Thread(target=self._poll, daemon=True)]
        for t in threads:
            t.start()
        self.started_at = time.monotonic()
        try:
            with ThreadPoolExecutor(max_workers=min(SUBMIT_THREADS, len(urls))) as pool:
                self.jobs = list(pool.map(lambda u: submit(self.devhost, u), urls))
            end = time.monotonic() + timeout
            while len(self.finals) < len(self.jobs) and time.monotonic() < end:
                time.sleep(0.5)
        finally:
            self._stop.set()
            for t in threads:
                t.join(timeout=10)
        return self

    @property
    def completed(self) -> int:
        return sum(1 for b in self.finals.values() if b.get("runtimeStatus") == "Completed")

    @property
    def queue_records(self) -> list[dict[str, Any]]:
        outputs = [b.get("output") for b in self.finals.values() if b.get("runtimeStatus") == "Completed"]
        return [o["queue"] for o in outputs if isinstance(o, dict) and "queue" in o]

    def fifo_inversions(self, tolerance: float = FIFO_TOLERANCE_SECONDS) -> list[tuple[str, str]]:
        """Pairs that started out of arrival order by more than `tolerance` seconds."""
        from videojob.domain.activity_wire import parse_utc

        records = self.queue_records
        rows = sorted((parse_utc(q["arrivedAt"]), parse_utc(q["grantedAt"]), q["arrivedAt"]) for q in records)
        inversions = []
        for i, (_, granted_i, name_i) in enumerate(rows):
            for _, granted_j, name_j in rows[i + 1:]:
                if (granted_i - granted_j).total_seconds() > tolerance:
                    inversions.append((name_i, name_j))
        return inversions


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def job_seconds(run: LoadRun) -> float:
    """A job's own duration: the median from its grant to its end (`output.queue.grantedAt` to
    `lastUpdatedTime`)."""
    from videojob.domain.activity_wire import parse_utc

    spans = []
    for body in run.finals.values():
        queue = (body.get("output") or {}).get("queue") if isinstance(body.get("output"), dict) else None
        if queue and queue.get("grantedAt") and body.get("lastUpdatedTime"):
            spans.append((parse_utc(body["lastUpdatedTime"]) - parse_utc(queue["grantedAt"])).total_seconds())
    return percentile(spans, 0.5)


def devhost_stats(log_file: Path) -> dict[str, int]:
    """The counts the devhost logs when it stops (`devhost.emulator.engine.Engine.stats`)."""
    found: dict[str, int] = {}
    for text in log_file.read_text(errors="replace").splitlines():
        if "devhost stats: " in text:
            found = json.loads(text.split("devhost stats: ", 1)[1])
    return found


def line(run: LoadRun, cap: int, users: int = 1, stats: dict[str, int] | None = None) -> str:
    waits = [q["waitedSeconds"] for q in run.queue_records]
    jobs = max(1, len(run.jobs))
    stats = stats or {}
    wall = max(run.done_at.values(), default=run.started_at) - run.started_at
    ideal = len(run.jobs) / cap * job_seconds(run)
    return (f"load: jobs={len(run.jobs)} cap={cap} users={users} max_running={max(run.running_samples, default=0)} "
            f"completed={run.completed} entity_ops_per_job={stats.get('entity_operations', 0) / jobs:.2f} "
            f"episodes_per_job={stats.get('episodes', 0) / jobs:.1f} p50_queue_s={percentile(waits, 0.5):.1f} "
            f"p95_queue_s={percentile(waits, 0.95):.1f} wall_s={wall:.0f} ideal_wall_s={ideal:.0f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="make load")
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--cap", type=int, default=CAP)
    parser.add_argument("--users", type=int, default=1, choices=[1])
    parser.add_argument("--worker", choices=["real", "stub"], default="real")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        root = Path(tmp)
        (root / "clips").mkdir()
        clip = root / "clips" / "one.mp4"
        media.make_clip(clip, seconds=1, size="160x120")
        extra = {"JOB_DEADLINE_SECONDS": str(max(600, 20 * args.jobs // args.cap))}
        if args.worker == "stub":
            extra["DEVHOST_WORKER_COMMAND"] = f"{sys.executable} {STUB_WORKER} {clip}"
        with run_azurite() as azurite, media.serve_directory(root / "clips") as server:
            with load_devhost(azurite, root / "state", args.cap, extra) as devhost:
                run = LoadRun(devhost).run([server.url("one.mp4")] * args.jobs,
                                           timeout=max(600, 30 * args.jobs / args.cap))
            print(line(run, args.cap, args.users, devhost_stats(root / "state" / "devhost.log")), flush=True)


if __name__ == "__main__":
    main()
