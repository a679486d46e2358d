"""Retention policy: what a retention run may remove (`JOB_RETENTION_DAYS`), pure.

A finished job older than the retention disappears everywhere: its Durable history (and its batch
items'), its index row, its output blobs and result record. Running, pending and suspended
instances are never touched, whatever their age. Ages count from creation (Durable `createdTime`,
the index row's time) and, for blobs, from the last modification, as the lifecycle management rule
in Azure counts them (`daysAfterModificationGreaterThan`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from videojob.contract.wire import is_url_safe_instance_id
from videojob.domain.instances import FINISHED_RUNTIME_STATUSES, RuntimeStatus

RETENTION_SCHEDULE = "0 17 * * * *"
"""Hourly, at minute 17 (away from the sweeper's 10-minute marks)."""
PURGE_QUERY_PAGE = 100
"""Instances per page of the purge query."""
MAX_PURGES_PER_RUN = 500
"""Durable instances purged per run at most: a bounded batch, so one run never outlasts the
function timeout; a backlog (the first run after enabling retention) drains over several hours."""
MAX_PURGE_QUERY_PAGES = 20
MAX_INDEX_ROWS_PER_RUN = 500
MAX_BLOB_DELETES_PER_RUN = 2000

PURGED_RUNTIME_STATUSES: tuple[str, ...] = (
    RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.TERMINATED,
)
"""What the purge query asks the task hub for (the runtime statuses its HTTP API filters on);
`is_purgeable` checks every answer again."""


def cutoff(now: datetime, retention_days: int) -> datetime:
    """Jobs created (blobs modified) before this are expired."""
    return now - timedelta(days=retention_days)


def _created(status: Mapping[str, Any]) -> datetime | None:
    raw = status.get("createdTime")
    if not isinstance(raw, str):
        return None
    try:
        created = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return created if created.tzinfo is not None else None


def is_purgeable(status: Mapping[str, Any], orchestrators: frozenset[str], before: datetime) -> bool:
    """A finished instance of one of this app's orchestrations created before `before`. Whatever the
    query was asked, an answer that is not all of that is left alone."""
    return (
        status.get("name") in orchestrators
        and is_url_safe_instance_id(status.get("instanceId"))
        and status.get("runtimeStatus") in FINISHED_RUNTIME_STATUSES
        and (created := _created(status)) is not None
        and created < before
    )


def is_expired_blob(last_modified: datetime | None, before: datetime) -> bool:
    return last_modified is not None and last_modified < before


@dataclass
class RetentionSummary:
    purged: list[str] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)
    """The owner (job index partition) of each purged job: `default` unless entra mode gave it one."""
    index_rows_removed: int = 0
    blobs_deleted: int = 0
    failures: int = 0
    more: bool = False
    """A bound was reached: the next run goes on."""

    def line(self) -> str:
        return (
            f"retention: {len(self.purged)} instances purged, {self.index_rows_removed} list entries and "
            f"{self.blobs_deleted} blobs removed, {self.failures} failures" + ("; more next run" if self.more else "")
        )
