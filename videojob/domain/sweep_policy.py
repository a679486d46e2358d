"""Sweeper policy: should a container group we manage be deleted now? Pure; no SDK, no clock.

The sweeper cleans up what no orchestrator will: groups of terminated jobs (the terminate
webhook runs no orchestrator code), of purged jobs, of jobs whose cleanup failed, and groups
that outlived their deadline. Stopped groups of failed jobs are kept for a while for their logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from videojob.domain.container_port import ACTIVE_CONTAINER_STATES
from videojob.domain.container_spec import TAG_CREATED_AT, TAG_DEADLINE
from videojob.domain.instances import FINISHED_RUNTIME_STATUSES, RuntimeStatus
from videojob.domain.job_slots import SlotState

DEFAULT_GRACE_SECONDS = 30 * 60
"""Time past a group's deadline tag before it is swept even if its job still looks alive: the
orchestrator enforces the deadline itself and needs a little time to clean up after it."""

Action = Literal["delete", "keep"]


@dataclass(frozen=True)
class SweepPolicy:
    failed_group_retention_seconds: int
    grace_seconds: int = DEFAULT_GRACE_SECONDS


@dataclass(frozen=True)
class JobSnapshot:
    """What the sweeper knows about a group's job. `None` in its place means no such job."""

    runtime_status: str | None
    last_updated: datetime | None = None


@dataclass(frozen=True)
class SweepDecision:
    action: Action
    reason: str

    @property
    def delete(self) -> bool:
        return self.action == "delete"


def _delete(reason: str) -> SweepDecision:
    return SweepDecision("delete", reason)


def _keep(reason: str) -> SweepDecision:
    return SweepDecision("keep", reason)


def parse_tag_time(value: str | None) -> datetime | None:
    """A `createdAt`/`deadline` tag (`2026-01-01T00:00:00Z`), or None when absent or malformed."""
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def decide_sweep(
    group_state: str,
    tags: dict[str, str],
    job: JobSnapshot | None,
    now: datetime,
    policy: SweepPolicy,
) -> SweepDecision:
    """Delete or keep one group.

    - job missing (purged, never existed, no `jobId` tag) → delete;
    - job Completed / Terminated / Canceled → delete;
    - job Failed → delete a group that still runs; keep a stopped (or exited) one for its logs
      until `failed_group_retention_seconds` after the job last changed (≈ when it was stopped);
    - job still alive (Pending, Running, Suspended, ...) → keep, unless the group's deadline
      tag plus the grace period has passed (the orchestrator should have ended it by then).
    """
    now = _aware(now)
    if job is None:
        return _delete("job_missing")
    status = job.runtime_status
    if status in (RuntimeStatus.COMPLETED, RuntimeStatus.TERMINATED, RuntimeStatus.CANCELED):
        return _delete(f"job_{status.lower()}")
    if status == RuntimeStatus.FAILED:
        if group_state in ACTIVE_CONTAINER_STATES:
            return _delete("job_failed_group_active")
        since = job.last_updated or parse_tag_time(tags.get(TAG_DEADLINE)) or parse_tag_time(tags.get(TAG_CREATED_AT))
        if since is None:
            return _delete("job_failed_retention_unknown")
        if now - _aware(since) >= timedelta(seconds=policy.failed_group_retention_seconds):
            return _delete("job_failed_retention_passed")
        return _keep("job_failed_within_retention")
    deadline = parse_tag_time(tags.get(TAG_DEADLINE))
    if deadline is not None and now >= deadline + timedelta(seconds=policy.grace_seconds):
        return _delete("deadline_passed")
    return _keep("job_active")


# --- the global cap's slots (`videojob.domain.job_slots`) -------------------------------------------------


def stale_slot_members(
    state: SlotState, jobs: Mapping[str, JobSnapshot | None], now: datetime, grace_seconds: int = 0
) -> tuple[str, ...]:
    """Holders and queued jobs whose orchestration is gone (purged: None) or finished (terminated
    through the webhook, failed outside our code, completed without its release arriving), and whose
    entry is at least `grace_seconds` old. Ids absent from `jobs` (their lookup failed) are never
    stale: a host error must not free a live job's slot. The entity's `evict` drops only entries
    older than the sweep's read of the state, so a job restarted under the same id since keeps its own."""
    cutoff = now - timedelta(seconds=max(0, grace_seconds))
    stale = []
    for member in (*state.holders, *state.queue):
        if member.id not in jobs or member.since > cutoff:
            continue
        job = jobs[member.id]
        if job is None or job.runtime_status in FINISHED_RUNTIME_STATUSES:
            stale.append(member.id)
    return tuple(stale)
