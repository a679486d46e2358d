"""Generations of `download_job` (issue 12): a long job hands over to new executions of the same
instance (`continue_as_new`) with a bounded history, and nothing a user sees changes: the
deadline, the heartbeat, cancel, retries, cost, the output and customStatus. A terminal report
that never arrives is read back from the worker's result record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.DurableOrchestrationContext import DurableOrchestrationContext
from azure.durable_functions.models.history import HistoryEventType

from orchestrators.kernel import raised_events_in_history
from tests.orchestration.conftest import (
    BLOB,
    CANCEL,
    GROUP,
    JOB_ID,
    RUN_KEY,
    at,
    check_invariants,
    failed,
    plan,
    progress,
    run_activity,
    started,
    status_at,
    succeeded,
)
from tests.support.replay import RunResult, format_time
from videojob.contract.wire import EVENT_NAME, ContractError, JobPlan
from videojob.domain.activity_wire import (
    CREATE_CONTAINER_GROUP,
    DELETE_CONTAINER_GROUP,
    INSPECT_CONTAINER_GROUP,
    PUBLISH_OUTPUT_BLOB,
    READ_RESULT_RECORD,
    STOP_CONTAINER_GROUP,
)
from videojob.domain.container_port import ContainerState, GroupState
from videojob.domain.container_spec import attempt_group_name
from videojob.domain.generation import CARRY_KEY, MAX_CARRY_BYTES, JobCarry, WatchCarry, carry_of, next_input
from videojob.domain.orchestration import GENERATION_MAX_WEIGHT, AttemptRecord, ProgressView

W = GENERATION_MAX_WEIGHT


def handover_times(result: RunResult) -> list[float]:
    """When each `continue_as_new` happened (seconds after the start)."""
    times = []
    for episode in result.episodes:
        actions = [a for group in episode.state.get("actions") or [] for a in group]
        if any(a.get("actionType") == ActionType.CONTINUE_AS_NEW for a in actions):
            times.append((episode.at - at(0)).total_seconds())
    return times


def long_plan(**changes: Any) -> JobPlan:
    return plan(**{"deadline_seconds": 3 * 3600, **changes})


def reports(h: Any, start: float, end: float, every: float, first_seq: int = 2, attempt: int | None = None) -> int:
    """Progress reports from `start` to `end`; returns the next seq."""
    seq, t = first_seq, start
    while t <= end:
        event = progress(seq, min(99.0, round(seq / 40, 2)))
        if attempt is not None:
            event["attempt"] = attempt
        h.raise_event(t, event)
        seq, t = seq + 1, t + every
    return seq


# --- the carry (pure) ---------------------------------------------------------------------------

T = datetime(2026, 1, 1, 0, 0, 1, 123456, tzinfo=UTC)


def a_carry(**changes: Any) -> JobCarry:
    values: dict[str, Any] = {
        "run": "0a1b2c3d",
        "started_at": T,
        "attempts": (AttemptRecord(1, "dl-x", "network", T, T + timedelta(seconds=9.5), "stopped"),),
        "attempt": 2,
        "attempt_began": T + timedelta(seconds=40),
        "provisioned_at": T + timedelta(seconds=42.25),
        "watch": WatchCarry(T + timedelta(seconds=99.000001), 57, ProgressView("downloading", 12.5, 10, 80, 3.0, 7.0),
                            3, T + timedelta(seconds=98)),
        "generation": 4,
        "status_updated_at": T + timedelta(seconds=99),
    }
    values.update(changes)
    return JobCarry(**values)


def test_carry_round_trips():
    carry = a_carry()
    wire = json.loads(json.dumps(carry.to_wire()))
    assert JobCarry.from_wire(wire) == carry


@pytest.mark.parametrize(
    "change",
    [
        {"run": "../other"},
        {"run": None},
        {"attempt": 11},
        {"attempt": True},
        {"generation": 10**9},
        {"version": 2},
        {"watch": {"lastHeard": "2026-01-01T00:00:00Z", "highestSeq": 2**60, "view": {"phase": "running"},
                   "ignored": 0, "lastReportAt": None}},
        {"watch": {"lastHeard": "2026-01-01T00:00:00Z", "highestSeq": 1, "view": {"phase": "succeeded"},
                   "ignored": 0, "lastReportAt": None}},
        {"startedAt": "yesterday"},
        {"attempts": [{"attempt": 1}]},
        {"padding": "x" * MAX_CARRY_BYTES},
        {"attempt": 0},  # "still queued", yet with a watch and a finished attempt
        {"attempt": -1},
    ],
)
def test_carry_refuses_oversized_and_malformed(change):
    wire = {**a_carry().to_wire(), **change}
    with pytest.raises(ContractError):
        JobCarry.from_wire(wire)
    with pytest.raises(ContractError):
        carry_of({**plan().to_wire(), CARRY_KEY: wire})


def test_queued_carry_round_trips_without_an_attempt():
    """A job still waiting for its slot hands over with no attempt; a carry of a watched attempt
    (as every earlier version wrote) still reads as one."""
    carry = JobCarry.in_queue("0a1b2c3d", T, 3, T + timedelta(seconds=30), {"queue": {"held": False}})
    wire = json.loads(json.dumps(carry.to_wire()))
    assert {"watch", "attemptBegan", "provisionedAt"}.isdisjoint(wire)
    assert JobCarry.from_wire(wire) == carry and carry.queued
    assert not JobCarry.from_wire(a_carry().to_wire()).queued
    with pytest.raises(ContractError):
        JobCarry.from_wire({**wire, "watch": a_carry().to_wire()["watch"]})
    with pytest.raises(ValueError):
        a_carry(watch=None).to_wire()


def test_carry_keeps_unknown_extensions():
    wire = {**a_carry().to_wire(), "slot": {"ticket": "t-1", "held": True}}
    carry = JobCarry.from_wire(wire)
    assert carry.extensions == {"slot": {"ticket": "t-1", "held": True}}
    assert carry.to_wire()["slot"] == {"ticket": "t-1", "held": True}
    with pytest.raises(ValueError):
        a_carry(extensions={"slot": "x" * MAX_CARRY_BYTES}).to_wire()


def test_next_input_is_still_a_job_plan():
    job_plan = long_plan()
    wire = next_input(job_plan, a_carry())
    assert JobPlan.from_wire(wire) == job_plan
    assert wire["request"]["url"] == job_plan.request.url  # what the job list and idempotency read
    assert carry_of(wire) == a_carry()
    assert carry_of(job_plan.to_wire()) is None


def _event(kind: HistoryEventType, seconds: float, **more: Any) -> dict[str, Any]:
    return {"EventType": kind, "EventId": -1, "IsPlayed": False, "Timestamp": format_time(at(seconds)), **more}


def test_sdk_still_shows_raised_events():
    """The one place the hand-over reads the SDK's history (`raised_events_in_history`): if the
    SDK stops exposing it as `context.histories` with `Name`, this fails (and so would the bound)."""
    history = [
        _event(HistoryEventType.ORCHESTRATOR_STARTED, 0),
        _event(HistoryEventType.EXECUTION_STARTED, 0, Name="download_job", Version="", Input="{}"),
        _event(HistoryEventType.EVENT_RAISED, 1, Name=EVENT_NAME, Input="{}"),
        _event(HistoryEventType.EVENT_RAISED, 1, Name="Other", Input="{}"),
        _event(HistoryEventType.EVENT_RAISED, 2, Name=EVENT_NAME, Input="{}"),
    ]
    context = DurableOrchestrationContext(history, JOB_ID, False, None)
    assert raised_events_in_history(context) == 2


# --- replays --------------------------------------------------------------------------------------


def test_two_hour_job_report_every_2s(host, backend):
    h = host(long_plan())
    h.raise_event(10, started(1))
    last_seq = reports(h, 12, 7200, 2)
    h.raise_event(7202, succeeded(last_seq))
    result = h.run(max_episodes=20_000)

    check_invariants(result)
    assert result.status == "Completed"
    assert result.output["blob"]["name"] == BLOB["name"]
    assert result.output["blob"]["sha256"] == BLOB["sha256"]
    # One group all along: the run token and the group are carried, never provisioned again.
    assert [c.input["group"] for c in result.calls(CREATE_CONTAINER_GROUP)] == [GROUP]
    assert [c.input["run"] for c in result.calls(CREATE_CONTAINER_GROUP)] == [RUN_KEY]
    assert result.calls(DELETE_CONTAINER_GROUP)[0].input == {"group": GROUP}
    # The history is bounded: ~3 events per step, one batch, the first generation's provisioning.
    sizes = result.execution_history_sizes
    assert len(sizes) >= 3600 // W - 2
    assert max(sizes) <= 3 * W + 20, sizes
    # customStatus never goes backwards across a hand-over.
    statuses = [s for s in result.custom_statuses if s]
    updated = [s["updatedAt"] for s in statuses]
    assert updated == sorted(updated)
    phases = [s["phase"] for s in statuses]
    first_download = phases.index("downloading")
    assert set(phases[first_download:]) <= {"downloading", "succeeded"}
    percents = [s["percent"] for s in statuses[first_download:] if s["phase"] == "downloading"]
    assert percents == sorted(percents)
    assert result.output["timings"]["totalSeconds"] == 7202 + 2 + 2  # check and delete: nothing lost
    assert len(result.output["attempts"]) == 1


def test_handover_with_events_in_same_episode(host, backend):
    """Bursts of 5 reports at one instant: the hand-over waits until all 5 are read, so none is
    discarded with the old history, and a terminal report last in a burst ends the job."""
    h = host(long_plan())
    h.raise_event(10, started(1))
    seq = 2
    for burst in range(30):
        for _ in range(5):
            h.raise_event(20 + 2 * burst, progress(seq, seq / 2))
            seq += 1
    h.raise_event(20 + 2 * 30, progress(seq, 90.0))
    h.raise_event(20 + 2 * 30, succeeded(seq + 1))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert len(handover_times(result)) >= 3
    for burst in range(30):  # each burst's last report shows: none was dropped at a hand-over
        assert status_at(result, 20 + 2 * burst)["percent"] == (2 + 5 * burst + 4) / 2
    assert READ_RESULT_RECORD not in result.activity_names


def test_handover_with_events_during_activity(host, backend):
    """A silent worker whose reports arrive while the heartbeat's inspect runs: they are handled
    after it, before any hand-over; the job's outcome is the one reported during an inspect."""
    h = host(long_plan(heartbeat_timeout_seconds=30))
    h.raise_event(10, started(1))
    windows = 3 * W
    # Window n ends at 40 + 32n; its inspect runs 2 s; a report comes 1 s in and is handled at its
    # end, so the next window ends 32 s later.
    for n in range(windows):
        h.raise_event(40 + 32 * n + 1, progress(2 + n, float(n % 100)))
    end = 40 + 32 * windows + 1
    h.raise_event(end, succeeded(2 + windows))
    result = h.run(max_episodes=20_000)

    check_invariants(result)
    assert result.status == "Completed"
    assert len(handover_times(result)) >= 2
    assert len(result.calls(INSPECT_CONTAINER_GROUP)) == windows + 1
    for n in range(windows):
        assert status_at(result, 40 + 32 * n + 2)["percent"] == float(n % 100)
    assert READ_RESULT_RECORD not in result.activity_names


def _first_handover(h_factory: Any, **kw: Any) -> float:
    probe = h_factory(long_plan(**kw))
    probe.raise_event(10, started(1))
    reports(probe, 12, 400, 2)
    times = handover_times(probe.run())
    assert times
    return times[0]


def test_events_right_after_continue_as_new(host, backend):
    handover = _first_handover(host)
    h = host(long_plan())
    h.raise_event(10, started(1))
    seq = reports(h, 12, handover, 2)
    h.raise_event(handover + 0.001, progress(seq, 77.0))
    h.raise_event(handover + 0.001, succeeded(seq + 1))
    result = h.run()

    check_invariants(result)
    assert handover_times(result) == [handover]
    assert result.status == "Completed"
    assert result.output["blob"]["name"] == BLOB["name"]
    assert status_at(result, handover + 0.001)["percent"] == 77.0  # the new execution took both


def test_cancel_across_handover(host, backend):
    handover = _first_handover(host)
    h = host(long_plan())
    h.raise_event(10, started(1))
    reports(h, 12, handover, 2)
    h.raise_event(handover + 0.001, CANCEL)
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error == "cancelled: the job was cancelled"
    assert result.calls(STOP_CONTAINER_GROUP)[0].input == {"group": GROUP}
    assert result.calls(STOP_CONTAINER_GROUP)[0].scheduled_at == at(handover + 0.001)


def test_deadline_across_handover(host, backend):
    h = host(long_plan(deadline_seconds=400))
    h.raise_event(10, started(1))
    reports(h, 12, 1000, 2)
    result = h.run()

    check_invariants(result)
    assert len(handover_times(result)) >= 3
    assert result.status == "Failed"
    assert result.error.startswith("deadline_exceeded: the job did not finish within 400 s")
    assert result.calls(STOP_CONTAINER_GROUP)[0].scheduled_at == at(400)


def test_retry_across_handover(host, backend):
    h = host(long_plan(max_attempts=3, retry_backoff_seconds=30))
    h.raise_event(10, started(1))
    seq = reports(h, 12, 150, 2)
    h.raise_event(151, failed(seq, "network", retryable=True))
    # stop 151-153, pause 30 s, create 183-185 (attempt 2, same run)
    h.raise_event(190, {**started(1), "attempt": 2})
    seq2 = reports(h, 192, 300, 2, attempt=2)
    h.raise_event(301, {**succeeded(seq2), "attempt": 2})
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert len(handover_times(result)) >= 4
    group2 = attempt_group_name(JOB_ID, 2, RUN_KEY)
    assert [(c.input["attempt"], c.input["run"], c.input["group"]) for c in result.calls(CREATE_CONTAINER_GROUP)] == [
        (1, RUN_KEY, GROUP), (2, RUN_KEY, group2)]
    assert [(a["group"], a["outcome"]) for a in result.output["attempts"]] == [
        (GROUP, "network"), (group2, "succeeded")]
    assert [row["attempt"] for row in result.output["cost"]["attempts"]] == [1, 2]
    assert result.output["attempts"][0]["endedAt"] == "2026-01-01T00:02:33Z"


def _record_answer(event: dict[str, Any] | None, refused: str | None = None):
    reads: list[dict[str, Any]] = []

    def activities(name: str, input_json: str) -> str:
        if name == READ_RESULT_RECORD:
            reads.append(json.loads(input_json))
            if event is not None:
                return json.dumps({"ok": True, "found": True, "event": event})
            return json.dumps({"ok": True, "found": False, **({"refused": refused} if refused else {})})
        return run_activity(name, input_json)

    return activities, reads


def test_terminal_lost_at_handover_recovered_from_record(host, backend):
    """The worker succeeded and exited, but its `succeeded` report never came (lost at the
    hand-over): the heartbeat finds the group ended, reads the record, and the job completes
    with the recorded blob, checked like a reported one."""
    handover = _first_handover(host, heartbeat_timeout_seconds=60)
    activities, reads = _record_answer({**succeeded(500), "attempt": 1})
    h = host(long_plan(heartbeat_timeout_seconds=60), activities=activities)
    h.raise_event(10, started(1))
    reports(h, 12, handover, 2)
    backend.states = [GroupState(GROUP, ContainerState.SUCCEEDED, exit_code=0, detail="Completed")]
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert result.output["blob"]["sha256"] == BLOB["sha256"]
    assert result.output["attempts"][0]["recovered"] is True
    assert len(result.calls(INSPECT_CONTAINER_GROUP)) == 1  # one look after the worker's exit
    assert len(result.calls(PUBLISH_OUTPUT_BLOB)) == 1
    # The deadline too: the worker's token, which keys the record's MAC, expires then.
    assert reads == [{"jobId": JOB_ID, "attempt": 1, "run": RUN_KEY, "deadline": "2026-01-01T03:00:00Z"}]
    assert result.calls(INSPECT_CONTAINER_GROUP)[0].scheduled_at == at(handover + 60)


def test_record_of_other_attempt_not_taken(host, backend):
    activities, reads = _record_answer(None, refused="the record is of another job or attempt")
    h = host(long_plan(heartbeat_timeout_seconds=60, max_attempts=2, retry_backoff_seconds=30),
             activities=activities)
    h.raise_event(10, started(1))
    backend.states = [GroupState(GROUP, ContainerState.SUCCEEDED, exit_code=0)]
    h.raise_event(200, {**started(1), "attempt": 2})
    h.raise_event(210, {**succeeded(2), "attempt": 2})
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert [a["outcome"] for a in result.output["attempts"]] == ["heartbeat_lost", "succeeded"]
    assert "recovered" not in result.output["attempts"][0]
    assert len(reads) == 1
