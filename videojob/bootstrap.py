"""Composition root: settings parsed once, the container backend built once, per process.

Entry points (triggers, activities, the sweeper) ask here; tests call `override` to swap in
fakes and `reset` to start clean.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from videojob.adapters.azure_credential import default_credential
from videojob.adapters.containers import ContainerBackend, make_backend
from videojob.domain.job_index import JobIndex
from videojob.domain.settings import Settings, load_settings

_lock = threading.Lock()
_settings: Settings | None = None
_backend: ContainerBackend | None = None
_job_index: JobIndex | None = None


def settings() -> Settings:
    global _settings
    with _lock:
        if _settings is None:
            # The Functions host has already merged local.settings.json into the environment;
            # reading it here as well keeps `python -m ...` tools working from the repo root.
            local = Path(os.environ.get("LOCAL_SETTINGS_PATH", "local.settings.json"))
            _settings = load_settings(local_settings_path=local if local.exists() else None)
        return _settings


def backend() -> ContainerBackend:
    global _backend
    s = settings()
    with _lock:
        if _backend is None:
            _backend = make_backend(s)
        return _backend


def job_index() -> JobIndex:
    """The job index (`videojob.domain.job_index`) in the output account's table service."""
    global _job_index
    s = settings()
    with _lock:
        if _job_index is None:
            from videojob.adapters.job_index_table import job_index_from_settings

            _job_index = job_index_from_settings(s, default_credential)
        return _job_index


def override(*, settings: Settings | None = None, backend: ContainerBackend | None = None,
             job_index: JobIndex | None = None) -> None:
    global _settings, _backend, _job_index
    with _lock:
        if settings is not None:
            _settings = settings
        if backend is not None:
            _backend = backend
        if job_index is not None:
            _job_index = job_index


def reset() -> None:
    global _settings, _backend, _job_index
    with _lock:
        _settings = None
        _backend = None
        _job_index = None
