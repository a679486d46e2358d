"""The worker's configuration: the container env contract plus tuning that is ours to choose.

The env names are owned by `videojob.contract.container_env`; this module adds nothing the function
app would have to know about.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from videojob.contract.container_env import (
    MAX_SECURE_ENV_FILE_BYTES,
    SECURE_ENV_FILE,
    SECURE_NAMES,
    WorkerEnv,
    WorkerEnvError,
    parse_worker_env,
)
from videojob.contract.url_policy import UrlPolicy

__all__ = ["Tuning", "WorkerConfig", "WorkerEnvError", "load_config"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class Tuning:
    """Knobs with sensible defaults, written here only (`DownloadTuning` and the upload take
    theirs from here); tests shorten the waits."""

    concurrent_fragments: int = 4
    socket_timeout_seconds: float = 30.0
    download_retries: int = 3
    upload_block_bytes: int = 8 * MiB
    upload_concurrency: int = 4
    callback_timeout_seconds: float = 10.0
    callback_max_attempts: int = 6
    callback_backoff_seconds: float = 1.0
    callback_backoff_max_seconds: float = 8.0
    callback_final_give_up_seconds: float = 120.0
    """How long a terminal report is retried (the outcome is recorded before: `videojob.contract.result_record`)."""
    cancel_grace_seconds: float = 5.0
    """After SIGTERM, how long the job may take to stop cleanly before the runner reports for it."""
    in_memory_bytes: int = 32 * MiB
    """Pages, API answers, playlists and manifests one job may read, together (see `traffic`;
    YouTube needs about 10 MB)."""
    max_fragments: int = 100_000
    """Segments one playlist or manifest may describe (a 10-hour stream of 2 s segments has 18,000)."""


@dataclass(frozen=True)
class WorkerConfig:
    env: WorkerEnv
    tuning: Tuning = field(default_factory=Tuning)

    @property
    def blob_endpoint(self) -> str | None:
        """The blob service the upload talks to: the origin of its SAS URLs (without the SAS)."""
        return blob_endpoint_of(self.env.media_upload_url or self.env.record_upload_url)

    @property
    def url_policy(self) -> UrlPolicy:
        return UrlPolicy(allowed_hosts=self.env.allowed_hosts, allow_private_addresses=self.env.allow_private_addresses)


def blob_endpoint_of(sas_url: str) -> str | None:
    """`scheme://host[:port]` of a SAS URL: what the address guard trusts (never the SAS itself)."""
    from urllib.parse import urlsplit

    parts = urlsplit(sas_url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def with_secure_env_file(environ: Mapping[str, str]) -> Mapping[str, str]:
    """`environ` plus the secure variables from `SECURE_ENV_FILE` when it is set (the podman
    backend's secret: podman would show them in `Config.Env`). Only names of `SECURE_NAMES` are
    taken from the file, and a value in the env itself wins. `WorkerEnvError` names the variable,
    never a value."""
    path = (environ.get(SECURE_ENV_FILE) or "").strip()
    if not path:
        return environ
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SECURE_ENV_FILE_BYTES + 1)
        values = json.loads(raw) if len(raw) <= MAX_SECURE_ENV_FILE_BYTES else None
    except (OSError, ValueError):
        raise WorkerEnvError(f"{SECURE_ENV_FILE} does not name a readable JSON file") from None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise WorkerEnvError(f"{SECURE_ENV_FILE} must hold a JSON object of strings")
    from_file = {name: value for name, value in values.items() if name in SECURE_NAMES}
    return {**from_file, **environ}


def load_config(environ: Mapping[str, str], tuning: Tuning | None = None) -> WorkerConfig:
    """Parse the container env (with `SECURE_ENV_FILE`'s values); raises `WorkerEnvError` naming
    the bad variable."""
    return WorkerConfig(env=parse_worker_env(with_secure_env_file(environ)), tuning=tuning or Tuning())
