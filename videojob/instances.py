"""Durable instance facts shared by the HTTP API and the sweeper: id shape, runtime states, lookup.

No SDK import: `find_job` takes anything shaped like the Durable client.

The Durable client puts instance ids into URL paths without quoting them, so an id that is
not URL-safe must never reach it (it could address another instance or endpoint).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_INSTANCE_ID_LENGTH = 100

_SAFE_INSTANCE_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_INSTANCE_ID_LENGTH}}}")

# Runtime statuses as the Durable status payload spells them.
PENDING, RUNNING, CONTINUED_AS_NEW, SUSPENDED = "Pending", "Running", "ContinuedAsNew", "Suspended"
COMPLETED, FAILED, TERMINATED, CANCELED = "Completed", "Failed", "Terminated", "Canceled"

FINISHED_STATUSES: frozenset[str] = frozenset({COMPLETED, FAILED, TERMINATED, CANCELED})
"""An instance in one of these states runs no more code and accepts no events."""


def is_url_safe_instance_id(instance_id: object) -> bool:
    """Letters, digits, `-` and `_` only (what the extension generates: 32 hex digits)."""
    return isinstance(instance_id, str) and _SAFE_INSTANCE_ID.fullmatch(instance_id) is not None


def is_finished(runtime_status: str | None) -> bool:
    return runtime_status in FINISHED_STATUSES


@dataclass(frozen=True)
class JobInfo:
    """The parts of a Durable status the API and the sweeper use."""

    instance_id: str
    runtime_status: str | None
    last_updated: datetime | None = None
    custom_status: Any = None
    name: str | None = None
    """The orchestrator function's name (`download_job`, `download_batch`)."""

    @property
    def is_finished(self) -> bool:
        return is_finished(self.runtime_status)


class JobLookupFailed(Exception):
    """The job's status could not be read (host down, unexpected answer, unsafe id)."""


def _info(status: Any) -> JobInfo:
    runtime = getattr(status, "runtime_status", None)
    return JobInfo(
        instance_id=status.instance_id,
        runtime_status=getattr(runtime, "value", runtime),
        last_updated=getattr(status, "last_updated_time", None),
        custom_status=getattr(status, "custom_status", None),
        name=getattr(status, "name", None),
    )


async def find_job(client: Any, instance_id: str) -> JobInfo | None:
    """The job's status through a `DurableOrchestrationClient`, or None when there is no such job.

    The 1.x client answers a falsy status for a 404 but also for a 400 or 500 from the host, so
    "missing" is confirmed with the list endpoint (which raises on anything but 200): a host
    error must never read as "no such job" (the sweeper would delete a live job's container).
    """
    if not is_url_safe_instance_id(instance_id):
        raise JobLookupFailed("not a URL-safe instance id")
    try:
        status = await client.get_status(instance_id)
        if status:
            return _info(status)
        matches = await client.get_status_by(instance_id_prefix=instance_id)
    except Exception as e:  # the 1.x client raises bare Exception (and aiohttp errors)
        raise JobLookupFailed(type(e).__name__) from e
    for candidate in matches:
        if candidate and candidate.instance_id == instance_id:
            return _info(candidate)
    return None
