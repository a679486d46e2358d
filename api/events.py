"""Deliver a JobStatus event to a job, telling apart unknown, finished and reachable jobs."""

from __future__ import annotations

import enum
import logging
from typing import Any

import azure.durable_functions as df

from videojob.contract.wire import EVENT_NAME
from videojob.domain.instances import JobInfo, JobLookupFailed, find_job

from .responses import DurableUnavailable

log = logging.getLogger(__name__)


class Delivery(enum.Enum):
    RAISED = "raised"
    NOT_FOUND = "not_found"
    FINISHED = "finished"


async def job_state(client: df.DurableOrchestrationClient, instance_id: str) -> Delivery | JobInfo:
    """NOT_FOUND, FINISHED, or the job's status while it runs (the id must be URL-safe)."""
    try:
        job = await find_job(client, instance_id)
    except JobLookupFailed as e:
        log.warning("job lookup failed: %s", e)
        raise DurableUnavailable("get_status") from e
    if job is None:
        return Delivery.NOT_FOUND
    return Delivery.FINISHED if job.is_finished else job


async def deliver_event(
    client: df.DurableOrchestrationClient,
    instance_id: str,
    payload: Any,
) -> Delivery:
    """Raise `EVENT_NAME` on a running job. Raises `DurableUnavailable` when the host fails."""
    state = await job_state(client, instance_id)
    if isinstance(state, Delivery):
        return state
    return await raise_to_job(client, instance_id, payload)


async def raise_to_job(client: df.DurableOrchestrationClient, instance_id: str, payload: Any) -> Delivery:
    """Raise `EVENT_NAME` on a job found running: RAISED, or NOT_FOUND / FINISHED when it ended or
    was purged meanwhile. Raises `DurableUnavailable` when the host fails."""
    try:
        await client.raise_event(instance_id, EVENT_NAME, payload)
    except Exception as e:
        # The job may have finished (410) or been purged (404) since we looked; the 1.x client
        # reports both as a bare Exception, so ask again instead of parsing its message.
        state = await job_state(client, instance_id)
        if isinstance(state, Delivery):
            return state
        log.warning("raise_event failed for a running job: %s", type(e).__name__)
        raise DurableUnavailable("raise_event") from e
    return Delivery.RAISED
