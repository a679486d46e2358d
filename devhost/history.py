"""History events shaped like the Durable extension's (the fields the Python SDK reads).

Pure constructors over plain dicts: what is stored in SQLite is exactly what the orchestrator
is sent, with `IsPlayed` recomputed per episode.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

EXECUTION_STARTED = 0
EXECUTION_COMPLETED = 1
EXECUTION_TERMINATED = 3
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
SUB_ORCHESTRATION_CREATED = 7
SUB_ORCHESTRATION_COMPLETED = 8
SUB_ORCHESTRATION_FAILED = 9
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_STARTED = 12
ORCHESTRATOR_COMPLETED = 13
EVENT_RAISED = 15

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_timestamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(s: str) -> datetime:
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _event(event_type: int, at: datetime, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    stamp = format_timestamp(at)
    return {"EventType": event_type, "EventId": event_id, "IsPlayed": False, "Timestamp": stamp, **fields}


def input_text(value: Any) -> str | None:
    """The extension hands inputs to Python as JSON text; a string input is already JSON text
    (the Python client encodes its payloads twice)."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def orchestrator_started(at: datetime) -> dict[str, Any]:
    return _event(ORCHESTRATOR_STARTED, at)


def orchestrator_completed(at: datetime) -> dict[str, Any]:
    return _event(ORCHESTRATOR_COMPLETED, at)


def execution_started(at: datetime, name: str, value: Any) -> dict[str, Any]:
    return _event(EXECUTION_STARTED, at, Name=name, Input=input_text(value), Version=None)


def execution_completed(at: datetime, status: str, result: Any) -> dict[str, Any]:
    return _event(EXECUTION_COMPLETED, at, OrchestrationStatus=status, Result=input_text(result))


def execution_terminated(at: datetime, reason: str | None) -> dict[str, Any]:
    return _event(EXECUTION_TERMINATED, at, Input=input_text(reason))


def task_scheduled(at: datetime, task_id: int, name: str, value: str | None) -> dict[str, Any]:
    return _event(TASK_SCHEDULED, at, task_id, Name=name, Input=value)


def task_completed(at: datetime, task_id: int, result: str | None) -> dict[str, Any]:
    return _event(TASK_COMPLETED, at, TaskScheduledId=task_id, Result=result)


def task_failed(at: datetime, task_id: int, reason: str, details: str | None) -> dict[str, Any]:
    return _event(TASK_FAILED, at, TaskScheduledId=task_id, Reason=reason, Details=details)


def sub_orchestration_created(at: datetime, task_id: int, name: str, instance_id: str, value: str | None
                              ) -> dict[str, Any]:
    return _event(SUB_ORCHESTRATION_CREATED, at, task_id, Name=name, InstanceId=instance_id, Input=value)


def sub_orchestration_completed(at: datetime, task_id: int, result: str | None) -> dict[str, Any]:
    return _event(SUB_ORCHESTRATION_COMPLETED, at, TaskScheduledId=task_id, Result=result)


def sub_orchestration_failed(at: datetime, task_id: int, reason: str, details: str | None) -> dict[str, Any]:
    return _event(SUB_ORCHESTRATION_FAILED, at, TaskScheduledId=task_id, Reason=reason, Details=details)


def timer_created(at: datetime, timer_id: int, fire_at: datetime) -> dict[str, Any]:
    return _event(TIMER_CREATED, at, timer_id, FireAt=format_timestamp(fire_at))


def timer_fired(at: datetime, timer_id: int, fire_at: datetime) -> dict[str, Any]:
    return _event(TIMER_FIRED, at, TimerId=timer_id, FireAt=format_timestamp(fire_at))


def event_raised(at: datetime, name: str, value: Any) -> dict[str, Any]:
    return _event(EVENT_RAISED, at, Name=name, Input=json.dumps(value))


def with_played_flags(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`IsPlayed` true before the last OrchestratorStarted (earlier episodes), false after."""
    last = max((i for i, e in enumerate(history) if e["EventType"] == ORCHESTRATOR_STARTED), default=-1)
    return [dict(e, IsPlayed=i < last) for i, e in enumerate(history)]
