"""The activity payloads: what the orchestrator sends to each activity and what it gets back.

One owner for these shapes (the `activities/` functions and the `download_job` orchestrator both
use this module). JSON is camelCase, like every other wire shape in the project.

- `create_container_group`: `{"jobId", "request": DownloadRequest wire, "createdAt", "deadline",
  "attempt", "run", "group"}` -> `{"ok": true, "group", "state"}` or `{"ok": false, "group", "error"}`
  (`error.reason`: see below)
  (`attempt` 1-based, default 1; `run` the orchestration run's token (`run_token`), absent in
  inputs from before runs were named; `group` is `attempt_group_name(jobId, attempt, run)`, checked;
  `"mode": "list", "maxItems"` only for a playlist listing, absent for downloads)
- `inspect_container_group`: `{"group"}`
  -> `{"ok": true, "state", "exitCode", "detail", "logTail", "reason"}` or `{"ok": false, "error"}`
  (`reason`: why the group ended when the backend knows (`out_of_memory`), else null)
- `stop_container_group`, `delete_container_group`: `{"group"}`
  -> `{"ok": true}` or `{"ok": false, "error"}`
- `check_output_blob`: `{"jobId", "container", "name"}`
  -> `{"ok": true, "exists", "sizeBytes", "url"}` or `{"ok": false, "error"}` (the stored blob's
  size, `null` when it does not exist, and its URL rebuilt from the settings; refuses a blob
  outside `OUTPUT_CONTAINER` / the job's prefix with `invalid_result`, see `output_blob.py`)
- `publish_output_blob`: `{"jobId", "run", "attempt", "container", "name", "sizeBytes", "sha256"}`
  -> `{"ok": true, "exists", "sizeBytes", "sha256", "url"}` or `{"ok": false, "error"}` (the
  attempt's staging blob copied to the reported name in `OUTPUT_CONTAINER`, the copy read back:
  its real size and sha256; a copy that differs from the report is deleted; `activities/publish.py`)
- `create_share_link`: `{"jobId", "container", "name", "hours"}`
  -> `{"ok": true, "url", "expiresAt"}` or `{"ok": false, "error"}` (read-only SAS URL of the
  blob; the same container/prefix rule)
- `notify_completion`: `{"url", "payload"}`
  -> `{"ok": true, "status"}` or `{"ok": false, "status"?, "error"}` (one signed POST; the
  orchestrator retries with `orchestrators.notification.deliver_notification`)
- `read_result_record`: `{"jobId", "attempt", "run"}`
  -> `{"ok": true, "found": true, "event"}` | `{"ok": true, "found": false, "refused"?}` |
  `{"ok": false, "error"}` (the worker's result record of that attempt, `videojob.contract.result_record`)

- Times are UTC ISO 8601 with a `Z` suffix (second precision).
- `error` is `{"code", "message", "retryable", "retryAfterSeconds"?, "reason"?}`. For a backend
  failure `code` is the backend's (for ACI: the ARM error code, e.g. `InaccessibleImage`),
  `retryable` and `reason` its classification (`videojob.domain.failure_reason.FailureReason`, decided
  by the adapter): the orchestration matches `reason`, never `code` or `message` text.
- Answers recorded before reasons existed (in-flight histories) have no `reason` key: they are
  read as the orchestration read them then (`_reason_before_types`), so a replay decides the same.
- `state` is a group state of `videojob.domain.container_port` (Pending, Running, Succeeded, Failed,
  Stopped, Missing). `logTail` is "" while the group is active; otherwise the last lines of the
  worker's output, at most `MAX_LOG_TAIL_CHARS`.
- Activities never raise for a failure they can classify: they answer `ok: false`. Stopping or
  deleting a group that does not exist is `ok: true`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from videojob.contract.container_env import RUN_TOKEN_RE
from videojob.contract.wire import (
    JOB_MODES,
    MAX_PLAYLIST_ENTRIES,
    ContractError,
    DownloadRequest,
    JobError,
    JobStatus,
    is_url_safe_instance_id,
)
from videojob.domain.container_spec import attempt_group_name, format_time
from videojob.domain.failure_reason import FailureReason, default_reason, parse_reason

CREATE_CONTAINER_GROUP = "create_container_group"
INSPECT_CONTAINER_GROUP = "inspect_container_group"
STOP_CONTAINER_GROUP = "stop_container_group"
DELETE_CONTAINER_GROUP = "delete_container_group"
CHECK_OUTPUT_BLOB = "check_output_blob"
PUBLISH_OUTPUT_BLOB = "publish_output_blob"
CREATE_SHARE_LINK = "create_share_link"
NOTIFY_COMPLETION = "notify_completion"
READ_RESULT_RECORD = "read_result_record"

MAX_JOB_ATTEMPTS = 10
"""At most this many worker attempts (container groups) per job (`JOB_MAX_ATTEMPTS` allows 1-10)."""

MAX_LOG_TAIL_LINES = 20
MAX_LOG_TAIL_CHARS = 2000
MAX_DETAIL_CHARS = 300
_SIGKILL_EXIT = 137

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
    attempt: int = 1
    """1-based; each attempt of a job runs in its own group, `attempt_group_name(job_id, attempt, run)`."""
    mode: str = "download"
    """`list`: the worker only lists a playlist's entries (at most `max_items`)."""
    max_items: int | None = None
    run: str | None = None
    """The orchestration run's token: a job restarted under the same id gets fresh groups."""

    @property
    def group(self) -> str:
        return attempt_group_name(self.job_id, self.attempt, self.run)

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "jobId": self.job_id,
            "request": self.request.to_wire(),
            "createdAt": format_utc(self.created_at),
            "deadline": format_utc(self.deadline),
            "attempt": self.attempt,
            "group": self.group,
        }
        if self.run is not None:
            wire["run"] = self.run
        if self.mode != "download":  # absent for downloads: their inputs stay as they were
            wire["mode"] = self.mode
            wire["maxItems"] = self.max_items
        return wire

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> CreateInput:
        attempt = d.get("attempt", 1)
        if isinstance(attempt, bool) or not isinstance(attempt, int) or not 1 <= attempt <= MAX_JOB_ATTEMPTS:
            raise ValueError(f"'attempt' must be a whole number from 1 to {MAX_JOB_ATTEMPTS}")
        job = cls(
            job_id=str(d["jobId"]),
            request=DownloadRequest.from_wire(d["request"]),
            created_at=parse_utc(d["createdAt"]),
            deadline=parse_utc(d["deadline"]),
            attempt=attempt,
            mode=_mode(d.get("mode", "download")),
            max_items=_max_items(d.get("maxItems")),
            run=_run(d.get("run")),
        )
        # `group` is what the orchestrator will stop or delete: it must be the group we create.
        if d.get("group") is not None and d["group"] != job.group:
            raise ValueError(f"'group' {str(d['group'])[:80]!r} is not attempt {attempt}'s group {job.group!r}")
        return job


def _mode(value: Any) -> str:
    if value not in JOB_MODES:
        raise ValueError(f"'mode' must be one of {', '.join(JOB_MODES)}")
    return str(value)


def _run(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not RUN_TOKEN_RE.fullmatch(value):
        raise ValueError("'run' must be a run token (8 lowercase hex digits)")
    return value


def _max_items(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PLAYLIST_ENTRIES:
        raise ValueError(f"'maxItems' must be a whole number from 1 to {MAX_PLAYLIST_ENTRIES}")
    return value


def _reason_before_types(error: JobError) -> FailureReason:
    """How the orchestration read a create refusal before adapters named the reason (it matched
    ARM's text then): kept only so that an in-flight history replays the same decisions."""
    code, message = error.code, error.message.lower()
    quota = code in ("ContainerGroupQuotaReached", "QuotaExceeded") or "quota" in code.lower() or (
        code == "ServiceUnavailable" and "quota" in message)
    if quota and error.retryable and "limit: '0'" not in message:
        return FailureReason.QUOTA_EXHAUSTED
    return default_reason(error.retryable)


def _failure_reason(d: dict[str, Any], error: JobError) -> FailureReason:
    raw = d.get("error")
    if isinstance(raw, dict) and "reason" in raw:
        return parse_reason(raw["reason"]) or default_reason(error.retryable)
    return _reason_before_types(error)


@dataclass(frozen=True)
class CreateResult:
    ok: bool
    group: str
    state: str | None = None
    error: JobError | None = None
    reason: FailureReason | None = None
    """With an error: what kind of failure (the adapter's `BackendError.reason`)."""

    def to_wire(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "group": self.group, "state": self.state}
        return {"ok": False, "group": self.group, "error": _error_wire(self.error, self.reason)}

    @classmethod
    def from_wire(cls, d: Any, group: str) -> CreateResult:
        if not isinstance(d, dict):
            return cls(False, group, error=JobError(UNEXPECTED, "activity returned no object", retryable=True),
                       reason=FailureReason.TRANSIENT)
        ok = d.get("ok") is True
        error = None if ok else _error_or_none(d) or JobError(UNEXPECTED, "no error given", retryable=True)
        return cls(
            ok=ok,
            group=str(d.get("group") or group),
            state=d.get("state") if isinstance(d.get("state"), str) else None,
            error=error,
            reason=None if error is None else _failure_reason(d, error),
        )


@dataclass(frozen=True)
class InspectResult:
    ok: bool
    state: str | None = None
    exit_code: int | None = None
    detail: str | None = None
    log_tail: str = ""
    error: JobError | None = None
    finished_at: str | None = None
    """When the worker ended (`finishedAt`, optional)."""
    reason: FailureReason | None = None
    """Why the group ended, when the backend knows (`GroupState.reason`)."""

    def to_wire(self) -> dict[str, Any]:
        if not self.ok:
            return {"ok": False, "error": _error_wire(self.error)}
        return {
            "ok": True,
            "state": self.state,
            "exitCode": self.exit_code,
            "detail": (self.detail or "")[:MAX_DETAIL_CHARS] or None,
            "logTail": self.log_tail[-MAX_LOG_TAIL_CHARS:],
            **({"finishedAt": self.finished_at[:40]} if self.finished_at else {}),
            "reason": self.reason.value if self.reason else None,
        }

    @classmethod
    def from_wire(cls, d: Any) -> InspectResult:
        if not isinstance(d, dict):
            return cls(False, error=JobError(UNEXPECTED, "activity returned no object", retryable=True))
        if d.get("ok") is False or not isinstance(d.get("state"), str):
            return cls(False, error=_error_or_none(d) or JobError(UNEXPECTED, "no state given", retryable=True))
        exit_code = d.get("exitCode")
        exit_code = exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None
        detail = str(d["detail"])[:MAX_DETAIL_CHARS] if d.get("detail") else None
        if "reason" in d:
            reason = parse_reason(d["reason"])
        else:  # recorded before reasons: the detail text the orchestration read then
            words = (detail or "").lower()
            memory = (d["state"] == "Failed" and exit_code == _SIGKILL_EXIT
                      and ("oomkilled" in words or "out of memory" in words))
            reason = FailureReason.OUT_OF_MEMORY if memory else None
        return cls(
            ok=True,
            state=d["state"],
            exit_code=exit_code,
            detail=detail,
            log_tail=str(d.get("logTail") or "")[-MAX_LOG_TAIL_CHARS:],
            finished_at=str(d["finishedAt"])[:40] if isinstance(d.get("finishedAt"), str) else None,
            reason=reason,
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


def _error_wire(error: JobError | None, reason: FailureReason | None = None) -> dict[str, Any]:
    wire = (error or JobError(UNEXPECTED, "unknown error", retryable=True)).to_wire()
    if reason is not None:
        wire["reason"] = reason.value
    return wire


def failed_activity_error(reason: object) -> JobError:
    """What the orchestrator makes of an activity that raised instead of answering `ok: false`."""
    text = " ".join(str(reason).split())[:300]
    return JobError(ACTIVITY_FAILED, text or "the activity failed", retryable=True)


def share_link_input(job_id: str, container: str, name: str, hours: int) -> dict[str, Any]:
    """The input of `create_share_link`."""
    return {"jobId": job_id, "container": container, "name": name, "hours": hours}


@dataclass(frozen=True)
class PublishInput:
    """Which attempt's staging blob to publish, and what its worker reported of it."""

    job_id: str
    run: str | None
    attempt: int
    container: str
    name: str
    size_bytes: int
    sha256: str

    def to_wire(self) -> dict[str, Any]:
        return {"jobId": self.job_id, "run": self.run, "attempt": self.attempt, "container": self.container,
                "name": self.name, "sizeBytes": self.size_bytes, "sha256": self.sha256}


def parse_publish_input(d: Any) -> PublishInput:
    """A `publish_output_blob` input; ValueError when malformed."""
    if not isinstance(d, dict):
        raise ValueError("the input must be an object")
    job_id, attempt, run = _attempt_ref(d)
    if not is_url_safe_instance_id(job_id):
        raise ValueError("the input needs a valid 'jobId'")
    container, name, size, sha = d.get("container"), d.get("name"), d.get("sizeBytes"), d.get("sha256")
    if not isinstance(container, str) or not container or not isinstance(name, str) or not name:
        raise ValueError("the input needs 'container' and 'name'")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError("'sizeBytes' must be a whole number >= 0")
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha):
        raise ValueError("'sha256' must be 64 hex digits")
    return PublishInput(job_id, run, attempt, container, name, size, sha.lower())


@dataclass(frozen=True)
class BlobCheckResult:
    """What the output storage holds under a reported blob: whether it exists, its size, its URL,
    and (published copies) the sha256 the app read from it."""

    ok: bool
    exists: bool = False
    size_bytes: int | None = None
    url: str | None = None
    error: JobError | None = None
    sha256: str | None = None

    def to_wire(self) -> dict[str, Any]:
        if self.ok:
            wire = {"ok": True, "exists": self.exists, "sizeBytes": self.size_bytes, "url": self.url}
            return wire | ({"sha256": self.sha256} if self.sha256 else {})
        return {"ok": False, "error": _error_wire(self.error)}

    @classmethod
    def from_wire(cls, d: Any) -> BlobCheckResult:
        if isinstance(d, dict) and d.get("ok") is True and isinstance(d.get("url"), str) and d["url"]:
            size = d.get("sizeBytes")
            exists = d.get("exists") is True and isinstance(size, int) and not isinstance(size, bool)
            sha = d.get("sha256") if isinstance(d.get("sha256"), str) else None
            return cls(True, exists, size if exists else None, d["url"], sha256=sha[:64] if exists and sha else None)
        err = _error_or_none(d) if isinstance(d, dict) else None
        return cls(False, error=err or JobError(UNEXPECTED, "the activity returned no answer", retryable=True))


def record_input(job_id: str, attempt: int, run: str | None, deadline: datetime) -> dict[str, Any]:
    """The input of `read_result_record`: whose record (the activity derives the blob name) and the
    job's deadline (the expiry of the attempt's callback token, which keys the record's MAC)."""
    return {"jobId": job_id, "attempt": attempt, "run": run, "deadline": format_utc(deadline)}


def _attempt_ref(d: Any) -> tuple[str, int, str | None]:
    """(job id, attempt, run) named by an activity input; ValueError when malformed."""
    if not isinstance(d, dict) or not isinstance(d.get("jobId"), str):
        raise ValueError("'jobId' is required")
    attempt = d.get("attempt")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 1 <= attempt <= MAX_JOB_ATTEMPTS:
        raise ValueError(f"'attempt' must be a whole number from 1 to {MAX_JOB_ATTEMPTS}")
    return d["jobId"], attempt, _run(d.get("run"))


def parse_record_input(d: Any) -> tuple[str, int, str | None, datetime]:
    """(job id, attempt, run, deadline) of a `read_result_record` input; ValueError when malformed."""
    job_id, attempt, run = _attempt_ref(d)
    try:
        deadline = parse_utc(d["deadline"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError("'deadline' must be a UTC time") from e
    return job_id, attempt, run, deadline


@dataclass(frozen=True)
class RecordResult:
    """What `read_result_record` found: the recorded terminal event, nothing, or why a record was refused."""

    ok: bool
    event: JobStatus | None = None
    refused: str | None = None
    error: JobError | None = None

    def to_wire(self) -> dict[str, Any]:
        if not self.ok:
            return {"ok": False, "error": _error_wire(self.error)}
        if self.event is not None:
            return {"ok": True, "found": True, "event": self.event.to_wire()}
        return {"ok": True, "found": False, **({"refused": self.refused[:300]} if self.refused else {})}

    @classmethod
    def from_wire(cls, d: Any) -> RecordResult:
        if isinstance(d, dict) and d.get("ok") is True:
            if d.get("found") is True:
                try:
                    return cls(True, event=JobStatus.from_wire(d.get("event")))
                except (ContractError, KeyError, TypeError, ValueError):
                    return cls(True, refused="the activity returned an invalid event")
            refused = d.get("refused")
            return cls(True, refused=str(refused)[:300] if refused else None)
        err = _error_or_none(d) if isinstance(d, dict) else None
        return cls(False, error=err or JobError(UNEXPECTED, "the activity returned no answer", retryable=True))


@dataclass(frozen=True)
class ShareLinkResult:
    ok: bool
    url: str | None = None
    expires_at: str | None = None
    error: JobError | None = None

    def to_wire(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "url": self.url, "expiresAt": self.expires_at}
        return {"ok": False, "error": _error_wire(self.error)}

    @classmethod
    def from_wire(cls, d: Any) -> ShareLinkResult:
        if isinstance(d, dict) and d.get("ok") is True and isinstance(d.get("url"), str) and d["url"]:
            expires = d.get("expiresAt")
            return cls(True, d["url"], expires if isinstance(expires, str) else None)
        err = _error_or_none(d) if isinstance(d, dict) else None
        return cls(False, error=err or JobError(UNEXPECTED, "the activity returned no link", retryable=True))
