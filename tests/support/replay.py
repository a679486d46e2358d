"""A replay harness: plays the Durable extension's part for one orchestration instance, offline.

It drives an orchestrator through the SDK's own entry point, the way the Python worker does
(`FunctionBuilder.build().get_user_function()`, the context JSON decoded by the library's
`OrchestrationTriggerConverter`), with histories shaped like the extension's: replay schema V3
(`upperSchemaVersion` + `upperSchemaVersionNew`), `OrchestratorStarted` / `OrchestratorCompleted`
episodes, `IsPlayed`, one sequence counter shared by activities and timers, `%Y-%m-%dT%H:%M:%S.%fZ`
timestamps.

After each episode it reads the returned actions, checks that the ones already in the history
come back in the same order with the same names, inputs and fire times (the determinism check
the real host makes), appends `TaskScheduled` / `TimerCreated` for the new ones and schedules
their completions on a simulated clock: an activity completes `activity_seconds` later with what
the `activities` callable returns (or fails with what it raises), a timer fires at its `fireAt`
(a cancelled one too, as DTFx does), and events raised with `raise_event` arrive at their time.
A sub-orchestration is recorded as `SubOrchestrationInstanceCreated` and ends as the
`sub_orchestrations` callable says (a `ChildOutcome`: after how long, with what output or failure
message), with `SubOrchestrationInstanceCompleted` / `...Failed` carrying its `TaskScheduledId`.
Everything due at the same instant is delivered in one episode, in the order it was scheduled.
"""

from __future__ import annotations

import heapq
import itertools
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter, OrchestrationTriggerConverter

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
OUT_OF_PROC_MARK = "$OutOfProcData$:"

# History event types (DurableTask.Core.History.EventType).
EXECUTION_STARTED, TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 0, 4, 5, 6
SUB_ORCHESTRATION_CREATED, SUB_ORCHESTRATION_COMPLETED, SUB_ORCHESTRATION_FAILED = 7, 8, 9
TIMER_CREATED, TIMER_FIRED, ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED, EVENT_RAISED = 10, 11, 12, 13, 15
# Action types (azure.durable_functions.models.actions.ActionType).
CALL_ACTIVITY, CREATE_TIMER, WAIT_FOR_EXTERNAL_EVENT, WHEN_ANY, WHEN_ALL = 0, 5, 6, 11, 12
CALL_SUB_ORCHESTRATOR = 2


class NonDeterminismError(AssertionError):
    """A replay scheduled something other than what the history recorded."""


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


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


@dataclass(frozen=True)
class Scheduled:
    """One activity, timer or sub-orchestration, as the determinism check compares them."""

    kind: str  # "activity" | "timer" | "suborchestration"
    name: str | None
    input: str | None
    fire_at: str | None
    instance_id: str | None = None

    @classmethod
    def of(cls, action: dict[str, Any]) -> Scheduled:
        if action["actionType"] == CALL_ACTIVITY:
            return cls("activity", action["functionName"], action.get("input"), None)
        if action["actionType"] == CALL_SUB_ORCHESTRATOR:
            return cls("suborchestration", action["functionName"], action.get("input"), None, action.get("instanceId"))
        return cls("timer", None, None, action["fireAt"])


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
    instance_id: str | None
    input: Any
    scheduled_at: datetime
    outcome: ChildOutcome | None = None
    finished_at: datetime | None = None


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
    new: list[Scheduled]


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
    finished_at: datetime
    sub_orchestration_calls: list[SubOrchestrationCall] = field(default_factory=list)

    def calls(self, name: str) -> list[ActivityCall]:
        return [c for c in self.activity_calls if c.name == name]

    @property
    def activity_names(self) -> list[str]:
        return [c.name for c in self.activity_calls]

    @property
    def custom_statuses(self) -> list[Any]:
        return [e.state.get("customStatus") for e in self.episodes]


def flatten_actions(actions: list[Any]) -> list[dict[str, Any]]:
    """Activities and timers in the order the SDK numbered them (compound actions expanded)."""
    out: list[dict[str, Any]] = []

    def walk(a: Any) -> None:
        if isinstance(a, list):
            for x in a:
                walk(x)
            return
        kind = a["actionType"]
        if kind in (WHEN_ANY, WHEN_ALL):
            walk(a["compoundActions"])
        elif kind in (CALL_ACTIVITY, CREATE_TIMER, CALL_SUB_ORCHESTRATOR):
            out.append(a)
        elif kind != WAIT_FOR_EXTERNAL_EVENT:
            raise AssertionError(f"the harness does not simulate action type {kind}: {a}")

    walk(actions)
    return out


def run_activity_function(builder: Any) -> Callable[[str], str]:
    """Call a v2 activity like the worker: input JSON decoded by the library converter, result encoded."""
    user_function = builder.build().get_user_function()
    binding = next(b for b in builder.build().get_bindings() if b.type == "activityTrigger").name

    def call(input_json: str) -> str:
        value = ActivityTriggerConverter.decode(meta.Datum(type="json", value=input_json), trigger_metadata=None)
        result = user_function(**{binding: value})
        return ActivityTriggerConverter.encode(result, expected_type=None).value

    return call


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
    ):
        function = orchestrator.build()
        self._handle = function.get_user_function()
        self._binding = next(b for b in function.get_bindings() if b.type == "orchestrationTrigger").name
        self.name = name or function.get_function_name()
        self.instance_id = instance_id
        self.input = input
        self.start = start
        self.now = start
        self.activities = activities
        self.activity_seconds = activity_seconds
        self.history: list[dict[str, Any]] = []
        self._scheduled: list[Scheduled] = []
        self._queue: list[tuple[datetime, int, Callable[[], dict[str, Any] | None]]] = []
        self._order = itertools.count()
        self.activity_calls: list[ActivityCall] = []
        self.sub_orchestrations = sub_orchestrations
        self.sub_orchestration_calls: list[SubOrchestrationCall] = []
        self.timers: dict[int, TimerRecord] = {}
        self.episodes: list[Episode] = []

    # --- scripting ---------------------------------------------------------------------------

    def at(self, seconds: float) -> datetime:
        """A moment `seconds` after the orchestration's start."""
        return self.start + timedelta(seconds=seconds)

    def raise_event(self, seconds: float, payload: Any, *, name: str = "JobStatus", encoding: str = "dict") -> None:
        """Deliver an `EventRaised` `seconds` after the start."""
        event = {"EventType": EVENT_RAISED, "EventId": -1, "Name": name, "Input": encode_event(payload, encoding)}
        self._push(self.at(seconds), lambda: event)

    # --- the extension's loop ----------------------------------------------------------------

    def _push(self, due: datetime, make: Callable[[], dict[str, Any] | None]) -> None:
        heapq.heappush(self._queue, (due, next(self._order), make))

    def _event(self, event: dict[str, Any], at: datetime) -> dict[str, Any]:
        return {"IsPlayed": False, "Timestamp": format_time(at), **event}

    def _context_json(self) -> str:
        last_started = max(i for i, e in enumerate(self.history) if e["EventType"] == ORCHESTRATOR_STARTED)
        history = [{**e, "IsPlayed": i < last_started} for i, e in enumerate(self.history)]
        return json.dumps(
            {
                "history": history,
                "input": json.dumps(self.input) if isinstance(self.input, dict) else self.input,
                "instanceId": self.instance_id,
                "isReplaying": last_started > 0,
                "parentInstanceId": None,
                "upperSchemaVersion": 1,
                "upperSchemaVersionNew": 2,
                "maximumShortTimerDuration": "6.00:00:00",
                "longRunningTimerIntervalDuration": "3.00:00:00",
            }
        )

    def _invoke(self) -> tuple[dict[str, Any], bool]:
        context = OrchestrationTriggerConverter.decode(
            meta.Datum(type="string", value=self._context_json()), trigger_metadata=None
        )
        try:
            returned = self._handle(**{self._binding: context})
        except Exception as e:  # the SDK reports a failed orchestration by raising
            text = str(e)
            if OUT_OF_PROC_MARK not in text:
                raise
            return json.loads(text.split(OUT_OF_PROC_MARK, 1)[1]), True
        return json.loads(returned), False

    def _episode(self, delivered: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        self.history.append(self._event({"EventType": ORCHESTRATOR_STARTED, "EventId": -1}, self.now))
        if not self.episodes:
            self.history.append(
                self._event(
                    {"EventType": EXECUTION_STARTED, "EventId": -1, "Name": self.name, "Version": "",
                     "Input": json.dumps(self.input)},
                    self.now,
                )
            )
        self.history.extend(self._event(e, self.now) for e in delivered)
        state, failed = self._invoke()
        assert state.get("schemaVersion") == 2, "the SDK did not answer in replay schema V3"

        actions = flatten_actions(state.get("actions", []))
        wanted = [Scheduled.of(a) for a in actions]
        for i, (old, new) in enumerate(zip(self._scheduled, wanted, strict=False)):
            if old != new:
                raise NonDeterminismError(f"episode {len(self.episodes)}: action {i} was {old}, now {new}")
        if len(wanted) < len(self._scheduled):
            raise NonDeterminismError(
                f"episode {len(self.episodes)}: {len(self._scheduled)} actions recorded, replay made {len(wanted)}"
            )
        for seq, action in enumerate(actions):
            if action["actionType"] == CREATE_TIMER and action.get("isCanceled") and seq in self.timers:
                self.timers[seq].cancelled = True
        new = wanted[len(self._scheduled) :]
        for offset, action in enumerate(actions[len(self._scheduled) :]):
            self._schedule(len(self._scheduled) + offset, action)
        self._scheduled.extend(new)
        self.history.append(self._event({"EventType": ORCHESTRATOR_COMPLETED, "EventId": -1}, self.now))
        self.episodes.append(Episode(self.now, state, new))
        return state, failed

    def _schedule(self, seq: int, action: dict[str, Any]) -> None:
        if action["actionType"] == CALL_ACTIVITY:
            name, input_json = action["functionName"], action.get("input")
            self.history.append(
                self._event({"EventType": TASK_SCHEDULED, "EventId": seq, "Name": name, "Input": input_json}, self.now)
            )
            call = ActivityCall(seq, name, json.loads(input_json) if input_json else None, self.now)
            self.activity_calls.append(call)
            self._push(self.now + timedelta(seconds=self.activity_seconds), lambda: self._run_activity(call))
        elif action["actionType"] == CALL_SUB_ORCHESTRATOR:
            self._start_child(seq, action)
        else:
            fire_at = parse_time(action["fireAt"])
            self.history.append(
                self._event({"EventType": TIMER_CREATED, "EventId": seq, "FireAt": action["fireAt"]}, self.now)
            )
            record = TimerRecord(seq, self.now, fire_at, bool(action.get("isCanceled")))
            self.timers[seq] = record
            self._push(max(fire_at, self.now), lambda: self._fire(record, action["fireAt"]))

    def _start_child(self, seq: int, action: dict[str, Any]) -> None:
        name, input_json, instance_id = action["functionName"], action.get("input"), action.get("instanceId")
        self.history.append(
            self._event(
                {"EventType": SUB_ORCHESTRATION_CREATED, "EventId": seq, "Name": name, "Input": input_json,
                 "InstanceId": instance_id},
                self.now,
            )
        )
        call = SubOrchestrationCall(seq, name, instance_id, json.loads(input_json) if input_json else None, self.now)
        self.sub_orchestration_calls.append(call)
        if self.sub_orchestrations is None:
            raise AssertionError(f"a sub-orchestration {name!r} was scheduled, but the host simulates none")
        call.outcome = self.sub_orchestrations(call)
        self._push(self.now + timedelta(seconds=call.outcome.seconds), lambda: self._end_child(call))

    def _end_child(self, call: SubOrchestrationCall) -> dict[str, Any]:
        assert call.outcome is not None
        call.finished_at = self.now
        if call.outcome.failure is not None:
            # The extension's reason for a failed out-of-process orchestrator.
            return {"EventType": SUB_ORCHESTRATION_FAILED, "EventId": -1, "TaskScheduledId": call.seq,
                    "Reason": f"Orchestrator function '{call.name}' failed: {call.outcome.failure}",
                    "Details": None}
        return {"EventType": SUB_ORCHESTRATION_COMPLETED, "EventId": -1, "TaskScheduledId": call.seq,
                "Result": json.dumps(call.outcome.output)}

    def _fire(self, record: TimerRecord, fire_at: str) -> dict[str, Any]:
        record.fired = True
        return {"EventType": TIMER_FIRED, "EventId": -1, "TimerId": record.seq, "FireAt": fire_at}

    def _run_activity(self, call: ActivityCall) -> dict[str, Any]:
        try:
            result_json = self.activities(call.name, json.dumps(call.input))
        except Exception as e:
            call.error = str(e)
            return {
                "EventType": TASK_FAILED,
                "EventId": -1,
                "TaskScheduledId": call.seq,
                "Reason": str(e),
                "Details": traceback.format_exc(limit=2),
            }
        call.result = json.loads(result_json)
        return {"EventType": TASK_COMPLETED, "EventId": -1, "TaskScheduledId": call.seq, "Result": result_json}

    def run(self, max_episodes: int = 2000) -> RunResult:
        """Play episodes until the orchestration completes, fails, or has nothing left to wait for."""
        state, failed = self._episode([])
        while not (state.get("isDone") or failed) and self._queue:
            if len(self.episodes) >= max_episodes:
                raise AssertionError(f"still running after {max_episodes} episodes")
            due = self._queue[0][0]
            self.now = max(self.now, due)
            delivered = []
            while self._queue and self._queue[0][0] <= self.now:
                event = heapq.heappop(self._queue)[2]()
                if event is not None:
                    delivered.append(event)
            state, failed = self._episode(delivered)
        status = "Failed" if failed else "Completed" if state.get("isDone") else "Running"
        return RunResult(
            status=status,
            output=state.get("output"),
            error=state.get("error"),
            custom_status=state.get("customStatus"),
            episodes=self.episodes,
            activity_calls=self.activity_calls,
            timers=[self.timers[k] for k in sorted(self.timers)],
            history=self.history,
            finished_at=self.now,
            sub_orchestration_calls=self.sub_orchestration_calls,
        )
