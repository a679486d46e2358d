"""A job's place under the global cap (`MAX_RUNNING_JOBS`): the `job_slots` entity's client side.

Why a waiting job asks again on a durable timer rather than being told (docs/design.md, "Global
cap and queue"): a Python entity cannot send anything (azure-functions-durable 1.7:
`DurableEntityContext` has no signal, `Entity.handle` sends none), entities never raise events to
orchestrations, and the SDK has no critical section (`lock`). So the entity decides FIFO under
its own serialization, and the job learns its grant (or its place) by calling `acquire` again
after `job_slots.queue_recheck_seconds(position)`. The price: two episodes, one entity
operation and ~8 history events per re-check while queued; so the wait hands over to a new
generation like the watch does (`acquire`'s `hand_over`, between re-checks), and the next one
asks again with the same token: its place is kept.

The entity decides the cap, the order and who holds what (issue 19.5): the job sends only its id
and the token the entity gave it in the answer to its first ask (kept in the carry, so a new
generation keeps the place); `release` and `step_aside` (a quota refusal) need that token.

Every exit releases what it holds (`release`, a fire-and-forget signal that goes out even with
the episode that fails the orchestration); endings that run no orchestrator code (terminate,
purge, a crash) are the sweeper's (`sweeper.sweep.reconcile_slots`).
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
                return self._leave(began, policy.cancelled_error())
            if now >= self._deadline:
                return self._leave(began, policy.deadline_error(self._plan.deadline_seconds, PHASE_QUEUED))
            if hand_over is not None and policy.hand_over_due(mailbox.weight) and mailbox.settled():
                self.queued_since = began
                self._save()
                return hand_over(max(now, status_floor) if status_floor else now)
            request = slots.acquire_request(self._job_id, self.token, self._arrived, self._plan.max_running_jobs)
            self._member = True
            task = yield from mailbox.until_done(context.call_entity(SLOTS, slots.ACQUIRE, request))
            try:
                if isinstance(task.result, Exception):
                    raise slots.SlotError(str(task.result))
                grant = slots.Grant.from_wire(task.result)
            except slots.SlotError as e:
                return self._leave(began, JobError(ErrorCode.INTERNAL, f"job slots: {e}"[:300]))
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
            yield from mailbox.sleep_unless(fire_at, policy.is_cancel)

    def _leave(self, began: datetime, error: JobError) -> JobError:
        self.waited_seconds += policy.seconds_between(began, self._context.current_utc_datetime)
        self.release()
        return error

    def release(self) -> None:
        """Give the slot (or the place in the queue) back. Not a generator: a signal is never
        yielded (it takes its sequence id when made; a yield would take a second one)."""
        if not self.active or not self._member:
            return
        self._context.signal_entity(SLOTS, slots.RELEASE, slots.holder_request(self._job_id, self.token))
        self._member = self.held = False
        self.token = None
        self._save()

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
            # A signal, never yielded (see `release`); the entity keeps the place, resting.
            self._context.signal_entity(SLOTS, slots.STEP_ASIDE, slots.holder_request(self._job_id, self.token))
            self.held = False
            self._save()
        now: datetime = self._context.current_utc_datetime
        pause = slots.quota_backoff_seconds(error.retry_after_seconds or self._plan.provision_backoff_seconds,
                                            self.quota_waits)
        self._context.set_custom_status(slots.queued_status(None, group, now, now, "quota"))
        began = now
        if (yield from self._mailbox.sleep_unless(policy.wake_at(now, pause, self._deadline), policy.is_cancel)):
            self.waited_seconds += policy.seconds_between(began, self._context.current_utc_datetime)
            self.release()  # the place kept while resting
            return policy.cancelled_error()
        self.waited_seconds += policy.seconds_between(began, self._context.current_utc_datetime)
        return (yield from self.acquire(group, "quota"))


def _time(value: Any) -> datetime | None:
    try:
        return parse_utc(value) if isinstance(value, str) else None
    except ValueError:
        return None
