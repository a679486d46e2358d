"""The job contract: what crosses the wire between client, function app, orchestrator and worker.

One owner for every wire shape. All JSON is camelCase (like the Durable status payload); the
dataclasses here are snake_case and convert with `to_wire()` / `from_wire()`. Errors on the
wire are `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

EVENT_NAME = "JobStatus"
"""Name of the external event the worker (through the callback) and the cancel endpoint raise."""
MAX_EVENT_BYTES = 64 * 1024
"""Largest `JobStatus` event the callback takes (and a result record holds, `videojob.contract.result_record`)."""

Format = Literal["video", "audio"]
AudioFormat = Literal["m4a", "mp3"]
FORMATS: tuple[str, ...] = ("video", "audio")
AUDIO_FORMATS: tuple[str, ...] = ("m4a", "mp3")


class EventState(StrEnum):
    """A `JobStatus` event's `state`. `cancelled` is raised by the cancel endpoint only (it carries
    no `seq`). Not a container group's state (`backends.base.ContainerState`) nor an instance's
    (`instances.RuntimeStatus`)."""

    STARTED = "started"
    PROGRESS = "progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


EVENT_STATES: tuple[str, ...] = tuple(EventState)
TERMINAL_EVENT_STATES: frozenset[str] = frozenset({EventState.SUCCEEDED, EventState.FAILED, EventState.CANCELLED})

# Worker phases (in events) and the orchestration's own phases (in customStatus).
WORKER_PHASES: tuple[str, ...] = ("downloading", "processing", "uploading")
PHASE_QUEUED = "queued"  # waiting for one of the MAX_RUNNING_JOBS slots
PHASE_PROVISIONING = "provisioning"
PHASE_RUNNING = "running"
PHASE_RETRYING = "retrying"
PHASE_LISTING = "listing"  # a playlist batch, while its listing child runs
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
    INVALID_BATCH = "invalid_batch"  # `urls`: the answer lists every refused index
    # Callback / cancel endpoints.
    UNAUTHORIZED = "unauthorized"
    INVALID_EVENT = "invalid_event"
    # Users (AUTH_MODE=entra, issue 21).
    TOO_MANY_JOBS = "too_many_jobs"  # 429: MAX_ACTIVE_JOBS_PER_USER
    AUTH_NOT_CONFIGURED = "auth_not_configured"  # 500: entra mode without App Service Authentication
    JOB_RUNNING = "job_running"  # 409: a running job cannot be deleted (cancel it first)
    NOT_FOUND = "not_found"
    ALREADY_FINISHED = "already_finished"
    SERVICE_UNAVAILABLE = "service_unavailable"  # the Durable host did not answer
    # Worker-reported failures.
    UNSUPPORTED_URL = "unsupported_url"
    UNAVAILABLE = "unavailable"
    LOGIN_REQUIRED = "login_required"
    GEO_BLOCKED = "geo_blocked"
    BOT_CHECK = "bot_check"
    INVALID_COOKIES = "invalid_cookies"  # the operator's YOUTUBE_COOKIES is not a Netscape cookies.txt
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
    OUT_OF_MEMORY = "out_of_memory"  # the container was killed at its memory limit (exit 137)
    PROVISIONING_FAILED = "provisioning_failed"
    INVALID_RESULT = "invalid_result"  # a success naming a blob that is not the job's own, or not as stored
    RESULT_UNVERIFIED = "result_unverified"  # the output storage could not be asked about the blob
    # Batch-level failures (`download_batch`).
    BATCH_FAILED = "batch_failed"  # every item failed
    PLAYLIST_EMPTY = "playlist_empty"  # the listing found no entries


class ContractError(ValueError):
    """A payload does not follow the contract. `str(e)` is safe to return to the sender."""


def error_body(code: str, message: str) -> dict[str, Any]:
    """The error shape of every HTTP error response."""
    return {"error": {"code": code, "message": message}}


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


NON_FINITE_MESSAGE = "numbers must be finite (no NaN or Infinity)"


def _finite_float(text: str) -> float:
    value = float(text)  # `1e400` reads as inf
    if not math.isfinite(value):
        raise ContractError(NON_FINITE_MESSAGE)
    return value


def _no_constant(name: str) -> float:
    raise ContractError(NON_FINITE_MESSAGE)


def loads_finite(text: str | bytes) -> Any:
    """`json.loads` without Python's extensions: `NaN`, `Infinity` and overflowing literals are
    refused (`ContractError`), since they would make every JSON that carries them on invalid."""
    return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)


def _as_mapping(payload: Any, what: str) -> dict[str, Any]:
    """Accept a dict, or JSON text (possibly encoded twice, as the Python durable client does)."""
    for _ in range(3):
        if isinstance(payload, dict):
            return payload
        if isinstance(payload, (bytes, bytearray)):
            payload = payload.decode("utf-8", errors="replace")
        if isinstance(payload, str):
            try:
                payload = loads_finite(payload)
            except ContractError as e:
                raise ContractError(f"{what}: {e}") from None
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
    if isinstance(v, float) and not math.isfinite(v):
        raise ContractError(f"'{key}': {NON_FINITE_MESSAGE}")
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
    notify_url: str | None = None
    """Completion webhook (already checked against the URL policy); None for batch items."""

    def to_wire(self) -> dict[str, Any]:
        return _drop_none(
            {
                "url": self.url,
                "format": self.format,
                "maxHeight": self.max_height,
                "deadlineSeconds": self.deadline_seconds,
                "audioFormat": self.audio_format if self.format == "audio" else None,
                "notifyUrl": self.notify_url,
            }
        )

    @classmethod
    def from_wire(cls, d: Any) -> DownloadRequest:
        d = _as_mapping(d, "request")
        return cls(
            url=str(d["url"]),
            format=d.get("format", cls.format),
            max_height=d.get("maxHeight"),
            deadline_seconds=d.get("deadlineSeconds"),
            audio_format=d.get("audioFormat", cls.audio_format),
            notify_url=d.get("notifyUrl"),
        )


JOB_MODES: tuple[str, ...] = ("download", "list")
"""`download` fetches one media file; `list` only lists a playlist's entries (flat extraction)."""


@dataclass(frozen=True)
class CostRates:
    """Per-second container prices (from settings) for the cost estimate in the output."""

    vcpu_second: float = 0.0
    gb_second: float = 0.0
    currency: str = "USD"

    def to_wire(self) -> dict[str, Any]:
        return {"vcpuSecond": self.vcpu_second, "gbSecond": self.gb_second, "currency": self.currency}

    @classmethod
    def from_wire(cls, d: Any) -> CostRates:
        d = _as_mapping(d, "cost rates")
        return cls(float(d.get("vcpuSecond", cls.vcpu_second)), float(d.get("gbSecond", cls.gb_second)),
                   str(d.get("currency", cls.currency)))


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
    cleanup_backoff_seconds: int = 5
    """`CLEANUP_BACKOFF_SECONDS`: the first pause between two tries to remove the group or check the blob."""
    mode: Literal["download", "list"] = "download"
    max_items: int | None = None
    """`list` mode: at most this many playlist entries."""
    max_attempts: int = 1
    """Attempts for retryable worker failures, each in a fresh container group."""
    retry_backoff_seconds: int = 30
    worker_cpu: float = 1.0
    worker_memory_gb: float = 1.5
    share_link_hours: int = 0
    """0: no share link in the output."""
    cost_rates: CostRates = field(default_factory=CostRates)
    output_container: str | None = None
    """`OUTPUT_CONTAINER`: a reported blob elsewhere is refused (None in plans made before this check)."""
    retry_bot_check: bool = False
    """`RETRY_BOT_CHECK`: a `bot_check` failure is tried again in a fresh group (another egress IP)."""
    max_running_jobs: int | None = None
    """`MAX_RUNNING_JOBS`: the job takes one of that many global slots before it creates a group
    (None in plans made before the cap: such a job takes no slot, so it replays unchanged)."""
    owner: str | None = None
    """Who submitted the job (`AUTH_MODE=entra`: the caller's object id); None in key mode."""

    def to_wire(self) -> dict[str, Any]:
        return _drop_none(
            {
                "request": self.request.to_wire(),
                "deadlineSeconds": self.deadline_seconds,
                "heartbeatTimeoutSeconds": self.heartbeat_timeout_seconds,
                "provisionMaxAttempts": self.provision_max_attempts,
                "failedGroupPolicy": self.failed_group_policy,
                "provisionBackoffSeconds": self.provision_backoff_seconds,
                "cleanupMaxAttempts": self.cleanup_max_attempts,
                "cleanupBackoffSeconds": self.cleanup_backoff_seconds,
                "mode": self.mode,
                "maxItems": self.max_items,
                "maxAttempts": self.max_attempts,
                "retryBackoffSeconds": self.retry_backoff_seconds,
                "workerCpu": self.worker_cpu,
                "workerMemoryGb": self.worker_memory_gb,
                "shareLinkHours": self.share_link_hours,
                "costRates": self.cost_rates.to_wire(),
                "outputContainer": self.output_container,
                "retryBotCheck": self.retry_bot_check,
                "maxRunningJobs": self.max_running_jobs,
                "owner": self.owner,
            }
        )

    @classmethod
    def from_wire(cls, d: Any) -> JobPlan:
        d = _as_mapping(d, "job plan")
        return cls(
            request=DownloadRequest.from_wire(d["request"]),
            deadline_seconds=int(d["deadlineSeconds"]),
            heartbeat_timeout_seconds=int(d["heartbeatTimeoutSeconds"]),
            provision_max_attempts=int(d["provisionMaxAttempts"]),
            # Absent fields (plans written before they existed) take the field's default.
            failed_group_policy=d.get("failedGroupPolicy", cls.failed_group_policy),
            provision_backoff_seconds=int(d.get("provisionBackoffSeconds", cls.provision_backoff_seconds)),
            cleanup_max_attempts=int(d.get("cleanupMaxAttempts", cls.cleanup_max_attempts)),
            cleanup_backoff_seconds=int(d.get("cleanupBackoffSeconds", cls.cleanup_backoff_seconds)),
            mode=d.get("mode", cls.mode),
            max_items=d.get("maxItems"),
            max_attempts=int(d.get("maxAttempts", cls.max_attempts)),
            retry_backoff_seconds=int(d.get("retryBackoffSeconds", cls.retry_backoff_seconds)),
            worker_cpu=float(d.get("workerCpu", cls.worker_cpu)),
            worker_memory_gb=float(d.get("workerMemoryGb", cls.worker_memory_gb)),
            share_link_hours=int(d.get("shareLinkHours", cls.share_link_hours)),
            cost_rates=CostRates.from_wire(d.get("costRates") or {}),
            output_container=d.get("outputContainer"),
            retry_bot_check=d.get("retryBotCheck") is True,
            max_running_jobs=_slots(d.get("maxRunningJobs")),
            owner=d.get("owner") if isinstance(d.get("owner"), str) else None,
        )


def _slots(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ContractError("maxRunningJobs must be a positive integer")
    return value


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
        except (KeyError, TypeError, ValueError, OverflowError) as e:  # int(inf): OverflowError
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
    ytdlp_version: str | None = None
    """The yt-dlp that ran: tells a site's change (update the image) from a bug of ours."""

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
                "ytDlpVersion": self.ytdlp_version,
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
            ytdlp_version=_opt_str(d, "ytDlpVersion", 32),
        )


MAX_PLAYLIST_ENTRIES = 1000
"""A list-mode result carries at most this many entries (keeps events and histories small)."""


@dataclass(frozen=True)
class PlaylistEntry:
    url: str
    title: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return _drop_none({"url": self.url, "title": self.title})

    @classmethod
    def from_wire(cls, d: Any) -> PlaylistEntry:
        d = _as_mapping(d, "entry")
        url = d.get("url")
        if not isinstance(url, str) or not url:
            raise ContractError("a playlist entry needs a 'url'")
        return cls(url=url[:4096], title=_opt_str(d, "title", 512))


@dataclass(frozen=True)
class JobResult:
    """A download job's result (`blob` + `media`), or a list job's (`entries`, `title`)."""

    blob: BlobResult | None = None
    media: MediaInfo = field(default_factory=MediaInfo)
    entries: tuple[PlaylistEntry, ...] | None = None
    title: str | None = None

    def to_wire(self) -> dict[str, Any]:
        if self.entries is not None:
            return _drop_none({"entries": [e.to_wire() for e in self.entries], "title": self.title})
        assert self.blob is not None
        return {"blob": self.blob.to_wire(), "media": self.media.to_wire()}

    @classmethod
    def from_wire(cls, d: Any) -> JobResult:
        d = _as_mapping(d, "result")
        if d.get("entries") is not None:
            raw = d["entries"]
            if not isinstance(raw, list) or len(raw) > MAX_PLAYLIST_ENTRIES:
                raise ContractError(f"'entries' must be a list of at most {MAX_PLAYLIST_ENTRIES} entries")
            return cls(entries=tuple(PlaylistEntry.from_wire(e) for e in raw), title=_opt_str(d, "title", 512))
        if "blob" not in d:
            raise ContractError("result has no 'blob'")
        return cls(blob=BlobResult.from_wire(d["blob"]), media=MediaInfo.from_wire(d.get("media") or {}))


MAX_ERROR_MESSAGE = 1000
"""Error messages are cut to this length: big exceptions can hang a Durable instance."""
MAX_RETRY_AFTER_SECONDS = 3600


@dataclass(frozen=True)
class JobError:
    """`retry_after_seconds` (wire `retryAfterSeconds`, only with `retryable`): "not now" — the
    same request is expected to succeed later (a role assignment still propagating), so the caller
    waits this long and tries again without counting a failed try."""

    code: str
    message: str
    retryable: bool = False
    retry_after_seconds: float | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "code": self.code, "message": self.message[:MAX_ERROR_MESSAGE], "retryable": self.retryable
        }
        if self.retryable and self.retry_after_seconds is not None:
            wire["retryAfterSeconds"] = self.retry_after_seconds
        return wire

    @classmethod
    def from_wire(cls, d: Any) -> JobError:
        d = _as_mapping(d, "error")
        code = d.get("code")
        if not isinstance(code, str) or not code:
            raise ContractError("error has no 'code'")
        retryable = bool(d.get("retryable", False))
        wait = d.get("retryAfterSeconds")
        if wait is not None and not (
            isinstance(wait, int | float) and not isinstance(wait, bool) and 0 < wait <= MAX_RETRY_AFTER_SECONDS
        ):
            raise ContractError(f"'retryAfterSeconds' must be a number in (0, {MAX_RETRY_AFTER_SECONDS}]")
        return cls(
            code=code[:64],
            message=str(d.get("message") or "")[:MAX_ERROR_MESSAGE],
            retryable=retryable,
            retry_after_seconds=float(wait) if retryable and wait is not None else None,
        )


MAX_FAILURE_TEXT = 1000
"""An orchestration's failure message (code + message) stays under 1 KB: big exceptions can hang an instance."""
CUSTOM_STATUS_MAX_BYTES = 16 * 1024
"""Durable's customStatus limit, measured in UTF-16 as the extension stores it."""


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def failure_message(error: JobError) -> str:
    """An orchestration's failure message (the text the status shows): starts with the code."""
    return clip(f"{error.code}: {error.message}", MAX_FAILURE_TEXT)


def custom_status_bytes(status: Any) -> int:
    """Size of a customStatus as the extension stores it (UTF-16)."""
    return len(json.dumps(status).encode("utf-16-le"))


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
    attempt: int | None = None
    """Which attempt (container group) of the job sent it; events of older attempts are stale."""

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
                "attempt": self.attempt,
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
        if state != EventState.CANCELLED:
            if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
                raise ContractError("'seq' must be a non-negative integer")
        elif seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
            raise ContractError("'seq' must be an integer")
        phase = d.get("phase")
        if phase is not None and phase not in WORKER_PHASES:
            raise ContractError(f"'phase' must be one of {', '.join(WORKER_PHASES)}")
        result = JobResult.from_wire(d["result"]) if d.get("result") is not None else None
        error = JobError.from_wire(d["error"]) if d.get("error") is not None else None
        if state == EventState.SUCCEEDED and result is None:
            raise ContractError("a 'succeeded' event needs a 'result'")
        if state == EventState.FAILED and error is None:
            raise ContractError("a 'failed' event needs an 'error'")
        return cls(
            state=EventState(state),
            job_id=_opt_str(d, "jobId", 256),
            seq=seq,
            phase=phase,
            progress=Progress.from_wire(d["progress"]) if d.get("progress") is not None else None,
            result=result,
            error=error,
            sent_at=_opt_str(d, "sentAt", 64),
            attempt=_opt_number(d, "attempt", integer=True),
        )


@dataclass(frozen=True)
class BatchPlan:
    """The `download_batch` orchestration input: many URLs (or one playlist) under one window.

    `items` are complete job plans (one per URL, in request order). For a playlist, `items` is
    empty and `playlist` is a `list`-mode job plan whose entries become items shaped like
    `item_template` (its request's url is replaced by each entry's). Entry URLs are checked against
    `allowed_hosts` / `allow_private_addresses` (the URL policy, carried here because an
    orchestrator may not read settings).
    """

    items: tuple[JobPlan, ...]
    max_parallel: int
    notify_url: str | None = None
    playlist: JobPlan | None = None
    item_template: JobPlan | None = None
    allowed_hosts: tuple[str, ...] = ()
    allow_private_addresses: bool = False
    owner: str | None = None
    """Who submitted the batch (its items' plans name the same owner); None in key mode."""

    def to_wire(self) -> dict[str, Any]:
        return _drop_none(
            {
                "owner": self.owner,
                "items": [i.to_wire() for i in self.items],
                "maxParallel": self.max_parallel,
                "notifyUrl": self.notify_url,
                "playlist": self.playlist.to_wire() if self.playlist else None,
                "itemTemplate": self.item_template.to_wire() if self.item_template else None,
                "allowedHosts": list(self.allowed_hosts),
                "allowPrivateAddresses": self.allow_private_addresses,
            }
        )

    @classmethod
    def from_wire(cls, d: Any) -> BatchPlan:
        d = _as_mapping(d, "batch plan")
        return cls(
            items=tuple(JobPlan.from_wire(i) for i in d.get("items") or ()),
            max_parallel=int(d["maxParallel"]),
            notify_url=d.get("notifyUrl"),
            playlist=JobPlan.from_wire(d["playlist"]) if d.get("playlist") else None,
            item_template=JobPlan.from_wire(d["itemTemplate"]) if d.get("itemTemplate") else None,
            allowed_hosts=tuple(d.get("allowedHosts") or ()),
            allow_private_addresses=bool(d.get("allowPrivateAddresses", False)),
            owner=d.get("owner") if isinstance(d.get("owner"), str) else None,
        )


# A job id is a Durable instance id that goes into URLs and blob names unquoted.
MAX_INSTANCE_ID_LENGTH = 100

_SAFE_INSTANCE_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_INSTANCE_ID_LENGTH}}}")


def is_url_safe_instance_id(instance_id: object) -> bool:
    """Letters, digits, `-` and `_` only (what the extension generates: 32 hex digits)."""
    return isinstance(instance_id, str) and _SAFE_INSTANCE_ID.fullmatch(instance_id) is not None
