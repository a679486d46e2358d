"""One sweep: list our container groups, look up each job, delete what the policy says.

One group's failure (a lookup or a delete) is counted and logged, never stops the sweep.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import azure.durable_functions as df

from videojob.backends.base import ContainerBackend, ManagedGroup
from videojob.instances import JobLookupFailed, find_job
from videojob.settings import Settings
from videojob.sweep_policy import JobSnapshot, SweepPolicy, decide

log = logging.getLogger(__name__)


@dataclass
class SweepSummary:
    listed: int = 0
    deleted: int = 0
    kept: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.reasons.items())) or "none"
        return (
            f"sweep: {self.listed} groups, {self.deleted} deleted, {self.kept} kept, "
            f"{self.failed} failed ({reasons})"
        )


async def job_snapshot(client: df.DurableOrchestrationClient, group: ManagedGroup) -> JobSnapshot | None:
    """The group's job, or None when it has none (no `jobId` tag, or no such instance)."""
    if not group.job_id:
        return None
    job = await find_job(client, group.job_id)
    if job is None:
        return None
    return JobSnapshot(runtime_status=job.runtime_status, last_updated=job.last_updated)


async def sweep(
    client: df.DurableOrchestrationClient, backend: ContainerBackend, settings: Settings, now: datetime
) -> SweepSummary:
    policy = SweepPolicy(failed_group_retention_seconds=settings.failed_group_retention_seconds)
    # Backends are synchronous SDK calls: keep them off the worker's event loop.
    groups = await asyncio.to_thread(backend.list_managed, settings.app_name)
    summary = SweepSummary(listed=len(groups))
    for group in groups:
        try:
            job = await job_snapshot(client, group)
        except JobLookupFailed as e:
            summary.failed += 1
            summary.reasons["lookup_failed"] += 1
            log.warning("sweep: cannot look up the job of %s: %s", group.name, e)
            continue
        decision = decide(group.state, group.tags, job, now, policy)
        summary.reasons[decision.reason] += 1
        if not decision.delete:
            summary.kept += 1
            continue
        try:
            await asyncio.to_thread(backend.delete, group.name)
        except Exception as e:
            summary.failed += 1
            log.warning("sweep: deleting %s (%s) failed: %s", group.name, decision.reason, _describe(e))
            continue
        summary.deleted += 1
        log.info("sweep: deleted %s (%s)", group.name, decision.reason)
    return summary


def _describe(e: Exception) -> str:
    # BackendError messages are classified and safe; other exceptions may carry SDK payloads.
    code = getattr(e, "code", None)
    return f"{type(e).__name__} {code}" if code else type(e).__name__
