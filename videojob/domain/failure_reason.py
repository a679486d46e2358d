"""Why a backend operation failed, or why a container ended: a type the orchestration matches.

Each adapter (`videojob.adapters.containers.aci` with `arm_errors`, `podman`, `local`) decides the reason
from what its platform says (an ARM error code and body, podman's `State`, a process's exit);
the activities carry it on their wire (`videojob.domain.activity_wire`); the orchestration compares
enums, never a platform's text (issue 20.3). `retryable` stays beside it: the reason says what
kind of failure it is, `retryable` whether the same request may succeed later.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class FailureReason(StrEnum):
    QUOTA_EXHAUSTED = "quota_exhausted"
    """A quota that other container groups hold now and will give back: wait (in the queue)."""
    QUOTA_IMPOSSIBLE = "quota_impossible"
    """The request is above the quota's limit (or the limit is 0): waiting never helps."""
    AUTHORIZATION = "authorization"
    """The identity may not do this (possibly a role assignment still propagating: `retryAfterSeconds`)."""
    NOT_FOUND = "not_found"
    """Something the request names does not exist (the resource group, the image)."""
    OUT_OF_MEMORY = "out_of_memory"
    """The container was killed at its memory limit (the backend's own signal)."""
    TRANSIENT = "transient"
    """Anything else that may pass by itself: throttling, server trouble, a state conflict."""
    PERMANENT = "permanent"
    """Anything else that will fail the same way again: a wrong request, configuration."""


def parse_reason(value: Any) -> FailureReason | None:
    """A reason from the wire; None for a missing or unknown one (a newer or older writer)."""
    try:
        return FailureReason(value) if isinstance(value, str) else None
    except ValueError:
        return None


def default_reason(retryable: bool) -> FailureReason:
    """For a failure no adapter put a name to."""
    return FailureReason.TRANSIENT if retryable else FailureReason.PERMANENT
