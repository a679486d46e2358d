"""One retention run: purge expired finished jobs from the task hub, drop their list entries, and
(where no lifecycle policy does it) delete expired blobs. Each step is bounded and a failure is
counted and logged, never stops the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from videojob.adapters.durable_http import InstancePage
from videojob.domain.instances import JobLookupFailed
from videojob.domain.job_index import DEFAULT_OWNER, TIME_ROWS_END, JobIndex, JobIndexUnavailable, older_than_bound
from videojob.domain.principal import job_owner
from videojob.domain.retention import (
    MAX_BLOB_DELETES_PER_RUN,
    MAX_INDEX_ROWS_PER_RUN,
    MAX_PURGE_QUERY_PAGES,
    MAX_PURGES_PER_RUN,
    PURGE_QUERY_PAGE,
    PURGED_RUNTIME_STATUSES,
    RetentionSummary,
    cutoff,
    is_purgeable,
)

log = logging.getLogger(__name__)


class TaskHub(Protocol):
    """The Durable calls a run needs (`videojob.adapters.durable_http.DurableHttp` has them)."""

    async def page(self, top: int, continuation_token: str | None = None, *, created_to: datetime | None = None,
                   runtime_statuses: Sequence[str] = ()) -> InstancePage: ...

    async def status(self, instance_id: str) -> Mapping[str, Any] | None: ...

    async def purge(self, instance_id: str) -> bool: ...


class ExpiringBlobs(Protocol):
    """Blob containers whose expired blobs the app deletes itself (the devhost; Azure has a rule)."""

    def expired(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """(container, name) of blobs last modified before `before`, at most `limit`."""
        ...

    def delete(self, container: str, name: str) -> None: ...


async def purge_history(hub: TaskHub, orchestrators: frozenset[str], before: datetime,
                        summary: RetentionSummary) -> None:
    token: str | None = None
    for _ in range(MAX_PURGE_QUERY_PAGES):
        page = await hub.page(PURGE_QUERY_PAGE, token, created_to=before, runtime_statuses=PURGED_RUNTIME_STATUSES)
        for status in page.statuses:
            if not is_purgeable(status, orchestrators, before):
                continue
            if len(summary.purged) >= MAX_PURGES_PER_RUN:
                summary.more = True
                return
            instance_id = status["instanceId"]
            try:
                owner = await _owner(hub, status)
                if await hub.purge(instance_id):
                    summary.purged.append(instance_id)
                    summary.owners[instance_id] = owner
            except JobLookupFailed as e:
                summary.failures += 1
                log.warning("retention: purging %s failed: %s", instance_id, e)
        token = page.continuation_token
        if token is None:
            return
    summary.more = True


async def _owner(hub: TaskHub, status: Mapping[str, Any]) -> str:
    """The job index partition of a job: its input's owner (entra mode), else `default`. The query
    page may come without inputs; then the instance's own status (which has it) is read."""
    plan = status.get("input")
    if plan is None:
        full = await hub.status(status["instanceId"])
        plan = full.get("input") if full else None
    return job_owner(plan) or DEFAULT_OWNER


async def forget_expired_rows(hub: TaskHub, index: JobIndex, before: datetime, summary: RetentionSummary) -> None:
    """The list entries of purged jobs, and any old entry whose instance is gone (purged elsewhere)."""
    for instance_id in summary.purged:
        try:
            if await asyncio.to_thread(index.forget, summary.owners.get(instance_id, DEFAULT_OWNER), instance_id):
                summary.index_rows_removed += 1
        except JobIndexUnavailable as e:
            summary.failures += 1
            log.warning("retention: removing the list entry of %s failed: %s", instance_id, e)
    after = older_than_bound(before)
    seen = 0
    while seen < MAX_INDEX_ROWS_PER_RUN:
        page = await asyncio.to_thread(index.rows, DEFAULT_OWNER, after=after, before=TIME_ROWS_END, limit=100)
        for row in page.rows:
            seen += 1
            after = row.key
            try:
                if await hub.status(row.instance_id) is None:
                    await asyncio.to_thread(index.forget_row, DEFAULT_OWNER, row)
                    summary.index_rows_removed += 1
            except (JobLookupFailed, JobIndexUnavailable) as e:
                summary.failures += 1
                log.warning("retention: checking the list entry of %s failed: %s", row.instance_id, e)
        if not page.more or not page.rows:
            return
    summary.more = True


async def delete_expired_blobs(blobs: ExpiringBlobs, before: datetime, summary: RetentionSummary) -> None:
    expired = await asyncio.to_thread(blobs.expired, before, MAX_BLOB_DELETES_PER_RUN + 1)
    if len(expired) > MAX_BLOB_DELETES_PER_RUN:
        expired, summary.more = expired[:MAX_BLOB_DELETES_PER_RUN], True
    for container, name in expired:
        try:
            await asyncio.to_thread(blobs.delete, container, name)
            summary.blobs_deleted += 1
        except Exception as e:  # one blob's failure never stops the run
            summary.failures += 1
            log.warning("retention: deleting blob %s/%s failed: %s", container, name, type(e).__name__)


async def run_retention(hub: TaskHub, index: JobIndex, blobs: ExpiringBlobs | None, orchestrators: frozenset[str],
                        retention_days: int, now: datetime) -> RetentionSummary:
    """Purge what expired before `now` − `retention_days`. `blobs` None: a lifecycle rule on the
    output account deletes them (Azure)."""
    before = cutoff(now, retention_days)
    summary = RetentionSummary()
    steps = [("history", purge_history(hub, orchestrators, before, summary)),
             ("list entries", forget_expired_rows(hub, index, before, summary))]
    if blobs is not None:
        steps.append(("blobs", delete_expired_blobs(blobs, before, summary)))
    for what, step in steps:
        try:
            await step
        except (JobLookupFailed, JobIndexUnavailable) as e:
            summary.failures += 1
            summary.more = True
            log.warning("retention: the %s step failed: %s", what, e)
    return summary
