"""What both orchestrations are built on: the `JobStatus` mailbox, replay-safe logging, the failure.

Events and the Python SDK (azure-functions-durable 1.7): an `EventRaised` that arrives while no
`wait_for_external_event` task is open is parked in a single slot per name that is never
cleared, so every later wait for that name receives the same event again, and a second early
event overwrites the first (azure-functions-durable-python#507). The `Mailbox` keeps one waiter
open in *every* yield (`task_any([waiter, work])`) and renews it as soon as an event is taken, so
no event ever reaches that slot; events that arrive while an activity or a timer runs are kept in
order (those `keep` accepts) and handled afterwards. So an orchestration yields through its
mailbox only, from its first task to its last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from datetime import datetime
from typing import Any

from azure.durable_functions.models.history import HistoryEventType

from videojob.contract.wire import EVENT_NAME
from videojob.domain.activity_wire import failed_activity_error

Steps = Generator[Any, Any, Any]
NOTHING = object()
"""No event (`Mailbox.take`, `next_event`, `any_of`)."""


class OrchestrationFailed(Exception):
    """An orchestration's failure. Its message starts with the error code."""


def replay_safe_log(context: Any, logger: logging.Logger, level: int, message: str, *args: Any) -> None:
    """Log once per decision, not again on every replay of it."""
    if not context.is_replaying:
        logger.log(level, message, *args)


def raised_events_in_history(context: Any) -> int:
    """How many `JobStatus` events this execution's history holds, those of the episode being
    played included (the SDK replays the history one event at a time, so the orchestrator may
    run while later events of the same batch are still unread).

    The SDK 1.7 has no other way to ask: `context.histories` is a public property of
    `DurableOrchestrationContext`, but not a documented API, hence this one function, and
    tests/orchestration/test_generations.py::test_sdk_still_shows_raised_events fails if the SDK
    stops showing the history there."""
    return sum(
        1 for e in context.histories
        if e.event_type == HistoryEventType.EVENT_RAISED and getattr(e, "Name", None) == EVENT_NAME
    )


class Mailbox:
    """Every yield of an orchestration goes through here, with a `JobStatus` waiter beside it.
    Events `keep` refuses are dropped when they arrive.

    `weight` counts the yields that returned (each one a completed task: an event, an activity's
    result, a timer) and `received` the events taken, both in this execution, so both replay
    alike: what a generation's hand-over is decided on (`settled`)."""

    def __init__(self, context: Any, keep: Callable[[Any], bool] = lambda _: True):
        self._context = context
        self._keep = keep
        self._waiter = context.wait_for_external_event(EVENT_NAME)
        self._inbox: list[Any] = []
        self.weight = 0
        self.received = 0

    def settled(self) -> bool:
        """No event held, and every `JobStatus` event in the history taken: a `continue_as_new`
        now discards no event (the extension drops the unread ones with the old history).
        O(history): ask only once a hand-over is due. Replay-safe: a replay's history holds at
        least the events the first play saw, so an unsettled answer stays unsettled, and a
        settled one ended the execution."""
        return not self._inbox and raised_events_in_history(self._context) == self.received

    def _receive(self) -> None:
        self.received += 1
        if self._keep(self._waiter.result):
            self._inbox.append(self._waiter.result)
        self._waiter = self._context.wait_for_external_event(EVENT_NAME)

    def take(self) -> Any:
        """The oldest event not handled yet, or `NOTHING`."""
        return self._inbox.pop(0) if self._inbox else NOTHING

    def holds(self, predicate: Callable[[Any], bool]) -> bool:
        return any(predicate(p) for p in self._inbox)

    def next_event(self, work: Any) -> Steps:
        """Wait for the next event or for `work` to complete; returns the event or `NOTHING`."""
        if self._inbox:
            return self._inbox.pop(0)
        if work.is_completed:
            return NOTHING
        winner = yield self._context.task_any([self._waiter, work])
        self.weight += 1
        if winner is self._waiter:
            self._receive()
            return self.take()
        return NOTHING

    def any_of(self, tasks: list[Any]) -> Steps:
        """Wait for the first of `tasks` or an event: returns the winning task, or `NOTHING` when an
        event came first (it is in the inbox if kept)."""
        winner = yield self._context.task_any([*tasks, self._waiter])
        self.weight += 1
        if winner is self._waiter:
            self._receive()
            return NOTHING
        return winner

    def until_done(self, work: Any) -> Steps:
        """Wait for `work`, keeping every event that arrives meanwhile."""
        while not work.is_completed:
            winner = yield self._context.task_any([self._waiter, work])
            self.weight += 1
            if winner is self._waiter:
                self._receive()
        return work

    def call(self, name: str, payload: dict[str, Any]) -> Steps:
        """Call an activity; an activity that raised answers like one that failed cleanly."""
        task = yield from self.until_done(self._context.call_activity(name, payload))
        if isinstance(task.result, Exception):
            return {"ok": False, "error": failed_activity_error(task.result).to_wire()}
        return task.result

    def sleep_until(self, fire_at: datetime) -> Steps:
        yield from self.until_done(self._context.create_timer(fire_at))

    def sleep_unless(self, fire_at: datetime, stop: Callable[[Any], bool]) -> Steps:
        """Sleep until `fire_at`, waking early (timer cancelled) once an event matching `stop` is
        held; returns whether one is. Every event stays in the inbox."""
        timer = self._context.create_timer(fire_at)
        while not timer.is_completed:
            if self.holds(stop):
                timer.cancel()
                return True
            winner = yield self._context.task_any([self._waiter, timer])
            self.weight += 1
            if winner is self._waiter:
                self._receive()
        return self.holds(stop)
