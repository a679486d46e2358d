"""The container spec: exactly one pure function decides what a job's container group is.

Every backend (`aci`, `local`, `podman`) consumes the `ContainerSpec` it returns, so the local
mode runs the worker with the same env the cloud would give it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from videojob.contract import container_env as E
from videojob.contract.container_env import RUN_TOKEN_CHARS, RUN_TOKEN_RE
from videojob.contract.wire import DownloadRequest
from videojob.domain.settings import Settings
from videojob.domain.tokens import worker_token

if TYPE_CHECKING:
    from videojob.contract.staging import UploadGrant  # staging -> output_blob -> instances -> ... -> this module

GROUP_PREFIX = "dl-"
MAX_GROUP_NAME = 63
CONTAINER_NAME = "worker"

TAG_MANAGED_BY = "managedBy"
TAG_JOB_ID = "jobId"
TAG_CREATED_AT = "createdAt"
TAG_DEADLINE = "deadline"

SECRETS_MOUNT_PATH = "/mnt/videojob-secrets"
"""Where a container finds its secret files (an ACI `secret` volume, mounted read-only)."""
COOKIES_FILE_NAME = "cookies.txt"


@dataclass(frozen=True)
class RegistryCredentials:
    server: str
    identity: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SecretFile:
    """A file only the worker reads, on a read-only mount: its content never becomes an env value
    (env values show in `ps`, in crash dumps and in the ARM body's plain fields); the variable
    `env_name` carries its path."""

    name: str
    env_name: str
    content: str = field(repr=False)


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    location: str | None
    cpu: float
    memory_gb: float
    env: tuple[tuple[str, str], ...]
    secure_env: tuple[tuple[str, str], ...] = field(repr=False)
    tags: tuple[tuple[str, str], ...]
    identity_resource_id: str | None
    registry: RegistryCredentials | None
    container_name: str = CONTAINER_NAME
    secret_files: tuple[SecretFile, ...] = field(default=(), repr=False)

    def file_env(self, secrets_dir: str = SECRETS_MOUNT_PATH) -> dict[str, str]:
        """The variables naming the secret files, for a backend that puts them in `secrets_dir`."""
        return {f.env_name: f"{secrets_dir.rstrip('/')}/{f.name}" for f in self.secret_files}

    def environment(self, secrets_dir: str = SECRETS_MOUNT_PATH) -> dict[str, str]:
        """Plain and secure variables together: what the worker process sees (secret files in
        `secrets_dir`)."""
        return dict(self.env) | self.file_env(secrets_dir) | dict(self.secure_env)

    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)


def format_time(t: datetime) -> str:
    """UTC, second precision, `Z` suffix: the form used in tags and on the wire."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def group_name(job_id: str) -> str:
    """`dl-<sanitized job id>`: 1-63 chars of lowercase alnum and `-`, no `--`, no edge `-`.

    When sanitizing changes or truncates the id, a short hash of the original keeps two
    different job ids from mapping to the same group.
    """
    clean = re.sub(r"[^a-z0-9]+", "-", job_id.lower()).strip("-")
    clean = re.sub(r"-{2,}", "-", clean)
    name = f"{GROUP_PREFIX}{clean}"
    if clean != job_id or not clean or len(name) > MAX_GROUP_NAME:
        digest = hashlib.sha256(job_id.encode("utf-8")).hexdigest()[:8]
        head = name[: MAX_GROUP_NAME - len(digest) - 1].rstrip("-")
        name = f"{head}-{digest}"
    return name


def run_token(run_uuid: str) -> str:
    """The short token that tells one orchestration run of a job from another: the first hex
    digits of a UUID the orchestrator makes replay-safe (`context.new_uuid()`, derived from the
    instance id and the run's start time), so a job restarted under the same id (an
    `Idempotency-Key` resubmit after a failure) never meets the groups of its earlier run."""
    token = run_uuid.replace("-", "").lower()[:RUN_TOKEN_CHARS]
    if not RUN_TOKEN_RE.fullmatch(token):
        raise ValueError("a run token needs a UUID")
    return token


def attempt_group_name(job_id: str, attempt: int = 1, run: str | None = None) -> str:
    """The group of attempt `attempt` (1-based) of run `run` of a job: a fresh name for every run
    and every attempt, so neither a retry nor a restarted job ever meets an earlier group (stopped,
    failed, or being deleted), which a create would otherwise report as the job's own.

    The name is the group name of `<job id>#r<run>#a<n>` (`#r<run>` without a run, `#a<n>` from
    the second attempt on): sanitizing the `#` adds a hash of that text, so another job's group
    could only share it if that job's id were this very name, hash included (ids are GUIDs or
    derived from them). `#` cannot occur in a Durable instance id, so no job's name is another
    job's. Example: `dl-job-1-r0a1b2c3d-a2-1f2e3d4c`. Without a run (inputs of orchestrations
    started before runs were named) the names are the earlier ones: `group_name(job_id)` for the
    first attempt.
    """
    text = job_id
    if run is not None:
        text += f"#r{run}"
    if attempt > 1:
        text += f"#a{attempt}"
    return group_name(text)


def worker_callback_token(settings: Settings, job_id: str, run: str | None, attempt: int, deadline: datetime) -> str:
    """The `CALLBACK_TOKEN` the worker of attempt `attempt` of run `run` holds (expiring at the job's
    deadline). Also the key of its result record's MAC (`videojob.contract.result_record`): one function, so
    the two never differ."""
    return worker_token(settings.callback_signing_key, job_id, run, max(1, attempt), deadline)


def callback_url(settings: Settings, job_id: str) -> str:
    return f"{settings.callback_base_url}/api/jobs/{job_id}/status"


def build_container_spec(
    request: DownloadRequest,
    settings: Settings,
    job_id: str,
    created_at: datetime,
    deadline: datetime,
    attempt: int = 1,
    *,
    run: str | None = None,
    mode: str = "download",
    max_items: int | None = None,
    upload: UploadGrant | None = None,
) -> ContainerSpec:
    """The one place that decides a job's container group (name, image, env, tags, identity).

    Operator access settings reach every group alike: the proxy as a secure value, extractor
    arguments as a plain one, cookies as a secret file (`secret_files`).

    `attempt` (1-based) and `run` (the orchestration run's token) pick the group name
    (`attempt_group_name`); the attempt is passed to the worker, which stamps it on every event
    so the orchestrator can ignore an earlier attempt's reports.

    `upload` is the attempt's storage credential (`videojob.contract.staging`: a write-only SAS per staging
    blob, signed by the app): the only one a worker gets. No account key, connection string or
    storage account URL reaches its environment."""
    timeout = max(1, int((deadline - created_at).total_seconds()))
    env: dict[str, str] = {
        E.JOB_ID: job_id,
        E.JOB_ATTEMPT: str(max(1, attempt)),
        **({E.JOB_RUN: run} if run else {}),
        E.JOB_URL: request.url,
        E.JOB_FORMAT: request.format,
        E.JOB_MAX_BYTES: str(settings.max_download_bytes),
        E.JOB_TIMEOUT_SECONDS: str(timeout),
        E.OUTPUT_CONTAINER: settings.output_container,
        E.CALLBACK_URL: callback_url(settings, job_id),
        E.ALLOWED_HOSTS: ",".join(settings.allowed_hosts),
        E.ALLOW_PRIVATE_ADDRESSES: "true" if settings.allow_private_addresses else "false",
        E.PROGRESS_INTERVAL_SECONDS: str(settings.progress_interval_seconds),
        # The worker keeps its own memory below the container's (`worker.memory_limit`).
        E.CONTAINER_MEMORY_MB: str(max(1, round(settings.worker_memory_gb * 1024))),
    }
    if request.format == "audio":
        env[E.JOB_AUDIO_FORMAT] = request.audio_format
    if request.max_height is not None:
        env[E.JOB_MAX_HEIGHT] = str(request.max_height)
    if mode != "download":
        # `list`: the worker lists a playlist's entries (flat extraction) and uploads nothing.
        env[E.JOB_MODE] = mode
        if max_items is not None:
            env[E.JOB_MAX_ITEMS] = str(max_items)
    if settings.extractor_args:
        env[E.YTDLP_EXTRACTOR_ARGS] = " ".join(settings.extractor_args)

    # This attempt's token: it names the run and attempt and expires at the job's deadline.
    env[E.CALLBACK_TOKEN] = worker_callback_token(settings, job_id, run, attempt, deadline)
    if upload is not None:
        env[E.STAGING_RECORD_URL] = upload.record_url
        if upload.media_url:
            env[E.STAGING_MEDIA_URL] = upload.media_url
    if settings.worker_proxy_url:
        env[E.PROXY_URL] = settings.worker_proxy_url
    secret_files: tuple[SecretFile, ...] = ()
    if settings.youtube_cookies:
        secret_files = (SecretFile(COOKIES_FILE_NAME, E.COOKIES_FILE, settings.youtube_cookies),)

    registry = None
    if settings.registry_server:
        if settings.registry_username:
            registry = RegistryCredentials(
                server=settings.registry_server,
                username=settings.registry_username,
                password=settings.registry_password,
            )
        else:
            registry = RegistryCredentials(
                server=settings.registry_server, identity=settings.worker_identity_resource_id
            )

    return ContainerSpec(
        name=attempt_group_name(job_id, attempt, run),
        image=settings.worker_image,
        location=settings.location,
        cpu=settings.worker_cpu,
        memory_gb=settings.worker_memory_gb,
        # `SECURE_NAMES` decides what is a secure value (hidden in ARM's answers and logs).
        env=tuple(sorted((k, v) for k, v in env.items() if k not in E.SECURE_NAMES)),
        secure_env=tuple(sorted((k, v) for k, v in env.items() if k in E.SECURE_NAMES)),
        tags=(
            (TAG_MANAGED_BY, settings.app_name),
            (TAG_JOB_ID, job_id),
            (TAG_CREATED_AT, format_time(created_at)),
            (TAG_DEADLINE, format_time(deadline)),
        ),
        identity_resource_id=settings.worker_identity_resource_id,
        registry=registry,
        secret_files=secret_files,
    )
