"""Plans: what the starter hands an orchestration, built from a submission and the settings.

Pure. An orchestrator may not read settings, so every policy value it follows travels in its
input: `JobPlan` for `download_job`, `BatchPlan` for `download_batch`.
"""

from __future__ import annotations

from dataclasses import replace

from videojob.contract.wire import BatchPlan, CostRates, DownloadRequest, JobPlan
from videojob.domain.request_parsing import BatchSubmission, PlaylistSubmission, SingleSubmission, Submission
from videojob.domain.settings import Settings


def cost_rates(settings: Settings) -> CostRates:
    return CostRates(settings.price_per_vcpu_second, settings.price_per_gb_second, settings.cost_currency)


def plan_job(request: DownloadRequest, settings: Settings) -> JobPlan:
    """One download job. A requested deadline (already bounded by `JOB_DEADLINE_SECONDS` when
    parsed) wins over the default."""
    return JobPlan(
        request,
        deadline_seconds=request.deadline_seconds or settings.job_deadline_seconds,
        heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
        provision_max_attempts=settings.provision_max_attempts,
        cleanup_backoff_seconds=settings.cleanup_backoff_seconds,
        failed_group_policy=settings.failed_group_policy,
        max_attempts=settings.job_max_attempts,
        retry_backoff_seconds=settings.job_retry_backoff_seconds,
        worker_cpu=settings.worker_cpu,
        worker_memory_gb=settings.worker_memory_gb,
        share_link_hours=settings.share_link_hours,
        cost_rates=cost_rates(settings),
        output_container=settings.output_container,
        retry_bot_check=settings.retry_bot_check,
        max_running_jobs=settings.max_running_jobs,
    )


def plan_list_job(request: DownloadRequest, max_items: int, settings: Settings) -> JobPlan:
    """The worker run that only lists a playlist's entries (no blob, so no share link)."""
    return replace(
        plan_job(replace(request, notify_url=None), settings),
        mode="list",
        max_items=max_items,
        share_link_hours=0,
    )


def plan_batch(submission: BatchSubmission | PlaylistSubmission, settings: Settings) -> BatchPlan:
    """Many jobs under one orchestration. Items never notify: the batch does, once."""
    common = {
        "max_parallel": settings.max_parallel_jobs,
        "notify_url": submission.notify_url,
        "allowed_hosts": settings.allowed_hosts,
        "allow_private_addresses": settings.allow_private_addresses,
    }
    if isinstance(submission, PlaylistSubmission):
        request = replace(submission.request, notify_url=None)
        return BatchPlan(
            items=(),
            playlist=plan_list_job(request, submission.max_items, settings),
            item_template=plan_job(request, settings),
            **common,
        )
    items = tuple(plan_job(replace(r, notify_url=None), settings) for r in submission.requests)
    return BatchPlan(items=items, **common)


def plan_submission(submission: Submission, settings: Settings, owner: str | None = None) -> JobPlan | BatchPlan:
    """`owner` (entra mode) goes into every plan the job's orchestrations get: the batch's, its
    items', the playlist listing's and the item template's, so each instance names its owner."""
    if isinstance(submission, SingleSubmission):
        return replace(plan_job(submission.request, settings), owner=owner)
    batch = plan_batch(submission, settings)
    if owner is None:
        return batch
    return replace(
        batch,
        owner=owner,
        items=tuple(replace(i, owner=owner) for i in batch.items),
        playlist=replace(batch.playlist, owner=owner) if batch.playlist else None,
        item_template=replace(batch.item_template, owner=owner) if batch.item_template else None,
    )
