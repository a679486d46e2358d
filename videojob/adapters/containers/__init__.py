"""Container backends: `aci` (Azure Container Instances), `local` (a subprocess), `podman` (a container here)."""

from __future__ import annotations

from typing import assert_never

from videojob.domain.container_port import BackendError, ContainerBackend, GroupState, ManagedGroup
from videojob.domain.settings import Settings

__all__ = ["BackendError", "ContainerBackend", "GroupState", "ManagedGroup", "make_backend"]


def make_backend(settings: Settings) -> ContainerBackend:
    """The backend `CONTAINER_BACKEND` names. Imports lazily: the worker image has no ARM SDK."""
    if settings.container_backend == "aci":
        from videojob.adapters.containers.aci import AciBackend

        return AciBackend.from_settings(settings)
    if settings.container_backend == "local":
        from videojob.adapters.containers.local import LocalBackend

        return LocalBackend.from_settings(settings)
    if settings.container_backend == "podman":
        from videojob.adapters.containers.podman import PodmanBackend

        return PodmanBackend.from_settings(settings)
    assert_never(settings.container_backend)  # settings refuse any other name
