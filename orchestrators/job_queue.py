"""A job's place under the global cap (`MAX_RUNNING_JOBS`): the `job_slots` entity's client side.

Grants are pushed (issue 22; docs/design.md, "Global cap and queue"): a Python entity cannot send
anything and an orchestration cannot raise an event to another instance (azure-functions-durable
1.7), so a holder that ends calls `release` (not a signal: it needs the answer, the jobs granted)
and the `announce_slot_grants` activity raises `SlotGranted` to them (`hand_on`). A queued job
waits for that event, asking `acquire` again only after `QUEUE_FALLBACK_SECONDS` (60 s) to repair
a lost one. While queued, the wait hands over to a new generation like the watch does
(`acquire`'s `hand_over`, between re-checks), and the next one asks again with the same token:
its place is kept.

The entity decides the cap, the order and who holds what (issue 19.5): the job sends only its id
and the token the entity gave it in the answer to its first ask (kept in the carry, so a new
generation keeps the place); `release` and `step_aside` (a quota refusal) need that token.

Every exit releases what it holds: `hand_on` where the orchestration can wait, `release` (a
fire-and-forget signal that goes out even with the episode that fails the orchestration) on an
unexpected exception; endings that run no orchestrator code (terminate, purge, a crash) are the
sweeper's (`sweeper.sweep.reconcile_slots`, which tells the next jobs too).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from datetime import datetime
from typing import Any

import azure.durable_functions as df

from videojob.contract.wire import PHASE_QUEUED, ErrorCode, JobError, JobPlan
from videojob.domain import job_slots as slots
from videojob.domain import orchestration as policy
from videojob.domain.activity_wire import parse_utc
from videojob.domain.failure_reason import FailureReason

from .kernel import Mailbox, Steps

SLOTS = df.EntityId(slots.ENTITY_NAME, slots.ENTITY_KEY)
CARRY_MEMBER = "queue"
"""The member of a generation's carry extensions (`videojob.domain.generation.JobCarry.extensions`)."""


class JobSlot:
    """The job's slot: not asked for, queued, held, or given back. A plan without
    `max_running_jobs` (made before the cap) takes no slot: every method is then a no-op."""

    def __init__(self, context: Any, mailbox: Mailbox, plan: JobPlan, job_id: str, arrived: datetime,
                 deadline: datetime, extensions: MutableMapping[str, Any]):
        """`extensions`: the carry's extensions, shared with the hand-over (a new generation
        resumes holding the slot, with the same record)."""
        self._context = context
        self._mailbox = mailbox
        self._plan = plan
        self._job_id = job_id
        self._arrived = arrived
        self._deadline = deadline
        self.extensions = extensions
        self.active = plan.max_running_jobs is not None
        carried = extensions.get(CARRY_MEMBER)
        carried = carried if isinstance(carried, dict) else {}
        self.held = carried.get("held") is True
        self.queued_since = _time(carried.get("queuedSince"))
        """Set while a previous generation was queued (its place is ours): when that wait began."""
        self._member = self.held or self.queued_since is not None
        self.granted_at: datetime | None = _time(carried.get("grantedAt"))
        self.waited_seconds = float(carried.get("waitedSeconds") or 0.0)
        self.quota_waits = int(carried.get("quotaWaits") or 0)
        token = carried.get("token")
        self._grant_waiter: Any = None
        """The pending `GRANT_EVENT` wait (kept across re-checks: one event wakes one wait)."""
        self.token: str | None = token if isinstance(token, str) else None
        """The entity's proof that the place is ours (None before the first answer, or for a job
        that queued before tokens: the entity then knows it by its id alone)."""

    def _save(self) -> None:
        if self.active:
            self.extensions[CARRY_MEMBER] = {
                "held": self.held,
                "grantedAt": slots.format_utc(self.granted_at) if self.granted_at else None,
                "waitedSeconds": round(self.waited_seconds, 3),
                "quotaWaits": self.quota_waits,
                "queuedSince": slots.format_utc(self.queued_since) if self.queued_since else None,
                "token": self.token,
            }

    def record(self) -> dict[str, Any] | None:
        """`output.queue`: its place (`arrivedAt`), how long it waited for its slot, when it got it
        (last), quota refusals."""
        if not self.active:
            return None
        return {"arrivedAt": slots.format_utc(self._arrived), "waitedSeconds": round(self.waited_seconds, 3),
                "grantedAt": slots.format_utc(self.granted_at) if self.granted_at else None,
                "quotaWaits": self.quota_waits}

    def acquire(self, group: str, reason: str | None = None, *, hand_over: Callable[[datetime], Any] | None = None,
                status_floor: datetime | None = None) -> Steps:
        """Wait for a slot. Returns None once held, or the `JobError` that ends the job in the queue
        (cancelled, deadline_exceeded with phase queued, internal); the place is given up then.
        With `hand_over` (it calls `continue_as_new`; given the floor of customStatus `updatedAt`), the
        wait hands over between re-checks once `policy.hand_over_due`, nothing in flight and no event
        unread, and returns what it returns; the next generation calls `acquire` again (with the
        carried `status_floor`) and keeps the place and the time waited (`queued_since`)."""
        if not self.active or self.held:
            return None
        context, mailbox = self._context, self._mailbox
        began: datetime = self.queued_since or context.current_utc_datetime
        self.queued_since = None
        shown: tuple[int | None, int] | None = None
        while True:
            now: datetime = context.current_utc_datetime
            if mailbox.holds(policy.is_cancel):
                return (yield from self._leave(began, policy.cancelled_error()))
            if now >= self._deadline:
                return (yield from self._leave(began, policy.deadline_error(self._plan.deadline_seconds,
                                                                            PHASE_QUEUED)))
            if hand_over is not None and policy.hand_over_due(mailbox.weight) and mailbox.settled():
                self.queued_since = began
                self._save()
                return hand_over(max(now, status_floor) if status_floor else now)
            request = slots.acquire_request(self._job_id, self.token, self._arrived, self._plan.max_running_jobs,
                                            self._plan.owner)
            self._member = True
            task = yield from mailbox.until_done(context.call_entity(SLOTS, slots.ACQUIRE, request))
            try:
                if isinstance(task.result, Exception):
                    raise slots.SlotError(str(task.result))
                grant = slots.Grant.from_wire(task.result)
            except slots.SlotError as e:
                return (yield from self._leave(began, JobError(ErrorCode.INTERNAL, f"job slots: {e}"[:300])))
            if grant.token is not None:
                self.token = grant.token
                self._save()
            now = context.current_utc_datetime
            if grant.granted:
                self.held, self.granted_at = True, now
                self.waited_seconds += policy.seconds_between(began, now)
                self._save()
                return None
            if shown != (grant.position, grant.running):
                shown_at = max(now, status_floor) if status_floor else now
                context.set_custom_status(slots.queued_status(grant, group, shown_at, began, reason))
                shown = (grant.position, grant.running)
            fire_at = policy.wake_at(now, slots.queue_recheck_seconds(grant.position), self._deadline)
            yield from self._wait_for_grant(fire_at)

    def _wait_for_grant(self, fire_at: datetime) -> Steps:
        """Until told (`GRANT_EVENT`), cancelled, or the fallback re-check at `fire_at` (the timer
        is cancelled when something else wakes it: a running timer keeps the instance Running)."""
        context, mailbox = self._context, self._mailbox
        timer = context.create_timer(fire_at)
        if self._grant_waiter is None:
            self._grant_waiter = context.wait_for_external_event(slots.GRANT_EVENT)
        while not timer.is_completed:
            if mailbox.holds(policy.is_cancel):
                timer.cancel()
                return
            winner = yield from mailbox.any_of([self._grant_waiter, timer])
            if winner is self._grant_waiter:
                self._grant_waiter = None
                timer.cancel()
                return

    def _leave(self, began: datetime, error: JobError) -> Steps:
        self.waited_seconds += policy.seconds_between(began, self._context.current_utc_datetime)
        yield from self.hand_on()
        return error

    def release(self) -> None:
        """Give the slot (or the place in the queue) back where the orchestration cannot wait (an
        exception is failing it): a signal, never yielded (it takes its sequence id when made; a
        yield would take a second one), so nobody is told of the slot it frees: the next job
        finds it at its fallback re-check. Everywhere else: `hand_on`."""
        if not self.active or not self._member:
            return
        self._context.signal_entity(SLOTS, slots.RELEASE, slots.holder_request(self._job_id, self.token))
        self._forget()

    def _forget(self) -> None:
        self._member = self.held = False
        self.token = None
        self._save()

    def hand_on(self, operation: str = slots.RELEASE) -> Steps:
        """Give the slot back (`release`, or `step_aside` keeping the place) and tell the jobs the
        entity granted it to (`ANNOUNCE_GRANTS` raises `GRANT_EVENT` to each): pushed grants. One
        entity call and at most one activity; an announcement that fails is repaired by the
        receivers' fallback re-check."""
        if not self.active or not self._member:
            return None
        request = slots.holder_request(self._job_id, self.token)
        if operation == slots.RELEASE:
            self._forget()
        else:
            self.held = False
            self._save()
        task = yield from self._mailbox.until_done(self._context.call_entity(SLOTS, operation, request))
        granted = [] if isinstance(task.result, Exception) else slots.granted_ids(task.result)
        granted = [i for i in granted if i != self._job_id]
        if granted:
            yield from self._mailbox.until_done(self._context.call_activity(
                slots.ANNOUNCE_GRANTS, {"ids": granted, "by": self._job_id}))
        return None

    def waits_out(self, reason: FailureReason | None) -> bool:
        """Whether a create refusal is the slot's business: a quota other groups hold now (the
        backend's reason; a quota the request can never fit, `QUOTA_IMPOSSIBLE`, is not)."""
        return self.active and reason == FailureReason.QUOTA_EXHAUSTED

    def wait_out_quota(self, error: JobError, group: str) -> Steps:
        """A quota refusal: give the slot to the next job (the quota is someone else's) but keep the
        place (`step_aside`), back off, and ask again. Returns None once a slot is held again, or
        the `JobError` that ends the job (cancel, deadline in the queue: the place is given up)."""
        self.quota_waits += 1
        if self.token is None:
            # A job that queued before tokens: as it did then (its history may hold this very
            # signal), it leaves and queues again; the entity no longer keeps an old place for it.
            self.release()
        else:
            # The entity keeps the place, resting; the job it hands the slot to is told.
            yield from self.hand_on(slots.STEP_ASIDE)
        now: datetime = self._context.current_utc_datetime
        pause = slots.quota_backoff_seconds(error.retry_after_seconds or self._plan.provision_backoff_seconds,
                                            self.quota_waits)
        self._context.set_custom_status(slots.queued_status(None, group, now, now, "quota"))
        began = now
        if (yield from self._mailbox.sleep_unless(policy.wake_at(now, pause, self._deadline), policy.is_cancel)):
            self.waited_seconds += policy.seconds_between(began, self._context.current_utc_datetime)
            yield from self.hand_on()  # the place kept while resting
            return policy.cancelled_error()
        self.waited_seconds += policy.seconds_between(began, self._context.current_utc_datetime)
        return (yield from self.acquire(group, "quota"))


def _time(value: Any) -> datetime | None:
    try:
        return parse_utc(value) if isinstance(value, str) else None
    except ValueError:
        return None
