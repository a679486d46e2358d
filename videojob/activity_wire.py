"""The activity payloads: what the orchestrator sends to each activity and what it gets back.

One owner for these shapes (the `activities/` functions and the `download_job` orchestrator both
use this module). JSON is camelCase, like every other wire shape in the project.

- `create_container_group`: `{"jobId", "request": DownloadRequest wire, "createdAt", "deadline"}`
  -> `{"ok": true, "group", "state"}` or `{"ok": false, "group", "error"}`
- `inspect_container_group`: `{"group"}`
  -> `{"ok": true, "state", "exitCode", "detail", "logTail"}` or `{"ok": false, "error"}`
- `stop_container_group`, `delete_container_group`: `{"group"}`
  -> `{"ok": true}` or `{"ok": false, "error"}`

- Times are UTC ISO 8601 with a `Z` suffix (second precision).
- `error` is `{"code", "message", "retryable"}`. For a backend failure `code` is the backend's
  (for ACI: the ARM error code, e.g. `InaccessibleImage`), `retryable` its classification.
- `state` is a group state of `videojob.backends.base` (Pending, Running, Succeeded, Failed,
  Stopped, Missing). `logTail` is "" while the group is active; otherwise the last lines of the
  worker's output, at most `MAX_LOG_TAIL_CHARS`.
- Activities never raise for a failure they can classify: they answer `ok: false`. Stopping or
  deleting a group that does not exist is `ok: true`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .container_spec import format_time
from .contract import DownloadRequest, JobError

CREATE_CONTAINER_GROUP = "create_container_group"
INSPECT_CONTAINER_GROUP = "inspect_container_group"
STOP_CONTAINER_GROUP = "stop_container_group"
DELETE_CONTAINER_GROUP = "delete_container_group"
ACTIVITY_NAMES: tuple[str, ...] = (
    CREATE_CONTAINER_GROUP,
    INSPECT_CONTAINER_GROUP,
    STOP_CONTAINER_GROUP,
    DELETE_CONTAINER_GROUP,
)

MAX_LOG_TAIL_LINES = 20
MAX_LOG_TAIL_CHARS = 2000
MAX_DETAIL_CHARS = 300

# Codes the activities themselves use (backend codes pass through unchanged).
ACTIVITY_FAILED = "activity_failed"  # the activity raised (seen by the orchestrator as TaskFailed)
INVALID_INPUT = "invalid_input"
CONFIGURATION = "configuration"
UNEXPECTED = "unexpected_error"


def format_utc(t: datetime) -> str:
    """UTC, second precision, `Z` suffix (the tag and wire form)."""
    return format_time(t)


def parse_utc(text: str) -> datetime:
    """The inverse of `format_utc` (accepts any ISO 8601 with an offset or `Z`)."""
    t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError("time needs a UTC offset")
    return t


def _error_or_none(d: dict[str, Any]) -> JobError | None:
    raw = d.get("error")
    if raw is None:
        return None
    try:
        return JobError.from_wire(raw)
    except ValueError:
        return JobError(UNEXPECTED, "malformed error in activity result", retryable=True)


@dataclass(frozen=True)
class CreateInput:
    job_id: str
    request: DownloadRequest
    created_at: datetime
    deadline: datetime

    def to_wire(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "request": self.request.to_wire(),
            "createdAt": format_utc(self.created_at),
            "deadline": format_utc(self.deadline),
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> CreateInput:
        return cls(
            job_id=str(d["jobId"]),
            request=DownloadRequest.from_wire(d["request"]),
            created_at=parse_utc(d["createdAt"]),
            deadline=parse_utc(d["deadline"]),
        )


@dataclass(frozen=True)
class CreateResult:
    ok: bool
    group: str
    state: str | None = None
    error: JobError | None = None

    def to_wire(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "group": self.group, "state": self.state}
        return {"ok": False, "group": self.group, "error": _error_wire(self.error)}

    @classmethod
    def from_wire(cls, d: Any, group: str) -> CreateResult:
        if not isinstance(d, dict):
            return cls(False, group, error=JobError(UNEXPECTED, "activity returned no object", retryable=True))
        ok = d.get("ok") is True
        return cls(
            ok=ok,
            group=str(d.get("group") or group),
            state=d.get("state") if isinstance(d.get("state"), str) else None,
            error=None if ok else _error_or_none(d) or JobError(UNEXPECTED, "no error given", retryable=True),
        )


@dataclass(frozen=True)
class InspectResult:
    ok: bool
    state: str | None = None
    exit_code: int | None = None
    detail: str | None = None
    log_tail: str = ""
    error: JobError | None = None

    def to_wire(self) -> dict[str, Any]:
        if not self.ok:
            return {"ok": False, "error": _error_wire(self.error)}
        return {
            "ok": True,
            "state": self.state,
            "exitCode": self.exit_code,
            "detail": (self.detail or "")[:MAX_DETAIL_CHARS] or None,
            "logTail": self.log_tail[-MAX_LOG_TAIL_CHARS:],
        }

    @classmethod
    def from_wire(cls, d: Any) -> InspectResult:
        if not isinstance(d, dict):
            return cls(False, error=JobError(UNEXPECTED, "activity returned no object", retryable=True))
        if d.get("ok") is False or not isinstance(d.get("state"), str):
            return cls(False, error=_error_or_none(d) or JobError(UNEXPECTED, "no state given", retryable=True))
        exit_code = d.get("exitCode")
        return cls(
            ok=True,
            state=d["state"],
            exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
            detail=str(d["detail"])[:MAX_DETAIL_CHARS] if d.get("detail") else None,
            log_tail=str(d.get("logTail") or "")[-MAX_LOG_TAIL_CHARS:],
        )


@dataclass(frozen=True)
class CleanupResult:
    ok: bool
    error: JobError | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"ok": True} if self.ok else {"ok": False, "error": _error_wire(self.error)}

    @classmethod
    def from_wire(cls, d: Any) -> CleanupResult:
        if isinstance(d, dict) and d.get("ok") is True:
            return cls(True)
        err = _error_or_none(d) if isinstance(d, dict) else None
        return cls(False, err or JobError(UNEXPECTED, "activity returned no result", retryable=True))


def group_input(group: str) -> dict[str, Any]:
    """The input of the inspect, stop and delete activities."""
    return {"group": group}


def _error_wire(error: JobError | None) -> dict[str, Any]:
    return (error or JobError(UNEXPECTED, "unknown error", retryable=True)).to_wire()


def failed_activity_error(reason: object) -> JobError:
    """What the orchestrator makes of an activity that raised instead of answering `ok: false`."""
    text = " ".join(str(reason).split())[:300]
    return JobError(ACTIVITY_FAILED, text or "the activity failed", retryable=True)
