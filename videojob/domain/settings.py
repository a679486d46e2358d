"""Settings: every app setting parsed once into a typed, frozen object.

Sources, as in the Functions host: `local.settings.json` ("Values") if present, overridden by
environment variables. A missing or malformed setting raises `SettingsError` naming it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from videojob.contract.setting_values import SettingsError, parse_allowed_hosts, parse_extractor_args, parse_proxy_url

SETTING_NAMES: tuple[str, ...] = (
    "AZURE_SUBSCRIPTION_ID",
    "ACI_RESOURCE_GROUP",
    "ACI_LOCATION",
    "WORKER_IMAGE",
    "WORKER_IDENTITY_RESOURCE_ID",
    "WORKER_IDENTITY_CLIENT_ID",
    "WORKER_CPU",
    "WORKER_MEMORY_GB",
    "REGISTRY_SERVER",
    "REGISTRY_USERNAME",
    "REGISTRY_PASSWORD",
    "OUTPUT_ACCOUNT_URL",
    "OUTPUT_CONNECTION_STRING",
    "OUTPUT_CONTAINER",
    "STAGING_CONTAINER",
    "CALLBACK_BASE_URL",
    "CALLBACK_SIGNING_KEY",
    "ALLOWED_HOSTS",
    "ALLOW_PRIVATE_ADDRESSES",
    "JOB_DEADLINE_SECONDS",
    "JOB_RETENTION_DAYS",
    "HEARTBEAT_TIMEOUT_SECONDS",
    "PROGRESS_INTERVAL_SECONDS",
    "PROGRESS_EVENT_MIN_SECONDS",
    "PROVISION_MAX_ATTEMPTS",
    "CLEANUP_BACKOFF_SECONDS",
    "MAX_DOWNLOAD_BYTES",
    "FAILED_GROUP_POLICY",
    "FAILED_GROUP_RETENTION_SECONDS",
    "SWEEP_SCHEDULE",
    "CONTAINER_BACKEND",
    "MAX_PARALLEL_JOBS",
    "MAX_RUNNING_JOBS",
    "MAX_BATCH_URLS",
    "MAX_PLAYLIST_ITEMS",
    "DEDUPLICATE",
    "JOB_MAX_ATTEMPTS",
    "JOB_RETRY_BACKOFF_SECONDS",
    "SHARE_LINK_HOURS",
    "NOTIFY_SIGNING_KEY",
    "ACI_PRICE_PER_VCPU_SECOND",
    "ACI_PRICE_PER_GB_SECOND",
    "COST_CURRENCY",
    "YOUTUBE_COOKIES",
    "WORKER_PROXY_URL",
    "YTDLP_EXTRACTOR_ARGS",
    "RETRY_BOT_CHECK",
    "AUTH_MODE",
    "MAX_ACTIVE_JOBS_PER_USER",
    "MAX_RUNNING_JOBS_PER_USER",
)
"""Every app setting the code reads (the infra drift test compares this with the sample and Bicep)."""

PLATFORM_VARIABLES: tuple[str, ...] = (
    "WEBSITE_HOSTNAME", "WEBSITE_SITE_NAME", "AZURE_CLIENT_ID", "WEBSITE_AUTH_ENABLED"
)
"""Set by the platform or the identity convention, not by us: read, but not app settings we own."""

SECRET_SETTINGS: frozenset[str] = frozenset(
    {
        "CALLBACK_SIGNING_KEY",
        "OUTPUT_CONNECTION_STRING",
        "REGISTRY_PASSWORD",
        "NOTIFY_SIGNING_KEY",
        "YOUTUBE_COOKIES",
        "WORKER_PROXY_URL",
    }
)

PODMAN_DEFAULT_IMAGE = "localhost/video-worker:dev"
"""`WORKER_IMAGE` when `CONTAINER_BACKEND=podman`: the tag `make image` builds (Makefile WORKER_IMAGE_TAG)."""

MAX_TIMER_SECONDS = 6 * 24 * 3600 - 60
"""Durable timers must stay under 6 days (long-timer cancel bug); deadlines are capped below it."""


@dataclass(frozen=True)
class Settings:
    container_backend: Literal["aci", "local", "podman"]
    # Azure Container Instances
    subscription_id: str | None
    resource_group: str | None
    location: str | None
    worker_image: str
    worker_identity_resource_id: str | None
    worker_identity_client_id: str | None
    worker_cpu: float
    worker_memory_gb: float
    registry_server: str | None
    registry_username: str | None
    registry_password: str | None
    # Output
    output_account_url: str | None
    output_connection_string: str | None
    output_container: str
    staging_container: str
    """Where workers write (each through a per-blob SAS the app signs); the app copies verified
    blobs out of it into `output_container` (`activities/publish.py`)."""
    # Callback
    callback_base_url: str
    callback_signing_key: str
    # Policy
    allowed_hosts: tuple[str, ...]
    allow_private_addresses: bool
    job_deadline_seconds: int
    heartbeat_timeout_seconds: int
    progress_interval_seconds: int
    progress_event_min_seconds: int
    """The callback raises at most one `progress` per job this often; it uses at most a third of the
    heartbeat and at least 1 s, so 0 means 1 s (`report_gate.report_spacing`)."""
    provision_max_attempts: int
    cleanup_backoff_seconds: int
    max_download_bytes: int
    failed_group_policy: Literal["stop", "delete"]
    failed_group_retention_seconds: int
    sweep_schedule: str
    app_name: str
    # Batches, retries, share links, completion webhooks, cost
    max_parallel_jobs: int
    max_running_jobs: int
    """`MAX_RUNNING_JOBS`: container groups the whole service runs at once (the `job_slots` entity)."""
    max_batch_urls: int
    max_playlist_items: int
    deduplicate: bool
    job_max_attempts: int
    job_retry_backoff_seconds: int
    share_link_hours: int
    notify_signing_key: str | None
    price_per_vcpu_second: float
    price_per_gb_second: float
    cost_currency: str
    # Sites that refuse datacenter addresses (YouTube's bot check): operator-level, never per request
    youtube_cookies: str | None
    """A Netscape cookies.txt; reaches the worker as a read-only file, never as an env value."""
    worker_proxy_url: str | None
    extractor_args: tuple[str, ...]
    """yt-dlp `--extractor-args` groups (`IE_KEY:ARGS`), as `YTDLP_EXTRACTOR_ARGS` lists them."""
    retry_bot_check: bool
    job_retention_days: int = 30
    """`JOB_RETENTION_DAYS`: finished jobs older than this are purged everywhere (`retention`)."""
    # Users (issue 21)
    auth_mode: Literal["key", "entra"] = "key"
    """`AUTH_MODE`: `key` (function keys, one kind of caller) or `entra` (App Service Authentication
    signs people in; jobs belong to their submitter; `videojob.domain.principal`)."""
    platform_auth_enabled: bool = False
    """`WEBSITE_AUTH_ENABLED`, injected by App Service when its authentication is on: only then are
    the `x-ms-client-principal*` headers the platform's (it strips them from outside requests)."""
    max_active_jobs_per_user: int = 50
    """`MAX_ACTIVE_JOBS_PER_USER`: queued + running jobs (batch items counted) one owner may have."""
    max_running_jobs_per_user: int = 0
    """`MAX_RUNNING_JOBS_PER_USER`: `MAX_RUNNING_JOBS` slots one owner may hold at once; 0: no
    per-owner limit (the `job_slots` entity reads it, like the cap)."""

    def __repr__(self) -> str:
        # Secrets never appear in a repr (tracebacks, logs).
        return f"Settings(container_backend={self.container_backend!r}, app_name={self.app_name!r}, ...)"


def read_local_settings(path: str | os.PathLike[str]) -> dict[str, str]:
    """The "Values" of a `local.settings.json`, or {} when the file does not exist."""
    p = Path(path)
    if not p.exists():
        return {}
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as e:
        raise SettingsError(f"{p} is not valid JSON: {e}") from e
    values = doc.get("Values", {}) if isinstance(doc, dict) else {}
    if not isinstance(values, dict):
        raise SettingsError(f"{p}: 'Values' must be an object")
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


def merged_environment(
    environ: Mapping[str, str] | None = None, local_settings_path: str | os.PathLike[str] | None = None
) -> dict[str, str]:
    """local.settings.json values overridden by the environment, as the Functions host does."""
    merged = read_local_settings(local_settings_path) if local_settings_path else {}
    merged.update(os.environ if environ is None else environ)
    return merged


class _Reader:
    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def str(self, name: str, default: str | None = None) -> str | None:
        v = self.env.get(name)
        if v is None or v.strip() == "":
            return default
        return v.strip()

    def required(self, name: str, why: str) -> str:
        v = self.str(name)
        if v is None:
            raise SettingsError(f"setting {name} is required {why}")
        return v

    def int(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.str(name)
        if raw is None:
            return default
        try:
            v = int(raw)
        except ValueError:
            raise SettingsError(f"setting {name} must be a whole number") from None
        if not lo <= v <= hi:
            raise SettingsError(f"setting {name} must be between {lo} and {hi}")
        return v

    def float(self, name: str, default: float, lo: float, hi: float) -> float:
        raw = self.str(name)
        if raw is None:
            return default
        try:
            v = float(raw)
        except ValueError:
            raise SettingsError(f"setting {name} must be a number") from None
        if not lo <= v <= hi:
            raise SettingsError(f"setting {name} must be between {lo} and {hi}")
        return v

    def bool(self, name: str, default: bool) -> bool:
        raw = self.str(name)
        if raw is None:
            return default
        low = raw.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"setting {name} must be true or false")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        v = (self.str(name) or default).lower()
        if v not in choices:
            raise SettingsError(f"setting {name} must be one of {', '.join(choices)}")
        return v


_NCRONTAB_FIELD = re.compile(r"[0-9A-Za-z*/,?-]+")
_TIMESPAN = re.compile(r"(\d+\.)?\d{1,2}:\d{2}:\d{2}")


def parse_schedule(raw: str) -> str:
    """`SWEEP_SCHEDULE` as the Functions timer trigger takes it: six-field NCRONTAB
    (`{second} {minute} {hour} {day} {month} {day-of-week}`) or a TimeSpan (`00:10:00`)."""
    fields = raw.split()
    if len(fields) == 6 and all(_NCRONTAB_FIELD.fullmatch(f) for f in fields):
        return raw
    if _TIMESPAN.fullmatch(raw):
        return raw
    raise SettingsError(
        "setting SWEEP_SCHEDULE must be a six-field NCRONTAB expression (e.g. '0 */10 * * * *') or a TimeSpan"
    )


def load_settings(
    environ: Mapping[str, str] | None = None, local_settings_path: str | os.PathLike[str] | None = None
) -> Settings:
    """Parse and validate every setting. Raises `SettingsError` naming the first bad one."""
    r = _Reader(merged_environment(environ, local_settings_path))
    backend = r.choice("CONTAINER_BACKEND", "aci", ("aci", "local", "podman"))
    on_aci = backend == "aci"

    callback_base = r.str("CALLBACK_BASE_URL")
    if callback_base is None:
        hostname = r.str("WEBSITE_HOSTNAME")
        if hostname is None:
            raise SettingsError("setting CALLBACK_BASE_URL is required (or WEBSITE_HOSTNAME, set by Azure)")
        callback_base = f"https://{hostname}"
    if not callback_base.startswith(("http://", "https://")):
        raise SettingsError("setting CALLBACK_BASE_URL must start with http:// or https://")

    signing_key = r.required("CALLBACK_SIGNING_KEY", "to sign per-job callback tokens")
    if signing_key.startswith("@Microsoft.KeyVault("):
        # App Service leaves the reference text in place when it cannot resolve it: never sign with public text.
        raise SettingsError(
            "setting CALLBACK_SIGNING_KEY is an unresolved Key Vault reference (check the app identity's access)"
        )
    if len(signing_key) < 32:
        raise SettingsError("setting CALLBACK_SIGNING_KEY must be at least 32 characters")

    account_url = r.str("OUTPUT_ACCOUNT_URL")
    connection_string = r.str("OUTPUT_CONNECTION_STRING")
    if account_url is None and connection_string is None:
        raise SettingsError("setting OUTPUT_ACCOUNT_URL (or OUTPUT_CONNECTION_STRING for Azurite) is required")

    aci_reason = "when CONTAINER_BACKEND=aci"
    registry_username = r.str("REGISTRY_USERNAME")
    registry_password = r.str("REGISTRY_PASSWORD")
    if (registry_username is None) != (registry_password is None):
        raise SettingsError("settings REGISTRY_USERNAME and REGISTRY_PASSWORD must be set together")

    deadline = r.int("JOB_DEADLINE_SECONDS", 7200, 60, MAX_TIMER_SECONDS)
    return Settings(
        container_backend=backend,  # type: ignore[arg-type]
        subscription_id=r.required("AZURE_SUBSCRIPTION_ID", aci_reason) if on_aci else r.str("AZURE_SUBSCRIPTION_ID"),
        resource_group=r.required("ACI_RESOURCE_GROUP", aci_reason) if on_aci else r.str("ACI_RESOURCE_GROUP"),
        location=r.required("ACI_LOCATION", aci_reason) if on_aci else r.str("ACI_LOCATION"),
        worker_image=(
            r.required("WORKER_IMAGE", aci_reason) if on_aci else r.str("WORKER_IMAGE", _default_image(backend))
        ),
        worker_identity_resource_id=(
            r.required("WORKER_IDENTITY_RESOURCE_ID", aci_reason) if on_aci else r.str("WORKER_IDENTITY_RESOURCE_ID")
        ),
        worker_identity_client_id=(
            r.required("WORKER_IDENTITY_CLIENT_ID", aci_reason) if on_aci else r.str("WORKER_IDENTITY_CLIENT_ID")
        ),
        worker_cpu=r.float("WORKER_CPU", 1.0, 0.1, 4.0),
        worker_memory_gb=r.float("WORKER_MEMORY_GB", 1.5, 0.1, 16.0),
        registry_server=r.str("REGISTRY_SERVER"),
        registry_username=registry_username,
        registry_password=registry_password,
        output_account_url=account_url,
        output_connection_string=connection_string,
        output_container=r.str("OUTPUT_CONTAINER", "downloads"),  # type: ignore[arg-type]
        staging_container=r.str("STAGING_CONTAINER", "staging"),  # type: ignore[arg-type]
        callback_base_url=callback_base.rstrip("/"),
        callback_signing_key=signing_key,
        allowed_hosts=parse_allowed_hosts(r.str("ALLOWED_HOSTS")),
        allow_private_addresses=r.bool("ALLOW_PRIVATE_ADDRESSES", False),
        job_deadline_seconds=deadline,
        heartbeat_timeout_seconds=r.int("HEARTBEAT_TIMEOUT_SECONDS", 600, 5, MAX_TIMER_SECONDS),
        progress_interval_seconds=r.int("PROGRESS_INTERVAL_SECONDS", 20, 0, 3600),
        progress_event_min_seconds=r.int("PROGRESS_EVENT_MIN_SECONDS", 10, 0, 3600),
        provision_max_attempts=r.int("PROVISION_MAX_ATTEMPTS", 4, 1, 20),
        # Between two tries to remove a group (or to check an output blob): this, doubled per try, capped.
        cleanup_backoff_seconds=r.int("CLEANUP_BACKOFF_SECONDS", 5, 0, 300),
        max_download_bytes=r.int("MAX_DOWNLOAD_BYTES", 8 * 1024**3, 1024, 1024**5),
        failed_group_policy=r.choice("FAILED_GROUP_POLICY", "stop", ("stop", "delete")),  # type: ignore[arg-type]
        failed_group_retention_seconds=r.int("FAILED_GROUP_RETENTION_SECONDS", 86400, 0, 365 * 86400),
        sweep_schedule=parse_schedule(r.str("SWEEP_SCHEDULE", "0 */10 * * * *")),  # type: ignore[arg-type]
        app_name=r.str("WEBSITE_SITE_NAME", "video-downloader"),  # type: ignore[arg-type]
        max_parallel_jobs=r.int("MAX_PARALLEL_JOBS", 3, 1, 50),
        max_running_jobs=r.int("MAX_RUNNING_JOBS", 20, 1, 500),
        max_batch_urls=r.int("MAX_BATCH_URLS", 25, 1, 200),
        max_playlist_items=r.int("MAX_PLAYLIST_ITEMS", 25, 1, 200),
        deduplicate=r.bool("DEDUPLICATE", False),
        job_max_attempts=r.int("JOB_MAX_ATTEMPTS", 3, 1, 10),
        # Before attempt n+1: this, doubled per attempt (capped by the orchestrator); 0 retries at once.
        job_retry_backoff_seconds=r.int("JOB_RETRY_BACKOFF_SECONDS", 30, 0, 3600),
        # A user-delegation SAS lives at most 7 days.
        share_link_hours=r.int("SHARE_LINK_HOURS", 24, 0, 168),
        notify_signing_key=_notify_key(r),
        price_per_vcpu_second=r.float("ACI_PRICE_PER_VCPU_SECOND", 0.0000135, 0.0, 1.0),
        price_per_gb_second=r.float("ACI_PRICE_PER_GB_SECOND", 0.0000015, 0.0, 1.0),
        cost_currency=_currency(r),
        youtube_cookies=_cookies(r),
        worker_proxy_url=parse_proxy_url(r.str("WORKER_PROXY_URL")),
        extractor_args=parse_extractor_args(r.str("YTDLP_EXTRACTOR_ARGS")),
        retry_bot_check=r.bool("RETRY_BOT_CHECK", True),
        job_retention_days=r.int("JOB_RETENTION_DAYS", 30, 1, 3650),
        auth_mode=auth_mode(r.env),  # type: ignore[arg-type]
        # The platform's variable, not ours: anything but a true value is "off", never a startup error.
        platform_auth_enabled=(r.str("WEBSITE_AUTH_ENABLED") or "").lower() in ("true", "1"),
        max_active_jobs_per_user=r.int("MAX_ACTIVE_JOBS_PER_USER", 50, 1, 10000),
        max_running_jobs_per_user=r.int("MAX_RUNNING_JOBS_PER_USER", 0, 0, 500),
    )


def auth_mode(environ: Mapping[str, str] | None = None) -> str:
    """`AUTH_MODE`, also read on its own when the routes are declared (before settings load): in
    `entra` mode the host lets requests through without a function key (App Service Authentication
    is in front), so each route's auth level depends on it."""
    r = _Reader(os.environ if environ is None else environ)
    return r.choice("AUTH_MODE", "key", ("key", "entra"))


def _default_image(backend: str) -> str:
    """`make image`'s tag for the podman backend; the local backend runs no image."""
    return PODMAN_DEFAULT_IMAGE if backend == "podman" else "local"


def _notify_key(r: _Reader) -> str | None:
    """`NOTIFY_SIGNING_KEY`: optional; without it, requests with a `notifyUrl` are refused."""
    key = r.str("NOTIFY_SIGNING_KEY")
    if key is None:
        return None
    if key.startswith("@Microsoft.KeyVault("):
        raise SettingsError("setting NOTIFY_SIGNING_KEY is an unresolved Key Vault reference")
    if len(key) < 32:
        raise SettingsError("setting NOTIFY_SIGNING_KEY must be at least 32 characters")
    return key


def _currency(r: _Reader) -> str:
    code = (r.str("COST_CURRENCY") or "USD").upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise SettingsError("setting COST_CURRENCY must be a three-letter currency code")
    return code


MAX_COOKIES_BYTES = 24 * 1024
"""A Key Vault secret holds at most 25 KB: YouTube's cookies of one session take about 3 KB."""


def _cookies(r: _Reader) -> str | None:
    """`YOUTUBE_COOKIES`: optional; its format is the worker's to judge (`invalid_cookies`)."""
    raw = r.str("YOUTUBE_COOKIES")
    if raw is None:
        return None  # azd creates the secret empty: no cookies
    if raw.startswith("@Microsoft.KeyVault("):
        raise SettingsError("setting YOUTUBE_COOKIES is an unresolved Key Vault reference")
    if len(raw.encode("utf-8")) > MAX_COOKIES_BYTES:
        raise SettingsError(f"setting YOUTUBE_COOKIES must be at most {MAX_COOKIES_BYTES} bytes")
    # Kept as given (tabs and line ends are the format); only Windows line ends are normalized.
    return raw.replace("\r\n", "\n")


