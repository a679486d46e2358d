"""A replay harness: the devhost's episode core (devhost/emulator/episode.py) driven on a simulated clock.

Each episode is the devhost's: the same history events, context JSON, SDK entry point
(`functions.run_orchestrator`), action planning and determinism check (strict: names, inputs,
fire times and child instance ids must replay). What this module adds is the scripting around
it: an activity completes `activity_seconds` after it was scheduled with what the `activities`
callable returns (or fails with what it raises); a timer fires at its `fireAt` (a cancelled one
too, as in Azure); events raised with `raise_event` arrive at their time; a sub-orchestration ends
as the `sub_orchestrations` callable says (a `ChildOutcome`). Everything due at the same instant
is delivered in one episode, in the order it was scheduled. A ContinueAsNew starts a new
execution at the same instant, with a fresh history; what the old execution was still waiting for
is dropped, events raised later reach the new one. An entity operation (`call_entity`,
`signal_entity`) goes to the `entities` callable (an `EntityCall`), in the order sent; a call's
answer (what it returns, or an error for what it raises) comes back `entity_seconds` later.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from azure.durable_functions.models.history import HistoryEventType

from devhost.emulator import history as H
from devhost.emulator.actions import NewActivity, NewEntityMessage, NewSubOrchestration, NewTimer, NonDeterminismError
from devhost.emulator.episode import COMPLETED, CONTINUED_AS_NEW, FAILED, Decision, decide, failure_output
from devhost.emulator.functions import (
    activity_failure,
    activity_from_builder,
    call_activity,
    orchestrator_from_builder,
    run_orchestrator,
)

__all__ = ["NonDeterminismError"]  # raised by `ReplayHost.run`; tests import it from here

# Names some tests build histories with (their owner is devhost.emulator.history).
ORCHESTRATOR_STARTED = HistoryEventType.ORCHESTRATOR_STARTED
format_time = H.format_timestamp


def encode_event(payload: Any, encoding: str = "dict") -> str:
    """The `Input` of an `EventRaised`: JSON text of the payload, of a JSON string of it
    (`string`: what the Python client's `raise_event` produces), or of that once more (`double`)."""
    if encoding == "dict":
        return json.dumps(payload)
    if encoding == "string":
        return json.dumps(json.dumps(payload))
    if encoding == "double":
        return json.dumps(json.dumps(json.dumps(payload)))
    if encoding == "raw":
        return payload
    raise ValueError(encoding)


@dataclass
class ActivityCall:
    seq: int
    name: str
    input: Any
    scheduled_at: datetime
    result: Any = None
    error: str | None = None


@dataclass(frozen=True)
class ChildOutcome:
    """How a simulated sub-orchestration ends: after `seconds`, with `output`, or failed with
    `failure` (the child's failure message, e.g. `"deadline_exceeded: ..."`)."""

    seconds: float
    output: Any = None
    failure: str | None = None


@dataclass
class SubOrchestrationCall:
    seq: int
    name: str
    instance_id: str
    input: Any
    scheduled_at: datetime
    outcome: ChildOutcome | None = None
    finished_at: datetime | None = None


@dataclass
class EntityCall:
    seq: int
    target: str
    """`@name@key`."""
    operation: str
    input: Any
    signal: bool
    at: datetime
    result: Any = None
    error: str | None = None


@dataclass
class TimerRecord:
    seq: int
    created_at: datetime
    fire_at: datetime
    cancelled: bool = False
    fired: bool = False


@dataclass
class Episode:
    at: datetime
    state: dict[str, Any]
    new: list[NewActivity | NewTimer | NewSubOrchestration]


@dataclass
class RunResult:
    status: str  # Completed | Failed | Running (nothing left to deliver)
    output: Any
    error: str | None
    custom_status: Any
    episodes: list[Episode]
    activity_calls: list[ActivityCall]
    timers: list[TimerRecord]
    history: list[dict[str, Any]]
    """The last execution's."""
    finished_at: datetime
    sub_orchestration_calls: list[SubOrchestrationCall] = field(default_factory=list)
    execution_history_sizes: list[int] = field(default_factory=list)
    """How many history events each execution ended with (one per ContinueAsNew, then the last)."""
    entity_calls: list[EntityCall] = field(default_factory=list)

    def calls(self, name: str) -> list[ActivityCall]:
        return [c for c in self.activity_calls if c.name == name]

    @property
    def activity_names(self) -> list[str]:
        return [c.name for c in self.activity_calls]

    @property
    def custom_statuses(self) -> list[Any]:
        return [e.state.get("customStatus") for e in self.episodes]


def run_activity_function(builder: Any) -> Callable[[str], str]:
    """Call a v2 activity like the worker: input JSON decoded by the library converter, result
    encoded; raises what the activity raises."""
    return partial(call_activity, activity_from_builder(builder))


def _loaded(value: str | None) -> Any:
    return json.loads(value) if value else None


@dataclass(order=True)
class _Due:
    """Something the simulated extension delivers at `at`: an event, made when it is due."""

    at: datetime
    order: int
    make: Callable[[], dict[str, Any]] = field(compare=False)
    execution: int | None = field(default=None, compare=False)
    """The execution it answers (None: any, like a raised event): an answer to an earlier
    execution is dropped, as DTFx drops messages naming an old ExecutionId."""


class ReplayHost:
    def __init__(
        self,
        orchestrator: Any,
        *,
        instance_id: str,
        input: Any,
        start: datetime,
        activities: Callable[[str, str], str],
        activity_seconds: float = 2.0,
        name: str | None = None,
        sub_orchestrations: Callable[[SubOrchestrationCall], ChildOutcome] | None = None,
        entities: Callable[[EntityCall], Any] | None = None,
        entity_seconds: float = 0.05,
    ):
        self._orchestrator = orchestrator_from_builder(orchestrator)
        self.name = name or self._orchestrator.name
        self.instance_id = instance_id
        self.start = start
        self.now = start
        self.activities = activities
        self.activity_seconds = activity_seconds
        self.sub_orchestrations = sub_orchestrations
        self.entities = entities
        self.entity_seconds = entity_seconds
        self.entity_calls: list[EntityCall] = []
        self.history: list[dict[str, Any]] = []
        self.execution = 0
        self.execution_history_sizes: list[int] = []
        self._queue: list[_Due] = []
        self._order = itertools.count()
        self.activity_calls: list[ActivityCall] = []
        self.sub_orchestration_calls: list[SubOrchestrationCall] = []
        self.timers: dict[tuple[int, int], TimerRecord] = {}
        self.episodes: list[Episode] = []
        self._custom_status: Any = None
        self._started = H.execution_started(start, self.name, input)

    # --- scripting ---------------------------------------------------------------------------

    def at(self, seconds: float) -> datetime:
        """A moment `seconds` after the orchestration's start."""
        return self.start + timedelta(seconds=seconds)

    def raise_event(self, seconds: float, payload: Any, *, name: str = "JobStatus", encoding: str = "dict") -> None:
        """Deliver an `EventRaised` `seconds` after the start."""
        at = self.at(seconds)
        self._push(at, lambda: H.event_raised_text(at, name, encode_event(payload, encoding)))

    # --- the extension's loop ----------------------------------------------------------------

    def _push(self, due: datetime, make: Callable[[], dict[str, Any]], execution: int | None = None) -> None:
        heapq.heappush(self._queue, _Due(due, next(self._order), make, execution))

    def _episode(self, delivered: list[dict[str, Any]]) -> Decision:
        decision = decide(
            instance_id=self.instance_id,
            name=self.name,
            past=self.history,
            new=H.new_events(self.now, delivered),
            now=self.now,
            invoke=partial(run_orchestrator, self._orchestrator),
            previous_custom_status=self._custom_status,
        )
        if decision.nondeterminism:
            raise NonDeterminismError(f"episode {len(self.episodes)}: {decision.nondeterminism}")
        if decision.exception is not None:
            raise decision.exception
        self.history.extend(decision.appended)
        self._custom_status = decision.custom_status
        self.episodes.append(Episode(self.now, decision.state,
                                     [*decision.activities, *decision.timers, *decision.children]))
        for timer_id in decision.cancelled_timer_ids:
            if (self.execution, timer_id) in self.timers:
                self.timers[self.execution, timer_id].cancelled = True
        for message in decision.entity_messages:  # sent however the episode ends (devhost/emulator/episode.py)
            self._send_to_entity(message)
        if decision.status == CONTINUED_AS_NEW:
            # DTFx sends the last episode's activities, timers and children too (devhost/emulator/engine.py
            # `_continue_as_new`); their answers name this execution, so they are dropped.
            for activity in decision.activities:
                self._schedule_activity(activity)
            for timer in decision.timers:
                self._schedule_timer(timer)
            for child in decision.children:
                self._start_child(child)
            assert decision.next_execution is not None
            self.execution_history_sizes.append(len(self.history))
            self.history, self.execution = [], self.execution + 1
            started = decision.next_execution
            self._push(self.now, lambda: started)
            return decision
        for activity in decision.activities:
            self._schedule_activity(activity)
        for timer in decision.timers:
            self._schedule_timer(timer)
        for child in decision.children:
            self._start_child(child)
        return decision

    def _schedule_activity(self, activity: NewActivity) -> None:
        call = ActivityCall(activity.task_id, activity.name, _loaded(activity.input), self.now)
        self.activity_calls.append(call)

        def run() -> dict[str, Any]:
            try:
                result_json = self.activities(call.name, json.dumps(call.input))
            except Exception as e:
                call.error = str(e)
                return H.task_failed(self.now, call.seq, *activity_failure(call.name, e))
            call.result = json.loads(result_json)
            return H.task_completed(self.now, call.seq, result_json)

        self._push(self.now + timedelta(seconds=self.activity_seconds), run, self.execution)

    def _schedule_timer(self, timer: NewTimer) -> None:
        record = TimerRecord(timer.timer_id, self.now, timer.fire_at, timer.cancelled)
        self.timers[self.execution, timer.timer_id] = record

        def fire() -> dict[str, Any]:
            record.fired = True
            return H.timer_fired(self.now, record.seq, record.fire_at)

        self._push(max(timer.fire_at, self.now), fire, self.execution)

    def _send_to_entity(self, message: NewEntityMessage) -> None:
        call = EntityCall(message.task_id, message.target, message.operation, _loaded(message.input), message.signal,
                          self.now)
        self.entity_calls.append(call)
        if self.entities is None:
            raise AssertionError(f"an entity operation {message.operation!r} was sent, but the host simulates none")
        try:
            call.result = self.entities(call)
        except Exception as e:
            call.error = str(e)
        if message.signal:
            return
        answer = H.entity_response(json.dumps(call.error if call.error is not None else call.result),
                                   call.error is not None)
        request_id = message.request_id

        def respond() -> dict[str, Any]:
            return H.event_raised_text(self.now, request_id, answer)

        self._push(self.now + timedelta(seconds=self.entity_seconds), respond, self.execution)

    def _start_child(self, child: NewSubOrchestration) -> None:
        call = SubOrchestrationCall(child.task_id, child.name, child.instance_id, _loaded(child.input), self.now)
        self.sub_orchestration_calls.append(call)
        if self.sub_orchestrations is None:
            raise AssertionError(f"a sub-orchestration {child.name!r} was scheduled, but the host simulates none")
        outcome = call.outcome = self.sub_orchestrations(call)

        def end() -> dict[str, Any]:
            call.finished_at = self.now
            if outcome.failure is not None:
                return H.child_outcome(self.now, call.seq, FAILED, failure_output(call.name, outcome.failure))
            return H.child_outcome(self.now, call.seq, COMPLETED, outcome.output)

        self._push(self.now + timedelta(seconds=outcome.seconds), end, self.execution)

    def _due_now(self) -> list[dict[str, Any]]:
        delivered = []
        while self._queue and self._queue[0].at <= self.now:
            due = heapq.heappop(self._queue)
            if due.execution in (None, self.execution):
                delivered.append(due.make())
        return delivered

    def run(self, max_episodes: int = 2000) -> RunResult:
        """Play episodes until the orchestration completes, fails, or has nothing left to wait for."""
        decision = self._episode([self._started])
        while self._queue and decision.status not in (COMPLETED, FAILED):
            if len(self.episodes) >= max_episodes:
                raise AssertionError(f"still running after {max_episodes} episodes")
            self.now = max(self.now, self._queue[0].at)
            delivered = self._due_now()
            if delivered:
                decision = self._episode(delivered)
        state = decision.state
        failed = decision.status == FAILED
        return RunResult(
            status=decision.status if decision.status in (COMPLETED, FAILED) else "Running",
            output=state.get("output"),
            # The orchestrator's own message; the extension's text when the host failed it.
            error=state.get("error") or (decision.output if failed else None),
            custom_status=state.get("customStatus"),
            episodes=self.episodes,
            activity_calls=self.activity_calls,
            timers=[self.timers[k] for k in sorted(self.timers)],
            history=self.history,
            finished_at=self.now,
            sub_orchestration_calls=self.sub_orchestration_calls,
            entity_calls=self.entity_calls,
            execution_history_sizes=[*self.execution_history_sizes, len(self.history)],
        )
