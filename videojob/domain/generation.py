"""Generations of `download_job`: what one execution hands to the next (`continue_as_new`).

Every raised report is a history event, and every episode replays the whole history (the Python
worker gets no extended sessions), so a job's cost grows with the square of its length. While it
watches a worker, `download_job` therefore starts a new execution of the same instance once this
one has done `GENERATION_MAX_WEIGHT` steps (`orchestrators/download_flow.py`, `_watch`), and so
does a job waiting for its slot (`orchestrators/job_queue.py`, `JobSlot.acquire`: a carry with
`attempt` 0, "still queued"), carrying the compact state below as a member `"carry"` of the
plan's own wire (so the status API's `input.request.url`, the job list and idempotency read the
input as before).

What is derived again rather than carried (one owner per fact): the container group
(`attempt_group_name(job, attempt, run)`), the deadline (`deadline_for(started_at, plan)`).

`context.new_uuid()` is replay-safe within one execution only (its name holds the execution's
clock and a counter that restarts at 0), so anything taken from it that must outlive a hand-over
is carried: the run token here; a later stage's tokens (a queue slot's ticket) go in `extensions`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from videojob.contract.wire import PHASE_PROVISIONING, PHASE_RUNNING, WORKER_PHASES, ContractError, JobPlan
from videojob.domain.activity_wire import MAX_JOB_ATTEMPTS, _run, parse_utc
from videojob.domain.orchestration import MAX_SAFE_INTEGER, AttemptRecord, ProgressView, WatchState, carried_ledger

WATCH_PHASES = (PHASE_PROVISIONING, PHASE_RUNNING, *WORKER_PHASES)
CARRY_KEY = "carry"
CARRY_VERSION = 1
MAX_CARRY_BYTES = 16 * 1024
"""The carry travels in the next execution's input (shown by the status API): bounded like customStatus."""
MAX_GENERATION = 10**6


@dataclass(frozen=True)
class WatchCarry:
    """The watch of the current attempt (`WatchState` without the attempt, its ledger compacted
    to the highest `seq`: every `seq` below it is stale for progress, and a hand-over never
    happens after a terminal event)."""

    last_heard: datetime
    highest_seq: int
    view: ProgressView
    ignored: int
    last_report_at: datetime | None

    @classmethod
    def of(cls, state: WatchState) -> WatchCarry:
        return cls(state.last_heard, state.ledger.highest, state.view, state.ignored, state.last_report_at)

    def state(self, attempt: int) -> WatchState:
        return WatchState(
            last_heard=self.last_heard,
            attempt=attempt,
            ledger=carried_ledger(self.highest_seq),
            view=self.view,
            ignored=self.ignored,
            last_report_at=self.last_report_at,
        )


@dataclass(frozen=True)
class JobCarry:
    run: str
    """The run token generation 1 took from `new_uuid()`."""
    started_at: datetime
    attempts: tuple[AttemptRecord, ...]
    """Finished attempts."""
    attempt: int
    """The attempt being watched; 0: still queued for a slot (no attempt yet, nor the three below)."""
    attempt_began: datetime | None
    provisioned_at: datetime | None
    watch: WatchCarry | None
    generation: int
    """This carry starts generation `generation` (2, 3, ...)."""
    status_updated_at: datetime
    """customStatus `updatedAt` so far: the next generation never shows an older one."""
    extensions: Mapping[str, Any] = field(default_factory=dict)
    """Members this version does not read (another stage's state, e.g. a queue slot): kept
    verbatim on the next hand-over, within `MAX_CARRY_BYTES`. A newer writer adds, never renames."""

    @classmethod
    def in_queue(cls, run: str, started_at: datetime, generation: int, status_updated_at: datetime,
                 extensions: Mapping[str, Any]) -> JobCarry:
        """A job still waiting for its slot (its place and wait are the queue's, in `extensions`)."""
        return cls(run, started_at, (), 0, None, None, None, generation, status_updated_at, extensions)

    @property
    def queued(self) -> bool:
        return self.attempt == 0

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            **self.extensions,
            "version": CARRY_VERSION,
            "run": self.run,
            "startedAt": _time(self.started_at),
            "attempts": [_attempt_wire(a) for a in self.attempts],
            "attempt": self.attempt,
            "generation": self.generation,
            "statusUpdatedAt": _time(self.status_updated_at),
        }
        w = self.watch
        if self.queued:
            if w is not None or self.attempts:
                raise ValueError("a queued carry has no attempts and no watch")
        elif w is None or self.attempt_began is None or self.provisioned_at is None:
            raise ValueError("a carry of a watched attempt needs its watch")
        else:
            wire["attemptBegan"] = _time(self.attempt_began)
            wire["provisionedAt"] = _time(self.provisioned_at)
            wire["watch"] = {
                "lastHeard": _time(w.last_heard),
                "highestSeq": w.highest_seq,
                "view": w.view.to_wire(),
                "ignored": w.ignored,
                "lastReportAt": _time(w.last_report_at) if w.last_report_at else None,
            }
        if len(json.dumps(wire, separators=(",", ":"))) > MAX_CARRY_BYTES:
            raise ValueError(f"a carry may not exceed {MAX_CARRY_BYTES} bytes")
        return wire

    @classmethod
    def from_wire(cls, d: Any) -> JobCarry:
        """The carry, or `ContractError`: it is our own output, but it crossed a store."""
        try:
            if not isinstance(d, dict) or len(json.dumps(d, separators=(",", ":"))) > MAX_CARRY_BYTES:
                raise ValueError(f"a carry is an object of at most {MAX_CARRY_BYTES} bytes")
            if d.get("version") != CARRY_VERSION:
                raise ValueError(f"carry version {d.get('version')!r} is not {CARRY_VERSION}")
            run = _run(d.get("run"))
            if run is None:
                raise ValueError("a carry needs a run token")
            attempts = d.get("attempts")
            if not isinstance(attempts, list) or len(attempts) >= MAX_JOB_ATTEMPTS:
                raise ValueError("'attempts' must list the finished attempts")
            started_at, status_updated_at = parse_utc(d["startedAt"]), parse_utc(d["statusUpdatedAt"])
            generation = _whole(d.get("generation"), 2, MAX_GENERATION, "generation")
            extensions = {k: v for k, v in d.items() if k not in _KNOWN}
            attempt = _whole(d.get("attempt"), 0, MAX_JOB_ATTEMPTS, "attempt")
            if attempt == 0:
                if attempts or any(d.get(k) is not None for k in _WATCHED):
                    raise ValueError("a queued carry has no attempts and no watch")
                return cls.in_queue(run, started_at, generation, status_updated_at, extensions)
            w = d["watch"]
            if not isinstance(w, dict):
                raise ValueError("'watch' must be an object")
            last_report = w.get("lastReportAt")
            return cls(
                run=run,
                started_at=started_at,
                attempts=tuple(_attempt_record(a) for a in attempts),
                attempt=attempt,
                attempt_began=parse_utc(d["attemptBegan"]),
                provisioned_at=parse_utc(d["provisionedAt"]),
                watch=WatchCarry(
                    last_heard=parse_utc(w["lastHeard"]),
                    highest_seq=_whole(w.get("highestSeq"), -1, MAX_SAFE_INTEGER, "highestSeq"),
                    view=_view(w.get("view")),
                    ignored=_whole(w.get("ignored"), 0, MAX_SAFE_INTEGER, "ignored"),
                    last_report_at=parse_utc(last_report) if last_report is not None else None,
                ),
                generation=generation,
                status_updated_at=status_updated_at,
                extensions=extensions,
            )
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise ContractError(f"invalid carry: {e}"[:300]) from None


_WATCHED = ("attemptBegan", "provisionedAt", "watch")
_KNOWN = frozenset({"version", "run", "startedAt", "attempts", "attempt", *_WATCHED, "generation", "statusUpdatedAt"})


def next_input(plan: JobPlan, carry: JobCarry) -> dict[str, Any]:
    """The next execution's input: still a `JobPlan` wire (`JobPlan.from_wire` ignores the carry)."""
    return {**plan.to_wire(), CARRY_KEY: carry.to_wire()}


def carry_of(raw_input: Any) -> JobCarry | None:
    """The carry in an execution's input; None in generation 1. `ContractError` if malformed."""
    if isinstance(raw_input, dict) and CARRY_KEY in raw_input:
        return JobCarry.from_wire(raw_input[CARRY_KEY])
    return None


def _time(t: datetime) -> str:
    # Microseconds kept: a heartbeat timer of the next generation fires at the very same instant.
    return t.isoformat()


def _whole(value: Any, lo: int, hi: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"'{name}' must be a whole number from {lo} to {hi}")
    return value


def _number(value: Any, hi: float) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= hi:
        raise ValueError("a progress number is out of range")
    return value




def _view(d: Any) -> ProgressView:
    if not isinstance(d, dict) or d.get("phase") not in WATCH_PHASES:
        raise ValueError("'view' must be an object with a known phase")
    return ProgressView(
        phase=d["phase"],
        percent=_number(d.get("percent"), 100.0),  # type: ignore[arg-type]
        downloaded_bytes=_number(d.get("downloadedBytes"), MAX_SAFE_INTEGER),  # type: ignore[arg-type]
        total_bytes=_number(d.get("totalBytes"), MAX_SAFE_INTEGER),  # type: ignore[arg-type]
        speed_bps=_number(d.get("speedBps"), 1e15),  # type: ignore[arg-type]
        eta_seconds=_number(d.get("etaSeconds"), 1e9),  # type: ignore[arg-type]
    )


def _attempt_wire(record: AttemptRecord) -> dict[str, Any]:
    # The times to the microsecond: the cost of earlier attempts is the same after a hand-over.
    return {**record.to_wire(), "startedAt": _time(record.started_at), "endedAt": _time(record.ended_at)}


def _attempt_record(d: Any) -> AttemptRecord:
    if not isinstance(d, dict):
        raise ValueError("an attempt record must be an object")
    outcome, group, cleanup = d.get("outcome"), d.get("group"), d.get("cleanup")
    if not all(isinstance(v, str) and 0 < len(v) <= 100 for v in (outcome, group, cleanup)):
        raise ValueError("an attempt record needs outcome, group and cleanup")
    return AttemptRecord(
        attempt=_whole(d.get("attempt"), 1, MAX_JOB_ATTEMPTS, "attempt"),
        group=group,  # type: ignore[arg-type]
        outcome=outcome,  # type: ignore[arg-type]
        started_at=parse_utc(d["startedAt"]),
        ended_at=parse_utc(d["endedAt"]),
        cleanup=cleanup,  # type: ignore[arg-type]
        recovered=d.get("recovered") is True,
    )
