"""The global cap's semaphore (`videojob.job_slots`): FIFO by arrival, idempotent asks, bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from videojob import job_slots as slots

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ask(state: slots.SlotState, job: str, arrived: float, now: float, capacity: int = 2):
    return slots.acquire(state, job, t(arrived), capacity, t(now))


def test_grants_up_to_capacity_then_queues_in_arrival_order():
    state = slots.SlotState()
    grants = {}
    # Asked in another order than they arrived: the queue follows arrival.
    for job, arrived in [("a", 0), ("b", 1), ("e", 4), ("d", 3), ("c", 2)]:
        state, grants[job] = ask(state, job, arrived, 10)
    assert [g.granted for g in grants.values()] == [True, True, False, False, False]
    assert [m.id for m in state.queue] == ["c", "d", "e"]
    assert slots.grant_of(state, "e") == slots.Grant(False, 3, 2, 2, 3)


def test_release_promotes_the_head_and_positions_move_up():
    state = slots.SlotState()
    for i, job in enumerate("abcd"):
        state, _ = ask(state, job, i, i)
    state = slots.release(state, "a", t(20))
    # c holds now (reserved for it until it asks), d moved up to 1.
    assert [m.id for m in state.holders] == ["b", "c"]
    assert state.position("d") == 1
    state, grant = ask(state, "c", 2, 21)
    assert grant.granted
    assert slots.release(state, "nobody", t(22)) == state


def test_acquire_is_idempotent_for_holders_and_queued_ids():
    state = slots.SlotState()
    for job in "abc":
        state, _ = ask(state, job, 0, 0)
    again, grant = ask(state, "c", 0, 5)
    assert again.queue == state.queue and grant.position == 1
    again, grant = ask(state, "a", 0, 5)
    assert grant.granted and again.holders == state.holders


def test_requeued_job_gets_its_old_place_back():
    state = slots.SlotState()
    for i, job in enumerate("abcd"):
        state, _ = ask(state, job, i, i)
    state = slots.release(state, "b", t(10))  # b refused by quota: leaves, c takes its slot
    state, grant = ask(state, "b", 1, 40)  # b comes back with its old arrival
    assert not grant.granted and grant.position == 1  # ahead of d, who arrived later


def test_evict_frees_only_entries_older_than_the_sweep():
    state = slots.SlotState()
    state, _ = ask(state, "a", 0, 0)
    state, _ = ask(state, "b", 1, 1)
    state, _ = ask(state, "c", 2, 2)
    swept_at = t(50)
    state = slots.release(state, "b", t(60))  # c promoted at 60, after the sweeper read the state
    state = slots.evict(state, ["a", "c"], swept_at, t(70))
    assert [m.id for m in state.holders] == ["c"]


def test_lower_capacity_stops_grants_without_evicting():
    state = slots.SlotState()
    for job in "abc":
        state, _ = ask(state, job, 0, 0, capacity=3)
    state, grant = ask(state, "d", 1, 1, capacity=1)
    assert not grant.granted and len(state.holders) == 3 and state.capacity == 1
    for job in "ab":
        state = slots.release(state, job, t(5))
    assert not slots.grant_of(state, "d").granted
    state = slots.release(state, "c", t(6))
    assert slots.grant_of(state, "d").granted


def test_members_and_ids_are_bounded():
    with pytest.raises(slots.SlotError):
        ask(slots.SlotState(), "../etc/passwd", 0, 0)
    with pytest.raises(slots.SlotError):
        ask(slots.SlotState(), "x" * 201, 0, 0)
    with pytest.raises(slots.SlotError):
        slots.acquire(slots.SlotState(), "a", t(0), 0, t(0))
    with pytest.raises(slots.SlotError):
        slots.apply(slots.SlotState(), "acquire", {"id": "a", "arrived": "yesterday", "capacity": 1}, t(0))
    with pytest.raises(slots.SlotError):
        slots.apply(slots.SlotState(), "drop_table", None, t(0))
    full = slots.SlotState(1, (slots.Member("h", T0, T0),),
                           tuple(slots.Member(f"q{i}", T0, T0) for i in range(slots.MAX_MEMBERS - 1)))
    with pytest.raises(slots.SlotError, match="full"):
        ask(full, "late", 5, 5, capacity=1)


def test_state_round_trips_through_the_wire():
    state = slots.SlotState()
    for i, job in enumerate("abc"):
        state, _ = ask(state, job, i + 0.123456, i)
    assert slots.SlotState.from_wire(state.to_wire()) == state
    assert slots.SlotState.from_wire(None) == slots.SlotState()


def test_queue_recheck_grows_with_the_position_and_is_bounded():
    assert [slots.queue_recheck_seconds(p) for p in (None, 1, 2, 3, 7, 50)] == [2, 2, 2, 3, 7, 10]


def test_quota_backoff_doubles_and_is_capped():
    assert [slots.quota_backoff_seconds(30, n) for n in (1, 2, 3, 10)] == [30, 60, 120, slots.QUOTA_BACKOFF_CAP_SECONDS]


def test_entity_function_through_the_sdk_entry_point():
    """The registered entity, run as the host runs it: one batch, results in order, state kept."""
    import json

    from devhost.functions import entity_batch_json, entity_from_builder, run_entity
    from entities import job_slots

    entity = entity_from_builder(job_slots)
    assert entity.name == slots.ENTITY_NAME

    def op(name: str, value: object) -> tuple[str, str, bool]:
        return name, request_input(value), False

    def request_input(value: object) -> str:  # RequestMessage.Input: the SDK's JSON text serialized once more
        return json.dumps(json.dumps(value))

    arrived = slots.format_utc(T0)
    batch = [op("acquire", {"id": j, "arrived": arrived, "capacity": 2}) for j in ("a", "b", "c")]
    batch += [("release", request_input({"id": "a"}), True),
              op("acquire", {"id": "c", "arrived": arrived, "capacity": 2}),
              op("acquire", {"id": "bad id!", "arrived": arrived, "capacity": 2})]
    outcome = run_entity(entity, entity_batch_json("job_slots", "global", False, None, batch))

    assert outcome.error is None and outcome.exists
    answers = [json.loads(r["result"]) for r in outcome.results]
    assert [a["granted"] for a in answers[:3]] == [True, True, False]
    assert answers[3] is None and answers[4]["granted"] is True
    assert outcome.results[5]["isError"] is True
    state = slots.SlotState.from_wire(json.loads(outcome.state))
    assert [m.id for m in state.holders] == ["b", "c"] and state.queue == ()
