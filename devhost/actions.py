"""From the SDK's actions to the work the host must do: the extension's replay, as a pure function.

In replay schema V3 the SDK answers every episode with all actions it has yielded so far
(`actions[0]`, compound WhenAny/WhenAll actions holding their children). Activities, timers,
sub-orchestrations and retry timers share one sequence counter in the order first yielded; an id
not yet in the history is new work. A scheduled id whose recorded name differs is a replay
(determinism) failure. A sub-orchestration without an instance id gets `<parent id>:<task id>`
(deterministic, so a replay after a restart never starts a second child).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import history as H

CALL_ACTIVITY = 0
CALL_ACTIVITY_WITH_RETRY = 1
CALL_SUB_ORCHESTRATOR = 2
CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
CREATE_TIMER = 5
WAIT_FOR_EXTERNAL_EVENT = 6
WHEN_ANY = 11
WHEN_ALL = 12


class ReplayError(Exception):
    """The actions cannot be replayed against the history (unsupported or non-deterministic)."""


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


@dataclass(frozen=True)
class NewTimer:
    timer_id: int
    fire_at: datetime
    cancelled: bool = False


@dataclass
class Plan:
    activities: list[NewActivity] = field(default_factory=list)
    timers: list[NewTimer] = field(default_factory=list)
    cancelled_timer_ids: set[int] = field(default_factory=set)
    sub_orchestrations: list[NewSubOrchestration] = field(default_factory=list)

    def history_events(self, at: datetime) -> list[dict[str, Any]]:
        events = [(a.task_id, H.task_scheduled(at, a.task_id, a.name, a.input)) for a in self.activities]
        events += [
            (c.task_id, H.sub_orchestration_created(at, c.task_id, c.name, c.instance_id, c.input))
            for c in self.sub_orchestrations
        ]
        events += [(t.timer_id, H.timer_created(at, t.timer_id, t.fire_at)) for t in self.timers]
        return [e for _, e in sorted(events, key=lambda pair: pair[0])]


@dataclass
class _Walk:
    now: datetime
    scheduled: dict[int, dict[str, Any]]
    failed: set[int]
    fired: set[int]
    plan: Plan = field(default_factory=Plan)
    seq: int = 0
    instance_id: str = ""

    def next_id(self) -> int:
        self.seq += 1
        return self.seq - 1

    def activity(self, name: str, value: str | None) -> int:
        task_id = self.next_id()
        known = self.scheduled.get(task_id)
        if known is None:
            self.plan.activities.append(NewActivity(task_id, name, value))
        elif known["EventType"] != H.TASK_SCHEDULED or known.get("Name") != name:
            raise ReplayError(f"non-deterministic orchestrator: task {task_id} was {known.get('Name')!r}, now {name!r}")
        return task_id

    def timer(self, fire_at: datetime, cancelled: bool) -> int:
        timer_id = self.next_id()
        known = self.scheduled.get(timer_id)
        if known is None:
            self.plan.timers.append(NewTimer(timer_id, fire_at, cancelled))
        elif known["EventType"] != H.TIMER_CREATED:
            raise ReplayError(f"non-deterministic orchestrator: task {timer_id} was {known.get('Name')!r}, now a timer")
        if cancelled:
            self.plan.cancelled_timer_ids.add(timer_id)
        return timer_id

    def sub_orchestration(self, name: str, instance_id: str | None, value: str | None) -> int:
        task_id = self.next_id()
        known = self.scheduled.get(task_id)
        if known is None:
            child_id = instance_id or f"{self.instance_id}:{task_id}"
            self.plan.sub_orchestrations.append(NewSubOrchestration(task_id, name, child_id, value))
        elif known["EventType"] != H.SUB_ORCHESTRATION_CREATED or known.get("Name") != name:
            raise ReplayError(f"non-deterministic orchestrator: task {task_id} was {known.get('Name')!r}, "
                              f"now the sub-orchestration {name!r}")
        return task_id

    def retrying(self, action: dict[str, Any], schedule: Any) -> None:
        """An activity or sub-orchestration with retry options: attempts with a timer after each failure."""
        options = action.get("retryOptions") or {}
        max_attempts = int(options.get("maxNumberOfAttempts", 1))
        interval = timedelta(milliseconds=int(options.get("firstRetryIntervalInMilliseconds", 0)))
        attempt, task_id = 1, schedule()
        # The SDK waits for a retry timer after every failed attempt, the last one included.
        while task_id in self.failed:
            timer_id = self.timer(self.now + interval, cancelled=False)
            if timer_id not in self.fired or attempt >= max_attempts:
                return
            attempt, task_id = attempt + 1, schedule()

    def retrying_activity(self, action: dict[str, Any]) -> None:
        self.retrying(action, lambda: self.activity(action["functionName"], action.get("input")))

    def visit(self, action: dict[str, Any]) -> None:
        kind = action.get("actionType")
        if kind == CALL_ACTIVITY:
            self.activity(action["functionName"], action.get("input"))
        elif kind == CALL_ACTIVITY_WITH_RETRY:
            self.retrying_activity(action)
        elif kind == CALL_SUB_ORCHESTRATOR:
            self.sub_orchestration(action["functionName"], action.get("instanceId"), action.get("input"))
        elif kind == CALL_SUB_ORCHESTRATOR_WITH_RETRY:
            name, child_id, value = action["functionName"], action.get("instanceId"), action.get("input")
            self.retrying(action, lambda: self.sub_orchestration(name, child_id, value))
        elif kind == CREATE_TIMER:
            self.timer(H.parse_timestamp(action["fireAt"]), bool(action.get("isCanceled")))
        elif kind == WAIT_FOR_EXTERNAL_EVENT:
            pass  # matched by name; takes no sequence id
        elif kind in (WHEN_ANY, WHEN_ALL):
            for child in action.get("compoundActions") or []:
                self.visit(child)
        else:
            raise ReplayError(f"the devhost does not support action type {kind}")


def plan_actions(
    actions: list[list[dict[str, Any]]], history: list[dict[str, Any]], now: datetime, instance_id: str = ""
) -> Plan:
    """The new activities, timers and sub-orchestrations (and every cancelled timer) that `actions`
    asks for. `instance_id` (the orchestration's own) names children started without an id."""
    kinds = (H.TASK_SCHEDULED, H.TIMER_CREATED, H.SUB_ORCHESTRATION_CREATED)
    scheduled = {e["EventId"]: e for e in history if e["EventType"] in kinds}
    failed = {e["TaskScheduledId"] for e in history if e["EventType"] in (H.TASK_FAILED, H.SUB_ORCHESTRATION_FAILED)}
    fired = {e["TimerId"] for e in history if e["EventType"] == H.TIMER_FIRED}
    walk = _Walk(now, scheduled, failed, fired, instance_id=instance_id)
    if len(actions) > 1:
        raise ReplayError("expected replay schema V3 (one action list)")
    for action in actions[0] if actions else []:
        walk.visit(action)
    return walk.plan
