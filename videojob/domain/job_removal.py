"""`DELETE /api/downloads/{id}`: what removing one finished job removes (issue 21). Pure.

A job's history, its output blobs (`<id>/` in the output container) and its staged blobs and
result records (`<id>/` in the staging container); for a batch, the same for each of its items
(`<batch>-<index>`, as many as its customStatus `counts.total` says) and its playlist listing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from videojob.contract.output_blob import job_blob_prefix
from videojob.domain.batching import item_instance_id, listing_instance_id
from videojob.domain.instances import is_finished, json_mapping

MAX_ITEMS = 1000
"""Items removed with one batch at most (MAX_BATCH_URLS and MAX_PLAYLIST_ITEMS stay far below)."""


def removal_targets(instance_id: str, status: Mapping[str, Any], batch_orchestrator: str) -> tuple[str, ...]:
    """The instance ids a removal covers: the job, and for a batch its items and its listing."""
    if status.get("name") != batch_orchestrator:
        return (instance_id,)
    counts = json_mapping(status.get("customStatus")).get("counts")
    total = counts.get("total") if isinstance(counts, Mapping) else None
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        total = 0
    items = tuple(item_instance_id(instance_id, i, total) for i in range(min(total, MAX_ITEMS)))
    return (instance_id, *items, listing_instance_id(instance_id))


def is_removable(status: Mapping[str, Any]) -> bool:
    runtime = status.get("runtimeStatus")
    return is_finished(runtime if isinstance(runtime, str) else None)


def blob_prefixes(targets: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(job_blob_prefix(t) for t in targets)


class JobBlobs(Protocol):
    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under `prefix` in the job containers; how many were deleted."""
        ...
