"""From the SDK's actions to the work the host must do: the extension's replay, as a pure function.

In replay schema V3 the SDK answers every episode with all actions it has yielded so far
(`actions[0]`, compound WhenAny/WhenAll actions holding their children). Activities, timers,
sub-orchestrations and retry timers share one sequence counter in the order first yielded; an id
not yet in the history is new work. A sub-orchestration without an instance id gets
`<parent id>:<task id>` (deterministic, so a replay after a restart never starts a second child).

The determinism check: a replay must schedule, under every id the history holds, the same kind
of work with the same name (DTFx fails such a replay too), and the same input, fire time and
child instance id when `strict` (the default: a difference there means the orchestrator read
something that does not replay, which the extension would not notice but which is a bug all the
same). A replay that schedules fewer tasks than the history holds fails as well.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from azure.durable_functions.models.actions import ActionType as A
from azure.durable_functions.models.history import HistoryEventType as E

from devhost.emulator import history as H


class ReplayError(Exception):
    """The actions cannot be replayed against the history (unsupported or non-deterministic)."""


class NonDeterminismError(ReplayError):
    """A replay scheduled something other than what the history recorded."""


@dataclass(frozen=True)
class NewActivity:
    task_id: int
    name: str
    input: str | None


@dataclass(frozen=True)
class NewSubOrchestration:
    task_id: int
    name: str
    instance_id: str
    input: str | None
    version: str | None = None
    """The version the action names (`call_sub_orchestrator(..., version=)`); None: the host's default."""


@dataclass(frozen=True)
class NewTimer:
    timer_id: int
    fire_at: datetime
    cancelled: bool = False


@dataclass(frozen=True)
class NewEntityMessage:
    """A `call_entity` (answered by an `EventRaised` named `request_id`) or `signal_entity`."""

    task_id: int
    target: str
    """The entity's scheduler id, `@name@key` (the SDK lowercases the name)."""
    operation: str
    input: str | None
    request_id: str
    signal: bool
    parent: str = ""
    """The sending orchestration's instance id (where a call's answer goes)."""

    @property
    def entity_name(self) -> str:
        return self.target.split("@")[1]

    @property
    def entity_key(self) -> str:
        return self.target.split("@", 2)[2]

    def request(self) -> str:
        return H.entity_request(self.operation, H.request_input_from_action(self.input), self.request_id,
                                self.parent or None, None, self.signal)


@dataclass
class Plan:
    activities: list[NewActivity] = field(default_factory=list)
    timers: list[NewTimer] = field(default_factory=list)
    cancelled_timer_ids: set[int] = field(default_factory=set)
    sub_orchestrations: list[NewSubOrchestration] = field(default_factory=list)
    entity_messages: list[NewEntityMessage] = field(default_factory=list)
    continues_as_new: bool = False
    next_input: str | None = None
    """The next execution's input (JSON text) when the orchestrator continues as new."""

    def history_events(self, at: datetime) -> list[dict[str, Any]]:
        events = [(a.task_id, H.task_scheduled(at, a.task_id, a.name, a.input)) for a in self.activities]
        events += [
            (c.task_id, H.sub_orchestration_created(at, c.task_id, c.name, c.instance_id, c.input, c.version))
            for c in self.sub_orchestrations
        ]
        events += [(t.timer_id, H.timer_created(at, t.timer_id, t.fire_at)) for t in self.timers]
        events += [
            (m.task_id, H.event_sent(at, m.task_id, m.target, m.request())) for m in self.entity_messages
        ]
        return [e for _, e in sorted(events, key=lambda pair: pair[0])]


def _differs(task_id: int, field_name: str, recorded: Any, replayed: Any) -> NonDeterminismError:
    return NonDeterminismError(
        f"non-deterministic orchestrator: task {task_id} had {field_name} {recorded!r}, the replay {replayed!r}"
    )


@dataclass
class _Walk:
    now: datetime
    scheduled: dict[int, dict[str, Any]]
    failed: set[int]
    fired: set[int]
    instance_id: str
    strict: bool
    plan: Plan = field(default_factory=Plan)
    seq: int = 0

    def next_id(self) -> int:
        self.seq += 1
        return self.seq - 1

    def _known(self, task_id: int, kind: E, name: str | None, what: str) -> dict[str, Any] | None:
        """The recorded event of `task_id`, checked to be the same kind of work with the same name."""
        known = self.scheduled.get(task_id)
        if known is not None and (known["EventType"] != kind or known.get("Name") != name):
            raise NonDeterminismError(
                f"non-deterministic orchestrator: task {task_id} was {known.get('Name')!r}, now {what}"
            )
        return known

    def _same(self, task_id: int, field_name: str, recorded: Any, replayed: Any) -> None:
        if self.strict and recorded != replayed:
            raise _differs(task_id, field_name, recorded, replayed)

    def activity(self, name: str, value: str | None) -> int:
        task_id = self.next_id()
        known = self._known(task_id, E.TASK_SCHEDULED, name, repr(name))
        if known is None:
            self.plan.activities.append(NewActivity(task_id, name, value))
        else:
            self._same(task_id, "input", known.get("Input"), value)
        return task_id

    def timer(self, fire_at: datetime, cancelled: bool, *, from_code: bool = True) -> int:
        """A timer; `from_code` False for retry timers, whose fire time the host computes."""
        timer_id = self.next_id()
        known = self._known(timer_id, E.TIMER_CREATED, None, "a timer")
        if known is None:
            self.plan.timers.append(NewTimer(timer_id, fire_at, cancelled))
        elif from_code:
            self._same(timer_id, "fireAt", H.parse_timestamp(known["FireAt"]), fire_at)
        if cancelled:
            self.plan.cancelled_timer_ids.add(timer_id)
        return timer_id

    def sub_orchestration(self, name: str, instance_id: str | None, value: str | None,
                          version: str | None = None) -> int:
        task_id = self.next_id()
        known = self._known(task_id, E.SUB_ORCHESTRATION_INSTANCE_CREATED, name, f"the sub-orchestration {name!r}")
        child_id = instance_id or f"{self.instance_id}:{task_id}"
        if known is None:
            self.plan.sub_orchestrations.append(NewSubOrchestration(task_id, name, child_id, value, version))
        else:
            self._same(task_id, "instance id", known.get("InstanceId"), child_id)
            self._same(task_id, "input", known.get("Input"), value)
        return task_id

    def entity(self, action: dict[str, Any], signal: bool) -> int:
        """`call_entity` / `signal_entity`: one sequence id each, recorded as `EventSent`. The
        request id is made here, like the extension's deterministic `NewGuid()` (uuid5 over the
        instance, the episode's time and a counter), and read back from the history on replay."""
        task_id = self.next_id()
        target, operation, value = action.get("instanceId") or "", action.get("operation") or "", action.get("input")
        if not target.startswith("@") or target.count("@") < 2:
            raise ReplayError(f"not an entity id: {target!r}")
        known = self._known(task_id, E.EVENT_SENT, "op", f"the entity operation {operation!r}")
        if known is None:
            request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.instance_id}_{self.now.isoformat()}_{task_id}"))
            self.plan.entity_messages.append(NewEntityMessage(task_id, target, operation, value, request_id, signal,
                                                                self.instance_id))
            return task_id
        recorded = json.loads(known.get("Input") or "{}")
        self._same(task_id, "entity", known.get("InstanceId"), target)
        if recorded.get("op") != operation or bool(recorded.get("signal")) != signal:
            raise _differs(task_id, "entity operation", (recorded.get("op"), bool(recorded.get("signal"))),
                           (operation, signal))
        self._same(task_id, "input", recorded.get("input"), H.request_input_from_action(value))
        return task_id

    def retrying(self, action: dict[str, Any], schedule: Callable[[], int]) -> None:
        """An activity or sub-orchestration with retry options: attempts with a timer after each failure."""
        options = action.get("retryOptions") or {}
        max_attempts = int(options.get("maxNumberOfAttempts", 1))
        interval = timedelta(milliseconds=int(options.get("firstRetryIntervalInMilliseconds", 0)))
        attempt, task_id = 1, schedule()
        # The SDK waits for a retry timer after every failed attempt, the last one included.
        while task_id in self.failed:
            timer_id = self.timer(self.now + interval, cancelled=False, from_code=False)
            if timer_id not in self.fired or attempt >= max_attempts:
                return
            attempt, task_id = attempt + 1, schedule()

    def visit(self, action: dict[str, Any]) -> None:
        kind = action.get("actionType")
        name, value = action.get("functionName"), action.get("input")
        if kind == A.CALL_ACTIVITY:
            self.activity(name, value)
        elif kind == A.CALL_ACTIVITY_WITH_RETRY:
            self.retrying(action, lambda: self.activity(name, value))
        elif kind == A.CALL_SUB_ORCHESTRATOR:
            self.sub_orchestration(name, action.get("instanceId"), value, action.get("version"))
        elif kind == A.CALL_SUB_ORCHESTRATOR_WITH_RETRY:
            self.retrying(action, lambda: self.sub_orchestration(name, action.get("instanceId"), value,
                                                                 action.get("version")))
        elif kind == A.CREATE_TIMER:
            self.timer(H.parse_timestamp(action["fireAt"]), bool(action.get("isCanceled")))
        elif kind == A.CALL_ENTITY:
            self.entity(action, signal=False)
        elif kind == A.SIGNAL_ENTITY:
            self.entity(action, signal=True)
        elif kind == A.WAIT_FOR_EXTERNAL_EVENT:
            pass  # matched by name; takes no sequence id
        elif kind == A.CONTINUE_AS_NEW:
            self.plan.continues_as_new = True
            self.plan.next_input = value
        elif kind in (A.WHEN_ANY, A.WHEN_ALL):
            for child in action.get("compoundActions") or []:
                self.visit(child)
        else:  # durable HTTP and scheduled signals: one place to add them
            raise ReplayError(f"the devhost does not support action type {kind} yet")

    def check_nothing_missing(self) -> None:
        missing = sorted(task_id for task_id in self.scheduled if task_id >= self.seq)
        if missing:
            raise NonDeterminismError(
                f"non-deterministic orchestrator: the history holds task {missing[0]}, "
                f"the replay scheduled only {self.seq} task(s)"
            )


def plan_actions(
    actions: list[list[dict[str, Any]]],
    history: list[dict[str, Any]],
    now: datetime,
    instance_id: str = "",
    *,
    strict: bool = True,
) -> Plan:
    """The new activities, timers, sub-orchestrations and entity messages (and every cancelled timer) that `actions`
    asks for. `instance_id` (the orchestration's own) names children started without an id.
    Raises `NonDeterminismError` when the actions do not replay the history."""
    kinds = (E.TASK_SCHEDULED, E.TIMER_CREATED, E.SUB_ORCHESTRATION_INSTANCE_CREATED, E.EVENT_SENT)
    scheduled = {e["EventId"]: e for e in history if e["EventType"] in kinds}
    failures = (E.TASK_FAILED, E.SUB_ORCHESTRATION_INSTANCE_FAILED)
    failed = {e["TaskScheduledId"] for e in history if e["EventType"] in failures}
    fired = {e["TimerId"] for e in history if e["EventType"] == E.TIMER_FIRED}
    walk = _Walk(now, scheduled, failed, fired, instance_id, strict)
    if len(actions) > 1:
        raise ReplayError("expected replay schema V3 (one action list)")
    for action in actions[0] if actions else []:
        walk.visit(action)
    walk.check_nothing_missing()
    return walk.plan
