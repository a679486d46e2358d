"""The devhost as the Durable extension: replay, activities, timers, events and the HTTP API,
driven through HTTP only with the tiny sample app."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from azure.durable_functions.constants import DATETIME_STRING_FORMAT

from devhost.emulator.store import Store
from tests.devhost.conftest import SampleHost, start
from tests.e2e.harness import Job, http

WEBHOOK = "/runtime/webhooks/durabletask"
RPC = "/durabletask"
SDK_TIME_FORMAT = DATETIME_STRING_FORMAT  # how the Python client writes createdTimeFrom/To


def ping(sample: SampleHost, job: Job, payload: object) -> int:
    return http("POST", f"{sample.base}/api/ping/{job.id}", payload)[0]


def test_activities_timers_and_an_event_run_to_completion_with_extension_shaped_history(sample: SampleHost):
    job = start(sample, "pipeline", {"sleep": 1, "wait": 30})
    job.wait(lambda b: (b.get("customStatus") or {}).get("stage") == "waiting", timeout=20)

    assert ping(sample, job, {"hello": "world"}) == 202
    done = job.wait_done(timeout=20)

    assert done["runtimeStatus"] == "Completed"
    out = done["output"]
    assert out["first"]["echo"] == {"step": 1}
    assert out["second"]["echo"]["previous"] == out["first"]
    assert json.loads(out["ping"]) == {"hello": "world"}  # the Python client encodes event data twice
    assert [r["echo"]["step"] for r in out["both"]] == [3, 4]
    code, full = http("GET", f"{job.links['statusQueryGetUri']}&showHistory=true&showHistoryOutput=true")
    kinds = [e["EventType"] for e in full["historyEvents"]]
    assert code == 200
    assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionCompleted"
    assert kinds.count("TaskCompleted") == 4 and kinds.count("TimerFired") == 1 and "EventRaised" in kinds


def test_an_event_raised_before_the_orchestrator_waits_is_delivered_later(sample: SampleHost):
    job = start(sample, "pipeline", {"sleep": 2, "wait": 30})
    job.wait(lambda b: (b.get("customStatus") or {}).get("stage") == "sleeping", timeout=20)

    assert ping(sample, job, {"early": True}) == 202
    done = job.wait_done(timeout=20)

    assert json.loads(done["output"]["ping"]) == {"early": True}


def test_an_unanswered_wait_times_out_on_a_durable_timer(sample: SampleHost):
    job = start(sample, "pipeline", {"sleep": 0, "wait": 1})

    done = job.wait_done(timeout=20)

    assert done["runtimeStatus"] == "Completed" and done["output"]["ping"] is None


def test_activity_retries_follow_the_retry_options(sample: SampleHost, tmp_path):
    recovers = start(sample, "retrying", {"counter": str(tmp_path / "a"), "failures": 2})
    gives_up = start(sample, "retrying", {"counter": str(tmp_path / "b"), "failures": 9})

    ok, failed = recovers.wait_done(timeout=20), gives_up.wait_done(timeout=20)

    assert ok["runtimeStatus"] == "Completed" and ok["output"] == "ok after 3"
    assert failed["runtimeStatus"] == "Failed"
    assert "Activity function 'flaky' failed: attempt 3 failed" in failed["output"]
    assert (tmp_path / "b").read_text() == "3"


def test_a_failing_orchestrator_is_failed_with_its_message_and_last_custom_status(sample: SampleHost):
    job = start(sample, "failing")

    done = job.wait_done(timeout=20)
    code, _ = http("GET", job.links["statusQueryGetUri"])

    assert code == 200
    assert done["runtimeStatus"] == "Failed"
    assert done["output"] == "Orchestrator function 'failing' failed: deadline_exceeded: the job took too long"
    assert done["customStatus"] == {"phase": "failed"}


# Status codes and headers of start, status, terminate and raiseEvent: test_conformance.py (from the
# extension's HttpApiHandler, not from constants written here).


def test_the_timer_trigger_runs_on_its_schedule(sample: SampleHost):
    end = time.monotonic() + 10
    while time.monotonic() < end and len(_ticks(sample)) < 2:
        time.sleep(0.2)

    assert len(_ticks(sample)) >= 2


def test_a_crashed_devhost_resumes_its_instances_and_fires_overdue_timers(sample: SampleHost):
    job = start(sample, "pipeline", {"sleep": 1, "wait": 60})
    job.wait(lambda b: (b.get("customStatus") or {}).get("stage") == "sleeping", timeout=20)

    sample.devhost.kill()
    time.sleep(1.5)  # the timer falls due while no host runs
    sample.start()
    job.wait(lambda b: (b.get("customStatus") or {}).get("stage") == "waiting", timeout=20)
    assert ping(sample, job, {"after": "restart"}) == 202
    done = job.wait_done(timeout=20)

    assert done["runtimeStatus"] == "Completed"
    assert json.loads(done["output"]["ping"]) == {"after": "restart"}


def _ticks(sample: SampleHost) -> list[str]:
    return sample.ticks.read_text().splitlines() if sample.ticks.exists() else []


def add_instances(sample: SampleHost, prefix: str, first_created: datetime, count: int,
                  terminated_every: int = 0, suffixes: list[str] | None = None) -> list[str]:
    """Instances written straight into the devhost's store, one second apart (cheap: nothing
    runs them, their start event is dropped), named `prefix` + a counter (or + `suffixes[i]`).
    Every `terminated_every`-th one is Terminated."""
    store = Store(sample.state / "durable.sqlite3")
    try:
        ids = []
        for i in range(count):
            instance_id = f"{prefix}{suffixes[i] if suffixes else f'{i:03d}'}"
            created = first_created + timedelta(seconds=i)
            assert store.create(instance_id, "pipeline", {"i": i}, created)
            store.drop_inbox(instance_id)
            if terminated_every and i % terminated_every == 0:
                store.terminate(instance_id, "test", created)
            ids.append(instance_id)
        return ids
    finally:
        store.close()


def list_page(url: str, token: str | None = None) -> tuple[int, list | dict, str | None]:
    req = urllib.request.Request(url, headers={"x-ms-continuation-token": token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read()), resp.headers.get("x-ms-continuation-token")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), None


@pytest.mark.parametrize("base", [WEBHOOK, RPC])
def test_instances_are_listed_in_instance_id_order_in_pages(sample: SampleHost, base: str):
    """The Azure Storage provider's order: its Instances table's PartitionKey is the instance id
    (Azure/durabletask@5217032, src/DurableTask.AzureStorage/Tracking/AzureTableTrackingStore.cs:720),
    so a page is the next ids, not the newest instances; an instance created while a client pages
    appears on a later page only when its id sorts after the page it has reached."""
    prefix = f"page-{uuid.uuid4().hex[:8]}-"
    suffixes = [uuid.uuid4().hex[:12] for _ in range(130)]  # created in an order unrelated to the ids
    created = add_instances(sample, prefix, datetime(2020, 1, 1, tzinfo=UTC), 130, suffixes=suffixes)
    url = f"{sample.base}{base}/instances?instanceIdPrefix={prefix}"

    code, default_page, default_token = list_page(url)
    code_rest, rest, no_more = list_page(url, default_token)
    pages, token = [], None
    while True:
        _, page, token = list_page(f"{url}&top=50&showInput=false", token)
        pages.append([s["instanceId"] for s in page])
        if not token:
            break
        if len(pages) == 1:  # jobs submitted while a client pages through the list
            add_instances(sample, prefix, datetime.now(UTC), 2, suffixes=["0" * 12, "f" * 13])

    in_id_order = sorted(created)
    assert in_id_order != created
    assert (code, len(default_page), code_rest, len(rest), no_more) == (200, 100, 200, 30, "")
    assert [s["instanceId"] for s in default_page + rest] == in_id_order
    assert default_page[0]["input"] == {"i": created.index(in_id_order[0])}
    assert [len(p) for p in pages] == [50, 50, 31]
    assert [i for p in pages for i in p] == [*in_id_order, f"{prefix}{'f' * 13}"]  # the "0…" one sorts before
    assert list_page(f"{url}&top=50", "not-a-token")[0] == 400


@pytest.mark.parametrize("base", [WEBHOOK, RPC])
def test_purge_by_filter_deletes_what_matches_and_answers_404_when_nothing_does(sample: SampleHost, base: str):
    year = 2001 if base == WEBHOOK else 2002
    start = datetime(year, 1, 1, tzinfo=UTC)
    prefix = f"purge-{uuid.uuid4().hex[:8]}-"
    add_instances(sample, prefix, start, 12, terminated_every=2)  # 6 Terminated, 6 Pending
    window = (f"createdTimeFrom={start.strftime(SDK_TIME_FORMAT)}"
              f"&createdTimeTo={(start + timedelta(seconds=9)).strftime(SDK_TIME_FORMAT)}")
    instances = f"{sample.base}{base}/instances"

    purged = http("DELETE", f"{instances}?{window}&runtimeStatus=Terminated,Completed")
    again = http("DELETE", f"{instances}?{window}&runtimeStatus=Terminated")
    no_start = http("DELETE", f"{instances}?createdTimeTo={start.strftime(SDK_TIME_FORMAT)}")
    _, left, _ = list_page(f"{instances}?instanceIdPrefix={prefix}")
    everything_else = http("DELETE", f"{instances}/?createdTimeFrom={quote(start.isoformat())}"
                                     f"&createdTimeTo={quote((start + timedelta(days=1)).isoformat())}")

    assert purged == (200, {"instancesDeleted": 5})  # Terminated ones created in the first 10 seconds
    assert again[0] == 404
    assert no_start[0] == 400
    assert sorted(s["instanceId"] for s in left) == [f"{prefix}{i:03d}" for i in (1, 3, 5, 7, 9, 10, 11)]
    assert everything_else == (200, {"instancesDeleted": 7})  # any status when none is named
    assert list_page(f"{instances}?instanceIdPrefix={prefix}")[1] == []


def test_unknown_operations_are_404_and_purging_an_active_instance_is_refused(sample: SampleHost):
    (pending,) = add_instances(sample, f"ops-{uuid.uuid4().hex[:8]}-", datetime(2003, 1, 1, tzinfo=UTC), 1)
    one = f"{sample.base}{WEBHOOK}/instances/{pending}"

    assert http("POST", f"{one}/frobnicate")[0] == 404
    assert http("POST", f"{sample.base}{RPC}/instances/{pending}/frobnicate")[0] == 404
    assert http("POST", f"{one}/suspend?reason=x")[0] == 501  # the extension has it; the devhost does not
    assert http("DELETE", one)[0] == 412
    assert http("POST", f"{one}/Terminate?reason=done")[0] == 202
    assert http("DELETE", one) == (200, {"instancesDeleted": 1})


def test_continue_as_new_keeps_the_instance_and_its_custom_status_and_starts_a_fresh_history(sample: SampleHost):
    job = start(sample, "generations", {"generation": 1})
    job.wait(lambda b: b["customStatus"] == {"set_by": 1}, timeout=20)
    raise_url = job.links["sendEventPostUri"]

    # Generation 1 never waits for Later: unprocessed when it continues as new, so discarded.
    assert http("POST", raise_url.replace("{eventName}", "Later"), {"n": 1})[0] == 202
    assert http("POST", raise_url.replace("{eventName}", "Go"), {"n": 1})[0] == 202
    second = job.wait(lambda b: json.loads(b["input"])["generation"] == 2, timeout=20)
    assert http("POST", raise_url.replace("{eventName}", "Later"), {"n": 2})[0] == 202
    done = job.wait_done(timeout=20)
    _, full = http("GET", f"{job.links['statusQueryGetUri']}&showHistory=true&showHistoryOutput=true")

    assert second["runtimeStatus"] == "Running" and second["customStatus"] == {"set_by": 1}
    assert done["runtimeStatus"] == "Completed"
    assert done["output"] == {"go": {"n": 1}, "later": {"n": 2}}
    kinds = [e["EventType"] for e in full["historyEvents"]]
    assert kinds == ["ExecutionStarted", "EventRaised", "ExecutionCompleted"]
    assert full["historyEvents"][0]["Input"] == {"generation": 2, "go": {"n": 1}}


def test_an_event_raised_while_the_continue_as_new_episode_runs_reaches_the_next_generation(
    sample: SampleHost, tmp_path
):
    # The extension raises to an instance, not to one of its executions (ExecutionId cleared), so
    # an event that arrives while the handing-over episode runs is the new execution's; only the
    # unconsumed events of the episode's own batch go with the old history (test above).
    gate = tmp_path / "gate"
    job = start(sample, "gated_generations", {"generation": 1, "gate": str(gate)})
    raise_url = job.links["sendEventPostUri"]

    assert http("POST", raise_url.replace("{eventName}", "Go"), {"n": 1})[0] == 202
    end = time.monotonic() + 60
    while not gate.with_suffix(".held").exists():
        assert time.monotonic() < end, "the episode that continues as new never ran"
        time.sleep(0.05)
    assert http("POST", raise_url.replace("{eventName}", "Later"), {"n": 2})[0] == 202
    gate.with_suffix(".open").touch()
    done = job.wait_done(timeout=60)

    assert done["runtimeStatus"] == "Completed", done
    assert done["output"] == {"go": {"n": 1}, "later": {"n": 2}}


def test_a_replay_that_schedules_an_activity_with_another_input_fails_the_instance(sample: SampleHost):
    job = start(sample, "drifting")

    done = job.wait_done(timeout=20)

    assert done["runtimeStatus"] == "Failed"
    assert "Non-Deterministic workflow detected" in done["output"] and "input" in done["output"]


def test_work_scheduled_in_the_episode_that_continues_as_new_is_sent(sample: SampleHost, tmp_path):
    """DTFx sends every message of the episode that continues as new: activities (messagesToSend),
    sub-orchestrations (orchestratorMessages) and timers (timerMessages) are gathered across the
    `do ... while (continuedAsNew)` loop and all passed to CompleteTaskOrchestrationWorkItemAsync
    (Azure/durabletask@5217032, src/DurableTask.Core/TaskOrchestrationDispatcher.cs:491-520,
    677, 714-720); only the completion message itself is kept back (530-533). Their answers name
    the old execution, which no longer waits."""
    touched = tmp_path / "touched"
    job = start(sample, "handing_over", {"generation": 1, "touch": str(touched)})
    raise_url = job.links["sendEventPostUri"]

    assert http("POST", raise_url.replace("{eventName}", "Also"), {})[0] == 202
    assert http("POST", raise_url.replace("{eventName}", "Go"), {})[0] == 202
    done = job.wait_done(timeout=60)
    child_url = job.links["statusQueryGetUri"].replace(job.id, f"{job.id}-child")

    assert done["runtimeStatus"] == "Completed" and done["output"] == {"generation": 2}
    end = time.monotonic() + 60
    while not (touched.exists() and http("GET", child_url)[1]["runtimeStatus"] == "Completed"):
        assert time.monotonic() < end, "the activity or the child of the handing-over episode never ran"
        time.sleep(0.1)
    assert http("GET", child_url)[1]["output"]["echo"] == "orphan"
