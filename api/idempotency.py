"""Start an orchestration at most once per deterministic instance id.

A duplicate submit answers the existing job while it runs or after it completed; a failed or
terminated job (or an unknown id) is started (again). The extension itself refuses a start over
a running instance with 409 but silently replaces a completed one (its default
`overridableExistingInstanceStates` is `NonRunningStates`), so the status is read first. Two
submits at once can both read "unknown": the loser's start is refused (409), and the 1.x client
reports that only as a bare Exception, so the instance is looked up again instead of parsing it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df

from videojob.domain.instances import ACTIVE_RUNTIME_STATUSES, JobLookupFailed, RuntimeStatus, find_job

from .responses import DurableUnavailable, durable_call

log = logging.getLogger(__name__)

REUSED_STATUSES: frozenset[str] = ACTIVE_RUNTIME_STATUSES | {RuntimeStatus.COMPLETED}
"""An instance in one of these states answers a duplicate submit; any other is started again."""


@dataclass(frozen=True)
class Started:
    instance_id: str
    replayed: bool
    """True when the job already existed and nothing was started."""


async def _existing(client: df.DurableOrchestrationClient, instance_id: str) -> bool:
    try:
        job = await find_job(client, instance_id)
    except JobLookupFailed as e:
        raise DurableUnavailable("get_status") from e
    return job is not None and job.runtime_status in REUSED_STATUSES


async def start_once(
    client: df.DurableOrchestrationClient, orchestrator: str, instance_id: str | None, plan: Any,
    admit: Callable[[], Awaitable[None]] | None = None,
) -> Started:
    """Start `orchestrator` under `instance_id` unless that job runs or completed. With no id,
    a plain start (the extension picks a random id). `admit`, when given, runs only before a real
    start (a duplicate answers the existing job without it) and raises to refuse the start.
    Raises `DurableUnavailable`."""
    if instance_id is None:
        if admit is not None:
            await admit()
        return Started(await durable_call("start_new", client.start_new(orchestrator, None, plan)), False)
    if await _existing(client, instance_id):
        return Started(instance_id, True)
    if admit is not None:
        await admit()
    try:
        await client.start_new(orchestrator, instance_id, plan)
    except Exception as e:  # 409 (a concurrent submit won) or a host failure: look again
        if await _existing(client, instance_id):
            log.info("submit for %s raced another one; answering the existing job", instance_id)
            return Started(instance_id, True)
        log.warning("durable client start_new failed: %s", type(e).__name__)
        raise DurableUnavailable("start_new") from e
    return Started(instance_id, False)
