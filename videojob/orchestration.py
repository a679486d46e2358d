"""Orchestration policy: the decisions of the `download_job` orchestrator, as pure functions.

The orchestrator (in `orchestrators/`) only yields Durable tasks; everything it decides (which
event counts, what `customStatus` and the output look like, how long to back off, when the
heartbeat window has passed, what an error says) is decided here, over frozen dataclasses,
without the Durable SDK, so it can be tested on its own and stays replay-safe (no clock, no I/O).

customStatus shape (always well under the 16 KB Durable limit):
`{"phase", "percent", "downloadedBytes", "totalBytes", "speedBps", "etaSeconds", "containerGroup",
"updatedAt"}` while the job runs; on failure `{"phase": "failed", "error": {code, message,
retryable}, "cleanup", "containerGroup", "updatedAt"}`. Phases: `provisioning` (creating the
group), `running` (group created, nothing reported yet), the worker's `downloading` /
`processing` / `uploading`, then `succeeded` or `failed`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from .activity_wire import InspectResult, format_utc
from .contract import (
    CANCELLED,
    MAX_ERROR_MESSAGE,
    PHASE_FAILED,
    PHASE_PROVISIONING,
    PHASE_SUCCEEDED,
    SUCCEEDED,
    ContractError,
    ErrorCode,
    JobError,
    JobPlan,
    JobResult,
    JobStatus,
    Progress,
)
from .settings import MAX_TIMER_SECONDS

PHASE_RUNNING = "running"
BACKOFF_CAP_SECONDS = 300
"""Longest pause between two provisioning (or cleanup) attempts."""
CUSTOM_STATUS_MAX_BYTES = 16 * 1024
"""Durable's limit, measured in UTF-16 as the extension stores it."""
MAX_FAILURE_TEXT = 1000
"""The orchestration's failure message (code + message) stays under 1 KB: big exceptions can hang an instance."""
MAX_SAFE_INTEGER = 2**53 - 1
"""JSON readers in browsers lose precision above this."""

Cleanup = Literal["deleted", "stopped", "failed", "none"]
CLEANUP_DELETED: Cleanup = "deleted"
CLEANUP_STOPPED: Cleanup = "stopped"
CLEANUP_FAILED: Cleanup = "failed"
CLEANUP_NONE: Cleanup = "none"  # nothing was created (the orchestration input was unusable)


# --- time -------------------------------------------------------------------------------------


def deadline_for(started_at: datetime, plan: JobPlan) -> datetime:
    """The job's deadline: orchestration start + `plan.deadline_seconds` (kept under the timer limit)."""
    return started_at + timedelta(seconds=max(1, min(plan.deadline_seconds, MAX_TIMER_SECONDS)))


def backoff_seconds(base_seconds: int, attempt: int, cap_seconds: int = BACKOFF_CAP_SECONDS) -> int:
    """Pause after failed attempt number `attempt` (0-based): `base * 2**attempt`, capped."""
    base = max(0, base_seconds)
    return min(base * 2 ** min(max(attempt, 0), 30), cap_seconds)


def wake_at(now: datetime, seconds: float, deadline: datetime | None = None) -> datetime:
    """A timer's fire time: `now + seconds`, never past `deadline`, never 6 days or more ahead."""
    fire = now + timedelta(seconds=max(0.0, min(seconds, MAX_TIMER_SECONDS)))
    return min(fire, deadline) if deadline is not None else fire


def seconds_between(start: datetime, end: datetime) -> float:
    return round(max(0.0, (end - start).total_seconds()), 3)


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventLedger:
    """What the orchestrator has seen of the worker's `seq` numbers (delivery is at-least-once)."""

    seen: frozenset[int] = frozenset()
    highest: int = -1


Verdict = Literal["duplicate", "stale", "progress", "terminal"]


def triage(ledger: EventLedger, event: JobStatus) -> tuple[EventLedger, Verdict]:
    """Classify an event: a seen `seq` is a duplicate; an older non-terminal one is stale (ignored
    for progress); a terminal event counts unless its `seq` was seen; `cancelled` has no `seq`."""
    if event.seq is None:
        return ledger, "terminal" if event.is_terminal else "duplicate"
    if event.seq in ledger.seen:
        return ledger, "duplicate"
    updated = EventLedger(seen=ledger.seen | {event.seq}, highest=max(ledger.highest, event.seq))
    if event.is_terminal:
        return updated, "terminal"
    if event.seq < ledger.highest:
        return updated, "stale"
    return updated, "progress"


def parse_event(payload: Any) -> JobStatus | None:
    """The event in a raised payload (dict, JSON text or JSON text encoded twice); None if invalid."""
    try:
        return JobStatus.from_wire(payload)
    except (ContractError, KeyError, TypeError, ValueError):
        return None


# --- progress and customStatus ----------------------------------------------------------------


def _bounded(value: float | int | None, hi: float, *, integer: bool = False, digits: int = 1) -> float | int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):  # may be far beyond float range
        clamped = min(max(value, 0), int(hi))
        return clamped if integer else round(float(clamped), digits)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number):
        return None
    number = min(max(number, 0.0), hi)
    return int(number) if integer else round(number, digits)


@dataclass(frozen=True)
class ProgressView:
    """The progress shown in customStatus, numbers already bounded for the wire."""

    phase: str = PHASE_PROVISIONING
    percent: float | None = None
    downloaded_bytes: int | None = None
    total_bytes: int | None = None
    speed_bps: float | None = None
    eta_seconds: float | None = None


def view_after_event(view: ProgressView, event: JobStatus) -> ProgressView:
    """Progress after a non-terminal event; an event without numbers keeps the last ones."""
    phase = event.phase or (PHASE_RUNNING if view.phase == PHASE_PROVISIONING else view.phase)
    p: Progress | None = event.progress
    if p is None:
        return replace(view, phase=phase)
    return ProgressView(
        phase=phase,
        percent=_bounded(p.percent, 100.0, digits=2),  # type: ignore[arg-type]
        downloaded_bytes=_bounded(p.downloaded_bytes, MAX_SAFE_INTEGER, integer=True),  # type: ignore[arg-type]
        total_bytes=_bounded(p.total_bytes, MAX_SAFE_INTEGER, integer=True),  # type: ignore[arg-type]
        speed_bps=_bounded(p.speed_bps, 1e15),  # type: ignore[arg-type]
        eta_seconds=_bounded(p.eta_seconds, 1e9),  # type: ignore[arg-type]
    )


def progress_status(view: ProgressView, group: str, now: datetime) -> dict[str, Any]:
    return {
        "phase": view.phase,
        "percent": view.percent,
        "downloadedBytes": view.downloaded_bytes,
        "totalBytes": view.total_bytes,
        "speedBps": view.speed_bps,
        "etaSeconds": view.eta_seconds,
        "containerGroup": group,
        "updatedAt": format_utc(now),
    }


def custom_status_bytes(status: Any) -> int:
    """Size of a customStatus as the extension stores it (UTF-16)."""
    return len(json.dumps(status).encode("utf-16-le"))


def failed_status(error: JobError, cleanup: Cleanup, group: str, now: datetime) -> dict[str, Any]:
    status = {
        "phase": PHASE_FAILED,
        "error": error.to_wire(),
        "cleanup": cleanup,
        "containerGroup": group,
        "updatedAt": format_utc(now),
    }
    if custom_status_bytes(status) >= CUSTOM_STATUS_MAX_BYTES:  # only reachable with exotic characters
        status["error"] = replace(error, message=error.message[:200]).to_wire()
    return status


def succeeded_status(result: JobResult, group: str, cleanup: Cleanup, now: datetime) -> dict[str, Any]:
    size = _bounded(result.blob.size_bytes, MAX_SAFE_INTEGER, integer=True)
    view = ProgressView(PHASE_SUCCEEDED, 100.0, size, size, None, 0.0)  # type: ignore[arg-type]
    status = progress_status(view, group, now)
    status["cleanup"] = cleanup
    return status


# --- the watch: the state the heartbeat loop carries -------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How the job ended: a result, or an error. Cleanup never changes it."""

    result: JobResult | None = None
    error: JobError | None = None

    @property
    def succeeded(self) -> bool:
        return self.result is not None and self.error is None


@dataclass(frozen=True)
class WatchState:
    last_heard: datetime
    ledger: EventLedger = field(default_factory=EventLedger)
    view: ProgressView = field(default_factory=lambda: ProgressView(phase=PHASE_RUNNING))
    ignored: int = 0


def on_event(state: WatchState, payload: Any, now: datetime) -> tuple[WatchState, Outcome | None, bool]:
    """Apply one raised payload. Returns the new state, the outcome if the event ends the job, and
    whether customStatus should be rewritten."""
    event = parse_event(payload)
    if event is None:
        return replace(state, ignored=state.ignored + 1), None, False
    ledger, verdict = triage(state.ledger, event)
    if verdict in ("duplicate", "stale"):
        return replace(state, ledger=ledger, ignored=state.ignored + 1), None, False
    state = replace(state, ledger=ledger, last_heard=now)
    if verdict == "progress":
        return replace(state, view=view_after_event(state.view, event)), None, True
    return state, outcome_of(event), False


def outcome_of(event: JobStatus) -> Outcome:
    """The outcome a terminal event reports."""
    if event.state == SUCCEEDED and event.result is not None:
        return Outcome(result=event.result)
    if event.state == CANCELLED:
        return Outcome(error=cancelled_error())
    return Outcome(error=event.error or JobError(ErrorCode.INTERNAL, "the worker failed without an error"))


def is_cancel(payload: Any) -> bool:
    event = parse_event(payload)
    return event is not None and event.state == CANCELLED


def heartbeat_due(state: WatchState, now: datetime, heartbeat_seconds: int) -> bool:
    return now >= state.last_heard + timedelta(seconds=heartbeat_seconds)


def next_heartbeat_wake(state: WatchState, heartbeat_seconds: int, deadline: datetime) -> datetime:
    return wake_at(state.last_heard, heartbeat_seconds, deadline)


# --- errors -----------------------------------------------------------------------------------


def _clip(text: str, limit: int = MAX_ERROR_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def provisioning_error(cause: JobError) -> JobError:
    """`provisioning_failed`, keeping the backend's code (e.g. the ARM `InaccessibleImage`)."""
    return JobError(ErrorCode.PROVISIONING_FAILED, _clip(f"{cause.code}: {cause.message}"), retryable=cause.retryable)


def deadline_error(deadline_seconds: int, phase: str) -> JobError:
    return JobError(
        ErrorCode.DEADLINE_EXCEEDED, f"the job did not finish within {deadline_seconds} s (phase: {phase})", True
    )


def cancelled_error() -> JobError:
    return JobError(ErrorCode.CANCELLED, "the job was cancelled", retryable=False)


def heartbeat_error(group: str, inspected: InspectResult, heartbeat_seconds: int) -> JobError:
    """`heartbeat_lost` with what is known of the container: state, exit code, detail, log tail."""
    parts = [f"no report from the worker for {heartbeat_seconds} s; container group {group} is {inspected.state}"]
    if inspected.exit_code is not None:
        parts.append(f"exit code {inspected.exit_code}")
    if inspected.detail:
        parts.append(inspected.detail[:200])
    head = "; ".join(parts)
    tail = " | ".join(line.strip() for line in inspected.log_tail.splitlines() if line.strip())
    if tail:
        room = MAX_ERROR_MESSAGE - len(head) - len("; log tail: ")
        head = f"{head}; log tail: {tail[-room:]}" if room > 40 else head
    return JobError(ErrorCode.HEARTBEAT_LOST, _clip(head), retryable=True)


def failure_message(error: JobError) -> str:
    """The orchestration's failure message: starts with the code, stays under 1 KB."""
    return _clip(f"{error.code}: {error.message}", MAX_FAILURE_TEXT)


# --- output -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timings:
    started_at: datetime
    provisioned_at: datetime
    finished_at: datetime
    ended_at: datetime

    def to_wire(self) -> dict[str, float]:
        return {
            "provisionSeconds": seconds_between(self.started_at, self.provisioned_at),
            "runSeconds": seconds_between(self.provisioned_at, self.finished_at),
            "totalSeconds": seconds_between(self.started_at, self.ended_at),
        }


def success_output(
    job_id: str, plan: JobPlan, result: JobResult, group: str, cleanup: Cleanup, timings: Timings
) -> dict[str, Any]:
    """The orchestration output of a successful job. `url` is the requested video URL; the file is
    at `blob.url`."""
    return {
        "jobId": job_id,
        "state": SUCCEEDED,
        "url": plan.request.url,
        "blob": result.blob.to_wire(),
        "media": result.media.to_wire(),
        "containerGroup": group,
        "cleanup": cleanup,
        "timings": timings.to_wire(),
    }
