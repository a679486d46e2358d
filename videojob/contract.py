"""The job contract: what crosses the wire between client, function app, orchestrator and worker.

One owner for every wire shape. All JSON is camelCase (like the Durable status payload); the
dataclasses here are snake_case and convert with `to_wire()` / `from_wire()`. Errors on the
wire are `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

EVENT_NAME = "JobStatus"
"""Name of the external event the worker (through the callback) and the cancel endpoint raise."""

Format = Literal["video", "audio"]
AudioFormat = Literal["m4a", "mp3"]
FORMATS: tuple[str, ...] = ("video", "audio")
AUDIO_FORMATS: tuple[str, ...] = ("m4a", "mp3")

# Event states. `cancelled` is raised by the cancel endpoint only (it carries no `seq`).
STARTED, PROGRESS, SUCCEEDED, FAILED, CANCELLED = "started", "progress", "succeeded", "failed", "cancelled"
EVENT_STATES: tuple[str, ...] = (STARTED, PROGRESS, SUCCEEDED, FAILED, CANCELLED)
TERMINAL_EVENT_STATES: tuple[str, ...] = (SUCCEEDED, FAILED, CANCELLED)

# Worker phases (in events) and the orchestration's own phases (in customStatus).
WORKER_PHASES: tuple[str, ...] = ("downloading", "processing", "uploading")
PHASE_PROVISIONING = "provisioning"
PHASE_SUCCEEDED = "succeeded"
PHASE_FAILED = "failed"


class ErrorCode:
    """Every error code the system emits. Strings on the wire; constants in code."""

    # Request validation (HTTP 4xx from the starters).
    INVALID_JSON = "invalid_json"
    MISSING_URL = "missing_url"
    INVALID_URL = "invalid_url"
    URL_TOO_LONG = "url_too_long"
    SCHEME_NOT_ALLOWED = "scheme_not_allowed"
    HOST_NOT_ALLOWED = "host_not_allowed"
    PRIVATE_ADDRESS = "private_address"
    INVALID_OPTION = "invalid_option"
    BODY_TOO_LARGE = "body_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    # Callback / cancel endpoints.
    UNAUTHORIZED = "unauthorized"
    INVALID_EVENT = "invalid_event"
    NOT_FOUND = "not_found"
    ALREADY_FINISHED = "already_finished"
    SERVICE_UNAVAILABLE = "service_unavailable"  # the Durable host did not answer
    # Worker-reported failures.
    UNSUPPORTED_URL = "unsupported_url"
    UNAVAILABLE = "unavailable"
    LOGIN_REQUIRED = "login_required"
    GEO_BLOCKED = "geo_blocked"
    BOT_CHECK = "bot_check"
    TOO_LARGE = "too_large"
    NETWORK = "network"
    HTTP_ERROR = "http_error"
    NO_AUDIO = "no_audio"
    INVALID_MEDIA = "invalid_media"
    UPLOAD_FAILED = "upload_failed"
    INTERNAL = "internal"
    # Orchestration-level failures.
    CANCELLED = "cancelled"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    HEARTBEAT_LOST = "heartbeat_lost"
    PROVISIONING_FAILED = "provisioning_failed"


class ContractError(ValueError):
    """A payload does not follow the contract. `str(e)` is safe to return to the sender."""


def error_body(code: str, message: str) -> dict[str, Any]:
    """The error shape of every HTTP error response."""
    return {"error": {"code": code, "message": message}}


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _as_mapping(payload: Any, what: str) -> dict[str, Any]:
    """Accept a dict, or JSON text (possibly encoded twice, as the Python durable client does)."""
    for _ in range(3):
        if isinstance(payload, dict):
            return payload
        if isinstance(payload, (bytes, bytearray)):
            payload = payload.decode("utf-8", errors="replace")
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except (ValueError, RecursionError) as e:
                raise ContractError(f"{what} is not valid JSON") from e
            continue
        break
    raise ContractError(f"{what} must be a JSON object")


def _opt_number(d: dict[str, Any], key: str, *, integer: bool = False) -> float | int | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ContractError(f"'{key}' must be a number")
    if integer:
        if isinstance(v, float) and not v.is_integer():
            raise ContractError(f"'{key}' must be an integer")
        return int(v)
    return v


def _opt_str(d: dict[str, Any], key: str, max_len: int = 2048) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise ContractError(f"'{key}' must be a string")
    return v[:max_len]


@dataclass(frozen=True)
class DownloadRequest:
    """A validated download request (see `request_parsing` for how one is made from HTTP)."""

    url: str
    format: Format = "video"
    max_height: int | None = None
    deadline_seconds: int | None = None
    audio_format: AudioFormat = "m4a"

    def to_wire(self) -> dict[str, Any]:
        return _drop_none(
            {
                "url": self.url,
                "format": self.format,
                "maxHeight": self.max_height,
                "deadlineSeconds": self.deadline_seconds,
                "audioFormat": self.audio_format if self.format == "audio" else None,
            }
        )

    @classmethod
    def from_wire(cls, d: Any) -> DownloadRequest:
        d = _as_mapping(d, "request")
        return cls(
            url=str(d["url"]),
            format=d.get("format", "video"),
            max_height=d.get("maxHeight"),
            deadline_seconds=d.get("deadlineSeconds"),
            audio_format=d.get("audioFormat", "m4a"),
        )


@dataclass(frozen=True)
class JobPlan:
    """The orchestration input: the request plus the policy the orchestrator must follow.

    The starter builds it from settings, because an orchestrator may not read the environment.
    It holds no secret (it is visible through `showInput`).
    """

    request: DownloadRequest
    deadline_seconds: int
    heartbeat_timeout_seconds: int
    provision_max_attempts: int
    failed_group_policy: Literal["stop", "delete"] = "stop"
    provision_backoff_seconds: int = 5
    cleanup_max_attempts: int = 5

    def to_wire(self) -> dict[str, Any]:
        return {
            "request": self.request.to_wire(),
            "deadlineSeconds": self.deadline_seconds,
            "heartbeatTimeoutSeconds": self.heartbeat_timeout_seconds,
            "provisionMaxAttempts": self.provision_max_attempts,
            "failedGroupPolicy": self.failed_group_policy,
            "provisionBackoffSeconds": self.provision_backoff_seconds,
            "cleanupMaxAttempts": self.cleanup_max_attempts,
        }

    @classmethod
    def from_wire(cls, d: Any) -> JobPlan:
        d = _as_mapping(d, "job plan")
        return cls(
            request=DownloadRequest.from_wire(d["request"]),
            deadline_seconds=int(d["deadlineSeconds"]),
            heartbeat_timeout_seconds=int(d["heartbeatTimeoutSeconds"]),
            provision_max_attempts=int(d["provisionMaxAttempts"]),
            failed_group_policy=d.get("failedGroupPolicy", "stop"),
            provision_backoff_seconds=int(d.get("provisionBackoffSeconds", 5)),
            cleanup_max_attempts=int(d.get("cleanupMaxAttempts", 5)),
        )


@dataclass(frozen=True)
class Progress:
    percent: float | None = None
    downloaded_bytes: int | None = None
    total_bytes: int | None = None
    speed_bps: float | None = None
    eta_seconds: float | None = None

    def to_wire(self) -> dict[str, Any]:
        return _drop_none(
            {
                "percent": self.percent,
                "downloadedBytes": self.downloaded_bytes,
                "totalBytes": self.total_bytes,
                "speedBps": self.speed_bps,
                "etaSeconds": self.eta_seconds,
            }
        )

    @classmethod
    def from_wire(cls, d: Any) -> Progress:
        d = _as_mapping(d, "progress")
        return cls(
            percent=_opt_number(d, "percent"),
            downloaded_bytes=_opt_number(d, "downloadedBytes", integer=True),
            total_bytes=_opt_number(d, "totalBytes", integer=True),
            speed_bps=_opt_number(d, "speedBps"),
            eta_seconds=_opt_number(d, "etaSeconds"),
        )


@dataclass(frozen=True)
class BlobResult:
    url: str
    container: str
    name: str
    size_bytes: int
    sha256: str
    content_type: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "container": self.container,
            "name": self.name,
            "sizeBytes": self.size_bytes,
            "sha256": self.sha256,
            "contentType": self.content_type,
        }

    @classmethod
    def from_wire(cls, d: Any) -> BlobResult:
        d = _as_mapping(d, "blob")
        try:
            return cls(
                url=str(d["url"]),
                container=str(d["container"]),
                name=str(d["name"]),
                size_bytes=int(d["sizeBytes"]),
                sha256=str(d["sha256"]),
                content_type=str(d["contentType"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ContractError(f"blob result is incomplete: {e}") from e


@dataclass(frozen=True)
class MediaInfo:
    title: str | None = None
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    extractor: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return _drop_none(
            {
                "title": self.title,
                "durationSeconds": self.duration_seconds,
                "width": self.width,
                "height": self.height,
                "videoCodec": self.video_codec,
                "audioCodec": self.audio_codec,
                "extractor": self.extractor,
            }
        )

    @classmethod
    def from_wire(cls, d: Any) -> MediaInfo:
        d = _as_mapping(d, "media")
        return cls(
            title=_opt_str(d, "title", 512),
            duration_seconds=_opt_number(d, "durationSeconds"),
            width=_opt_number(d, "width", integer=True),
            height=_opt_number(d, "height", integer=True),
            video_codec=_opt_str(d, "videoCodec", 64),
            audio_codec=_opt_str(d, "audioCodec", 64),
            extractor=_opt_str(d, "extractor", 64),
        )


@dataclass(frozen=True)
class JobResult:
    blob: BlobResult
    media: MediaInfo = field(default_factory=MediaInfo)

    def to_wire(self) -> dict[str, Any]:
        return {"blob": self.blob.to_wire(), "media": self.media.to_wire()}

    @classmethod
    def from_wire(cls, d: Any) -> JobResult:
        d = _as_mapping(d, "result")
        if "blob" not in d:
            raise ContractError("result has no 'blob'")
        return cls(blob=BlobResult.from_wire(d["blob"]), media=MediaInfo.from_wire(d.get("media") or {}))


MAX_ERROR_MESSAGE = 1000
"""Error messages are cut to this length: big exceptions can hang a Durable instance."""


@dataclass(frozen=True)
class JobError:
    code: str
    message: str
    retryable: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message[:MAX_ERROR_MESSAGE], "retryable": self.retryable}

    @classmethod
    def from_wire(cls, d: Any) -> JobError:
        d = _as_mapping(d, "error")
        code = d.get("code")
        if not isinstance(code, str) or not code:
            raise ContractError("error has no 'code'")
        return cls(
            code=code[:64],
            message=str(d.get("message") or "")[:MAX_ERROR_MESSAGE],
            retryable=bool(d.get("retryable", False)),
        )


@dataclass(frozen=True)
class JobStatus:
    """The JobStatus event: worker -> callback -> `raise_event("JobStatus", ...)` -> orchestrator."""

    state: str
    job_id: str | None = None
    seq: int | None = None
    phase: str | None = None
    progress: Progress | None = None
    result: JobResult | None = None
    error: JobError | None = None
    sent_at: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_EVENT_STATES

    def to_wire(self) -> dict[str, Any]:
        return _drop_none(
            {
                "jobId": self.job_id,
                "seq": self.seq,
                "state": self.state,
                "phase": self.phase,
                "progress": self.progress.to_wire() if self.progress else None,
                "result": self.result.to_wire() if self.result else None,
                "error": self.error.to_wire() if self.error else None,
                "sentAt": self.sent_at,
            }
        )

    @classmethod
    def from_wire(cls, payload: Any) -> JobStatus:
        """Parse and validate an event; accepts a dict or (doubly) JSON-encoded text."""
        d = _as_mapping(payload, "event")
        state = d.get("state")
        if state not in EVENT_STATES:
            raise ContractError(f"'state' must be one of {', '.join(EVENT_STATES)}")
        seq = d.get("seq")
        if state != CANCELLED:
            if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
                raise ContractError("'seq' must be a non-negative integer")
        elif seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
            raise ContractError("'seq' must be an integer")
        phase = d.get("phase")
        if phase is not None and phase not in WORKER_PHASES:
            raise ContractError(f"'phase' must be one of {', '.join(WORKER_PHASES)}")
        result = JobResult.from_wire(d["result"]) if d.get("result") is not None else None
        error = JobError.from_wire(d["error"]) if d.get("error") is not None else None
        if state == SUCCEEDED and result is None:
            raise ContractError("a 'succeeded' event needs a 'result'")
        if state == FAILED and error is None:
            raise ContractError("a 'failed' event needs an 'error'")
        return cls(
            state=state,
            job_id=_opt_str(d, "jobId", 256),
            seq=seq,
            phase=phase,
            progress=Progress.from_wire(d["progress"]) if d.get("progress") is not None else None,
            result=result,
            error=error,
            sent_at=_opt_str(d, "sentAt", 64),
        )
