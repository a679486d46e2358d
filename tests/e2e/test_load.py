"""The global cap through the devhost: `MAX_RUNNING_JOBS=3`, 40 jobs submitted at once.

Its own devhost (the cap is a setting), the real worker on a 1-second clip as local processes
(bench/load_bench.py drives the same `LoadRun` for `make load`). Checked: at no sampled moment
more than 3 groups alive, every job Completed, start order FIFO by arrival within
`FIFO_TOLERANCE_SECONDS` (documented there), `queued` with positions seen by a poller; then a
queued job cancelled and a running job terminated both free their slots (the second at the
next sweep, every 3 s here).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.load_bench import CAP, FIFO_TOLERANCE_SECONDS, LoadRun, load_devhost, submit
from devhost import media, stack
from tests.e2e.harness import error_code, http
from tests.support.services import Azurite

JOBS = 40
WEBHOOK = "/runtime/webhooks/durabletask"


@pytest.fixture(scope="module")
def clip_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[media.MediaServer]:
    root = tmp_path_factory.mktemp("load-clips")
    media.make_clip(root / "one.mp4", seconds=1, size="160x120")
    with media.serve_directory(root) as server:
        yield server


@pytest.fixture(scope="module")
def capped(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Devhost]:
    state: Path = tmp_path_factory.mktemp("load-devhost")
    with load_devhost(azurite, state, CAP) as devhost:
        yield devhost


def slots_state(devhost: stack.Devhost) -> dict:
    code, body = http("GET", f"{devhost.base_url}{WEBHOOK}/entities/job_slots/global")
    assert code == 200, (code, body)
    return body


def members(devhost: stack.Devhost) -> tuple[list[str], list[str]]:
    state = slots_state(devhost)
    return [m["id"] for m in state["holders"]], [m["id"] for m in state["queue"]]


def test_forty_jobs_never_more_than_three_running_all_complete_fifo(capped, clip_server):
    run = LoadRun(capped).run([clip_server.url("one.mp4")] * JOBS, timeout=540)

    failed = {i: b.get("output") for i, b in run.finals.items() if b.get("runtimeStatus") != "Completed"}
    assert run.completed == JOBS, failed
    assert run.running_samples and max(run.running_samples) <= CAP, run.running_samples
    assert max(run.running_samples) == CAP  # the cap was reached: the test could fail
    assert run.positions_seen and max(run.positions_seen) > CAP, run.positions_seen  # queued, with places
    assert len(run.queue_records) == JOBS
    assert run.fifo_inversions() == [], f"started out of arrival order by more than {FIFO_TOLERANCE_SECONDS} s"
    assert members(capped) == ([], [])  # every slot given back


def wait_holders(devhost: stack.Devhost, predicate, what: str, timeout: float = 60) -> None:
    stack.wait_until(lambda: predicate(*members(devhost)), timeout, what)


def test_cancel_queued_and_terminate_running_free_their_slots(capped, clip_server):
    hanging = [submit(capped, clip_server.url(f"hang/{i}.mp4")) for i in range(CAP)]
    wait_holders(capped, lambda holders, _: set(holders) == {j.id for j in hanging}, "the hanging jobs hold the slots")
    queued = submit(capped, clip_server.url("hang/queued.mp4"))
    queued.wait(lambda b: (b.get("customStatus") or {}).get("phase") == "queued", timeout=30)
    waiting = submit(capped, clip_server.url("one.mp4"))
    waiting.wait(lambda b: (b.get("customStatus") or {}).get("queuePosition") == 2, timeout=30)

    # A queued job cancelled: Failed cancelled at once, in phase queued, no container, out of the queue.
    code, _ = http("POST", f"{capped.base_url}/api/downloads/{queued.id}/cancel")
    assert code == 202, code
    done = queued.wait_done(timeout=30)
    assert done["runtimeStatus"] == "Failed" and error_code(done) == "cancelled", done
    assert done["customStatus"]["cleanup"] == "none"
    wait_holders(capped, lambda _, q: queued.id not in q, "the cancelled job out of the queue")
    assert waiting.status()["customStatus"].get("queuePosition") in (1, 2)

    # A running job terminated through the webhook runs no code: the sweep frees its slot.
    victim = hanging[0]
    code, _ = http("POST", f"{capped.base_url}{WEBHOOK}/instances/{victim.id}/terminate?reason=test")
    assert code == 202, code
    wait_holders(capped, lambda holders, _: victim.id not in holders, "the terminated job's slot freed")
    assert waiting.wait_done(timeout=120)["runtimeStatus"] == "Completed"

    for job in hanging[1:]:
        http("POST", f"{capped.base_url}{WEBHOOK}/instances/{job.id}/terminate?reason=cleanup")
    wait_holders(capped, lambda holders, queue: holders == [] and queue == [], "every slot freed")


def test_the_queue_is_visible_through_the_entity_api(capped):
    state = slots_state(capped)
    assert state["capacity"] == CAP and "holders" in state and "queue" in state


def test_stub_worker_jobs_cost_the_entity_a_constant_few_operations(azurite, clip_server, tmp_path):
    """Issue 22: pushed grants, measured on the devhost with the stub worker (real callback and
    upload): every job completes, never more than the cap run, and the entity sees at most 4
    operations per job (first ask, claim, release), however long the queue."""
    from bench.load_bench import STUB_WORKER, devhost_stats, line

    clip = tmp_path / "clip.mp4"
    media.make_clip(clip, seconds=1, size="160x120")
    extra = {"DEVHOST_WORKER_COMMAND": f"{sys.executable} {STUB_WORKER} {clip}"}
    with load_devhost(azurite, tmp_path / "state", 3, extra) as devhost:
        run = LoadRun(devhost).run([clip_server.url("one.mp4")] * 15, timeout=300)
    stats = devhost_stats(tmp_path / "state" / "devhost.log")

    assert run.completed == 15, {i: b.get("output") for i, b in run.finals.items()}
    assert max(run.running_samples) <= 3
    assert 0 < stats["entity_operations"] <= 4 * 15, stats
    assert line(run, 3, 1, stats).startswith("load: jobs=15 cap=3 users=1 ")
