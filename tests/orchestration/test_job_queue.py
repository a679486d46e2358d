"""`download_job` under the global cap (`MAX_RUNNING_JOBS`), replayed: it waits in the `job_slots`
queue before its first group, shows its place, gives its slot back on every ending it runs code
for, and a quota refusal sends it back to the queue instead of failing it. The entity is the real
semaphore (`videojob.domain.job_slots.apply`) over an in-memory state, with other jobs scripted around it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.backends.arm_recorded import COUNT_QUOTA_AT_LIMIT_MESSAGE, quota_refusal, quota_refusal_message
from tests.backends.test_aci_backend import create_refused_with
from tests.orchestration.conftest import (
    CANCEL,
    JOB_ID,
    T0,
    at,
    check_invariants,
    failed,
    plan,
    run_activity,
    started,
    succeeded,
)
from tests.orchestration.test_generations import handover_times
from tests.support.replay import EntityCall
from videojob.domain import job_slots as slots
from videojob.domain.activity_wire import CREATE_CONTAINER_GROUP as CREATE
from videojob.domain.activity_wire import CreateResult, parse_utc
from videojob.domain.container_port import BackendError
from videojob.domain.failure_reason import FailureReason
from videojob.domain.orchestration import GENERATION_MAX_WEIGHT

TARGET = f"@{slots.ENTITY_NAME}@{slots.ENTITY_KEY}"


@dataclass
class SlotsScript:
    """The entity, with other jobs in it: each `(id, arrived seconds, release seconds)` joins at
    the start (as if it had asked before us) and gives its slot or place back at its time."""

    capacity: int
    others: list[tuple[str, float, float]] = field(default_factory=list)
    state: slots.SlotState = field(default_factory=slots.SlotState)
    released: set[str] = field(default_factory=set)

    tokens: dict[str, str] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)

    def new_token(self) -> str:
        self.issued.append(f"token-{len(self.issued)}")
        return self.issued[-1]

    def __post_init__(self) -> None:
        for other, _, _ in sorted(self.others, key=lambda o: o[1]):  # they asked in arrival order
            self.state, grant = slots.acquire(self.state, other, T0, self.capacity, new_token=self.new_token)
            self.tokens[other] = grant.token

    def _release_due(self, now: datetime) -> None:
        for other, _, release_at in self.others:
            if other not in self.released and now >= T0 + timedelta(seconds=release_at):
                self.released.add(other)
                self.state = slots.release(self.state, other, now, token=self.tokens[other])

    def __call__(self, call: EntityCall) -> Any:
        assert call.target == TARGET
        self._release_due(call.at)
        self.state, result, refused = slots.apply(self.state, call.operation, call.input, call.at,
                                                  capacity=self.capacity, new_token=self.new_token, signing_key="k")
        assert refused is None, refused  # the job's own operations are never refused
        return result

    def holds(self, job_id: str = JOB_ID) -> bool:
        return job_id in self.state.member_ids()


def ops(result, operation: str) -> list[EntityCall]:
    return [c for c in result.entity_calls if c.operation == operation]


def queued_positions(result) -> list[int]:
    seen = [s.get("queuePosition") for s in result.custom_statuses if s and s.get("phase") == "queued"]
    return [p for i, p in enumerate(seen) if i == 0 or seen[i - 1] != p]


def capped(**changes: Any):
    return plan(max_running_jobs=1, **changes)


def granted_event(h, seconds: float, by: str) -> None:
    """What `announce_slot_grants` does when `by` frees the slot that goes to us."""
    h.raise_event(seconds, {"by": by}, name=slots.GRANT_EVENT)


def test_waits_queued_with_position_then_runs_when_told(host, backend):
    script = SlotsScript(1, [("a-job", -20, 30), ("b-job", -10, 60)])
    h = host(capped(), entities=script)
    granted_event(h, 60, "b-job")  # a-job's release at 30 went to b-job (queued before us)
    h.raise_event(90, succeeded(0))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed", result.error
    assert queued_positions(result)[0] == 2  # behind a-job (holding) and b-job (queued)
    create = result.calls(CREATE)[0]
    assert at(60) <= create.scheduled_at <= at(61)  # told: at once, not at a re-check
    assert result.output["queue"]["waitedSeconds"] >= 60
    # Pushed, not polled (issue 22): the first ask and the claim, then the release (a call: whom it
    # grants the slot to is told).
    assert [c.operation for c in result.entity_calls] == ["acquire", "acquire", "release"]
    assert [c.signal for c in ops(result, "release")] == [False]
    assert not script.holds()


def test_a_lost_grant_event_is_repaired_by_the_fallback_re_check(host, backend):
    """b-job's announcement never arrives (it crashed between its release and the activity)."""
    script = SlotsScript(1, [("a-job", -20, 30), ("b-job", -10, 60)])
    h = host(capped(), entities=script)
    h.raise_event(200, succeeded(0))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed", result.error
    create = result.calls(CREATE)[0]
    assert at(60) <= create.scheduled_at <= at(60 + slots.QUEUE_FALLBACK_SECONDS + 1)
    acquires = [c.at for c in ops(result, "acquire")]
    gaps = [(b - a).total_seconds() for a, b in zip(acquires, acquires[1:], strict=False)]
    assert all(gap >= slots.QUEUE_FALLBACK_SECONDS for gap in gaps)
    assert len(acquires) <= 3


ENDINGS = {
    "success": ({}, [(30, "succeeded")]),
    "failure": ({}, [(20, "failed")]),
    "cancel": ({}, [(10, "started"), (20, "cancel")]),
    "deadline": ({"deadline_seconds": 120}, [(10, "started")]),
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_a_holder_that_ends_tells_the_job_its_slot_goes_to(host, backend, ending):
    """Every ending that runs orchestrator code hands the slot on: the `release` answer names the
    next job and the announcement activity is given exactly that id (terminate, purge and crashes
    run no code: the sweeper's eviction tells, tests/sweeper/test_sweeper_trigger.py)."""
    changes, events = ENDINGS[ending]
    script = SlotsScript(1)
    seen: list[dict] = []

    def activities(name: str, input_json: str) -> str:
        if name == slots.ANNOUNCE_GRANTS:
            seen.append(json.loads(input_json))
        return run_activity(name, input_json)

    def b_job_asks(call: EntityCall) -> Any:  # b-job queues right after our first ask
        answer = script(call)
        if call.operation == "acquire" and "b-job" not in script.state.member_ids():
            script.state, _ = slots.acquire(script.state, "b-job", call.at, 1, new_token=script.new_token)
        return answer

    h = host(capped(**changes), entities=b_job_asks, activities=activities)
    payloads = {"succeeded": succeeded(0), "failed": failed(1, "unavailable", "Video unavailable"),
                "started": started(0), "cancel": CANCEL}
    for seconds, kind in events:
        h.raise_event(seconds, payloads[kind])
    result = h.run()

    assert result.status == ("Completed" if ending == "success" else "Failed"), result.error
    assert seen == [{"ids": ["b-job"], "by": JOB_ID}]
    assert script.state.holds("b-job") and not script.holds()


def test_releases_after_success_before_the_webhook_and_share_link(host, backend):
    script = SlotsScript(2)
    h = host(capped(share_link_hours=1), entities=script)
    h.raise_event(30, succeeded(0))
    result = h.run()

    assert result.status == "Completed"
    released = ops(result, "release")[0].at
    assert released <= min(c.scheduled_at for c in result.activity_calls if c.name == "create_share_link")
    assert not script.holds()


def test_releases_after_a_failure(host, backend):
    script = SlotsScript(1)
    h = host(capped(), entities=script)
    h.raise_event(20, failed(1, "unavailable", "Video unavailable"))
    result = h.run()

    assert result.status == "Failed"
    assert len(ops(result, "release")) == 1
    assert not script.holds()


def test_releases_after_cancel_while_running(host, backend):
    script = SlotsScript(1)
    h = host(capped(), entities=script)
    h.raise_event(10, started(0))
    h.raise_event(20, CANCEL)
    result = h.run()

    assert result.status == "Failed" and result.error.startswith("cancelled")
    assert not script.holds()


def test_releases_after_the_deadline_while_running(host, backend):
    script = SlotsScript(1)
    h = host(capped(deadline_seconds=120), entities=script)
    h.raise_event(10, started(0))
    result = h.run()

    assert result.status == "Failed" and result.error.startswith("deadline_exceeded")
    assert not script.holds()


def test_cancel_while_queued_fails_cancelled_without_a_container_and_leaves_the_queue(host, backend):
    script = SlotsScript(1, [("a-job", -10, 10_000)])
    h = host(capped(), entities=script)
    h.raise_event(15, CANCEL)
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error.startswith("cancelled")
    assert result.calls(CREATE) == []
    assert result.custom_status["cleanup"] == "none"
    assert result.finished_at <= at(16)  # at once, not at the next re-check
    assert not script.holds() and script.state.holds("a-job")


def test_deadline_in_the_queue_is_deadline_exceeded_with_phase_queued(host, backend):
    script = SlotsScript(1, [("a-job", -10, 10_000)])
    h = host(capped(deadline_seconds=60), entities=script)
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error.startswith("deadline_exceeded") and "phase: queued" in result.error
    assert result.calls(CREATE) == []
    assert not script.holds()


def test_quota_refusal_releases_backs_off_and_requeues_then_succeeds(host, backend):
    backend.create_errors = [create_refused_with(409, quota_refusal(COUNT_QUOTA_AT_LIMIT_MESSAGE))] * 2
    script = SlotsScript(2)
    h = host(capped(provision_max_attempts=1), entities=script)
    h.raise_event(300, succeeded(0))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed", result.error  # one provisioning try allowed: quota spent none
    kinds = [c.operation for c in result.entity_calls]
    assert kinds == ["acquire", "step_aside", "acquire", "step_aside", "acquire", "release"]
    creates = [c.scheduled_at for c in result.calls(CREATE)]
    assert len(creates) == 3
    assert (creates[1] - creates[0]).total_seconds() >= 30 and (creates[2] - creates[1]).total_seconds() >= 60
    assert any(s.get("reason") == "quota" for s in result.custom_statuses if s)
    assert result.output["queue"]["quotaWaits"] == 2
    # The first ask is the request recorded before tokens (histories in flight replay it as is).
    assert ops(result, "acquire")[0].input == {"id": JOB_ID, "arrived": slots.format_utc(at(0)), "capacity": 1}
    # The same token each time after the first answer: its old place.
    assert [c.input.get("token") for c in ops(result, "acquire")] == [None, "token-0", "token-0"]
    assert {c.input["token"] for c in ops(result, "step_aside") + ops(result, "release")} == {"token-0"}
    assert not script.holds()


def test_a_job_that_joined_before_tokens_keeps_working_and_leaves_on_a_quota_refusal(host, backend):
    """In flight across the upgrade: its entry has no key, it has no token; on a quota refusal it
    releases as it did then (its history may hold that signal) and asks anew."""
    backend.create_errors = [create_refused_with(409, quota_refusal(COUNT_QUOTA_AT_LIMIT_MESSAGE))]
    script = SlotsScript(2)
    script.state = slots.SlotState(2, (slots.Member(JOB_ID, T0, T0),), (), 1)
    h = host(capped(provision_max_attempts=1), entities=script)
    h.raise_event(300, succeeded(0))
    result = h.run()

    assert result.status == "Completed", result.error
    assert [c.operation for c in result.entity_calls] == ["acquire", "release", "acquire", "release"]
    assert [c.input.get("token") for c in result.entity_calls] == [None, None, None, "token-0"]
    assert not script.holds()


IMPOSSIBLE_QUOTA = quota_refusal(quota_refusal_message("StandardCores", "eastus", 1, 0, 2))


def test_a_quota_the_worker_can_never_fit_fails_at_once_naming_quota_and_request(host, backend):
    """Issue 18.5: a 2-core worker under a 1-core quota waited in the queue until its deadline."""
    backend.create_errors = [create_refused_with(400, IMPOSSIBLE_QUOTA)] * 100
    script = SlotsScript(2)
    result = host(capped(provision_max_attempts=3), entities=script).run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error.startswith("provisioning_failed: ContainerGroupQuotaReached")
    assert "quota 'StandardCores' in region 'eastus' allows 1 and one container group requests 2" in result.error
    assert len(result.calls(CREATE)) == 1  # no retry, no wait: it can never fit
    assert result.custom_status["error"]["retryable"] is False
    assert not any(s.get("reason") == "quota" for s in result.custom_statuses if s)
    assert [c.operation for c in result.entity_calls] == ["acquire", "release"]
    assert not script.holds()


def test_a_quota_the_worker_can_never_fit_fails_at_once_without_the_cap_too(host, backend):
    backend.create_errors = [create_refused_with(400, IMPOSSIBLE_QUOTA)] * 100
    result = host(plan(provision_max_attempts=3)).run()

    assert result.status == "Failed" and result.error.startswith("provisioning_failed: ContainerGroupQuotaReached")
    assert "requests 2" in result.error
    assert len(result.calls(CREATE)) == 1


def test_a_quota_refusal_answered_before_reasons_existed_still_waits_in_the_queue():
    """An in-flight history holds create answers without `reason`: they replay as they were decided."""
    old = {"ok": False, "group": "g", "error": {"code": "ContainerGroupQuotaReached", "retryable": True,
                                                 "message": COUNT_QUOTA_AT_LIMIT_MESSAGE, "retryAfterSeconds": 30}}
    assert CreateResult.from_wire(old, "g").reason == FailureReason.QUOTA_EXHAUSTED
    new = {**old, "error": {**old["error"], "reason": "transient"}}
    assert CreateResult.from_wire(new, "g").reason == FailureReason.TRANSIENT


def test_permanent_configuration_error_still_fails_provisioning(host, backend):
    backend.create_errors = [BackendError("InaccessibleImage", "image not accessible", retryable=False)]
    script = SlotsScript(1)
    h = host(capped(), entities=script)
    result = h.run()

    assert result.status == "Failed"
    assert result.error.startswith("provisioning_failed: InaccessibleImage")
    assert [c.operation for c in result.entity_calls] == ["acquire", "release"]
    assert not script.holds()


def test_an_entity_error_fails_the_job_and_gives_the_place_up(host, backend):
    def broken(call: EntityCall) -> Any:
        if call.operation == "acquire":
            raise slots.SlotError("the queue is full")
        return None

    result = host(capped(), entities=broken).run()

    assert result.status == "Failed" and result.error.startswith("internal: job slots")
    assert [c.operation for c in result.entity_calls] == ["acquire", "release"]


def test_plan_without_max_running_jobs_takes_no_slot(host, backend):
    h = host(plan(), entities=SlotsScript(1))
    h.raise_event(30, succeeded(0))
    result = h.run()

    assert result.status == "Completed"
    assert result.entity_calls == []
    assert "queue" not in result.output


def test_event_arriving_during_an_entity_call_is_kept(host, backend):
    """A cancel that arrives while `acquire` is in flight is not lost: the job ends at once."""
    script = SlotsScript(1, [("a-job", -10, 10_000)])
    h = host(capped(), entities=script, entity_seconds=5)
    h.raise_event(2, CANCEL)
    result = h.run()

    assert result.status == "Failed" and result.error.startswith("cancelled")
    assert result.finished_at <= at(11)  # the acquire's answer (5 s), then the release (a call, 5 s)
    assert not script.holds()


def test_a_new_generation_keeps_the_slot_it_holds(host, backend):
    """Issue 12's hand-overs happen while the worker runs: the next generation must not queue again
    (it holds the slot: the carry's `extensions["queue"]`), and the slot is given back once, at the end."""
    from tests.orchestration.test_generations import reports

    script = SlotsScript(1, [("a-job", -10, 20)])
    h = host(capped(deadline_seconds=3 * 3600), entities=script)
    granted_event(h, 20, "a-job")
    h.raise_event(30, started(1))
    last_seq = reports(h, 32, 400, 2)
    h.raise_event(402, succeeded(last_seq))
    result = h.run(max_episodes=5_000)

    check_invariants(result)
    assert result.status == "Completed", result.error
    assert len(handover_times(result)) >= 3
    granted = [c for c in ops(result, "acquire") if c.result["granted"]]
    assert len(granted) == 1 and all(c.at <= at(30) for c in ops(result, "acquire"))
    assert len(ops(result, "release")) == 1
    assert result.output["queue"]["waitedSeconds"] >= 20 and result.output["queue"]["quotaWaits"] == 0
    assert not script.holds()


# --- generations while queued (a wait that hands over like the watch does) ----------------------

HOUR = 3600


def an_hour_behind_a_full_cap() -> SlotsScript:
    """a-job runs for an hour; b-job and c-job wait ahead of us for half of it (we are 3rd), then leave."""
    return SlotsScript(1, [("a-job", -30, HOUR), ("b-job", -20, HOUR / 2), ("c-job", -10, HOUR / 2)])


def test_an_hour_in_the_queue_hands_over_with_a_bounded_history(host, backend):
    script = an_hour_behind_a_full_cap()
    h = host(capped(deadline_seconds=3 * HOUR), entities=script)
    granted_event(h, HOUR, "a-job")
    h.raise_event(HOUR + 60, succeeded(0))
    result = h.run(max_episodes=20_000)

    check_invariants(result)
    assert result.status == "Completed", result.error
    assert len(result.calls(CREATE)) == 1 and result.calls(CREATE)[0].scheduled_at >= at(HOUR)
    # Bounded like the watch: every execution ends small, however long the wait.
    handovers = handover_times(result)
    assert len(handovers) >= HOUR // (slots.QUEUE_FALLBACK_SECONDS * GENERATION_MAX_WEIGHT)
    assert max(result.execution_history_sizes) <= 5 * GENERATION_MAX_WEIGHT, result.execution_history_sizes
    # What the user sees: queued, its place (3rd, then 1st), since when; never older, never another phase.
    statuses = [s for s in result.custom_statuses if s]
    updated = [parse_utc(s["updatedAt"]) for s in statuses]
    assert updated == sorted(updated)
    first = next(i for i, s in enumerate(statuses) if s["phase"] == "queued")
    queued = [s for s in statuses[first:] if s["phase"] == "queued"]
    assert statuses[first:len(queued) + first] == queued  # no other phase until the grant
    assert queued_positions(result) == [3, 1]
    assert {s["queuedSince"] for s in queued} == {slots.format_utc(at(0))}
    # Its place: the token of the first answer, asked with by every generation after it.
    tokens = [c.input.get("token") for c in ops(result, "acquire")]
    assert tokens[0] is None and set(tokens[1:]) == {script.issued[-1]}
    assert result.output["queue"]["arrivedAt"] == slots.format_utc(at(0))
    assert HOUR <= result.output["queue"]["waitedSeconds"] <= HOUR + 1  # told at once
    # Bounded cost while queued: one entity operation a fallback period, whatever its place.
    assert len(ops(result, "acquire")) <= HOUR / slots.QUEUE_FALLBACK_SECONDS + 3
    assert [c.operation for c in result.entity_calls if c.signal] == []
    assert len(ops(result, "release")) == 1
    assert not script.holds()


def test_cancel_while_queued_after_hand_overs(host, backend):
    script = an_hour_behind_a_full_cap()
    h = host(capped(deadline_seconds=3 * HOUR), entities=script)
    h.raise_event(1200, CANCEL)
    result = h.run(max_episodes=20_000)

    check_invariants(result)
    assert len([t for t in handover_times(result) if t < 1200]) >= 3
    assert result.status == "Failed" and result.error.startswith("cancelled")
    assert result.calls(CREATE) == []
    assert result.finished_at <= at(1201)
    assert len(ops(result, "release")) == 1
    assert not script.holds() and script.state.holds("a-job")


def test_deadline_while_queued_after_hand_overs(host, backend):
    script = an_hour_behind_a_full_cap()
    h = host(capped(deadline_seconds=1200), entities=script)
    result = h.run(max_episodes=20_000)

    check_invariants(result)
    assert len(handover_times(result)) >= 3
    assert result.status == "Failed"
    assert result.error.startswith("deadline_exceeded") and "phase: queued" in result.error
    assert result.finished_at <= at(1201)
    assert result.calls(CREATE) == []
    assert not script.holds()
