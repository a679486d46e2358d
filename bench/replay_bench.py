"""Orchestration cost of long jobs (issue 12): per-report CPU must not grow with a job's age.

Lines (`make bench` prints the first two):
- `replay: reports=2000 first_ms=... last_ms=... growth=...`: through the devhost, black box.
  One running job (a worker that never reports nor exits: tests/e2e/fake_worker.py `/hang/`),
  2,000 progress reports raised through the job's `sendEventPostUri` (the Durable raise-event
  webhook, so the orchestration takes every one: the callback would coalesce all but about one a
  second, issue 19) in batches of 50, each batch waited on
  until the status shows its last report; the devhost process's CPU (utime+stime) per report for
  the first and the last 100. Target: growth <= 1.2.
- `replay: 2h_at_2s raised=... cpu_s=... limit=10s` (and `limit=0`): `download_job` through the
  replay harness (tests/support/replay.py, simulated clock) for a 2-hour job reporting every 2 s,
  the reports filtered as the callback would (`admit_report` at the given limit; `limit=0` takes
  every report, more than the callback passes since its 1 s floor, issue 19). Target: <= 2 s
  at the default limit.
- `--sweep`: the harness line for several `GENERATION_MAX_WEIGHT`s (how the constant was chosen).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BATCH = 50
REPORTS = 2000
WINDOW = 100
TICKS = os.sysconf("SC_CLK_TCK")


def _post(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - our devhost
        return int(response.status)


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - our devhost
        return json.loads(response.read())  # type: ignore[no-any-return]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def devhost_line() -> str:
    from devhost import stack

    signing_key = secrets.token_urlsafe(48)
    with stack.run_azurite() as azurite, tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        state = Path(tmp)
        env = stack.devhost_env(azurite, {
            "ALLOWED_HOSTS": "127.0.0.1",
            "CALLBACK_SIGNING_KEY": signing_key,
            "HEARTBEAT_TIMEOUT_SECONDS": "3600",
            "JOB_DEADLINE_SECONDS": "7200",
            "DEVHOST_WORKER_COMMAND": f"{sys.executable} {REPO / 'tests' / 'e2e' / 'fake_worker.py'}",
        })
        devhost = stack.Devhost(stack.free_port(), state, state / "devhost.log")
        devhost.start(env, ("--settings", str(state / "local.settings.json")))
        try:
            base = devhost.base_url
            request = urllib.request.Request(f"{base}/api/downloads", method="POST",
                                             data=json.dumps({"url": "http://127.0.0.1:9/hang/long.mp4"}).encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                job = json.loads(response.read())
            job_id, status_url = job["id"], job["statusQueryGetUri"]
            raise_url = job["sendEventPostUri"].replace("{eventName}", "JobStatus")
            _wait(lambda: (_get(status_url).get("customStatus") or {}).get("phase") == "running", 120)
            assert devhost.proc is not None
            per_report: list[float] = []
            seq = 1
            with ThreadPoolExecutor(max_workers=4) as pool:
                for _ in range(REPORTS // BATCH):
                    before = _cpu_seconds(devhost.proc.pid)
                    bodies = []
                    for _ in range(BATCH):
                        seq += 1
                        percent = round(seq * 0.04, 2)  # the orchestration keeps 2 decimals
                        bodies.append({"jobId": job_id, "seq": seq, "state": "progress", "phase": "downloading",
                                       "attempt": 1, "progress": {"percent": percent}})
                    # In order within the batch (the worker sends in order); the pool only overlaps HTTP.
                    for body in bodies:
                        pool.submit(_post, raise_url, body).result()
                    last = bodies[-1]["progress"]["percent"]
                    _wait(lambda last=last: (_get(status_url).get("customStatus") or {}).get("percent") == last, 300)
                    per_report.append((_cpu_seconds(devhost.proc.pid) - before) / BATCH)
            windows = WINDOW // BATCH
            first = statistics.mean(per_report[:windows]) * 1000
            last_ms = statistics.mean(per_report[-windows:]) * 1000
            return f"replay: reports={REPORTS} first_ms={first:.1f} last_ms={last_ms:.1f} growth={last_ms / first:.2f}"
        finally:
            devhost.stop()
            stack.stop_local_containers(state)


def _wait(check: Any, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise TimeoutError("the devhost did not get there in time")
        time.sleep(0.05)


def harness_run(
    limit: int, hours: float = 2.0, every: float = 2.0, weight: int | None = None
) -> tuple[int, float, int]:
    """(reports raised, orchestration CPU seconds, executions) for a job reporting every `every` s."""
    from tests.orchestration.conftest import JOB_ID, T0, plan, progress, run_activity, started, succeeded, test_settings
    from tests.orchestration.fakes import FakeBackend
    from tests.support.replay import ReplayHost
    from videojob import bootstrap
    from videojob.contract.wire import JobStatus
    from videojob.domain import orchestration as policy

    bootstrap.override(settings=test_settings(), backend=FakeBackend())
    saved = policy.GENERATION_MAX_WEIGHT
    if weight is not None:
        policy.GENERATION_MAX_WEIGHT = weight
    try:
        from orchestrators import download_job

        h = ReplayHost(download_job, instance_id=JOB_ID, input=plan(deadline_seconds=int(hours * 3600) + 600).to_wire(),
                       start=T0, activities=run_activity)
        h.raise_event(10, started(1))
        raised, seq, t = 1, 2, 12.0
        last_taken = None
        while t <= hours * 3600:
            event = progress(seq, min(99.0, t / (hours * 36)))
            status = policy.progress_status(policy.ProgressView("downloading"), "g", T0 + timedelta(seconds=t), 1,
                                            last_taken)
            if last_taken is None or policy.admit_report(JobStatus.from_wire(event), status,
                                                         T0 + timedelta(seconds=t), limit):
                h.raise_event(t, event)
                raised += 1
                last_taken = T0 + timedelta(seconds=t)
            seq, t = seq + 1, t + every
        h.raise_event(t, succeeded(seq))
        raised += 1
        before = time.process_time()
        result = h.run(max_episodes=100_000)
        cpu = time.process_time() - before
        assert result.status == "Completed", result.error
        return raised, cpu, len(result.execution_history_sizes)
    finally:
        policy.GENERATION_MAX_WEIGHT = saved
        bootstrap.reset()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", action="store_true", help="harness CPU for several generation sizes")
    parser.add_argument("--no-devhost", action="store_true", help="only the harness lines")
    args = parser.parse_args()
    if args.sweep:
        for weight in (4, 8, 16, 32, 64):
            runs = [harness_run(10, weight=weight) for _ in range(3)]
            cpu = statistics.median(r[1] for r in runs)
            print(f"replay: sweep weight={weight} raised={runs[0][0]} executions={runs[0][2]} cpu_s={cpu:.2f}",
                  flush=True)
        return 0
    if not args.no_devhost:
        print(devhost_line(), flush=True)
    # A warm process, as a Functions worker is: the first replay in a process also pays for
    # first-use costs (lazy imports, caches) that a long-lived host pays once.
    harness_run(10, hours=0.1)
    for limit in (10, 0):
        runs = [harness_run(limit) for _ in range(3)]
        raised, executions = runs[0][0], runs[0][2]
        cpu = statistics.median(r[1] for r in runs)
        print(f"replay: 2h_at_2s raised={raised} cpu_s={cpu:.2f} limit={limit}s executions={executions} "
              f"(median of 3)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
