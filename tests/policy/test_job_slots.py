"""The global cap's semaphore (`videojob.domain.job_slots`): FIFO in the entity's own order, idempotent
asks by the token the entity gave, the operator's cap, bounded; foreign operations refused."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from videojob.domain import job_slots as slots

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = "s" * 40


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Entity:
    """The pure semaphore driven like the entity drives it: the cap and the key are the operator's."""

    def __init__(self, capacity: int = 2):
        self.state = slots.SlotState()
        self.capacity = capacity
        self.tokens: dict[str, str] = {}
        self.refusals: list[slots.Refusal] = []
        self._counter = itertools.count()

    def op(self, operation: str, value: object, now: float = 0) -> object:
        self.state, result, refused = slots.apply(
            self.state, operation, value, t(now), capacity=self.capacity,
            new_token=lambda: f"tok-{next(self._counter)}", signing_key=KEY)
        if refused is not None:
            self.refusals.append(refused)
        return result

    def ask(self, job: str, now: float = 0) -> slots.Grant:
        grant = slots.Grant.from_wire(self.op("acquire", slots.acquire_request(job, self.tokens.get(job), T0, 1), now))
        if grant.token:
            self.tokens[job] = grant.token
        return grant

    def release(self, job: str, now: float = 0) -> None:
        self.op("release", slots.holder_request(job, self.tokens.get(job)), now)

    def holders(self) -> list[str]:
        return [m.id for m in self.state.holders]

    def queue(self) -> list[str]:
        return [m.id for m in self.state.queue]


def test_grants_up_to_capacity_then_queues_in_the_order_of_first_asks():
    e = Entity()
    grants = {job: e.ask(job, i) for i, job in enumerate("abcde")}
    assert [g.granted for g in grants.values()] == [True, True, False, False, False]
    assert e.queue() == ["c", "d", "e"]
    assert slots.grant_of(e.state, "e") == slots.Grant(False, 3, 2, 2, 3)
    assert all(g.token for g in grants.values())  # each first answer carries the holder's token


def test_release_promotes_the_head_and_positions_move_up():
    e = Entity()
    for i, job in enumerate("abcd"):
        e.ask(job, i)
    e.release("a", 20)
    # c holds now (reserved for it until it asks), d moved up to 1.
    assert e.holders() == ["b", "c"] and e.state.position("d") == 1
    assert e.ask("c", 21).granted
    before = e.state
    e.op("release", {"id": "nobody"}, 22)
    assert e.state == before


def test_acquire_is_idempotent_for_its_holder_and_the_token_comes_once():
    e = Entity()
    for job in "abc":
        e.ask(job)
    queue = e.state.queue
    grant = e.ask("c", 5)
    assert e.state.queue == queue and grant.position == 1 and grant.token is None
    assert e.ask("a", 5).granted and e.holders() == ["a", "b"]


def test_a_quota_refusal_steps_aside_keeping_its_place_without_blocking_a_slot():
    e = Entity()
    for i, job in enumerate("abcd"):
        e.ask(job, i)
    e.op("step_aside", slots.holder_request("b", e.tokens["b"]), 10)  # b refused by quota
    assert e.holders() == ["a", "c"]  # c got b's slot at once
    e.release("a", 20)
    assert e.holders() == ["c", "d"]  # b rests during its backoff: d is not held up
    grant = e.ask("b", 40)  # b back after its backoff: its old place, ahead of anyone who came later
    e.ask("late", 41)
    assert not grant.granted and grant.position == 1 and e.queue() == ["b", "late"]


def test_evict_frees_only_entries_older_than_the_sweep_and_only_with_the_sweepers_mac():
    e = Entity()
    for i, job in enumerate("abc"):
        e.ask(job, i)
    swept_at = t(50)
    e.release("b", 60)  # c promoted at 60, after the sweeper read the state
    e.op("evict", slots.evict_request(KEY, ["a", "c"], swept_at), 70)
    assert e.holders() == ["c"] and e.refusals == []


def test_the_cap_is_the_operators_lowering_it_stops_grants_without_evicting():
    e = Entity(capacity=3)
    for job in "abc":
        e.ask(job)
    e.capacity = 1  # the operator lowered MAX_RUNNING_JOBS
    assert not e.ask("d", 1).granted and len(e.holders()) == 3 and e.state.capacity == 1
    for job in "ab":
        e.release(job, 5)
    assert not slots.grant_of(e.state, "d").granted
    e.release("c", 6)
    assert slots.grant_of(e.state, "d").granted


# --- what a caller cannot do any more (issue 19.5; each was possible before) --------------------------


def test_a_caller_cannot_lift_the_cap():
    e = Entity(capacity=2)
    for job in "ab":
        e.ask(job)
    e.op("acquire", {"id": "greedy", "capacity": 500, "arrived": "2026-01-01T00:00:00Z"}, 1)
    assert e.state.capacity == 2 and e.holders() == ["a", "b"] and e.queue() == ["greedy"]


def test_a_caller_cannot_jump_the_queue_with_an_old_arrival():
    e = Entity(capacity=1)
    for i, job in enumerate("abc"):
        e.ask(job, i)
    e.op("acquire", {"id": "early-bird", "arrived": "1970-01-01T00:00:00Z"}, 10)
    assert e.queue() == ["b", "c", "early-bird"]
    e.release("a", 11)
    assert e.holders() == ["b"]


def test_nobody_but_the_holder_releases_its_slot():
    e = Entity(capacity=1)
    e.ask("victim")
    e.ask("next")
    for forged in ({"id": "victim"}, {"id": "victim", "token": None}, {"id": "victim", "token": "guess"},
                   {"id": "victim", "token": e.tokens["next"]}, {"id": "victim", "token": "x" * 5000}):
        e.op("release", forged, 1)
        e.op("step_aside", forged, 1)
    assert e.holders() == ["victim"] and e.queue() == ["next"]
    assert {(r.operation, r.job_id) for r in e.refusals} == {("release", "victim"), ("step_aside", "victim")}
    assert all("tok-" not in r.reason for r in e.refusals)  # no token in what gets logged


def test_an_ask_with_a_holders_id_but_not_its_token_takes_nothing():
    e = Entity(capacity=1)
    e.ask("victim")
    before = e.state
    answer = slots.Grant.from_wire(e.op("acquire", {"id": "victim", "token": "guess"}, 1))
    assert (answer.granted, answer.position, answer.token) == (False, None, None)
    assert e.state == before and e.refusals[-1].operation == "acquire"


@pytest.mark.parametrize("forged", [
    {"ids": ["victim"], "before": "2100-01-01T00:00:00Z"},
    {"ids": ["victim"], "before": "2100-01-01T00:00:00Z", "mac": "0" * 64},
    {**slots.evict_request("another-key-of-32-characters-xxxxx", ["victim"], t(100))},
    {**slots.evict_request(KEY, ["someone-else"], t(100)), "ids": ["victim"]},
])
def test_nobody_but_the_sweeper_evicts(forged):
    e = Entity(capacity=1)
    e.ask("victim")
    e.op("evict", forged, 1)
    assert e.holders() == ["victim"] and e.refusals[-1].operation == "evict"


def test_members_from_before_tokens_answer_to_their_id():
    """Jobs in flight across the upgrade: their entries have no key, their calls no token."""
    old = {"capacity": 1,
           "holders": [{"id": "old", "arrived": "2026-01-01T00:00:00Z", "since": "2026-01-01T00:00:01Z"}],
           "queue": [{"id": "q2", "arrived": "2026-01-01T00:00:03Z", "since": "2026-01-01T00:00:03Z"},
                     {"id": "q1", "arrived": "2026-01-01T00:00:02Z", "since": "2026-01-01T00:00:02Z"}]}
    e = Entity(capacity=1)
    e.state = slots.SlotState.from_wire(old)
    assert e.queue() == ["q1", "q2"]  # the order they had: arrival
    e.ask("new")
    assert e.queue() == ["q1", "q2", "new"]
    e.op("release", {"id": "old"}, 5)
    assert e.holders() == ["q1"] and e.refusals == []


def test_members_and_ids_are_bounded():
    e = Entity()
    for bad in ("../etc/passwd", "x" * 201, 7, None):
        with pytest.raises(slots.SlotError):
            e.op("acquire", {"id": bad})
    with pytest.raises(slots.SlotError):
        slots.apply(slots.SlotState(), "acquire", {"id": "a"}, t(0), capacity=0, new_token=str, signing_key=KEY)
    with pytest.raises(slots.SlotError):
        e.op("drop_table", None)
    with pytest.raises(slots.SlotError):
        e.op("evict", {"ids": "everyone", "before": "2026-01-01T00:00:00Z"})
    full = slots.SlotState(1, (slots.Member("h", T0, T0),),
                           tuple(slots.Member(f"q{i}", T0, T0, i + 1) for i in range(slots.MAX_MEMBERS - 1)))
    with pytest.raises(slots.SlotError, match="full"):
        slots.acquire(full, "late", t(5), 1, new_token=str)


def test_state_round_trips_through_the_wire_and_keeps_no_token():
    e = Entity()
    for i, job in enumerate("abc"):
        e.ask(job, i + 0.123456)
    e.op("step_aside", slots.holder_request("a", e.tokens["a"]), 5)
    wire = e.state.to_wire()
    assert slots.SlotState.from_wire(wire) == e.state
    assert not any(token in str(wire) for token in e.tokens.values())
    assert slots.SlotState.from_wire(None) == slots.SlotState()


def test_a_queued_job_re_checks_only_as_a_fallback_whatever_its_place():
    """Issue 22: grants are pushed; a queued job's own re-check (one entity operation) only
    repairs a lost announcement, so 1,000 queued jobs cost the entity a few operations a second."""
    waits = {slots.queue_recheck_seconds(p) for p in (None, 1, 2, 3, 7, 50, 1000)}
    assert waits == {slots.QUEUE_FALLBACK_SECONDS} and slots.QUEUE_FALLBACK_SECONDS >= 60


def test_the_operations_that_free_a_slot_answer_whom_they_granted_it_to():
    """The entity cannot tell the job it granted a slot to (a Python entity sends nothing): the
    freeing operation's answer names it, for the caller to tell."""
    e = Entity()
    for i, job in enumerate("abcde"):
        e.ask(job, i)
    assert e.op("release", slots.holder_request("a", e.tokens["a"]), 10) == {"granted": ["c"]}
    assert e.op("step_aside", slots.holder_request("b", e.tokens["b"]), 11) == {"granted": ["d"]}
    assert e.op("release", slots.holder_request("e", e.tokens["e"]), 12) == {"granted": []}  # a queued job left
    e.capacity = 3
    assert e.op("release", slots.holder_request("c", e.tokens["c"]), 13) == {"granted": []}  # b rests
    assert e.op("evict", slots.evict_request(KEY, ["d"], t(20)), 14) == {"granted": []}
    assert e.holders() == [] and e.queue() == ["b"]
    assert slots.granted_ids({"granted": ["ok-1", "../bad", 3]}) == ["ok-1"]
    assert slots.granted_ids(None) == []


def test_quota_backoff_doubles_and_is_capped():
    assert [slots.quota_backoff_seconds(30, n) for n in (1, 2, 3, 10)] == [30, 60, 120, slots.QUOTA_BACKOFF_CAP_SECONDS]


def test_entity_function_through_the_sdk_entry_point(monkeypatch):
    """The registered entity, run as the host runs it: one batch, results in order, state kept;
    the cap from the settings whatever the caller says; inputs as a dict or as JSON text."""
    import json

    from devhost.emulator.functions import entity_batch_json, entity_from_builder, run_entity
    from entities import job_slots
    from videojob import bootstrap
    from videojob.domain.settings import load_settings

    monkeypatch.setenv("MAX_RUNNING_JOBS", "2")
    monkeypatch.setenv("CALLBACK_SIGNING_KEY", KEY)
    monkeypatch.setenv("CALLBACK_BASE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CONTAINER_BACKEND", "local")
    monkeypatch.setenv("OUTPUT_ACCOUNT_URL", "https://acct.blob.core.windows.net")
    bootstrap.reset()
    bootstrap.override(settings=load_settings(local_settings_path=None))
    try:
        entity = entity_from_builder(job_slots)
        assert entity.name == slots.ENTITY_NAME

        def request_input(value: object) -> str:  # RequestMessage.Input: the SDK's JSON text serialized once more
            return json.dumps(json.dumps(value))

        def op(name: str, value: object, signal: bool = False) -> tuple[str, str, bool]:
            return name, request_input(value), signal

        batch = [op("acquire", {"id": j, "capacity": 500}) for j in ("a", "b", "c")]
        outcome = run_entity(entity, entity_batch_json("job_slots", "global", False, None, batch))
        answers = [json.loads(r["result"]) for r in outcome.results]
        token_a, token_c = answers[0]["token"], answers[2]["token"]
        batch = [op("release", {"id": "a"}, True),  # no token: refused
                 ("release", request_input(json.dumps({"id": "a", "token": token_a})), True),  # JSON text
                 op("acquire", {"id": "c", "token": token_c}), op("acquire", {"id": "bad id!"})]
        outcome = run_entity(entity, entity_batch_json("job_slots", "global", True, outcome.state, batch))
    finally:
        bootstrap.reset()

    assert outcome.error is None and outcome.exists
    assert [a["granted"] for a in answers] == [True, True, False] and answers[0]["capacity"] == 2
    assert json.loads(outcome.results[2]["result"])["granted"] is True
    assert outcome.results[3]["isError"] is True
    state = slots.SlotState.from_wire(json.loads(outcome.state))
    assert [m.id for m in state.holders] == ["b", "c"] and state.queue == () and state.capacity == 2


# --- fair across owners (issue 22 item 2) ---------------------------------------------------------

class Owners(Entity):
    """The entity with owners: each job's first ask names its plan's owner."""

    def __init__(self, capacity: int, per_owner: int = 0):
        super().__init__(capacity)
        self.per_owner = per_owner
        self.grants: list[str] = []
        """Every job granted, in order (by a first ask or by someone's release)."""

    def op(self, operation: str, value: object, now: float = 0) -> object:
        before = self.state
        self.state, result, refused = slots.apply(
            self.state, operation, value, t(now), capacity=self.capacity,
            new_token=lambda: f"tok-{next(self._counter)}", signing_key=KEY, per_owner=self.per_owner)
        assert refused is None, refused
        held = {m.id for m in before.holders}
        self.grants += [m.id for m in self.state.holders if m.id not in held]
        return result

    def ask_as(self, owner: str, job: str, now: float = 0) -> slots.Grant:
        grant = slots.Grant.from_wire(self.op("acquire", slots.acquire_request(job, None, T0, 1, owner), now))
        self.tokens[job] = grant.token
        return grant

    def finish_oldest(self, now: float) -> None:
        self.release(self.state.holders[0].id, now)


def test_a_late_owner_is_not_stuck_behind_an_earlier_owners_thirty_jobs():
    """Alice pastes 30, Bob comes later with 3, cap 2: Bob's jobs start within two grants of
    arriving, not after Alice's 28 queued ones."""
    e = Owners(capacity=2)
    for i in range(30):
        e.ask_as("alice", f"alice-{i:02d}", i)
    for n in range(3):  # a few of Alice's finish first
        e.finish_oldest(100 + n)
    arrived = len(e.grants)
    for i in range(3):
        e.ask_as("bob", f"bob-{i}", 200 + i)
    now = 300
    while e.state.queue or e.state.holders:
        e.finish_oldest(now)
        now += 1
    for i in range(3):
        assert e.grants.index(f"bob-{i}") - arrived < 2 * (i + 1), e.grants  # alternating turns
    alice = [g for g in e.grants if g.startswith("alice")]
    assert alice == sorted(alice)  # FIFO within one owner
    assert len(e.grants) == 33


def test_one_owner_keeps_the_queues_order():
    e = Owners(capacity=2)
    for i, job in enumerate("abcdef"):
        e.ask_as("only", job, i)
    now = 10
    while e.state.holders:
        e.finish_oldest(now)
        now += 1
    assert e.grants == list("abcdef")


def test_max_running_jobs_per_user_caps_one_owner_and_leaves_the_rest_to_others():
    e = Owners(capacity=4, per_owner=2)
    grants = [e.ask_as("alice", f"alice-{i}", i).granted for i in range(4)]
    assert grants == [True, True, False, False]  # two free slots stay free for others
    assert e.ask_as("bob", "bob-0", 5).granted and e.ask_as("bob", "bob-1", 6).granted
    assert not e.ask_as("bob", "bob-2", 7).granted
    e.release("alice-0", 8)
    assert sorted(e.holders()) == ["alice-1", "alice-2", "bob-0", "bob-1"]  # alice's next, within her 2
    assert e.state.position("bob-2") is not None


def test_owners_round_trip_and_a_bad_per_owner_cap_is_refused():
    e = Owners(capacity=1)
    e.ask_as("alice", "a1")
    assert slots.SlotState.from_wire(e.state.to_wire()) == e.state
    assert e.state.holders[0].owner == "alice"
    with pytest.raises(slots.SlotError):
        slots.apply(e.state, "get", None, T0, capacity=1, new_token=str, signing_key=KEY, per_owner=-1)
