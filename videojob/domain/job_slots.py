"""The global cap on running container groups: a counting semaphore with a FIFO queue. Pure.

It is the state of one durable entity, `job_slots` / `global` (`entities/`), whose operations the
Durable engine runs one at a time, in order: that serialization is the only lock. A job asks
(`acquire`) before it creates a container group and gives its slot back (`release`) once its
group is gone; the sweeper frees the slots of jobs that ended without running orchestrator code
(`evict`). Python entities cannot send anything (azure-functions-durable 1.7: `Entity.handle`
answers `EntityState(results, signals=[])` and `DurableEntityContext` has no signal or start), so
the operations that free a slot answer whom they granted it to (`{"granted": [ids]}`) and the
caller tells them (`GRANT_EVENT`, raised by the `ANNOUNCE_GRANTS` activity); a told job asks
again (`acquire` is idempotent and answers the caller's place) and so claims it.

The entity trusts no caller (issue 19.5): its operations can be signalled by anyone holding the
key of the Durable webhook. So every fact that decides who runs is the entity's own:
- the cap is `MAX_RUNNING_JOBS` from the settings the entity reads itself (`capacity` argument),
  never a number a caller sends;
- the order is the entity's: a member's place (`seq`) is the count of first asks before it, and
  `arrived` is the entity's clock at that ask; a caller's times are ignored;
- a member is held by a token the entity makes at the first ask (random, returned once in that
  answer, kept by the job; the state keeps only its SHA-256): `release`, `step_aside` and a
  re-ask that keeps the place need it. Members that joined before tokens (no `key`) answer to
  their id alone, so jobs in flight across the upgrade keep working;
- `evict` (the sweeper's) carries a MAC under the service's signing key (`evict_mac`).
An operation that fails these checks changes nothing and is answered as refused (`Refusal`), for
the entity to log; a malformed one raises `SlotError`.

A quota refusal steps aside (`step_aside`): the slot goes to the next job, the place is kept but
not promoted (`resting`) until the job asks again after its backoff, so it gets the next free slot
then without overtaking anyone who was granted meanwhile. A freed slot goes to the head of the
queue at once (reserved for it until it asks: when told, or at its fallback re-check).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from videojob.domain.activity_wire import parse_utc

ENTITY_NAME = "job_slots"
ENTITY_KEY = "global"
MAX_MEMBERS = 10_000
"""Holders plus queued ids: a bound on the state whatever callers send."""
MAX_CAPACITY = 500
MAX_TOKEN_CHARS = 100
MAX_OWNER_CHARS = 200
_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,200}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")
EVICT_MAC_DOMAIN = b"videojob job_slots evict v1\n"

ACQUIRE, RELEASE, STEP_ASIDE, EVICT, GET = "acquire", "release", "step_aside", "evict", "get"


class SlotError(ValueError):
    """A malformed operation (the entity answers it as an error)."""


@dataclass(frozen=True)
class Refusal:
    """A well-formed operation by someone who may not do it: nothing changed. `reason` names no secret."""

    operation: str
    job_id: str | None
    reason: str


def token_key(token: str) -> str:
    """What the state keeps of a holder's token (the state is readable through the webhook)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Member:
    id: str
    arrived: datetime
    """The entity's clock when the job first asked (shown; the order is `seq`)."""
    since: datetime
    """When it joined the holders (holders) or the queue (queued)."""
    seq: int = 0
    """Its place: the entity's count of first asks before it."""
    key: str | None = None
    """SHA-256 of the holder's token; None for a member from before tokens (its id is enough)."""
    resting: bool = False
    """Stepped aside after a quota refusal: keeps its place, is not promoted until it asks again."""
    owner: str | None = None
    """Who submitted the job (the plan's `owner`, sent with the first ask); None in key mode and
    for members from before owners: they share one turn (`_promote`)."""

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"id": self.id, "arrived": format_utc(self.arrived), "since": format_utc(self.since),
                                "seq": self.seq}
        if self.key is not None:
            wire["key"] = self.key
        if self.owner is not None:
            wire["owner"] = self.owner
        if self.resting:
            wire["resting"] = True
        return wire

    @classmethod
    def from_wire(cls, d: Any) -> Member:
        if not isinstance(d, Mapping):
            raise SlotError("a member must be an object")
        key = d.get("key")
        if key is not None and (not isinstance(key, str) or not _KEY.match(key)):
            raise SlotError("a member's key must be 64 hex digits")
        return cls(_job_id(d.get("id")), _time(d.get("arrived"), "arrived"), _time(d.get("since"), "since"),
                   _count(d.get("seq")), key, d.get("resting") is True, _owner(d.get("owner")))

    def answers_to(self, token: Any) -> bool:
        if self.key is None:
            return True
        return isinstance(token, str) and len(token) <= MAX_TOKEN_CHARS and hmac.compare_digest(
            token_key(token), self.key)


@dataclass(frozen=True)
class SlotState:
    capacity: int = 1
    holders: tuple[Member, ...] = ()
    queue: tuple[Member, ...] = ()
    """In order: `seq`."""
    next_seq: int = 0

    def to_wire(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "holders": [m.to_wire() for m in self.holders],
            "queue": [m.to_wire() for m in self.queue],
            "nextSeq": self.next_seq,
        }

    @classmethod
    def from_wire(cls, d: Any) -> SlotState:
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise SlotError("the slot state must be an object")
        holders = tuple(Member.from_wire(m) for m in (d.get("holders") or [])[:MAX_MEMBERS])
        queue = tuple(Member.from_wire(m) for m in (d.get("queue") or [])[:MAX_MEMBERS])
        if "nextSeq" not in d:
            # A state from before the entity kept its own order: the order it had, `(arrived, id)`.
            queue = tuple(replace(m, seq=i) for i, m in enumerate(sorted(queue, key=lambda m: (m.arrived, m.id))))
        next_seq = max([_count(d.get("nextSeq")), *(m.seq + 1 for m in (*holders, *queue))])
        return cls(_capacity(d.get("capacity", 1)), holders, _ordered(queue), next_seq)

    def member_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in (*self.holders, *self.queue))

    def member(self, job_id: str) -> Member | None:
        return next((m for m in (*self.holders, *self.queue) if m.id == job_id), None)

    def position(self, job_id: str) -> int | None:
        """1 = next; None when not queued."""
        return next((i + 1 for i, m in enumerate(self.queue) if m.id == job_id), None)

    def holds(self, job_id: str) -> bool:
        return any(m.id == job_id for m in self.holders)


@dataclass(frozen=True)
class Grant:
    """`acquire`'s answer. `token`: only in the answer to a job's first ask (keep it)."""

    granted: bool
    position: int | None
    running: int
    capacity: int
    queued: int = 0
    token: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"granted": self.granted, "position": self.position, "running": self.running,
                                "capacity": self.capacity, "queued": self.queued}
        if self.token is not None:
            wire["token"] = self.token
        return wire

    @classmethod
    def from_wire(cls, d: Any) -> Grant:
        if not isinstance(d, Mapping) or not isinstance(d.get("granted"), bool):
            raise SlotError("not a slot grant")
        position = d.get("position")
        token = d.get("token")
        return cls(d["granted"], position if isinstance(position, int) and position > 0 else None,
                   _count(d.get("running")), _count(d.get("capacity")), _count(d.get("queued")),
                   token if isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_CHARS else None)


def acquire_request(job_id: str, token: str | None, arrived: datetime, capacity: int | None,
                    owner: str | None = None) -> dict[str, Any]:
    """What a job sends to `acquire`. `arrived` and `capacity` are sent as before issue 19.5 and
    ignored by the entity, `token` only once the job has one and `owner` only when its plan names
    one (entra mode): a history in flight across the upgrade replays the very request it recorded
    (the devhost, like a strict replay, compares them)."""
    return {"id": job_id, "arrived": format_utc(arrived), "capacity": capacity, **({"token": token} if token else {}),
            **({"owner": owner} if owner else {})}


def holder_request(job_id: str, token: str | None) -> dict[str, Any]:
    """What a job sends to `release` and `step_aside` (no `token` key without one, as before tokens)."""
    return {"id": job_id, **({"token": token} if token else {})}


def evict_mac(signing_key: str, ids: Iterable[str], before: str) -> str:
    """The sweeper's proof for `evict`: HMAC-SHA256 under the service's signing key, over the
    sorted ids and `before`, in a domain of its own (no other MAC of that key verifies here)."""
    body = json.dumps({"ids": sorted(ids), "before": before}, separators=(",", ":"), sort_keys=True)
    return hmac.new(signing_key.encode("utf-8"), EVICT_MAC_DOMAIN + body.encode("utf-8"), hashlib.sha256).hexdigest()


def evict_request(signing_key: str, ids: Iterable[str], before: datetime) -> dict[str, Any]:
    ids = list(ids)
    stamp = format_utc(before)
    return {"ids": ids, "before": stamp, "mac": evict_mac(signing_key, ids, stamp)}


def _job_id(value: Any) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise SlotError("a job id is 1-200 characters of letters, digits and ._:@-")
    return value


def format_utc(t: datetime) -> str:
    """Microseconds kept: arrivals within one second still queue in order."""
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _time(value: Any, name: str) -> datetime:
    try:
        return parse_utc(value) if isinstance(value, str) and len(value) <= 40 else _bad_time(name)
    except ValueError:
        return _bad_time(name)


def _bad_time(name: str) -> datetime:
    raise SlotError(f"{name} must be an ISO 8601 time with an offset")


def _capacity(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CAPACITY:
        raise SlotError(f"capacity must be an integer from 1 to {MAX_CAPACITY}")
    return value


def _owner(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_OWNER_CHARS else None


def _per_owner(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CAPACITY:
        raise SlotError(f"the per-owner cap must be an integer from 0 to {MAX_CAPACITY}")
    return value


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _ordered(queue: Iterable[Member]) -> tuple[Member, ...]:
    return tuple(sorted(queue, key=lambda m: (m.seq, m.id)))


def _promote(state: SlotState, now: datetime, per_owner: int = 0) -> SlotState:
    """Hand free slots out fairly across owners (issue 22): each goes to the owner with the fewest
    slots held among those with a job waiting, the one whose first waiting job came first on a tie
    (so owners take turns), and within one owner to its first job (FIFO). `per_owner` (> 0) caps
    the slots one owner holds. With one owner (key mode) this is the queue's order. Members that
    stepped aside wait until they ask."""
    holders = list(state.holders)
    queue = list(state.queue)
    free = state.capacity - len(holders)
    while free > 0:
        held = Counter(m.owner for m in holders)
        heads: dict[str | None, Member] = {}
        for m in queue:
            if m.resting or m.owner in heads or (per_owner and held[m.owner] >= per_owner):
                continue
            heads[m.owner] = m
        if not heads:
            break
        chosen = min(heads.values(), key=lambda m: (held[m.owner], m.seq))
        queue.remove(chosen)
        holders.append(replace(chosen, since=now))
        free -= 1
    return replace(state, holders=tuple(holders), queue=tuple(queue))


def _without(state: SlotState, ids: set[str], before: datetime | None = None) -> SlotState:
    def gone(m: Member) -> bool:
        return m.id in ids and (before is None or m.since < before)

    return replace(state, holders=tuple(m for m in state.holders if not gone(m)),
                   queue=tuple(m for m in state.queue if not gone(m)))


def _with(state: SlotState, member: Member) -> SlotState:
    """The state with `member` replacing the entry of the same id (where it was)."""
    return replace(state, holders=tuple(member if m.id == member.id else m for m in state.holders),
                   queue=_ordered(member if m.id == member.id else m for m in state.queue))


def acquire(state: SlotState, job_id: str, now: datetime, capacity: int, *, token: str | None = None,
            new_token: Callable[[], str], owner: str | None = None, per_owner: int = 0
            ) -> tuple[SlotState, Grant | Refusal]:
    """Join the queue (a first ask: a place after everyone there, and a token in the answer) or
    keep one's place (`token` of that first ask), and take a slot if one is free for it.
    `capacity` is the operator's cap: lowering it stops new grants, never takes a slot back. An
    ask for someone else's place (a member whose token this is not) is refused."""
    job_id = _job_id(job_id)
    state = replace(state, capacity=_capacity(capacity))
    member = state.member(job_id)
    issued = None
    if member is None:
        if len(state.holders) + len(state.queue) >= MAX_MEMBERS:
            raise SlotError(f"the queue is full ({MAX_MEMBERS} jobs)")
        issued = new_token()
        member = Member(job_id, now, now, state.next_seq, token_key(issued), owner=_owner(owner))
        state = replace(state, queue=_ordered((*state.queue, member)), next_seq=state.next_seq + 1)
    elif not member.answers_to(token):
        return state, Refusal(ACQUIRE, job_id, "the token is not this member's")
    elif member.resting:
        state = _with(state, replace(member, resting=False))
    state = _promote(state, now, per_owner)
    return state, replace(grant_of(state, job_id), token=issued)


def grant_of(state: SlotState, job_id: str) -> Grant:
    return Grant(state.holds(job_id), state.position(job_id), len(state.holders), state.capacity, len(state.queue))


def release(state: SlotState, job_id: str, now: datetime, *, token: str | None = None,
            per_owner: int = 0) -> SlotState | Refusal:
    """Leave: give the slot back or the place in the queue up (a no-op for a stranger). Only the
    member's own token frees it."""
    member = state.member(_job_id(job_id))
    if member is None:
        return state
    if not member.answers_to(token):
        return Refusal(RELEASE, job_id, "the token is not this member's")
    return _promote(_without(state, {job_id}), now, per_owner)


def step_aside(state: SlotState, job_id: str, now: datetime, *, token: str | None = None,
               per_owner: int = 0) -> SlotState | Refusal:
    """A quota refusal: give the slot to the next job, keep the place, resting until asked again."""
    member = state.member(_job_id(job_id))
    if member is None:
        return state
    if not member.answers_to(token):
        return Refusal(STEP_ASIDE, job_id, "the token is not this member's")
    resting = replace(member, since=now, resting=True)
    state = replace(state, holders=tuple(m for m in state.holders if m.id != job_id),
                    queue=_ordered((*(m for m in state.queue if m.id != job_id), resting)))
    return _promote(state, now, per_owner)


def evict(state: SlotState, ids: Iterable[str], before: datetime, now: datetime, per_owner: int = 0) -> SlotState:
    """The sweeper's release for jobs that ended without running orchestrator code. Only entries
    older than `before` (the moment the sweeper read the state) go: an id that came back since
    (a job restarted under the same id) keeps its new entry."""
    return _promote(_without(state, {_job_id(i) for i in ids}, before), now, per_owner)


def newly_granted(before: SlotState, after: SlotState) -> list[str]:
    """The jobs an operation promoted from the queue to the holders: the ones to tell (a Python
    entity cannot tell them itself, see the module docstring), in the order they were granted."""
    held = {m.id for m in before.holders}
    return [m.id for m in after.holders if m.id not in held and before.member(m.id) is not None]


def apply(state: SlotState, operation: str, value: Any, now: datetime, *, capacity: int,
          new_token: Callable[[], str], signing_key: str | None, per_owner: int = 0
          ) -> tuple[SlotState, Any, Refusal | None]:
    """One entity operation: the new state, the operation's result (wire form) and, when it was
    refused, why (the state is then unchanged). `capacity`, `per_owner` (`MAX_RUNNING_JOBS_PER_USER`)
    and `signing_key` are the operator's (settings); `new_token` makes a holder's token. The
    `owner` a first ask names is the caller's word (the plan's owner): it only picks whose turn
    the job waits in, never the cap."""
    args = value if isinstance(value, Mapping) else {}
    state = replace(state, capacity=_capacity(capacity))
    per_owner = _per_owner(per_owner)
    if operation == ACQUIRE:
        state, answer = acquire(state, args.get("id"), now, capacity, token=args.get("token"), new_token=new_token,
                                owner=args.get("owner"), per_owner=per_owner)
        if isinstance(answer, Refusal):  # not the member: no grant, no place (the job waits, asking again)
            return state, Grant(False, None, len(state.holders), state.capacity, len(state.queue)).to_wire(), answer
        return state, answer.to_wire(), None
    if operation in (RELEASE, STEP_ASIDE):
        step = release if operation == RELEASE else step_aside
        after = step(state, args.get("id"), now, token=args.get("token"), per_owner=per_owner)
        if isinstance(after, Refusal):
            return state, {"granted": []}, after
        return after, {"granted": newly_granted(state, after)}, None
    if operation == EVICT:
        ids, before, mac = args.get("ids"), args.get("before"), args.get("mac")
        if not isinstance(ids, list) or len(ids) > MAX_MEMBERS or not all(isinstance(i, str) for i in ids):
            raise SlotError("evict needs a list of ids")
        when = _time(before, "before")
        if not signing_key or not isinstance(mac, str) or not hmac.compare_digest(
                mac, evict_mac(signing_key, ids, str(before))):
            return state, None, Refusal(EVICT, None, "no valid MAC of the service's signing key")
        after = evict(state, ids, when, now, per_owner)
        return after, {"granted": newly_granted(state, after)}, None
    if operation == GET:
        return state, state.to_wire(), None
    raise SlotError(f"unknown operation {str(operation)[:40]!r}")


# --- the waiting job's policy (pure; `orchestrators/job_queue.py` is its shell) ------------------

GRANT_EVENT = "SlotGranted"
"""The event a job that was granted a slot is sent (by `ANNOUNCE_GRANTS`, run by whoever freed it)."""
ANNOUNCE_GRANTS = "announce_slot_grants"
"""The activity that raises `GRANT_EVENT` to the jobs a `release`/`step_aside` answer names."""
QUEUE_FALLBACK_SECONDS = 60
"""A queued job asks again on its own only this rarely: grants are pushed (`GRANT_EVENT`); the
re-check only repairs a lost one (a releasing job that crashed between its release and the
announcement, a sweeper eviction, a raised cap)."""
QUOTA_BACKOFF_CAP_SECONDS = 300


def queue_recheck_seconds(position: int | None) -> float:
    """How long a queued job waits for its `GRANT_EVENT` before asking again anyway. Constant:
    a queued job costs one timer per fallback period whatever its place, so 1,000 queued jobs
    cost the entity 1,000 / 60 s ≈ 17 operations a second at most (against 100 or more when every
    job polled every 2-10 s), and a queued job adds ~4 history events a minute."""
    return float(QUEUE_FALLBACK_SECONDS)


def granted_ids(answer: Any) -> list[str]:
    """The ids a `release`/`step_aside`/`evict` answer names as newly granted (valid ids only:
    the answer is the entity's, but it reaches an activity that raises events by id)."""
    return valid_ids(answer.get("granted") if isinstance(answer, Mapping) else None)


def valid_ids(ids: Any) -> list[str]:
    """The well-formed job ids of a list (at most `MAX_CAPACITY`: no operation grants more)."""
    if not isinstance(ids, list):
        return []
    return [i for i in ids[:MAX_CAPACITY] if isinstance(i, str) and _ID.match(i)]


def quota_backoff_seconds(first_seconds: float, refusals: int) -> float:
    """The pause after quota refusal number `refusals` (1-based): `first * 2**(n-1)`, capped."""
    return float(min(max(1.0, first_seconds) * 2 ** min(max(refusals - 1, 0), 20), QUOTA_BACKOFF_CAP_SECONDS))


def queued_status(grant: Grant | None, group: str, now: datetime, queued_since: datetime,
                  reason: str | None = None) -> dict[str, Any]:
    """customStatus while waiting for a slot (the keys `progress_status` uses for the group and time)."""
    status: dict[str, Any] = {
        "phase": "queued",
        "queuePosition": grant.position if grant else None,
        "queuedSince": format_utc(queued_since),
        "running": grant.running if grant else None,
        "capacity": grant.capacity if grant else None,
        "containerGroup": group,
        "updatedAt": format_utc(now),
    }
    if reason:
        status["reason"] = reason
    return status


def with_current_place(custom_status: Any, state: SlotState, job_id: str) -> Any:
    """A queued job's customStatus with its place as the entity has it now (the status route reads
    the state: pushed grants leave a waiting job's own customStatus up to one fallback period
    old). Anything else, or a job the entity no longer queues (granted, about to start), as is."""
    if not isinstance(custom_status, Mapping) or custom_status.get("phase") != "queued":
        return custom_status
    position = state.position(job_id)
    if position is None:
        return custom_status
    return {**custom_status, "queuePosition": position, "running": len(state.holders), "capacity": state.capacity}
