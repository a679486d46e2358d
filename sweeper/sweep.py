"""One sweep: list our container groups, look up each job, delete what the policy says; then
reconcile the global cap's slots (`job_slots` entity) with the jobs that really run.

One group's failure (a lookup or a delete) is counted and logged, never stops the sweep. The
terminate webhook and purge run no orchestrator code, so their jobs never give their slot back:
the sweep frees it (`evict`) within one `SWEEP_SCHEDULE` period.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import azure.durable_functions as df

from videojob.domain import job_slots as slots
from videojob.domain.container_port import ContainerBackend, ManagedGroup
from videojob.domain.instances import JobLookupFailed, find_job
from videojob.domain.settings import Settings
from videojob.domain.slot_announce import announce_grants
from videojob.domain.sweep_policy import JobSnapshot, SweepPolicy, decide_sweep, stale_slot_members

log = logging.getLogger(__name__)


@dataclass
class SweepSummary:
    listed: int = 0
    deleted: int = 0
    kept: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    slots_freed: int = 0

    def line(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.reasons.items())) or "none"
        return (
            f"sweep: {self.listed} groups, {self.deleted} deleted, {self.kept} kept, "
            f"{self.failed} failed ({reasons}); {self.slots_freed} slots freed"
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
        decision = decide_sweep(group.state, group.tags, job, now, policy)
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
    try:
        summary.slots_freed = await reconcile_slots(client, now, settings.callback_signing_key)
    except Exception as e:
        summary.failed += 1
        log.warning("sweep: reconciling the job slots failed: %s", _describe(e))
    return summary


SLOTS = df.EntityId(slots.ENTITY_NAME, slots.ENTITY_KEY)
"""(`videojob.domain.slot_announce.announce_grants` raises `SlotGranted` through the same client.)"""
LOOKUP_CONCURRENCY = 8


async def reconcile_slots(client: df.DurableOrchestrationClient, now: datetime, signing_key: str) -> int:
    """Free the slots (and queue places) of jobs that ended without giving them back; how many.
    The `evict` carries a MAC under the signing key: the entity frees nobody's slot without it."""
    answer = await client.read_entity_state(SLOTS)
    if not answer.entity_exists:
        return 0
    state = slots.SlotState.from_wire(answer.entity_state)
    gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

    async def lookup(job_id: str) -> tuple[str, JobSnapshot | None] | None:
        async with gate:
            try:
                job = await find_job(client, job_id)
            except JobLookupFailed as e:
                log.warning("sweep: cannot look up slot holder %s: %s", job_id, e)
                return None
        return job_id, (JobSnapshot(job.runtime_status, job.last_updated) if job else None)

    found = await asyncio.gather(*(lookup(i) for i in state.member_ids()))
    stale = stale_slot_members(state, dict(f for f in found if f is not None), now)
    if stale:
        await client.signal_entity(SLOTS, slots.EVICT, slots.evict_request(signing_key, stale, now))
        log.info("sweep: freed the job slots of %s", ", ".join(stale))
        # A signal has no answer: whom the eviction grants the slots to is predicted from the
        # state read (the entity's own rule, `slots.evict`) and told, as a releasing job tells
        # (pushed grants, issue 22). A wrong guess costs an extra `acquire`; a missed one, the
        # receiver's fallback re-check.
        await announce_grants({"ids": slots.newly_granted(state, slots.evict(state, stale, now, now)),
                               "by": "sweeper"}, client)
    return len(stale)


def _describe(e: Exception) -> str:
    # BackendError messages are classified and safe; other exceptions may carry SDK payloads.
    code = getattr(e, "code", None)
    return f"{type(e).__name__} {code}" if code else type(e).__name__
