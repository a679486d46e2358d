"""Orchestration policy: the decisions of the `download_job` orchestrator, as pure functions.

The orchestrator (in `orchestrators/`) only yields Durable tasks; everything it decides (which
event counts, what `customStatus` and the output look like, how long to back off, when the
heartbeat window has passed, what an error says) is decided here, over frozen dataclasses,
without the Durable SDK, so it can be tested on its own and stays replay-safe (no clock, no I/O).

customStatus shape (always well under the 16 KB Durable limit):
`{"phase", "percent", "downloadedBytes", "totalBytes", "speedBps", "etaSeconds", "containerGroup",
"attempt", "updatedAt"}` while the job runs; on failure `{"phase": "failed", "error": {code,
message, retryable}, "cleanup", "containerGroup", "updatedAt", "attempts", "cost",
"notification"?}`. Phases: `provisioning` (creating the group), `running` (group created, nothing
reported yet), the worker's `downloading` / `processing` / `uploading`, then `succeeded` or
`failed`; `retrying` while waiting to start the next attempt.

Attempts: a retryable worker failure (`is_retryable`) is tried again in a fresh container group
(`attempt_group_name`) after `retry_backoff_seconds * 2**(n-1)` (capped), up to `max_attempts`
and within the one deadline of the whole job. Each attempt is recorded (`AttemptRecord`) and
costed from its create call to the end of its cleanup (`cost_summary`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from videojob.contract.output_blob import copy_problem, output_blob_problem
from videojob.contract.wire import (
    CUSTOM_STATUS_MAX_BYTES,
    MAX_ERROR_MESSAGE,
    PHASE_FAILED,
    PHASE_PROVISIONING,
    PHASE_RETRYING,
    PHASE_RUNNING,
    PHASE_SUCCEEDED,
    ContractError,
    ErrorCode,
    EventState,
    JobError,
    JobPlan,
    JobResult,
    JobStatus,
    Progress,
    clip,
    custom_status_bytes,
)
from videojob.domain.activity_wire import (
    MAX_JOB_ATTEMPTS,
    BlobCheckResult,
    InspectResult,
    ShareLinkResult,
    format_utc,
    parse_utc,
)
from videojob.domain.failure_reason import FailureReason
from videojob.domain.settings import MAX_TIMER_SECONDS

BACKOFF_CAP_SECONDS = 300
"""Longest pause between two provisioning (or cleanup) attempts."""
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


# --- attempts ---------------------------------------------------------------------------------

RETRYABLE_CODES: frozenset[str] = frozenset({ErrorCode.NETWORK, ErrorCode.UPLOAD_FAILED, ErrorCode.HEARTBEAT_LOST})
"""Worker failures worth a fresh container: the next one may get a working network, store or host."""


def is_retryable(error: JobError, retry_bot_check: bool = False) -> bool:
    """Whether a failed attempt is tried again in a fresh container group.

    The code list is the contract (docs/design.md, "Orchestration", step 4): `network`,
    `upload_failed` and `heartbeat_lost` always; `http_error` only when the worker marked it
    retryable (5xx and 429; it alone knows the status); `bot_check` when the plan says so
    (`RETRY_BOT_CHECK`: a new ACI group usually gets another egress address). The worker's
    `retryable` flag is not honoured for other codes: a video that is `unavailable` or `too_large` will be so in any
    container, and the orchestrator's own
    `deadline_exceeded`, `cancelled` and `provisioning_failed` end the job (provisioning has its
    own retries)."""
    if error.code in RETRYABLE_CODES:
        return True
    if error.code == ErrorCode.BOT_CHECK:
        return retry_bot_check
    return error.code == ErrorCode.HTTP_ERROR and error.retryable


def attempts_allowed(plan: JobPlan) -> int:
    return min(max(1, plan.max_attempts), MAX_JOB_ATTEMPTS)


def retry_pause(plan: JobPlan, attempt: int, now: datetime, deadline: datetime) -> float | None:
    """Seconds to wait after failed attempt `attempt` (1-based) before the next one:
    `retry_backoff_seconds * 2**(attempt-1)`, capped at `BACKOFF_CAP_SECONDS` or at the configured
    pause if that is longer (the operator's `JOB_RETRY_BACKOFF_SECONDS` is never shortened); None
    when no attempt is left or the pause would reach the job's deadline (the job then fails with
    the attempt's own error, which says more than `deadline_exceeded` would)."""
    if attempt >= attempts_allowed(plan):
        return None
    cap = max(BACKOFF_CAP_SECONDS, plan.retry_backoff_seconds)
    pause = backoff_seconds(plan.retry_backoff_seconds, attempt - 1, cap)
    if now + timedelta(seconds=pause) >= deadline:
        return None
    return float(pause)


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


def carried_ledger(highest: int) -> EventLedger:
    """The ledger a new generation starts from (`videojob.domain.generation`): only the highest `seq`.
    Judged the same for progress (anything at or below it is a duplicate or stale); a terminal
    event never preceded a hand-over, so no terminal `seq` is forgotten."""
    return EventLedger(seen=frozenset({highest}) if highest >= 0 else frozenset(), highest=highest)


def belongs_to_attempt(event: JobStatus, attempt: int) -> bool:
    """An event from another attempt's worker (a group being stopped, a late redelivery) is stale.
    Events without `attempt` count as attempt 1; `cancelled` (from the API) belongs to every attempt."""
    return event.state == EventState.CANCELLED or (event.attempt or 1) == attempt


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

    def to_wire(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "percent": self.percent,
            "downloadedBytes": self.downloaded_bytes,
            "totalBytes": self.total_bytes,
            "speedBps": self.speed_bps,
            "etaSeconds": self.eta_seconds,
        }


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


def progress_status(
    view: ProgressView, group: str, now: datetime, attempt: int = 1, last_report_at: datetime | None = None,
    *, run: str | None = None, attempt_ended: bool = False,
) -> dict[str, Any]:
    """customStatus while the job runs. `lastReportAt`: when the orchestration last took a worker's
    report of this attempt (the callback's rate limit reads it, `admit_report`). `run` (8 hex) and
    `attempt` name the one attempt whose worker's token the callback accepts (`report_gate`);
    `attemptEnded`: the orchestration took that attempt's terminal report (its check and cleanup
    follow), so every app process refuses the attempt's token from then on."""
    status = {
        **view.to_wire(),
        "containerGroup": group,
        "attempt": attempt,
        "updatedAt": format_utc(now),
    }
    if run is not None:
        status["run"] = run
    if attempt_ended:
        status["attemptEnded"] = True
    if last_report_at is not None:
        status["lastReportAt"] = format_utc(last_report_at)
    return status


def failed_status(
    error: JobError,
    cleanup: Cleanup,
    group: str,
    now: datetime,
    attempts: tuple[AttemptRecord, ...] = (),
    cost: dict[str, Any] | None = None,
    notification: dict[str, Any] | None = None,
    *,
    run: str | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": PHASE_FAILED,
        "error": error.to_wire(),
        "cleanup": cleanup,
        "containerGroup": group,
        "updatedAt": format_utc(now),
    }
    if run is not None:
        status["run"] = run  # the callback answers this run's workers 410 (`report_gate`)
    if attempts:
        status["attempts"] = [a.to_wire() for a in attempts[-MAX_JOB_ATTEMPTS:]]
    if cost is not None:
        status["cost"] = cost
    if notification is not None:
        status["notification"] = notification
    # Only exotic characters (escaped 6-fold in JSON) can get near the limit: shorten the texts.
    if custom_status_bytes(status) >= CUSTOM_STATUS_MAX_BYTES:
        status["error"] = replace(error, message=error.message[:200]).to_wire()
    if custom_status_bytes(status) >= CUSTOM_STATUS_MAX_BYTES and notification is not None:
        status["notification"] = {k: v for k, v in notification.items() if k != "error"}
    return status


def succeeded_status(
    result: JobResult, group: str, cleanup: Cleanup, now: datetime, attempt: int = 1, *, run: str | None = None
) -> dict[str, Any]:
    size = _bounded(result.blob.size_bytes, MAX_SAFE_INTEGER, integer=True) if result.blob else None
    view = ProgressView(PHASE_SUCCEEDED, 100.0, size, size, None, 0.0)  # type: ignore[arg-type]
    status = progress_status(view, group, now, attempt, run=run)
    status["cleanup"] = cleanup
    return status


def retrying_status(
    failed: JobError, next_group: str, attempt: int, now: datetime, until: datetime, *, run: str | None = None
) -> dict[str, Any]:
    """customStatus while waiting to start attempt `attempt` after a retryable failure."""
    status = progress_status(ProgressView(phase=PHASE_RETRYING), next_group, now, attempt, run=run)
    status["retryAt"] = format_utc(until)
    status["lastError"] = replace(failed, message=clip(failed.message, 300)).to_wire()
    return status


# --- the watch: the state the heartbeat loop carries -------------------------------------------


@dataclass(frozen=True)
class AttemptOutcome:
    """How the job ended: a result, or an error. Cleanup never changes it."""

    result: JobResult | None = None
    error: JobError | None = None
    recovered: bool = False
    """Taken from the worker's result record: its terminal report never arrived."""

    @property
    def succeeded(self) -> bool:
        return self.result is not None and self.error is None


@dataclass(frozen=True)
class WatchState:
    last_heard: datetime
    attempt: int = 1
    ledger: EventLedger = field(default_factory=EventLedger)
    view: ProgressView = field(default_factory=lambda: ProgressView(phase=PHASE_RUNNING))
    ignored: int = 0
    last_report_at: datetime | None = None


def on_event(state: WatchState, payload: Any, now: datetime) -> tuple[WatchState, AttemptOutcome | None, bool]:
    """Apply one raised payload. Returns the new state, the outcome if the event ends the job, and
    whether customStatus should be rewritten."""
    event = parse_event(payload)
    if event is None or not belongs_to_attempt(event, state.attempt):
        return replace(state, ignored=state.ignored + 1), None, False
    ledger, verdict = triage(state.ledger, event)
    if verdict in ("duplicate", "stale"):
        return replace(state, ledger=ledger, ignored=state.ignored + 1), None, False
    state = replace(state, ledger=ledger, last_heard=now)
    if verdict == "progress":
        return replace(state, view=view_after_event(state.view, event), last_report_at=now), None, True
    return state, outcome_of(event), False


def outcome_of(event: JobStatus) -> AttemptOutcome:
    """The outcome a terminal event reports."""
    if event.state == EventState.SUCCEEDED and event.result is not None:
        return AttemptOutcome(result=event.result)
    if event.state == EventState.CANCELLED:
        return AttemptOutcome(error=cancelled_error())
    return AttemptOutcome(error=event.error or JobError(ErrorCode.INTERNAL, "the worker failed without an error"))


def is_cancel(payload: Any) -> bool:
    event = parse_event(payload)
    return event is not None and event.state == EventState.CANCELLED


def heartbeat_due(state: WatchState, now: datetime, heartbeat_seconds: int) -> bool:
    return now >= state.last_heard + timedelta(seconds=heartbeat_seconds)


def next_heartbeat_wake(state: WatchState, heartbeat_seconds: int, deadline: datetime) -> datetime:
    return wake_at(state.last_heard, heartbeat_seconds, deadline)


# --- generations and the callback's rate limit (issue 12) ---------------------------------------

GENERATION_MAX_WEIGHT = 8
"""Steps (events taken, activity results, timers fired) one execution of `download_job` takes in
its watch before it hands over to a new one (`continue_as_new`). An execution's history then
stays under about 3 x this + one batch of events + the first generation's provisioning rows.
Chosen by `python -m bench.replay_bench --sweep` (README, "Long jobs"): per-report cost is about
e0 + k*3W/2 + H/W (k: replay cost per history row, H: a hand-over's two episodes). Measured
2026-11 on the shared 2-core machine, 2 h job at a report every 2 s, limit 10 s (721 raised),
median of 3: W=8 1.66 s, 16 2.55 s, 32 5.89 s, 64 8.50 s of orchestration CPU. The SDK parses
every history event's timestamp with dateutil (~0.2 ms each) on every replay, so a short
history wins; 8 is the largest under the 2 s target. Three later sweeps (load < 1) gave
W=4 1.30/2.08/1.37 s, W=8 1.77/1.57/1.82 s, W=16 2.61/2.27/2.40 s: 4 saves about a fifth of
the CPU at twice the hand-overs (181 executions against 91), whose storage writes the bench
does not see, so 8 stays."""


def hand_over_due(weight: int, max_weight: int | None = None) -> bool:
    return weight >= (GENERATION_MAX_WEIGHT if max_weight is None else max_weight)


def progress_event_limit(min_seconds: int, heartbeat_seconds: int) -> int:
    """The callback's effective limit: never more than a third of the heartbeat, since only the
    reports it raises tell the orchestration the worker is alive (a lapse costs an inspect)."""
    return max(0, min(min_seconds, heartbeat_seconds // 3))


_PHASE_ORDER = {PHASE_PROVISIONING: 0, PHASE_RUNNING: 1, "downloading": 2, "processing": 3, "uploading": 4}


def admit_report(event: JobStatus, status: Any, now: datetime, min_seconds: int) -> bool:
    """Whether the callback raises a worker's event into a running job, from the customStatus it
    read anyway: `started`, `succeeded`, `failed` and a move to a later phase always pass; a
    `progress` of the job's current attempt passes once `min_seconds` passed since the last report
    the orchestration took (`lastReportAt`), or when that time is missing, unreadable or further
    ahead than `min_seconds` (clock skew must not silence a worker). A progress of another attempt
    is ignored by the orchestration anyway. 0 turns the limit off."""
    if event.state != EventState.PROGRESS or min_seconds <= 0:
        return True
    if not isinstance(status, dict) or status.get("phase") not in _PHASE_ORDER:
        return True  # not a watching job's status (a batch, a retry pause, an unknown shape)
    current = status.get("attempt")
    if isinstance(current, int) and not isinstance(current, bool) and (event.attempt or 1) != current:
        return False
    if event.phase is not None and _PHASE_ORDER.get(event.phase, -1) > _PHASE_ORDER[status["phase"]]:
        return True
    try:
        last = parse_utc(status["lastReportAt"])
        elapsed = (now - last).total_seconds()
    except (KeyError, TypeError, ValueError, OverflowError):
        return True
    return elapsed >= min_seconds or elapsed < -min_seconds


# --- the reported result: the job's own blob, as stored (issue 9) -------------------------------


def invalid_result_error(reason: str) -> JobError:
    """A `succeeded` report the job cannot take: never retried (the next worker would be as
    untrusted, and a bug that names blobs wrongly would name them wrongly again)."""
    message = clip(f"the worker's result was refused: {reason}", MAX_ERROR_MESSAGE)
    return JobError(ErrorCode.INVALID_RESULT, message, retryable=False)


def result_problem(job_id: str, plan: JobPlan, result: JobResult) -> JobError | None:
    """Why a `succeeded` report is not this job's result (`invalid_result`), or None.

    A listing reports entries; a download reports one blob, in the plan's output container and
    under the job's own prefix (`videojob.contract.output_blob`). A plan without `output_container`
    (planned before the check existed) leaves the container to `check_output_blob`, which
    compares it with the settings."""
    if plan.mode == "list":
        return None if result.entries is not None else invalid_result_error("a listing reported no entries")
    blob = result.blob
    if blob is None:
        return invalid_result_error("a download reported no blob")
    container = plan.output_container if plan.output_container is not None else blob.container
    problem = output_blob_problem(job_id, container, blob.container, blob.name, blob.size_bytes)
    return invalid_result_error(problem) if problem else None


def checked_outcome(result: JobResult, checked: BlobCheckResult) -> AttemptOutcome:
    """The outcome once the reported blob was published (`publish_output_blob`: copied out of the
    attempt's staging blob and read back by the app): success carrying the URL built from the
    settings (never the worker's), `invalid_result` when nothing was staged or the copy's size or
    sha256 is not the reported one, `result_unverified` when storage could not tell."""
    blob = result.blob
    assert blob is not None
    shown = repr(blob.name[:200])
    if not checked.ok:
        error = checked.error or JobError(ErrorCode.INTERNAL, "no answer")
        if error.code == ErrorCode.INVALID_RESULT:  # the activity's own check against the settings
            return AttemptOutcome(error=invalid_result_error(error.message))
        reason = f"could not publish blob {shown} to the output storage: {error.code}: {error.message}"
        unverified = JobError(ErrorCode.RESULT_UNVERIFIED, clip(reason, MAX_ERROR_MESSAGE), retryable=False)
        return AttemptOutcome(error=unverified)
    if not checked.exists:
        return AttemptOutcome(error=invalid_result_error(f"blob {shown} was never uploaded by this attempt"))
    problem = copy_problem(blob.name, blob.size_bytes, blob.sha256, checked.size_bytes or 0, checked.sha256 or "")
    if problem is not None:
        return AttemptOutcome(error=invalid_result_error(problem))
    checked_blob = replace(blob, url=checked.url, sha256=checked.sha256 or blob.sha256)
    return AttemptOutcome(result=replace(result, blob=checked_blob))


# --- errors -----------------------------------------------------------------------------------


def provisioning_error(cause: JobError) -> JobError:
    """`provisioning_failed`, keeping the backend's code (e.g. the ARM `InaccessibleImage`)."""
    message = clip(f"{cause.code}: {cause.message}", MAX_ERROR_MESSAGE)
    return JobError(ErrorCode.PROVISIONING_FAILED, message, retryable=cause.retryable)


def deadline_error(deadline_seconds: int, phase: str) -> JobError:
    return JobError(
        ErrorCode.DEADLINE_EXCEEDED, f"the job did not finish within {deadline_seconds} s (phase: {phase})", True
    )


def cancelled_error() -> JobError:
    return JobError(ErrorCode.CANCELLED, "the job was cancelled", retryable=False)


def heartbeat_error(group: str, inspected: InspectResult, heartbeat_seconds: int) -> JobError:
    """`heartbeat_lost` with what is known of the container: state, exit code, detail, log tail;
    `out_of_memory` (not retried: a fresh container of the same size meets the same limit) when the
    backend says it was killed at its memory limit (its reason `OUT_OF_MEMORY`: the adapter
    decides from what its platform says; the worker's own report is the first signal)."""
    if inspected.reason == FailureReason.OUT_OF_MEMORY:
        detail = f" ({inspected.detail[:200]})" if inspected.detail else ""
        code = f"exit code {inspected.exit_code}" if inspected.exit_code is not None else "no exit code"
        return JobError(ErrorCode.OUT_OF_MEMORY,
                        f"the worker in container group {group} was killed at its memory limit: {code}"
                        f"{detail}; raise WORKER_MEMORY_GB if the media needs more", retryable=False)
    parts = [f"no report from the worker for {heartbeat_seconds} s; container group {group} is {inspected.state}"]
    if inspected.exit_code is not None:
        ended = f" at {inspected.finished_at}" if inspected.finished_at else ""
        parts.append(f"exit code {inspected.exit_code}{ended}")
    if inspected.detail:
        parts.append(inspected.detail[:200])
    head = "; ".join(parts)
    tail = " | ".join(line.strip() for line in inspected.log_tail.splitlines() if line.strip())
    if tail:
        room = MAX_ERROR_MESSAGE - len(head) - len("; log tail: ")
        head = f"{head}; log tail: {tail[-room:]}" if room > 40 else head
    return JobError(ErrorCode.HEARTBEAT_LOST, clip(head, MAX_ERROR_MESSAGE), retryable=True)


# --- output -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timings:
    """`provisionSeconds` and `runSeconds` are the successful (last) attempt's; `totalSeconds` spans
    the whole job, earlier attempts and the pauses between them included."""

    started_at: datetime
    provisioned_at: datetime
    finished_at: datetime
    ended_at: datetime
    attempt_started_at: datetime | None = None

    def to_wire(self) -> dict[str, float]:
        return {
            "provisionSeconds": seconds_between(self.attempt_started_at or self.started_at, self.provisioned_at),
            "runSeconds": seconds_between(self.provisioned_at, self.finished_at),
            "totalSeconds": seconds_between(self.started_at, self.ended_at),
        }


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt: its group, how it ended (`succeeded` or the error code) and its cleanup.
    `started_at` is its first create call, `ended_at` the end of its stop/delete: the span ACI can bill."""

    attempt: int
    group: str
    outcome: str
    started_at: datetime
    ended_at: datetime
    cleanup: Cleanup
    recovered: bool = False
    """The outcome came from the worker's result record (its terminal report never arrived)."""

    @property
    def seconds(self) -> float:
        return seconds_between(self.started_at, self.ended_at)

    def to_wire(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "group": self.group,
            "outcome": self.outcome,
            "startedAt": format_utc(self.started_at),
            "endedAt": format_utc(self.ended_at),
            "cleanup": self.cleanup,
            **({"recovered": True} if self.recovered else {}),
        }


def attempt_record(
    attempt: int,
    group: str,
    outcome: AttemptOutcome,
    started_at: datetime,
    ended_at: datetime,
    cleanup: Cleanup,
    recovered: bool = False,
) -> AttemptRecord:
    label = EventState.SUCCEEDED if outcome.succeeded else (outcome.error.code if outcome.error else ErrorCode.INTERNAL)
    return AttemptRecord(attempt, group, label, started_at, ended_at, cleanup, recovered)


COST_DIGITS = 6
"""The estimate is rounded to millionths of the currency unit (a short job costs a fraction of a cent)."""


def cost_summary(attempts: tuple[AttemptRecord, ...], plan: JobPlan) -> dict[str, Any]:
    """Container resources each attempt held (billed seconds x vCPU / GB) and the estimate at the
    per-second prices in `plan.cost_rates`. Stopped groups cost nothing, so each attempt counts
    from its create call to the end of its cleanup; a failed cleanup makes this a lower bound."""
    rows = []
    vcpu_total = gb_total = 0.0
    for a in attempts[-MAX_JOB_ATTEMPTS:]:
        seconds = a.seconds
        vcpu, gb = seconds * plan.worker_cpu, seconds * plan.worker_memory_gb
        vcpu_total += vcpu
        gb_total += gb
        rows.append(
            {"attempt": a.attempt, "seconds": seconds, "vcpuSeconds": round(vcpu, 3), "gbSeconds": round(gb, 3)}
        )
    vcpu_seconds, gb_seconds = round(vcpu_total, 3), round(gb_total, 3)
    rates = plan.cost_rates
    return {
        "vcpuSeconds": vcpu_seconds,
        "gbSeconds": gb_seconds,
        "estimate": round(vcpu_seconds * rates.vcpu_second + gb_seconds * rates.gb_second, COST_DIGITS),
        "currency": rates.currency,
        "attempts": rows,
    }


def share_link_record(result: ShareLinkResult) -> dict[str, Any]:
    """`shareLink` in the output: the link, or why there is none (a failed link never fails the job)."""
    if result.ok:
        return {"url": result.url, "expiresAt": result.expires_at}
    assert result.error is not None
    return {"error": replace(result.error, message=clip(result.error.message, 300)).to_wire()}


def success_output(
    job_id: str,
    plan: JobPlan,
    result: JobResult,
    group: str,
    cleanup: Cleanup,
    timings: Timings,
    attempts: tuple[AttemptRecord, ...] = (),
) -> dict[str, Any]:
    """The orchestration output of a successful job. `url` is the requested video URL; the file is
    at `blob.url`. A `list`-mode job has `entries` (and the playlist's `title`) instead of
    `blob`/`media`. The orchestrator adds `shareLink` and `notification` when they apply."""
    output: dict[str, Any] = {"jobId": job_id, "state": EventState.SUCCEEDED, "url": plan.request.url}
    if result.entries is not None:
        output["entries"] = [e.to_wire() for e in result.entries]
        if result.title is not None:
            output["title"] = result.title
    else:
        assert result.blob is not None
        output["blob"] = result.blob.to_wire()
        output["media"] = result.media.to_wire()
    output.update(
        {
            "containerGroup": group,
            "cleanup": cleanup,
            "timings": timings.to_wire(),
            "attempts": [a.to_wire() for a in attempts],
            "cost": cost_summary(attempts, plan),
        }
    )
    return output


def failure_payload(
    job_id: str, plan: JobPlan, error: JobError, attempts: tuple[AttemptRecord, ...], cost: dict[str, Any]
) -> dict[str, Any]:
    """The completion webhook's body for a failed job."""
    return {
        "jobId": job_id,
        "state": EventState.FAILED,
        "url": plan.request.url,
        "error": error.to_wire(),
        "attempts": [a.to_wire() for a in attempts],
        "cost": cost,
    }
