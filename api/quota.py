"""`MAX_ACTIVE_JOBS_PER_USER` at submit time (policy: `videojob.domain.user_quota`).

The count reads the owner's partition of the job index and each still-running row's live status
through the durable client, so an answer is never older than the request. A failure to count is
a 503 (nothing starts): starting blind would let one user take the whole service.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import azure.durable_functions as df

from videojob import bootstrap
from videojob.domain.instances import JobLookupFailed, find_job
from videojob.domain.job_index import JobIndexUnavailable
from videojob.domain.request_parsing import Submission
from videojob.domain.user_quota import RETRY_AFTER_SECONDS, active_count, over_limit, requested_items

from .responses import DurableUnavailable, TooManyJobs

log = logging.getLogger(__name__)


class ClientStatuses:
    """`videojob.domain.job_index.StatusSource` over a `DurableOrchestrationClient`."""

    def __init__(self, client: df.DurableOrchestrationClient):
        self.client = client

    async def status(self, instance_id: str) -> Mapping[str, Any] | None:
        try:
            status = await self.client.get_status(instance_id, show_input=True)
        except Exception as e:  # the 1.x client raises bare Exception
            raise JobLookupFailed(type(e).__name__) from e
        if not status:  # a 404, or a host error the 1.x client hides: find_job tells them apart
            job = await find_job(self.client, instance_id)
            if job is None:
                return None
            return {"instanceId": job.instance_id, "runtimeStatus": job.runtime_status,
                    "customStatus": job.custom_status}
        runtime = status.runtime_status
        return {"instanceId": status.instance_id, "runtimeStatus": getattr(runtime, "value", runtime),
                "customStatus": status.custom_status, "input": status.input_}


class QuotaCheck:
    """The `admit` step of `api.idempotency.start_once`: raises `TooManyJobs` over the limit."""

    def __init__(self, client: df.DurableOrchestrationClient, owner: str, submission: Submission, limit: int):
        self.client, self.owner, self.limit = client, owner, limit
        self.requested = requested_items(submission)

    async def __call__(self) -> None:
        try:
            active = await active_count(bootstrap.job_index(), ClientStatuses(self.client), self.owner,
                                        stop_above=self.limit)
        except (JobIndexUnavailable, JobLookupFailed, ValueError) as e:
            log.warning("per-user job count failed: %s", e)
            raise DurableUnavailable("count active jobs") from e
        if over_limit(active, self.requested, self.limit):
            log.info("submit refused: %d active + %d requested > %d", active, self.requested, self.limit)
            raise TooManyJobs(active, self.requested, self.limit, RETRY_AFTER_SECONDS)
