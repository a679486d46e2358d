"""The `download_job` orchestration: provision a container group, watch the worker, clean up,
and try again in a fresh group when the worker failed for a reason another container may not meet.

Steps (docs/design.md, "Orchestration: `download_job`"), for attempt n = 1, 2, ... in group
`attempt_group_name(id, n, run)`
(`run`: a replay-safe token of this orchestration run, so a job restarted under the same id, as an
`Idempotency-Key` resubmit after a failure does, never meets its earlier run's groups):
0. queue (`orchestrators/job_queue.py`): with `plan.max_running_jobs`, wait for one of the global
   slots of the `job_slots` entity (phase `queued`), held until the last group is gone; a quota
   refusal gives it back and queues again.
1. provision: `create_container_group`, up to `plan.provision_max_attempts` failed tries, with
   durable timers between them (`provision_backoff_seconds * 2**n`, capped); a non-retryable error
   fails at once with `provisioning_failed: <backend code>: ...`.
2. watch: wait for `JobStatus` events of this attempt or the heartbeat timer (`min(last report +
   heartbeat, deadline)`); when the window passes, ask for the container's state: active keeps
   waiting, terminated or missing fails `heartbeat_lost`; past the deadline fails `deadline_exceeded`.
   A reported success is a claim (`_checked`): only the job's own blob name in the output container
   stands, published by the app (`publish_output_blob`: the attempt's staging blob copied there, the
   copy hashed) with the reported size and sha256; else `invalid_result` / `result_unverified`.
3. clean up on every path: delete on success, `plan.failed_group_policy` on failure, up to
   `plan.cleanup_max_attempts` tries with timer backoff (`cleanup_backoff_seconds * 2**n`); a
   cleanup failure is reported (`cleanup: "failed"`) but never replaces the job's own outcome.
   So at most one group of the job runs at any time.
4. retry: a retryable failure (`policy.is_retryable`: network, upload_failed, heartbeat_lost,
   retryable http_error) starts attempt n+1 after a durable timer (`retry_backoff_seconds *
   2**(n-1)`, capped), while attempts remain and the pause ends before the job's one deadline.
   A cancel during the pause ends the job at once.
5. success: a share link (`create_share_link`, when `plan.share_link_hours > 0` and there is a
   blob), then the completion webhook (`plan.request.notify_url`); returns the output with
   `attempts`, `cost`, `shareLink`, `notification`. Failure: customStatus with the error,
   `attempts` and `cost`, the webhook, then raises `"<code>: <message>"`.

Every yield goes through the `kernel.Mailbox`, so no `JobStatus` event is lost or seen twice.

Generations (README, "Long jobs"): while it waits for its slot or watches a worker, the orchestration
hands over to a new execution of the same instance (`continue_as_new`, `_hand_over`) every
`policy.GENERATION_MAX_WEIGHT` steps, when no event is left unread (`Mailbox.settled`), carrying
`videojob.domain.generation.JobCarry`; the new one resumes the queue wait (same place) or the watch (no
provisioning, same group, run token and deadline). A terminal report lost
anyway (the worker gave up, the app was down) is read back from the worker's result record when
the heartbeat finds the container ended (`_recover`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from videojob.contract.wire import (
    PHASE_PROVISIONING,
    ContractError,
    ErrorCode,
    JobError,
    JobPlan,
    JobResult,
    failure_message,
)
from videojob.domain import orchestration as policy
from videojob.domain.activity_wire import (
    CREATE_CONTAINER_GROUP,
    CREATE_SHARE_LINK,
    DELETE_CONTAINER_GROUP,
    INSPECT_CONTAINER_GROUP,
    PUBLISH_OUTPUT_BLOB,
    READ_RESULT_RECORD,
    STOP_CONTAINER_GROUP,
    BlobCheckResult,
    CleanupResult,
    CreateInput,
    CreateResult,
    InspectResult,
    PublishInput,
    RecordResult,
    ShareLinkResult,
    group_input,
    record_input,
    share_link_input,
)
from videojob.domain.container_port import ACTIVE_CONTAINER_STATES
from videojob.domain.container_spec import attempt_group_name, run_token
from videojob.domain.generation import JobCarry, WatchCarry, carry_of, next_input

from .job_queue import JobSlot
from .kernel import NOTHING, Mailbox, OrchestrationFailed, Steps, replay_safe_log
from .notification import deliver_notification

logger = logging.getLogger(__name__)


class DownloadJobFailed(OrchestrationFailed):
    """The job's failure. Its message starts with the error code."""


def _log(context: Any, level: int, message: str, *args: Any) -> None:
    replay_safe_log(context, logger, level, message, *args)


HANDED_OVER = object()
"""What `_watch`, `_run_attempt`, `_attempts` and `_wait_for_slot` return once `continue_as_new` was called:
the execution ends."""


@dataclass(frozen=True)
class _Frame:
    """What a hand-over carries from `run_job` besides the current attempt."""

    started_at: datetime
    attempts: tuple[policy.AttemptRecord, ...]
    generation: int
    extensions: dict[str, Any]


@dataclass(frozen=True)
class _AttemptRun:
    outcome: policy.AttemptOutcome
    record: policy.AttemptRecord
    provisioned_at: datetime
    finished_at: datetime


def run_job(context: Any) -> Steps:
    """The job (`_run_job`). An exception nobody planned for still gives the job's `MAX_RUNNING_JOBS`
    slot back: the release signal goes out with the episode that fails the orchestration."""
    slots: list[JobSlot] = []
    try:
        return (yield from _run_job(context, slots))
    except Exception:
        for slot in slots:
            slot.release()
        raise


def _run_job(context: Any, slots: list[JobSlot]) -> Steps:
    job_id: str = context.instance_id
    raw_input = context.get_input()
    carry_problem: ContractError | None = None
    try:
        carry = carry_of(raw_input)
    except ContractError as e:
        carry, carry_problem = None, e
    started_at: datetime = carry.started_at if carry else context.current_utc_datetime
    # First `new_uuid()` of generation 1: the same on every replay of this run, new in the next;
    # later generations carry it (their `new_uuid()` differs).
    run_key = carry.run if carry else run_token(context.new_uuid())
    resume = carry if carry is not None and not carry.queued else None  # the attempt it was watching
    group = attempt_group_name(job_id, resume.attempt if resume else 1, run_key)
    try:
        if carry_problem is not None:
            raise carry_problem
        plan = JobPlan.from_wire(raw_input)
    except (ContractError, KeyError, TypeError, ValueError) as e:
        error = JobError(ErrorCode.INTERNAL, f"invalid job plan: {e}"[:300])
        context.set_custom_status(policy.failed_status(error, policy.CLEANUP_NONE, group, started_at, run=run_key))
        raise DownloadJobFailed(failure_message(error)) from None

    deadline = policy.deadline_for(started_at, plan)
    mailbox = Mailbox(context)
    if carry is None:
        context.set_custom_status(policy.progress_status(policy.ProgressView(), group, started_at, run=run_key))
    else:
        _log(context, logging.INFO, "job %s: generation %d", job_id, carry.generation)
    generation = carry.generation if carry else 1
    # The global cap: wait for a slot before the first group (a generation past the queue holds it).
    slot = JobSlot(context, mailbox, plan, job_id, started_at, deadline, dict(carry.extensions) if carry else {})
    slots.append(slot)
    if resume is None and slot.active:
        status_floor = carry.status_updated_at if carry else None
        waited = yield from _wait_for_slot(context, mailbox, plan, job_id, run_key, started_at, generation, group,
                                           slot, status_floor)
        if waited is HANDED_OVER:
            return None

    ended = yield from _attempts(context, mailbox, plan, job_id, run_key, deadline, started_at, generation, slot,
                                 resume)
    if ended is HANDED_OVER:
        return None  # the SDK ends this execution with its `continue_as_new`
    outcome, run, attempts = ended
    yield from slot.hand_on()  # the last group is gone (or stopped): the next job in the queue is told
    ended_at: datetime = context.current_utc_datetime
    if outcome.succeeded and outcome.result is not None:
        return (yield from _succeeded(context, mailbox, plan, job_id, run_key, slot, started_at, run, attempts,
                                      outcome.result, ended_at))
    error = outcome.error or JobError(ErrorCode.INTERNAL, "the job ended without a result")
    return (yield from _failed(context, mailbox, plan, job_id, run_key, attempts, error, ended_at))


def _wait_for_slot(
    context: Any, mailbox: Mailbox, plan: JobPlan, job_id: str, run_key: str, started_at: datetime,
    generation: int, group: str, slot: JobSlot, status_floor: datetime | None,
) -> Steps:
    """The global cap: wait in the queue for a slot before the first group. Returns None once the
    slot is held, or `HANDED_OVER`; a job refused in the queue fails here."""
    def hand_over(status_updated_at: datetime) -> object:
        still_queued = JobCarry.in_queue(run_key, started_at, generation + 1, status_updated_at, slot.extensions)
        return _hand_over(context, mailbox, plan, still_queued)

    refused = yield from slot.acquire(group, hand_over=hand_over, status_floor=status_floor)
    if refused is HANDED_OVER:
        return HANDED_OVER
    if refused is not None:
        return (yield from _failed_in_queue(context, mailbox, plan, job_id, group, refused))
    context.set_custom_status(policy.progress_status(policy.ProgressView(), group, context.current_utc_datetime,
                                                     run=run_key))
    return None


def _attempts(
    context: Any, mailbox: Mailbox, plan: JobPlan, job_id: str, run_key: str, deadline: datetime,
    started_at: datetime, generation: int, slot: JobSlot, resume: JobCarry | None,
) -> Steps:
    """Attempts, each in a fresh group, until one succeeds, a failure is final or time is up.
    Returns `(outcome, the last _AttemptRun, every attempt's record)`, or `HANDED_OVER`."""
    records: list[policy.AttemptRecord] = list(resume.attempts) if resume else []
    attempt = resume.attempt if resume else 1
    while True:
        frame = _Frame(started_at, tuple(records), generation,
                       slot.extensions)  # shared: a hand-over carries the slot as it is then
        run = yield from _run_attempt(context, mailbox, plan, job_id, run_key, attempt, deadline,
                                      frame=frame, resume=resume, slot=slot)
        if run is HANDED_OVER:
            return HANDED_OVER
        resume = None
        records.append(run.record)
        outcome = run.outcome
        if outcome.succeeded or outcome.error is None or not policy.is_retryable(outcome.error, plan.retry_bot_check):
            break
        now: datetime = context.current_utc_datetime
        pause = policy.retry_pause(plan, attempt, now, deadline)
        if pause is None:
            break
        attempt += 1
        fire_at = policy.wake_at(now, pause, deadline)
        next_group = attempt_group_name(job_id, attempt, run_key)
        context.set_custom_status(policy.retrying_status(outcome.error, next_group, attempt, now, fire_at,
                                                         run=run_key))
        _log(context, logging.WARNING, "job %s: attempt %d failed (%s); attempt %d in %.0f s",
             job_id, attempt - 1, outcome.error.code, attempt, pause)
        if (yield from mailbox.sleep_unless(fire_at, policy.is_cancel)):
            outcome = policy.AttemptOutcome(error=policy.cancelled_error())
            break
    return outcome, run, tuple(records)


def _succeeded(
    context: Any, mailbox: Mailbox, plan: JobPlan, job_id: str, run_key: str, slot: JobSlot, started_at: datetime,
    run: _AttemptRun, attempts: tuple[policy.AttemptRecord, ...], result: JobResult, ended_at: datetime,
) -> Steps:
    """The job's output: the result, its share link and the completion webhook's delivery."""
    last = attempts[-1]
    timings = policy.Timings(started_at, run.provisioned_at, run.finished_at, ended_at, last.started_at)
    context.set_custom_status(policy.succeeded_status(result, last.group, last.cleanup, ended_at, last.attempt,
                                                      run=run_key))
    _log(context, logging.INFO, "job %s succeeded in attempt %d (cleanup %s)", job_id, last.attempt, last.cleanup)
    output = policy.success_output(job_id, plan, result, last.group, last.cleanup, timings, attempts)
    if (queue := slot.record()) is not None:
        output["queue"] = queue
    if plan.share_link_hours > 0 and result.blob is not None:
        linked = yield from mailbox.call(
            CREATE_SHARE_LINK,
            share_link_input(job_id, result.blob.container, result.blob.name, plan.share_link_hours),
        )
        output["shareLink"] = policy.share_link_record(ShareLinkResult.from_wire(linked))
    if plan.request.notify_url:
        output["notification"] = yield from deliver_notification(context, mailbox, plan.request.notify_url,
                                                                 dict(output))
    return output


def _failed(
    context: Any, mailbox: Mailbox, plan: JobPlan, job_id: str, run_key: str,
    attempts: tuple[policy.AttemptRecord, ...], error: JobError, ended_at: datetime,
) -> Steps:
    """The job's failure: its status, the completion webhook, then the orchestration fails."""
    last = attempts[-1]
    cost = policy.cost_summary(attempts, plan)
    context.set_custom_status(policy.failed_status(error, last.cleanup, last.group, ended_at, attempts, cost,
                                                   run=run_key))
    _log(context, logging.WARNING, "job %s failed: %s after %d attempt(s) (cleanup %s)",
         job_id, error.code, len(attempts), last.cleanup)
    if plan.request.notify_url:
        payload = policy.failure_payload(job_id, plan, error, attempts, cost)
        notification = yield from deliver_notification(context, mailbox, plan.request.notify_url, payload)
        context.set_custom_status(
            policy.failed_status(
                error, last.cleanup, last.group, context.current_utc_datetime, attempts, cost, notification,
                run=run_key,
            )
        )
    raise DownloadJobFailed(failure_message(error))


def _failed_in_queue(context: Any, mailbox: Mailbox, plan: JobPlan, job_id: str, group: str,
                     error: JobError) -> Steps:
    """A job that never left the queue (cancelled, out of time): no attempt, no group, no cost."""
    cost = policy.cost_summary((), plan)
    context.set_custom_status(policy.failed_status(error, policy.CLEANUP_NONE, group,
                                                   context.current_utc_datetime, (), cost))
    _log(context, logging.WARNING, "job %s failed in the queue: %s", job_id, error.code)
    if plan.request.notify_url:
        payload = policy.failure_payload(job_id, plan, error, (), cost)
        notification = yield from deliver_notification(context, mailbox, plan.request.notify_url, payload)
        context.set_custom_status(policy.failed_status(error, policy.CLEANUP_NONE, group,
                                                       context.current_utc_datetime, (), cost, notification))
    raise DownloadJobFailed(failure_message(error))


def _run_attempt(
    context: Any,
    mailbox: Mailbox,
    plan: JobPlan,
    job_id: str,
    run_key: str,
    attempt: int,
    deadline: datetime,
    *,
    frame: _Frame,
    resume: JobCarry | None = None,
    slot: JobSlot | None = None,
) -> Steps:
    """One attempt in its own group: provision, watch, clean up. Returns an `_AttemptRun`, or
    `HANDED_OVER`. With `resume` (a new generation), the watch goes on where the last one was."""
    group = attempt_group_name(job_id, attempt, run_key)
    if resume is not None:
        return (yield from _resumed_attempt(context, mailbox, plan, job_id, run_key, deadline, frame, resume))
    began: datetime = context.current_utc_datetime
    if attempt > 1:
        context.set_custom_status(policy.progress_status(policy.ProgressView(), group, began, attempt, run=run_key))
    outcome = yield from _provision(context, mailbox, plan, job_id, run_key, attempt, group, began, deadline,
                                    slot=slot)
    provisioned_at: datetime = context.current_utc_datetime
    if outcome is None:
        hand_over = _carry_maker(run_key, attempt, began, provisioned_at, frame)
        outcome = yield from _watch(context, mailbox, plan, group, attempt, deadline, run=run_key, hand_over=hand_over)
        if outcome is HANDED_OVER:
            return HANDED_OVER
    return (yield from _finish_attempt(context, mailbox, plan, job_id, run_key, group, attempt, outcome, began,
                                       provisioned_at))


def _resumed_attempt(
    context: Any, mailbox: Mailbox, plan: JobPlan, job_id: str, run_key: str, deadline: datetime,
    frame: _Frame, carry: JobCarry,
) -> Steps:
    """The attempt a previous generation was watching: its group runs; the watch goes on."""
    attempt, began, provisioned_at = carry.attempt, carry.attempt_began, carry.provisioned_at
    assert carry.watch is not None and began is not None and provisioned_at is not None  # not `queued`
    group = attempt_group_name(job_id, attempt, run_key)
    hand_over = _carry_maker(run_key, attempt, began, provisioned_at, frame)
    outcome = yield from _watch(context, mailbox, plan, group, attempt, deadline, run=run_key, hand_over=hand_over,
                                state=carry.watch.state(attempt), status_floor=carry.status_updated_at)
    if outcome is HANDED_OVER:
        return HANDED_OVER
    return (yield from _finish_attempt(context, mailbox, plan, job_id, run_key, group, attempt, outcome, began,
                                       provisioned_at))


def _carry_maker(
    run_key: str, attempt: int, began: datetime, provisioned_at: datetime, frame: _Frame
) -> Callable[[policy.WatchState, datetime], JobCarry]:
    def carry(state: policy.WatchState, status_updated_at: datetime) -> JobCarry:
        return JobCarry(run_key, frame.started_at, frame.attempts, attempt, began, provisioned_at,
                        WatchCarry.of(state), frame.generation + 1, status_updated_at, frame.extensions)
    return carry


def _finish_attempt(
    context: Any, mailbox: Mailbox, plan: JobPlan, job_id: str, run_key: str, group: str, attempt: int,
    outcome: policy.AttemptOutcome, began: datetime, provisioned_at: datetime,
) -> Steps:
    """Check (publish) a reported success, clean up, record the attempt."""
    finished_at: datetime = context.current_utc_datetime
    recovered = outcome.recovered
    if outcome.succeeded:
        outcome = yield from _checked(context, mailbox, plan, job_id, run_key, attempt, outcome)
    cleanup = yield from _clean_up(context, mailbox, plan, group, outcome.succeeded)
    record = policy.attempt_record(attempt, group, outcome, began, context.current_utc_datetime, cleanup, recovered)
    return _AttemptRun(outcome, record, provisioned_at, finished_at)


def _checked(
    context: Any, mailbox: Mailbox, plan: JobPlan, job_id: str, run_key: str, attempt: int,
    outcome: policy.AttemptOutcome,
) -> Steps:
    """A reported success stands only for bytes the service has verified (the worker handles hostile
    content and may lie): the pure rule first, so a foreign blob costs no storage call and gets no
    link; then `publish_output_blob` (retried like cleanup while its errors are retryable) copies
    the attempt's staging blob to the reported name, which no worker can write, and hashes the
    copy. Returns the outcome, carrying the blob URL built from the settings, or `invalid_result` /
    `result_unverified`. Runs before cleanup, so a refused worker's group follows the failed-group
    policy (kept, stopped, for a look)."""
    result = outcome.result
    assert result is not None
    refused = policy.result_problem(job_id, plan, result)
    if refused is not None:
        _log(context, logging.WARNING, "job %s: %s", job_id, refused.message)
        return policy.AttemptOutcome(error=refused)
    if result.blob is None:  # a listing: nothing stored
        return outcome
    blob = result.blob
    request = PublishInput(job_id, run_key, attempt, blob.container, blob.name, blob.size_bytes, blob.sha256).to_wire()
    checked = yield from _call_retried(context, mailbox, plan, PUBLISH_OUTPUT_BLOB, request, BlobCheckResult.from_wire)
    checked_outcome = policy.checked_outcome(result, checked)
    if checked_outcome.error is not None:
        _log(context, logging.WARNING, "job %s: %s", job_id, checked_outcome.error.message)
    return checked_outcome


def _provision(
    context: Any,
    mailbox: Mailbox,
    plan: JobPlan,
    job_id: str,
    run_key: str,
    job_attempt: int,
    group: str,
    started_at: datetime,
    deadline: datetime,
    *,
    slot: JobSlot | None = None,
) -> Steps:
    """Create the group. Returns None once it exists, or the failing `AttemptOutcome`.

    A failure that means "not now" (`retry_after_seconds`: roles still propagating) is waited out
    without counting a failed try; the backend bounds how long it says so, the deadline bounds all.
    A quota refusal under the global cap gives the slot back and queues again (`JobSlot.wait_out_quota`)."""
    max_failures = max(1, plan.provision_max_attempts)
    request = CreateInput(
        job_id, plan.request, started_at, deadline, job_attempt, mode=plan.mode, max_items=plan.max_items, run=run_key
    ).to_wire()
    failures = 0
    while True:
        if mailbox.holds(policy.is_cancel):
            return policy.AttemptOutcome(error=policy.cancelled_error())
        if context.current_utc_datetime >= deadline:
            return policy.AttemptOutcome(error=policy.deadline_error(plan.deadline_seconds, PHASE_PROVISIONING))
        result = CreateResult.from_wire((yield from mailbox.call(CREATE_CONTAINER_GROUP, request)), group)
        if result.ok:
            return None
        error = result.error or JobError("unknown", "no error given", retryable=True)
        if error.retryable and slot is not None and slot.waits_out(result.reason):
            _log(context, logging.WARNING, "job %s: create refused by quota (%s); back to the queue",
                 job_id, error.code)
            refused = yield from slot.wait_out_quota(error, group)
            if refused is not None:
                return policy.AttemptOutcome(error=refused)
            context.set_custom_status(policy.progress_status(policy.ProgressView(), group,
                                                             context.current_utc_datetime, job_attempt, run=run_key))
            continue
        if error.retryable and error.retry_after_seconds is not None:
            _log(context, logging.WARNING, "job %s: create refused for now (%s); asking again in %.0f s",
                 job_id, error.code, error.retry_after_seconds)
            pause = error.retry_after_seconds
        else:
            failures += 1
            _log(context, logging.WARNING, "job %s: create try %d failed: %s", job_id, failures, error.code)
            if not error.retryable or failures >= max_failures:
                return policy.AttemptOutcome(error=policy.provisioning_error(error))
            pause = policy.backoff_seconds(plan.provision_backoff_seconds, failures - 1)
        yield from mailbox.sleep_until(policy.wake_at(context.current_utc_datetime, pause, deadline))


def _watch(
    context: Any,
    mailbox: Mailbox,
    plan: JobPlan,
    group: str,
    attempt: int,
    deadline: datetime,
    *,
    run: str | None = None,
    hand_over: Callable[[policy.WatchState, datetime], JobCarry] | None = None,
    state: policy.WatchState | None = None,
    status_floor: datetime | None = None,
) -> Steps:
    """Follow the worker's reports until one ends the attempt, the heartbeat is lost or time runs out.
    Reports of other attempts are ignored; `seq` de-duplication starts afresh with each attempt.
    Returns the `AttemptOutcome`, or `HANDED_OVER` (a new generation goes on watching: `hand_over` makes
    its carry). `state`, `status_floor`: where the last generation left the watch."""
    heartbeat = plan.heartbeat_timeout_seconds
    now = context.current_utc_datetime
    state = state or policy.WatchState(last_heard=now, attempt=attempt)
    shown_at = max(now, status_floor) if status_floor is not None else now
    context.set_custom_status(policy.progress_status(state.view, group, shown_at, attempt, state.last_report_at,
                                                     run=run))
    timer = None
    while True:
        # Only with no fired timer and no event unread: an event the old history holds unread
        # would be discarded with it.
        if (hand_over is not None and (timer is None or not timer.is_completed)
                and policy.hand_over_due(mailbox.weight) and mailbox.settled()):
            now = context.current_utc_datetime
            if timer is not None:
                timer.cancel()  # the next generation arms its own, for the same instant
            return _hand_over(context, mailbox, plan,
                              hand_over(state, max(now, status_floor) if status_floor is not None else now))
        if timer is None:
            timer = context.create_timer(policy.next_heartbeat_wake(state, heartbeat, deadline))
        payload = yield from mailbox.next_event(timer)
        now = context.current_utc_datetime
        if payload is not NOTHING:
            state, outcome = _apply(context, state, payload, group, now, run)
            if outcome is not None:
                if not timer.is_completed:
                    timer.cancel()
                return outcome
            continue

        timer = None
        if now >= deadline:
            return policy.AttemptOutcome(error=policy.deadline_error(plan.deadline_seconds, state.view.phase))
        if not policy.heartbeat_due(state, now, heartbeat):
            continue
        inspected = InspectResult.from_wire((yield from mailbox.call(INSPECT_CONTAINER_GROUP, group_input(group))))
        now = context.current_utc_datetime
        # Reports that arrived while we asked come first: one of them may end the job.
        while (payload := mailbox.take()) is not NOTHING:
            state, outcome = _apply(context, state, payload, group, now, run)
            if outcome is not None:
                return outcome
        if not policy.heartbeat_due(state, now, heartbeat):
            continue
        if inspected.ok and inspected.state not in ACTIVE_CONTAINER_STATES:
            # The worker ended without a terminal report we got: what it recorded, if anything.
            recovered = yield from _recover(context, mailbox, plan, attempt, run, deadline)
            while (payload := mailbox.take()) is not NOTHING:  # a report that came meanwhile wins
                state, outcome = _apply(context, state, payload, group, now, run)
                if outcome is not None:
                    return outcome
            return recovered or policy.AttemptOutcome(error=policy.heartbeat_error(group, inspected, heartbeat))
        # Still running (a slow step that does not report), or the backend could not tell:
        # give it another window; the deadline bounds the wait.
        state = replace(state, last_heard=now)


def _hand_over(context: Any, mailbox: Mailbox, plan: JobPlan, carry: JobCarry) -> object:
    """End this execution with a new one of the same instance that goes on from `carry`: call only
    with nothing in flight it would lose (a timer: cancel it) and `mailbox.settled()`."""
    _log(context, logging.INFO, "job %s: generation %d after %d steps%s",
         context.instance_id, carry.generation, mailbox.weight, " (queued)" if carry.queued else "")
    context.continue_as_new(next_input(plan, carry))
    return HANDED_OVER


def _apply(
    context: Any, state: policy.WatchState, payload: Any, group: str, now: datetime, run: str | None
) -> tuple[policy.WatchState, policy.AttemptOutcome | None]:
    state, outcome, changed = policy.on_event(state, payload, now)
    if changed or outcome is not None:  # a terminal report ends the attempt's token everywhere
        context.set_custom_status(policy.progress_status(state.view, group, now, state.attempt, state.last_report_at,
                                                         run=run, attempt_ended=outcome is not None))
    return state, outcome


def _recover(context: Any, mailbox: Mailbox, plan: JobPlan, attempt: int, run: str | None, deadline: datetime
             ) -> Steps:
    """The outcome the worker of this attempt recorded before its terminal report (the activity
    reads only this job's, attempt's and run's record, and checks its MAC), marked `recovered`;
    None when there is none or it cannot be read. A recovered success still goes through
    `_checked`. Retryable read errors are retried like `check_output_blob`."""
    request = record_input(context.instance_id, attempt, run, deadline)
    answer = yield from _call_retried(context, mailbox, plan, READ_RESULT_RECORD, request, RecordResult.from_wire)
    if answer.event is None:
        reason = answer.refused or (answer.error.code if answer.error else "no record")
        _log(context, logging.WARNING, "job %s: attempt %d left no usable result record (%s)",
             context.instance_id, attempt, reason)
        return None
    _log(context, logging.WARNING, "job %s: attempt %d's %s taken from its result record",
         context.instance_id, attempt, answer.event.state)
    return replace(policy.outcome_of(answer.event), recovered=True)


def _clean_up(context: Any, mailbox: Mailbox, plan: JobPlan, group: str, succeeded: bool) -> Steps:
    """Delete (success, or policy `delete`) or stop (policy `stop`) the group; retried, bounded."""
    if succeeded or plan.failed_group_policy == "delete":
        activity, done = DELETE_CONTAINER_GROUP, policy.CLEANUP_DELETED
    else:
        activity, done = STOP_CONTAINER_GROUP, policy.CLEANUP_STOPPED
    result = yield from _call_retried(context, mailbox, plan, activity, group_input(group), CleanupResult.from_wire)
    return done if result.ok else policy.CLEANUP_FAILED


def _call_retried(
    context: Any, mailbox: Mailbox, plan: JobPlan, activity: str, payload: dict[str, Any], parse: Callable[[Any], Any]
) -> Steps:
    """Call a storage or cleanup activity until it answers `ok` or a failure a retry will not mend:
    `plan.cleanup_max_attempts` tries, `cleanup_backoff_seconds * 2**n` apart. Returns the last
    answer, parsed (it has `ok` and `error`)."""
    tries = max(1, plan.cleanup_max_attempts)
    for n in range(tries):
        answer = parse((yield from mailbox.call(activity, payload)))
        if answer.ok:
            break
        code = answer.error.code if answer.error else "unknown"
        _log(context, logging.WARNING, "%s try %d for %s failed: %s", activity, n + 1, context.instance_id, code)
        if (answer.error is not None and not answer.error.retryable) or n + 1 >= tries:
            break
        pause = policy.backoff_seconds(plan.cleanup_backoff_seconds, n)
        yield from mailbox.sleep_until(policy.wake_at(context.current_utc_datetime, pause))
    return answer
