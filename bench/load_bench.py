"""The service under load: 40 jobs submitted at once to a devhost capped at 3 running groups.

`make load` prints one line:

    load: jobs=40 cap=3 max_running=<most groups alive at a sampled moment> completed=<n>
          p50_queue_s=<median wait for a slot> p95_queue_s=<95th percentile>

The worker is the real one (through tests/e2e/fake_worker.py, as in the end-to-end tests) on a
1-second clip served from loopback into Azurite, as local processes. The e2e test
tests/e2e/test_load.py drives the same `LoadRun` and asserts on it.
"""

from __future__ import annotations

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
SAMPLE_SECONDS = 0.2
FIFO_TOLERANCE_SECONDS = 5.0
"""Start order is FIFO by arrival within this: a freed slot is reserved for the head of the queue
at once, but the head learns it on its next re-check (every 2-3 s near the front), plus episode
latency on a busy machine."""


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
            self._stop.wait(0.1)

    def run(self, urls: list[str], timeout: float) -> LoadRun:
        threads = [threading.Thread(target=self._sample, daemon=True),
                   threading.Thread(target=self._poll, daemon=True)]
        for t in threads:
            t.start()
        try:
            with ThreadPoolExecutor(max_workers=len(urls)) as pool:
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


def line(run: LoadRun, cap: int) -> str:
    waits = [q["waitedSeconds"] for q in run.queue_records]
    return (f"load: jobs={len(run.jobs)} cap={cap} max_running={max(run.running_samples, default=0)} "
            f"completed={run.completed} p50_queue_s={percentile(waits, 0.5):.1f} "
            f"p95_queue_s={percentile(waits, 0.95):.1f}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        root = Path(tmp)
        (root / "clips").mkdir()
        media.make_clip(root / "clips" / "one.mp4", seconds=1, size="160x120")
        with run_azurite() as azurite, media.serve_directory(root / "clips") as server, \
                load_devhost(azurite, root / "state", CAP) as devhost:
            started = time.monotonic()
            run = LoadRun(devhost).run([server.url("one.mp4")] * JOBS, timeout=600)
            print(line(run, CAP), f"wall_s={time.monotonic() - started:.0f}", flush=True)


if __name__ == "__main__":
    main()
