"""The container env contract: the names the spec builder writes and the worker reads.

One owner for the names, so the function app and the worker cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from videojob.contract.setting_values import SettingsError, parse_allowed_hosts, parse_extractor_args, parse_proxy_url
from videojob.contract.wire import AUDIO_FORMATS, FORMATS, JOB_MODES, MAX_PLAYLIST_ENTRIES

JOB_ID = "JOB_ID"
JOB_ATTEMPT = "JOB_ATTEMPT"
JOB_RUN = "JOB_RUN"  # the orchestration run's token (in the group name too): names the result record
JOB_URL = "JOB_URL"
JOB_FORMAT = "JOB_FORMAT"
JOB_AUDIO_FORMAT = "JOB_AUDIO_FORMAT"
JOB_MAX_HEIGHT = "JOB_MAX_HEIGHT"
JOB_MAX_BYTES = "JOB_MAX_BYTES"
JOB_TIMEOUT_SECONDS = "JOB_TIMEOUT_SECONDS"
JOB_MODE = "JOB_MODE"  # `download` (default) or `list` (a playlist's entries, nothing downloaded)
JOB_MAX_ITEMS = "JOB_MAX_ITEMS"  # `list` mode: at most this many entries
OUTPUT_CONTAINER = "OUTPUT_CONTAINER"  # where the app publishes the file: names the reported blob
STAGING_MEDIA_URL = "STAGING_MEDIA_URL"  # secure: a write-only SAS for this attempt's media (`staging`)
STAGING_RECORD_URL = "STAGING_RECORD_URL"  # secure: a write-only SAS for this attempt's result record
CALLBACK_URL = "CALLBACK_URL"
CALLBACK_TOKEN = "CALLBACK_TOKEN"  # noqa: S105 (a variable name; secure)
ALLOWED_HOSTS = "ALLOWED_HOSTS"
ALLOW_PRIVATE_ADDRESSES = "ALLOW_PRIVATE_ADDRESSES"
PROGRESS_INTERVAL_SECONDS = "PROGRESS_INTERVAL_SECONDS"
CONTAINER_MEMORY_MB = "CONTAINER_MEMORY_MB"  # the container's memory: the worker limits itself below it
COOKIES_FILE = "COOKIES_FILE"  # path of a read-only cookies.txt (a secret file, never a value here)
PROXY_URL = "PROXY_URL"  # secure: yt-dlp's proxy (may hold credentials)
YTDLP_EXTRACTOR_ARGS = "YTDLP_EXTRACTOR_ARGS"  # space-separated `IE_KEY:ARGS` groups
SECURE_ENV_FILE = "SECURE_ENV_FILE"
"""Path of a JSON object holding the secure variables, for a backend that cannot keep values out
of its own inspection (podman shows a container's env): the worker reads them from there."""
MAX_SECURE_ENV_FILE_BYTES = 256 * 1024

# What the worker assumes when a variable is absent (the spec builder writes most of them).
# The orchestration run's token (`videojob.domain.container_spec.run_token`): the first hex digits of a UUID.
RUN_TOKEN_CHARS = 8
RUN_TOKEN_RE = re.compile(rf"[0-9a-f]{{{RUN_TOKEN_CHARS}}}")

DEFAULT_MODE = "download"
DEFAULT_FORMAT = "video"
DEFAULT_AUDIO_FORMAT = "m4a"
DEFAULT_MAX_BYTES = 8 * 1024**3
DEFAULT_TIMEOUT_SECONDS = 7200
DEFAULT_PROGRESS_INTERVAL_SECONDS = 20.0

T = TypeVar("T")

SECURE_NAMES: frozenset[str] = frozenset({STAGING_MEDIA_URL, STAGING_RECORD_URL, CALLBACK_TOKEN, PROXY_URL})
"""Never an account key or connection string: a worker's only storage credential is its two SAS URLs."""


class WorkerEnvError(ValueError):
    """The container env is incomplete or malformed; the message names the variable."""


@dataclass(frozen=True)
class WorkerEnv:
    job_id: str
    url: str
    format: str
    audio_format: str
    max_height: int | None
    max_bytes: int
    timeout_seconds: int
    output_container: str
    record_upload_url: str
    """The SAS URL of this attempt's result record (write only, `videojob.contract.staging`)."""
    media_upload_url: str | None
    """The SAS URL of this attempt's staged media (download mode)."""
    callback_url: str
    callback_token: str
    allowed_hosts: tuple[str, ...]
    allow_private_addresses: bool
    progress_interval_seconds: float
    attempt: int = 1
    """Which attempt (container group) of the job this is; stamped on every event."""
    mode: str = DEFAULT_MODE
    max_items: int | None = None
    container_memory_mb: int | None = None
    """The container's memory; the worker sets its own hard memory limit below it."""
    cookies_file: str | None = None
    """A cookies.txt the worker copies before yt-dlp sees it (yt-dlp rewrites its cookie file)."""
    proxy_url: str | None = None
    extractor_args: tuple[str, ...] = ()
    run: str | None = None
    """The orchestration run's token: with `attempt`, where the worker records its outcome."""

    def __repr__(self) -> str:
        return f"WorkerEnv(job_id={self.job_id!r}, url={self.url!r}, format={self.format!r}, ...)"


def _int(env: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise WorkerEnvError(f"{name} must be a whole number") from None


def _positive(env: Mapping[str, str], name: str) -> int | None:
    value = _int(env, name)
    if value is not None and value <= 0:
        raise WorkerEnvError(f"{name} must be a positive whole number")
    return value


def _required(env: Mapping[str, str], name: str) -> str:
    v = (env.get(name) or "").strip()
    if not v:
        raise WorkerEnvError(f"{name} is required")
    return v


def parse_worker_env(env: Mapping[str, str]) -> WorkerEnv:
    mode = (env.get(JOB_MODE) or DEFAULT_MODE).strip()
    if mode not in JOB_MODES:
        raise WorkerEnvError(f"{JOB_MODE} must be one of {', '.join(JOB_MODES)}")
    max_items = _int(env, JOB_MAX_ITEMS)
    if max_items is not None and not 1 <= max_items <= MAX_PLAYLIST_ENTRIES:
        raise WorkerEnvError(f"{JOB_MAX_ITEMS} must be between 1 and {MAX_PLAYLIST_ENTRIES}")
    fmt = (env.get(JOB_FORMAT) or DEFAULT_FORMAT).strip()
    if fmt not in FORMATS:
        raise WorkerEnvError(f"{JOB_FORMAT} must be one of {', '.join(FORMATS)}")
    audio_format = (env.get(JOB_AUDIO_FORMAT) or DEFAULT_AUDIO_FORMAT).strip()
    if audio_format not in AUDIO_FORMATS:
        raise WorkerEnvError(f"{JOB_AUDIO_FORMAT} must be one of {', '.join(AUDIO_FORMATS)}")
    media_url = _sas_url(env, STAGING_MEDIA_URL)
    if media_url is None and mode == DEFAULT_MODE:
        raise WorkerEnvError(f"{STAGING_MEDIA_URL} is required")
    record_url = _sas_url(env, STAGING_RECORD_URL)
    if record_url is None:
        raise WorkerEnvError(f"{STAGING_RECORD_URL} is required")
    raw_interval = (env.get(PROGRESS_INTERVAL_SECONDS) or "").strip()
    try:
        interval = float(raw_interval) if raw_interval else DEFAULT_PROGRESS_INTERVAL_SECONDS
    except ValueError:
        raise WorkerEnvError(f"{PROGRESS_INTERVAL_SECONDS} must be a number") from None
    return WorkerEnv(
        job_id=_required(env, JOB_ID),
        url=_required(env, JOB_URL),
        format=fmt,
        audio_format=audio_format,
        max_height=_int(env, JOB_MAX_HEIGHT),
        max_bytes=_int(env, JOB_MAX_BYTES, DEFAULT_MAX_BYTES),  # type: ignore[arg-type]
        timeout_seconds=_int(env, JOB_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS),  # type: ignore[arg-type]
        output_container=_required(env, OUTPUT_CONTAINER),
        record_upload_url=record_url,
        media_upload_url=media_url,
        callback_url=_required(env, CALLBACK_URL),
        callback_token=_required(env, CALLBACK_TOKEN),
        allowed_hosts=parse_allowed_hosts((env.get(ALLOWED_HOSTS) or "").strip() or None),
        allow_private_addresses=(env.get(ALLOW_PRIVATE_ADDRESSES) or "").strip().lower() in ("1", "true", "yes"),
        progress_interval_seconds=interval,
        attempt=max(1, _int(env, JOB_ATTEMPT, 1)),  # type: ignore[type-var]
        mode=mode,
        max_items=max_items,
        container_memory_mb=_positive(env, CONTAINER_MEMORY_MB),
        cookies_file=(env.get(COOKIES_FILE) or "").strip() or None,
        proxy_url=_checked(parse_proxy_url, env, PROXY_URL),
        extractor_args=_checked(parse_extractor_args, env, YTDLP_EXTRACTOR_ARGS),
        run=_run_token(env),
    )


def _sas_url(env: Mapping[str, str], name: str) -> str | None:
    """A blob SAS URL (`http(s)://.../container/blob?...sig=...`); the error never shows it."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    scheme, _, rest = raw.partition("://")
    if scheme not in ("http", "https") or "?" not in rest or "sig=" not in rest.split("?", 1)[1]:
        raise WorkerEnvError(f"{name} must be a blob SAS URL")
    return raw


def _run_token(env: Mapping[str, str]) -> str | None:
    raw = (env.get(JOB_RUN) or "").strip()
    if raw and not RUN_TOKEN_RE.fullmatch(raw):
        raise WorkerEnvError(f"{JOB_RUN} must be a run token")
    return raw or None


def _checked(parse: Callable[[str | None], T], env: Mapping[str, str], name: str) -> T:
    """A setting's own parser on its container variable; the error names the variable only."""
    try:
        return parse((env.get(name) or "").strip() or None)
    except SettingsError:
        raise WorkerEnvError(f"{name} is malformed") from None
