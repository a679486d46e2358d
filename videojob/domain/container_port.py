"""The container backend interface: what activities and the sweeper may ask of containers.

Every backend consumes a `ContainerSpec` (see `container_spec.build_container_spec`). Methods
raise `BackendError` with a classification, never an SDK exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from videojob.domain.failure_reason import FailureReason, default_reason

if TYPE_CHECKING:
    from videojob.domain.container_spec import ContainerSpec


class ContainerState(StrEnum):
    """A container group's state, as ACI names them, plus MISSING for "no such group". Not a
    Durable instance's status (`instances.RuntimeStatus`) nor an event's (`contract.EventState`)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"
    MISSING = "Missing"


ACTIVE_CONTAINER_STATES: frozenset[str] = frozenset({ContainerState.PENDING, ContainerState.RUNNING})


class BackendError(Exception):
    """A classified backend failure. `reason` is what kind of failure it is, decided by the
    adapter (the orchestration matches it, never `message`); `retryable` says whether trying
    again may help; `retry_after_seconds`, when set, that the failure means "not now" (a role
    assignment still propagating, a quota held by others): wait that long and try again,
    without counting it as a failed try. Without a `reason`: transient or permanent by `retryable`."""

    def __init__(self, code: str, message: str, *, retryable: bool, retry_after_seconds: float | None = None,
                 reason: FailureReason | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after_seconds = retry_after_seconds if retryable else None
        self.reason = reason or default_reason(retryable)


@dataclass(frozen=True)
class GroupState:
    name: str
    state: str
    exit_code: int | None = None
    detail: str | None = None
    finished_at: str | None = None
    """When the worker ended (ISO 8601 UTC), once it has: ACI's `finishTime`, the local runner's `exit.json`."""
    reason: FailureReason | None = None
    """Why it ended, when the backend knows better than the exit code (`OUT_OF_MEMORY`); else None."""

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_CONTAINER_STATES


@dataclass(frozen=True)
class ManagedGroup:
    """A group carrying our `managedBy` tag, as the sweeper sees it."""

    name: str
    state: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def job_id(self) -> str | None:
        return self.tags.get("jobId")


@runtime_checkable
class ContainerBackend(Protocol):
    def create(self, spec: ContainerSpec) -> GroupState:
        """Create the group and start its container. Idempotent for the same spec name."""

    def state(self, name: str) -> GroupState:
        """The group's state and the worker container's exit code; `MISSING` if there is none."""

    def logs(self, name: str, tail: int = 50) -> str:
        """The last `tail` lines of the worker's output ("" when there are none)."""

    def stop(self, name: str) -> None:
        """Stop the group, keeping it (and its logs). A missing group is not an error."""

    def delete(self, name: str) -> None:
        """Delete the group. A missing group is not an error (idempotent)."""

    def list_managed(self, managed_by: str) -> list[ManagedGroup]:
        """Every group tagged `managedBy=<managed_by>`."""
