"""Which worker reports the callback raises into a job (issue 19), as pure functions.

Two checks, both before anything is raised:
1. `attempt_check`: the token's run and attempt against what the job's customStatus says runs now
   (`run`, `attempt`, `phase`, written by the orchestrator). Only the attempt that runs may report.
2. `gate`: a per-job ledger of what this app process already raised for that attempt: `started`
   passes once, the first terminal report passes once (repeats are `duplicate`, anything after it
   is `ended`), a move to a later phase passes once per phase, other progress at most once per
   `spacing` seconds (`report_spacing`). The customStatus rule of `orchestration.admit_report`
   applies on top of it, so app processes that never saw the job still space progress once the
   orchestration has recorded a report (`lastReportAt`), and a `started` after it is a duplicate.

Bound (docs/design.md, "Callback rate limit"): per job, per app process and per minute, at most
`raised_per_minute_bound(spacing)` events of one attempt are raised: 1 `started` + 1 terminal +
3 phase moves + floor(60 / spacing) + 1 progress (12 with the defaults).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Literal

from videojob.contract.wire import (
    PHASE_FAILED,
    PHASE_PROVISIONING,
    PHASE_RUNNING,
    PHASE_SUCCEEDED,
    EventState,
    JobStatus,
)
from videojob.domain.orchestration import progress_event_limit
from videojob.domain.tokens import TokenClaims

WORKER_PHASE_RANK = {"downloading": 1, "processing": 2, "uploading": 3}
"""The phases a worker reports, in order; each later one passes the spacing once."""
MIN_PROGRESS_SPACING_SECONDS = 1
"""The spacing never goes below this, whatever `PROGRESS_EVENT_MIN_SECONDS` says (0 included)."""
MAX_TRACKED_JOBS = 4096
"""Jobs whose ledger one app process keeps (least recently reported dropped first; about 200
bytes each). A dropped ledger forgets its `started`/terminal marks: its job's next repeat of each
may pass once more, still within the bound of the minute it falls in."""

_WATCHING = frozenset({PHASE_PROVISIONING, PHASE_RUNNING, *WORKER_PHASE_RANK})
_ENDED = frozenset({PHASE_SUCCEEDED, PHASE_FAILED})

AttemptCheck = Literal["current", "other_run", "ended", "unknown"]
Decision = Literal["raise", "duplicate", "coalesced", "ended"]


def attempt_check(claims: TokenClaims, status: Any) -> AttemptCheck:
    """Whether the token's attempt is the one the job runs, from its customStatus.

    `other_run`: the status names another run (a job restarted under its id), or an attempt the
    token is ahead of; `ended`: the same run has moved on to a later attempt, the orchestration
    took this attempt's terminal report (`attemptEnded`), or the job is finishing
    (`succeeded`/`failed`); `unknown`: a status that names no run (not written yet, a
    retry pause for this very attempt, another shape): not proof either way, so the worker is
    told to try again later rather than to stop."""
    if not isinstance(status, dict) or not isinstance(status.get("run"), str):
        return "unknown"
    if status["run"] != claims.run:
        return "other_run"
    phase, attempt = status.get("phase"), status.get("attempt")
    if phase in _ENDED:
        return "ended"
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        return "unknown"
    if attempt > claims.attempt or status.get("attemptEnded") is True:
        return "ended" if attempt >= claims.attempt else "other_run"
    if attempt < claims.attempt:
        return "other_run"
    return "current" if phase in _WATCHING else "unknown"


def terminal_already_taken(claims: TokenClaims, event: JobStatus, status: Any) -> bool:
    """A terminal report of an attempt whose end the status shows (`attempt_check` said `ended`
    with the token's own attempt still named): a retry of the report the orchestration took (its
    answer was lost), answered like any repeat rather than as a stranger."""
    return (event.is_terminal and isinstance(status, dict) and status.get("run") == claims.run
            and status.get("attempt") == claims.attempt)


def started_already_taken(event: JobStatus, status: Any) -> bool:
    """A `started` when the orchestration already took a report of this attempt (`lastReportAt`
    is set per attempt): a repeat, whichever app process raised the first."""
    return event.state == EventState.STARTED and isinstance(status, dict) and "lastReportAt" in status


def report_spacing(min_seconds: int, heartbeat_seconds: int) -> int:
    """Seconds between two raised progress events of one attempt (phase moves aside):
    `progress_event_limit` (at most a third of the heartbeat), never under one second."""
    return max(MIN_PROGRESS_SPACING_SECONDS, progress_event_limit(min_seconds, heartbeat_seconds))


def raised_per_minute_bound(spacing: int) -> int:
    """Most events one attempt's worker gets raised per app process in any 60 s (`gate`)."""
    return 2 + len(WORKER_PHASE_RANK) + 60 // max(MIN_PROGRESS_SPACING_SECONDS, spacing) + 1


@dataclass(frozen=True)
class AttemptLedger:
    """What one app process raised for one attempt of a job."""

    run: str
    attempt: int
    started: bool = False
    ended: bool = False
    phase_rank: int = 0
    last_progress_at: float | None = None
    """Monotonic seconds of the last raised progress."""


def gate(
    ledger: AttemptLedger | None, claims: TokenClaims, event: JobStatus, now: float, spacing: float
) -> tuple[AttemptLedger, Decision]:
    """The ledger after `event` and whether to raise it. A ledger of another run or attempt is
    replaced (only one attempt runs at a time)."""
    if ledger is None or (ledger.run, ledger.attempt) != (claims.run, claims.attempt):
        ledger = AttemptLedger(claims.run, claims.attempt)
    if ledger.ended:
        return ledger, "duplicate" if event.is_terminal else "ended"
    if event.is_terminal:
        return replace(ledger, ended=True), "raise"
    rank = WORKER_PHASE_RANK.get(event.phase or "", 0)
    if event.state == EventState.STARTED:
        if ledger.started:
            return ledger, "duplicate"
        return replace(ledger, started=True, phase_rank=max(ledger.phase_rank, rank)), "raise"
    if rank > ledger.phase_rank:
        return replace(ledger, phase_rank=rank, last_progress_at=now), "raise"
    if ledger.last_progress_at is None or now - ledger.last_progress_at >= spacing:
        return replace(ledger, last_progress_at=now), "raise"
    return ledger, "coalesced"


class ReportLedgers:
    """The ledgers of one app process, bounded (`MAX_TRACKED_JOBS`), safe across threads and
    tasks: a decision and its record happen under one lock, with no await in between."""

    def __init__(self, max_jobs: int = MAX_TRACKED_JOBS):
        self._max_jobs = max_jobs
        self._lock = threading.Lock()
        self._ledgers: OrderedDict[str, AttemptLedger] = OrderedDict()

    def decide(
        self, job_id: str, claims: TokenClaims, event: JobStatus, now: float, spacing: float
    ) -> tuple[Decision, AttemptLedger | None]:
        """The decision, and the ledger before it (for `undo`)."""
        with self._lock:
            before = self._ledgers.get(job_id)
            after, decision = gate(before, claims, event, now, spacing)
            self._ledgers[job_id] = after
            self._ledgers.move_to_end(job_id)
            while len(self._ledgers) > self._max_jobs:
                self._ledgers.popitem(last=False)
            return decision, before

    def undo(self, job_id: str, before: AttemptLedger | None) -> None:
        """Forget a raise that did not happen (the Durable host failed), so the worker's retry passes."""
        with self._lock:
            if before is None:
                self._ledgers.pop(job_id, None)
            else:
                self._ledgers[job_id] = before

    def clear(self) -> None:
        with self._lock:
            self._ledgers.clear()
