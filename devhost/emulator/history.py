"""History events shaped like the Durable extension's (the fields the Python SDK reads).

Pure constructors over plain dicts, typed with the SDK's own `HistoryEventType` and time format:
what is stored in SQLite (or kept by the test harness) is exactly what the orchestrator is sent,
with `IsPlayed` recomputed per episode. Also the status API's view of a history.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from azure.durable_functions import OrchestrationRuntimeStatus as S
from azure.durable_functions.constants import DATETIME_STRING_FORMAT
from azure.durable_functions.models.history import HistoryEventType as E

# What the SDK does not name (the extension's own values):
STATUS_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
"""`createdTime` / `lastUpdatedTime` in the status API (seconds, no fraction)."""
MAX_SHORT_TIMER = "6.00:00:00"
"""The context's `maximumShortTimerDuration`: longer timers become chains of shorter ones."""
LONG_TIMER_INTERVAL = "3.00:00:00"
"""The context's `longRunningTimerIntervalDuration`: the length of each link of such a chain."""


def format_timestamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime(DATETIME_STRING_FORMAT)


def parse_timestamp(s: str) -> datetime:
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _event(event_type: E, at: datetime, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    stamp = format_timestamp(at)
    return {"EventType": int(event_type), "EventId": event_id, "IsPlayed": False, "Timestamp": stamp, **fields}


def input_text(value: Any) -> str | None:
    """The extension hands inputs to Python as JSON text; a string input is already JSON text
    (the Python client encodes its payloads twice)."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def orchestrator_started(at: datetime) -> dict[str, Any]:
    return _event(E.ORCHESTRATOR_STARTED, at)


def orchestrator_completed(at: datetime) -> dict[str, Any]:
    return _event(E.ORCHESTRATOR_COMPLETED, at)


def execution_started(at: datetime, name: str, value: Any, parent: dict[str, Any] | None = None,
                      version: str | None = None) -> dict[str, Any]:
    """`Version` is what the SDK's `context.version` reads (DurableOrchestrationContext
    `_extract_version_from_history`)."""
    event = _event(E.EXECUTION_STARTED, at, Name=name, Input=input_text(value), Version=version)
    if parent is not None:
        event["ParentInstance"] = parent
    return event


def execution_completed(at: datetime, status: str, result: Any) -> dict[str, Any]:
    return _event(E.EXECUTION_COMPLETED, at, OrchestrationStatus=status, Result=input_text(result))


def continued_as_new(at: datetime, new_input: str | None) -> dict[str, Any]:
    """The last event of an execution that continues as new (DTFx's `ContinueAsNewEvent`)."""
    return _event(E.CONTINUE_AS_NEW, at, OrchestrationStatus="ContinuedAsNew", Result=new_input)


def execution_terminated(at: datetime, reason: str | None) -> dict[str, Any]:
    return _event(E.EXECUTION_TERMINATED, at, Input=input_text(reason))


def task_scheduled(at: datetime, task_id: int, name: str, value: str | None) -> dict[str, Any]:
    return _event(E.TASK_SCHEDULED, at, task_id, Name=name, Input=value)


def task_completed(at: datetime, task_id: int, result: str | None) -> dict[str, Any]:
    return _event(E.TASK_COMPLETED, at, TaskScheduledId=task_id, Result=result)


def task_failed(at: datetime, task_id: int, reason: str, details: str | None) -> dict[str, Any]:
    return _event(E.TASK_FAILED, at, TaskScheduledId=task_id, Reason=reason, Details=details)


def sub_orchestration_created(at: datetime, task_id: int, name: str, instance_id: str, value: str | None,
                              version: str | None = None) -> dict[str, Any]:
    return _event(E.SUB_ORCHESTRATION_INSTANCE_CREATED, at, task_id, Name=name, InstanceId=instance_id, Input=value,
                  Version=version)


def sub_orchestration_completed(at: datetime, task_id: int, result: str | None) -> dict[str, Any]:
    return _event(E.SUB_ORCHESTRATION_INSTANCE_COMPLETED, at, TaskScheduledId=task_id, Result=result)


def sub_orchestration_failed(at: datetime, task_id: int, reason: str, details: str | None) -> dict[str, Any]:
    return _event(E.SUB_ORCHESTRATION_INSTANCE_FAILED, at, TaskScheduledId=task_id, Reason=reason, Details=details)


def child_outcome(at: datetime, task_id: int, status: str, output: Any) -> dict[str, Any]:
    """What the parent's history records when its child ended `Completed`, `Terminated` or `Failed`
    (`output` is the child's output, termination reason or failure text)."""
    if status == S.Completed.value:
        # The output as the orchestrator returned it (a string is a value here, not JSON text).
        return sub_orchestration_completed(at, task_id, json.dumps(output))
    if status == S.Terminated.value:
        return sub_orchestration_failed(at, task_id, f"the sub-orchestration was terminated: {output}", None)
    return sub_orchestration_failed(at, task_id, str(output), None)


def timer_created(at: datetime, timer_id: int, fire_at: datetime) -> dict[str, Any]:
    return _event(E.TIMER_CREATED, at, timer_id, FireAt=format_timestamp(fire_at))


def timer_fired(at: datetime, timer_id: int, fire_at: datetime) -> dict[str, Any]:
    return _event(E.TIMER_FIRED, at, TimerId=timer_id, FireAt=format_timestamp(fire_at))


def event_raised(at: datetime, name: str, value: Any) -> dict[str, Any]:
    return event_raised_text(at, name, json.dumps(value))


def event_raised_text(at: datetime, name: str, text: str | None) -> dict[str, Any]:
    """An `EventRaised` whose `Input` is given as the JSON text the orchestrator will decode."""
    return _event(E.EVENT_RAISED, at, Name=name, Input=text)


def event_sent(at: datetime, event_id: int, target_instance_id: str, request_text: str) -> dict[str, Any]:
    """An orchestration's message to an entity (`call_entity` / `signal_entity`): the extension's
    `SendEvent(target, "op", RequestMessage)`, recorded under the task's sequence id."""
    return _event(E.EVENT_SENT, at, event_id, InstanceId=target_instance_id, Name="op", Input=request_text)


def entity_request(operation: str, input_text: str | None, request_id: str, parent: str | None,
                   parent_execution: str | None, signal: bool) -> str:
    """The extension's `RequestMessage` JSON (EntityScheduler/RequestMessage.cs). `input_text` is
    its `Input` exactly as the extension sets it (`request_input_from_action`,
    `request_input_from_http`): the entity trigger receives it unchanged."""
    message: dict[str, Any] = {"op": operation, "id": request_id}
    if signal:
        message["signal"] = True
    if input_text is not None:
        message["input"] = input_text
    if parent is not None:
        message["parent"] = parent
        message["parentExecution"] = parent_execution
    return json.dumps(message)


def request_input_from_action(action_input: str | None) -> str | None:
    """`RequestMessage.Input` for an orchestration's `call_entity` / `signal_entity`: the SDK's
    action carries the input as JSON text (a string), and `RequestMessage.SetInput` serializes
    that string once more (`MessagePayloadDataConverter.Serialize` of a non-JToken object)."""
    return None if action_input is None else json.dumps(action_input)


def request_input_from_http(body: str, media_type: str) -> str:
    """`RequestMessage.Input` for a signal through the entity HTTP API (HttpApiHandler
    `HandlePostEntityOperationRequestAsync`): an `application/json` body is parsed into a JSON
    token and written back as is (`JToken.ToString(Formatting.None)`); any other body is a string,
    serialized as one. Raises ValueError for a JSON body that does not parse."""
    if media_type.lower() == "application/json":
        return json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
    return json.dumps(body, ensure_ascii=False)


def entity_response(result_text: str | None, is_error: bool) -> str:
    """The extension's `ResponseMessage` JSON: `exceptionType` only on error."""
    message: dict[str, Any] = {"result": result_text}
    if is_error:
        message["exceptionType"] = "Error"
    return json.dumps(message)


def new_events(now: datetime, delivered: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """An episode's new events: `OrchestratorStarted`, then an `ExecutionStarted` if one is
    delivered (it must come first, as DTFx assumes; the SDK reads it at index 1), then the rest
    in arrival order."""
    started = [e for e in delivered if e["EventType"] == E.EXECUTION_STARTED]
    rest = [e for e in delivered if e["EventType"] != E.EXECUTION_STARTED]
    return [orchestrator_started(now), *started, *rest]


def with_played_flags(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`IsPlayed` true before the last OrchestratorStarted (earlier episodes), false after."""
    last = max((i for i, e in enumerate(history) if e["EventType"] == E.ORCHESTRATOR_STARTED), default=-1)
    return [dict(e, IsPlayed=i < last) for i, e in enumerate(history)]


# -- the status API's view ----------------------------------------------------------------------

_HIDDEN = (E.TASK_SCHEDULED, E.ORCHESTRATOR_STARTED, E.ORCHESTRATOR_COMPLETED)
_COMPLETIONS = (E.TASK_COMPLETED, E.TASK_FAILED, E.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
                E.SUB_ORCHESTRATION_INSTANCE_FAILED)
_FAILURES = (E.TASK_FAILED, E.SUB_ORCHESTRATION_INSTANCE_FAILED)


def event_type_name(event_type: int) -> str:
    """`TaskCompleted` for `HistoryEventType.TASK_COMPLETED`: the names the status API shows."""
    return "".join(word.capitalize() for word in E(event_type).name.split("_"))


def history_for_status(history: list[dict[str, Any]], show_output: bool) -> list[dict[str, Any]]:
    """`historyEvents` as the status API shows them: named event types, no episode delimiters,
    completions carrying the function name (outputs only with showHistoryOutput)."""
    kinds = (E.TASK_SCHEDULED, E.SUB_ORCHESTRATION_INSTANCE_CREATED)
    scheduled = {e["EventId"]: e for e in history if e["EventType"] in kinds}
    out: list[dict[str, Any]] = []
    for e in history:
        kind = e["EventType"]
        if kind in _HIDDEN:
            continue
        item: dict[str, Any] = {"EventType": event_type_name(kind), "Timestamp": e["Timestamp"]}
        if kind in _COMPLETIONS:
            origin = scheduled.get(e["TaskScheduledId"], {})
            item["FunctionName"] = origin.get("Name")
            item["ScheduledTime"] = origin.get("Timestamp")
            if origin.get("InstanceId"):
                item["InstanceId"] = origin["InstanceId"]
            if kind in _FAILURES:
                item["Reason"] = e.get("Reason")
            elif show_output:
                item["Result"] = _maybe_json(e.get("Result"))
        elif kind == E.SUB_ORCHESTRATION_INSTANCE_CREATED:
            item["FunctionName"] = e.get("Name")
            item["InstanceId"] = e.get("InstanceId")
            if show_output:
                item["Input"] = _maybe_json(e.get("Input"))
        elif kind in (E.EXECUTION_STARTED, E.EVENT_RAISED):
            item["Name" if kind == E.EVENT_RAISED else "FunctionName"] = e.get("Name")
            if show_output:
                item["Input"] = _maybe_json(e.get("Input"))
        elif kind in (E.TIMER_CREATED, E.TIMER_FIRED):
            item["FireAt"] = e.get("FireAt")
        elif kind == E.EVENT_SENT:
            item["InstanceId"] = e.get("InstanceId")
            item["Name"] = e.get("Name")
        elif kind in (E.EXECUTION_COMPLETED, E.CONTINUE_AS_NEW):
            item["OrchestrationStatus"] = e.get("OrchestrationStatus")
            if show_output:
                item["Result"] = _maybe_json(e.get("Result"))
        out.append(item)
    return out


def _maybe_json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
