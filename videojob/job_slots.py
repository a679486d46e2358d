"""The global cap on running container groups: a counting semaphore with a FIFO queue. Pure.

It is the state of one durable entity, `job_slots` / `global` (`entities/`), whose operations the
Durable engine runs one at a time, in order: that serialization is the only lock. A job asks
(`acquire`) before it creates a container group and gives its slot back (`release`) once its
group is gone; the sweeper frees the slots of jobs that ended without running orchestrator code
(`evict`). Python entities cannot send anything (azure-functions-durable 1.7), so a waiting job
learns of its grant by asking again: `acquire` is idempotent and answers the caller's place.

Order: by `(arrived, id)`, `arrived` being the job's orchestration start (replay-safe), so a job
that leaves and comes back (a quota refusal) gets its old place, and ties break the same way
everywhere. A freed slot goes to the head of the queue at once (it is reserved for it until it
asks, at most one re-check interval later), so no later job can overtake it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .activity_wire import parse_utc

ENTITY_NAME = "job_slots"
ENTITY_KEY = "global"
MAX_MEMBERS = 10_000
"""Holders plus queued ids: a bound on the state whatever callers send."""
MAX_CAPACITY = 500
_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,200}$")

ACQUIRE, RELEASE, EVICT, GET = "acquire", "release", "evict", "get"


class SlotError(ValueError):
    """An operation the semaphore refuses (the entity answers it as an error)."""


@dataclass(frozen=True)
class Member:
    id: str
    arrived: datetime
    since: datetime
    """When it joined the holders (holders) or the queue (queued)."""

    def to_wire(self) -> dict[str, str]:
        return {"id": self.id, "arrived": format_utc(self.arrived), "since": format_utc(self.since)}

    @classmethod
    def from_wire(cls, d: Any) -> Member:
        if not isinstance(d, Mapping):
            raise SlotError("a member must be an object")
        return cls(_job_id(d.get("id")), _time(d.get("arrived"), "arrived"), _time(d.get("since"), "since"))


@dataclass(frozen=True)
class SlotState:
    capacity: int = 1
    holders: tuple[Member, ...] = ()
    queue: tuple[Member, ...] = ()
    """In order: `(arrived, id)`."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "holders": [m.to_wire() for m in self.holders],
            "queue": [m.to_wire() for m in self.queue],
        }

    @classmethod
    def from_wire(cls, d: Any) -> SlotState:
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise SlotError("the slot state must be an object")
        holders = tuple(Member.from_wire(m) for m in (d.get("holders") or [])[:MAX_MEMBERS])
        queue = tuple(Member.from_wire(m) for m in (d.get("queue") or [])[:MAX_MEMBERS])
        return cls(_capacity(d.get("capacity", 1)), holders, _ordered(queue))

    def member_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in (*self.holders, *self.queue))

    def position(self, job_id: str) -> int | None:
        """1 = next; None when not queued."""
        return next((i + 1 for i, m in enumerate(self.queue) if m.id == job_id), None)

    def holds(self, job_id: str) -> bool:
        return any(m.id == job_id for m in self.holders)


@dataclass(frozen=True)
class Grant:
    """`acquire`'s answer."""

    granted: bool
    position: int | None
    running: int
    capacity: int
    queued: int = 0

    def to_wire(self) -> dict[str, Any]:
        return {"granted": self.granted, "position": self.position, "running": self.running,
                "capacity": self.capacity, "queued": self.queued}

    @classmethod
    def from_wire(cls, d: Any) -> Grant:
        if not isinstance(d, Mapping) or not isinstance(d.get("granted"), bool):
            raise SlotError("not a slot grant")
        position = d.get("position")
        return cls(d["granted"], position if isinstance(position, int) and position > 0 else None,
                   _count(d.get("running")), _count(d.get("capacity")), _count(d.get("queued")))


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


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _ordered(queue: Iterable[Member]) -> tuple[Member, ...]:
    return tuple(sorted(queue, key=lambda m: (m.arrived, m.id)))


def _promote(state: SlotState, now: datetime) -> SlotState:
    """Hand free slots to the head of the queue."""
    free = max(0, state.capacity - len(state.holders))
    moved = tuple(replace(m, since=now) for m in state.queue[:free])
    return replace(state, holders=state.holders + moved, queue=state.queue[free:])


def _without(state: SlotState, ids: set[str], before: datetime | None = None) -> SlotState:
    def gone(m: Member) -> bool:
        return m.id in ids and (before is None or m.since < before)

    return replace(state, holders=tuple(m for m in state.holders if not gone(m)),
                   queue=tuple(m for m in state.queue if not gone(m)))


def acquire(state: SlotState, job_id: str, arrived: datetime, capacity: int, now: datetime
            ) -> tuple[SlotState, Grant]:
    """Join (or keep one's place in) the queue and take a slot if one is free for it. The caller's
    `capacity` (its plan's `MAX_RUNNING_JOBS`) becomes the cap: lowering it stops new grants,
    never takes a slot back."""
    job_id = _job_id(job_id)
    state = replace(state, capacity=_capacity(capacity))
    if not state.holds(job_id) and state.position(job_id) is None:
        if len(state.holders) + len(state.queue) >= MAX_MEMBERS:
            raise SlotError(f"the queue is full ({MAX_MEMBERS} jobs)")
        state = replace(state, queue=_ordered((*state.queue, Member(job_id, arrived, now))))
    state = _promote(state, now)
    return state, grant_of(state, job_id)


def grant_of(state: SlotState, job_id: str) -> Grant:
    return Grant(state.holds(job_id), state.position(job_id), len(state.holders), state.capacity, len(state.queue))


def release(state: SlotState, job_id: str, now: datetime) -> SlotState:
    """Leave: give the slot back or the place in the queue up (a no-op for a stranger)."""
    return _promote(_without(state, {_job_id(job_id)}), now)


def evict(state: SlotState, ids: Iterable[str], before: datetime, now: datetime) -> SlotState:
    """The sweeper's release for jobs that ended without running orchestrator code. Only entries
    older than `before` (the moment the sweeper read the state) go: an id that came back since
    (a job restarted under the same id) keeps its new entry."""
    return _promote(_without(state, {_job_id(i) for i in ids}, before), now)


def apply(state: SlotState, operation: str, value: Any, now: datetime) -> tuple[SlotState, Any]:
    """One entity operation: the new state and the operation's result (wire form)."""
    args = value if isinstance(value, Mapping) else {}
    if operation == ACQUIRE:
        state, grant = acquire(state, args.get("id"), _time(args.get("arrived"), "arrived"),
                               args.get("capacity"), now)
        return state, grant.to_wire()
    if operation == RELEASE:
        return release(state, args.get("id"), now), None
    if operation == EVICT:
        ids = args.get("ids")
        if not isinstance(ids, list) or len(ids) > MAX_MEMBERS:
            raise SlotError("evict needs a list of ids")
        return evict(state, ids, _time(args.get("before"), "before"), now), None
    if operation == GET:
        return state, state.to_wire()
    raise SlotError(f"unknown operation {operation!r}")


# --- the waiting job's policy (pure; `orchestrators/job_queue.py` is its shell) ------------------

QUEUE_RECHECK_MIN_SECONDS = 2
QUEUE_RECHECK_MAX_SECONDS = 10
QUOTA_BACKOFF_CAP_SECONDS = 300


def queue_recheck_seconds(position: int | None) -> float:
    """How long a queued job waits before asking again: 2 s at places 1 and 2 (a slot may be
    reserved for it already), one second more per place behind, at most 10 s. Each re-check costs
    two episodes, one entity operation and about eight history events, so a job far back asks
    less often; it never shows a place more than ~10 s of queue motion old."""
    if position is None:
        return float(QUEUE_RECHECK_MIN_SECONDS)
    return float(min(QUEUE_RECHECK_MAX_SECONDS, max(QUEUE_RECHECK_MIN_SECONDS, position)))


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
