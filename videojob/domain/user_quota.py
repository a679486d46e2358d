"""`MAX_ACTIVE_JOBS_PER_USER`: how many queued + running downloads one owner has, and whether a
submit fits (issue 21).

Pure policy plus one bounded count over the owner's partition of the job index. A single job
counts 1 while it runs; a batch counts its items not yet finished (`counts.running + pending`
of its customStatus; before its first counts, what its input plans: its URLs, or the playlist's
`maxItems`). A submit asks for 1 (one URL), the
number of URLs (a batch) or its `maxItems` (a playlist: the most it may start). Only rows whose
index `Status` is still `running` are looked at (a finished row never runs again), and the count
stops as soon as it is over the limit, so the cost is bounded by the limit, not by history.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from videojob.domain.instances import is_finished, json_mapping
from videojob.domain.job_index import TIME_ROWS_END, JobIndex, StatusGroup, StatusSource
from videojob.domain.request_parsing import BatchSubmission, PlaylistSubmission, SingleSubmission, Submission

RETRY_AFTER_SECONDS = 60
"""What a 429 tells the caller to wait: jobs take minutes, so sooner is rarely useful."""
MAX_INDEX_READS = 5
INDEX_READ_SIZE = 100


def requested_items(submission: Submission) -> int:
    if isinstance(submission, SingleSubmission):
        return 1
    if isinstance(submission, BatchSubmission):
        return len(submission.requests)
    if isinstance(submission, PlaylistSubmission):
        return submission.max_items
    raise TypeError(type(submission).__name__)  # pragma: no cover - the union is closed


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def active_items(status: Mapping[str, Any] | None) -> int:
    """How many downloads a job (its live Durable status) still has queued or running."""
    if status is None:
        return 0
    runtime = status.get("runtimeStatus")
    if is_finished(runtime if isinstance(runtime, str) else None):
        return 0
    counts = json_mapping(status.get("customStatus")).get("counts")
    if isinstance(counts, Mapping):
        return max(1, _count(counts.get("running")) + _count(counts.get("pending")))
    return max(1, _planned_items(status.get("input")))


def _planned_items(plan: Any) -> int:
    """A batch that has not reported its counts yet: what its input plans (URLs, or a playlist's
    `maxItems`); a single job's plan has neither."""
    if isinstance(plan, str):
        try:
            plan = json.loads(plan)
        except ValueError:
            return 0
    if not isinstance(plan, Mapping):
        return 0
    items = plan.get("items")
    if isinstance(items, list) and items:
        return len(items)
    playlist = plan.get("playlist")
    return _count(playlist.get("maxItems")) if isinstance(playlist, Mapping) else 0


async def active_count(index: JobIndex, statuses: StatusSource, owner: str, stop_above: int) -> int:
    """The owner's queued + running downloads, counted until the total exceeds `stop_above`.
    Raises `JobIndexUnavailable` / `JobLookupFailed` (the caller answers 503: never start blind)."""
    total = 0
    after: str | None = None
    for _ in range(MAX_INDEX_READS):
        page = await asyncio.to_thread(index.rows, owner, after=after, before=TIME_ROWS_END, limit=INDEX_READ_SIZE)
        for row in page.rows:
            after = row.key
            if row.status != StatusGroup.RUNNING:
                continue
            total += active_items(await statuses.status(row.instance_id))
            if total > stop_above:
                return total
        if not page.more:
            break
    return total


def over_limit(active: int, requested: int, limit: int) -> bool:
    return active + requested > limit
