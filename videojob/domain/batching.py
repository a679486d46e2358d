"""Batch policy: the decisions of the `download_batch` orchestrator, as pure functions.

A batch runs one `download_job` sub-orchestration per item, at most `max_parallel` at a time, as
a sliding window: the next item starts as soon as any running one ends. Each child keeps at most
one container group alive and removes it before it completes, so the window bounds the groups.

Wire shapes (camelCase, like everything else):
- customStatus while running: `{"phase": "listing"|"running", "counts": {"total", "running",
  "succeeded", "failed", "pending"}, "runningItems": [index, ...], "errors": {"<code>": [index,
  ...]}, "updatedAt"}`; on failure `{"phase": "failed", "error": {code, message, retryable},
  "counts", "errors", "updatedAt"}`. Compact on purpose (under 16 KB in UTF-16 for any batch size):
  the full report is the output. `runningItems` tells a canceller which children to cancel
  (`running_children`: `item_instance_id(batch id, index, counts.total)`; while `listing`, the child
  is `<batch id>-list`).
- output: `{"batchId", "state": "succeeded"|"partial", "counts", "items": [{"index", "url",
  "instanceId", "state": "succeeded"|"failed", "title"?, "blob"?, "shareLink"?, "error"?}],
  "playlist"?: {"url", "title"?, "entries": <number listed>}, "notification"?}`.
- children: `<batch id>-<index>` (zero-padded, at least 3 digits) and `<batch id>-list` for the
  playlist listing. A child's failure reaches the parent as an exception whose text is the child's
  failure message (`"<code>: <message>"`, possibly behind the host's
  `"Orchestrator function '<name>' failed: "` and followed by details).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from videojob.contract.url_policy import MAX_URL_LENGTH, UrlPolicy, UrlRejected, check_url
from videojob.contract.wire import (
    MAX_FAILURE_TEXT,
    PHASE_FAILED,
    PHASE_LISTING,
    BatchPlan,
    ContractError,
    ErrorCode,
    EventState,
    JobError,
    JobPlan,
    PlaylistEntry,
    clip,
    custom_status_bytes,
)
from videojob.domain.activity_wire import format_utc

STATE_PARTIAL = "partial"

LISTING_SUFFIX = "list"
MAX_ITEM_ERROR_MESSAGE = 300
"""An item's error message in the report (a 200-item report stays small)."""
MAX_TITLE = 200
CUSTOM_STATUS_BUDGET_BYTES = 12 * 1024
"""Room left under Durable's 16 KB (UTF-16) limit."""
MAX_OUTPUT_BYTES = 1024 * 1024
"""The report of the largest batch (200 items, every field at its cap) stays under this."""

_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_HOST_PREFIX = re.compile(r"^Orchestrator function '[^']*' failed:\s*")


# --- instance ids -------------------------------------------------------------------------------


def item_instance_id(batch_id: str, index: int, total: int) -> str:
    """`<batch id>-<index>`, zero-padded so ids sort in item order; URL-safe if the batch id is."""
    width = max(3, len(str(max(total - 1, 0))))
    return f"{batch_id}-{index:0{width}d}"


def listing_instance_id(batch_id: str) -> str:
    return f"{batch_id}-{LISTING_SUFFIX}"


def running_children(batch_id: str, custom_status: Any) -> tuple[str, ...]:
    """The children a batch's `customStatus` says are running: `<batch>-list` while listing, else
    the `runningItems` (indexes below `counts.total`). What a canceller must cancel besides the
    batch, which only stops starting new items. Tolerates a status given as JSON text, and
    ignores anything malformed rather than guessing ids."""
    if isinstance(custom_status, str):
        try:
            custom_status = json.loads(custom_status)
        except ValueError:
            return ()
    if not isinstance(custom_status, Mapping):
        return ()
    if custom_status.get("phase") == PHASE_LISTING:
        return (listing_instance_id(batch_id),)
    counts = custom_status.get("counts")
    total = counts.get("total") if isinstance(counts, Mapping) else None
    indexes = custom_status.get("runningItems")
    if not _is_count(total) or not isinstance(indexes, list):
        return ()
    running = sorted({i for i in indexes if _is_count(i) and i < total})
    return tuple(item_instance_id(batch_id, i, total) for i in running)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- items --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchItem:
    """One URL of the batch. `plan` is None when the item was refused before it could start."""

    index: int
    url: str
    instance_id: str
    plan: JobPlan | None
    rejection: JobError | None = None
    title: str | None = None


def items_from_plan(batch_id: str, plan: BatchPlan) -> tuple[BatchItem, ...]:
    total = len(plan.items)
    return tuple(
        BatchItem(i, p.request.url, item_instance_id(batch_id, i, total), p) for i, p in enumerate(plan.items)
    )


def item_template(plan: BatchPlan) -> JobPlan:
    """The plan every playlist entry is downloaded with (the listing's own, in download mode, if
    the starter sent no template)."""
    if plan.item_template is not None:
        return plan.item_template
    assert plan.playlist is not None
    return replace(plan.playlist, mode="download", max_items=None)


def items_from_entries(batch_id: str, entries: Iterable[PlaylistEntry], plan: BatchPlan) -> tuple[BatchItem, ...]:
    """Playlist entries as items: each URL through the URL policy again (a playlist can point
    anywhere); a refused entry becomes a failed item with the policy's code and is not fetched."""
    template = item_template(plan)
    policy = UrlPolicy(allowed_hosts=plan.allowed_hosts, allow_private_addresses=plan.allow_private_addresses)
    listed = list(entries)
    out = []
    for i, entry in enumerate(listed):
        instance_id = item_instance_id(batch_id, i, len(listed))
        title = clip(entry.title, MAX_TITLE) if entry.title else None
        try:
            url = check_url(entry.url, policy).url
        except UrlRejected as e:
            rejection = JobError(e.code, clip(e.message, MAX_ITEM_ERROR_MESSAGE))
            out.append(BatchItem(i, clip(entry.url, MAX_URL_LENGTH), instance_id, None, rejection, title))
            continue
        item_plan = replace(template, request=replace(template.request, url=url, notify_url=None))
        out.append(BatchItem(i, url, instance_id, item_plan, None, title))
    return tuple(out)


def listing_plan(plan: BatchPlan) -> JobPlan:
    assert plan.playlist is not None
    return replace(plan.playlist, mode="list")


def listed_entries(output: Any, max_items: int | None) -> tuple[tuple[PlaylistEntry, ...], str | None]:
    """The entries (at most `max_items`) and title a list-mode `download_job` output carries.
    Malformed entries are skipped: the worker already bounded and shaped them."""
    if not isinstance(output, Mapping):
        return (), None
    raw = output.get("entries")
    if raw is None and isinstance(output.get("result"), Mapping):
        raw = output["result"].get("entries")
    entries = []
    for item in raw if isinstance(raw, list) else []:
        try:
            entries.append(PlaylistEntry.from_wire(item))
        except (ContractError, TypeError, ValueError):
            continue
    if max_items is not None:
        entries = entries[: max(0, max_items)]
    title = output.get("title")
    return tuple(entries), clip(title, MAX_TITLE) if isinstance(title, str) and title else None


# --- outcomes of children -----------------------------------------------------------------------


@dataclass(frozen=True)
class ItemResult:
    succeeded: bool
    blob: Mapping[str, Any] | None = None
    share_link: Any = None
    error: JobError | None = None


def parse_child_failure(reason: Any) -> JobError:
    """The error of a failed child from the exception the SDK raises for it: the failure message
    (`"<code>: <message>"`), maybe behind the host's prefix and followed by `" \\n <details>"`."""
    text = str(reason or "").strip()
    text = text.split("\n", 1)[0].strip()
    text = _HOST_PREFIX.sub("", text)
    code, sep, message = text.partition(": ")
    if not sep or not _CODE.fullmatch(code):
        return JobError(ErrorCode.INTERNAL, clip(text or "the item failed without a message", MAX_ITEM_ERROR_MESSAGE))
    return JobError(code, clip(message.strip() or code, MAX_ITEM_ERROR_MESSAGE))


def child_result(result: Any) -> ItemResult:
    """A finished child task's result (its output, or the exception of its failure)."""
    if isinstance(result, BaseException):
        return ItemResult(False, error=parse_child_failure(result))
    if isinstance(result, str):  # an output that arrived as JSON text
        try:
            result = json.loads(result)
        except ValueError:
            pass
    if not isinstance(result, Mapping) or result.get("state", EventState.SUCCEEDED) != EventState.SUCCEEDED:
        return ItemResult(False, error=JobError(ErrorCode.INTERNAL, "the item ended without a result"))
    blob = result.get("blob")
    return ItemResult(True, blob=blob if isinstance(blob, Mapping) else None, share_link=result.get("shareLink"))


# --- the window ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Which items wait, run and are done. `results` holds finished (and refused) items."""

    max_parallel: int
    waiting: tuple[int, ...]
    running: tuple[int, ...] = ()
    results: Mapping[int, ItemResult] = field(default_factory=dict)
    total: int = 0

    @property
    def done(self) -> bool:
        return not self.waiting and not self.running

    def counts(self) -> dict[str, int]:
        succeeded = sum(1 for r in self.results.values() if r.succeeded)
        return {
            "total": self.total,
            "running": len(self.running),
            "succeeded": succeeded,
            "failed": len(self.results) - succeeded,
            "pending": len(self.waiting),
        }


def open_window(items: tuple[BatchItem, ...], max_parallel: int) -> Window:
    refused = {i.index: ItemResult(False, error=i.rejection) for i in items if i.plan is None}
    waiting = tuple(i.index for i in items if i.plan is not None)
    return Window(max(1, max_parallel), waiting, (), refused, len(items))


def start_next(window: Window) -> tuple[Window, tuple[int, ...]]:
    """Fill the free slots from the front of the queue; returns the indexes to start now."""
    free = max(0, window.max_parallel - len(window.running))
    starting = window.waiting[:free]
    if not starting:
        return window, ()
    return replace(window, waiting=window.waiting[len(starting):], running=window.running + starting), starting


def finish(window: Window, index: int, result: ItemResult) -> Window:
    if index not in window.running:
        raise ValueError(f"item {index} is not running")
    return replace(
        window,
        running=tuple(i for i in window.running if i != index),
        results={**window.results, index: result},
    )


def cancel_waiting(window: Window, error: JobError) -> Window:
    """Items not started yet fail with `error` (running ones finish on their own)."""
    results = {**window.results, **{i: ItemResult(False, error=error) for i in window.waiting}}
    return replace(window, waiting=(), results=results)


def all_failed(window: Window) -> bool:
    return window.done and not any(r.succeeded for r in window.results.values())


def batch_state(window: Window) -> str:
    return EventState.SUCCEEDED if all(r.succeeded for r in window.results.values()) else STATE_PARTIAL


def batch_cancelled_error() -> JobError:
    return JobError(ErrorCode.CANCELLED, "the batch was cancelled before this item started")


def batch_failure(window: Window, cancelled: bool = False) -> JobError:
    """`batch_failed` (or `cancelled`) with how many items failed for which reason."""
    by_code = _errors_by_code(window)
    summary = ", ".join(f"{code}: {len(indexes)}" for code, indexes in by_code.items())
    code = ErrorCode.CANCELLED if cancelled else ErrorCode.BATCH_FAILED
    message = f"all {window.total} items failed" + (f" ({summary})" if summary else "")
    return JobError(code, clip(message, MAX_FAILURE_TEXT - len(code) - 2))


# --- customStatus -------------------------------------------------------------------------------


def _errors_by_code(window: Window) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for index in sorted(window.results):
        r = window.results[index]
        if not r.succeeded:
            out.setdefault(r.error.code if r.error else ErrorCode.INTERNAL, []).append(index)
    return out


def _fit(status: dict[str, Any]) -> dict[str, Any]:
    """Keep customStatus within budget: failed indexes per code, else counts per code, else none."""
    if custom_status_bytes(status) <= CUSTOM_STATUS_BUDGET_BYTES:
        return status
    errors = status.get("errors") or {}
    status = {**status, "errors": {code: len(indexes) for code, indexes in errors.items()}}
    if custom_status_bytes(status) <= CUSTOM_STATUS_BUDGET_BYTES:
        return status
    status.pop("errors")
    return status


def progress_status(phase: str, window: Window | None, now: datetime) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if window is not None:
        status["counts"] = window.counts()
        if window.running:
            status["runningItems"] = list(window.running)
        errors = _errors_by_code(window)
        if errors:
            status["errors"] = errors
    status["updatedAt"] = format_utc(now)
    return _fit(status)


def failed_status(error: JobError, window: Window | None, now: datetime) -> dict[str, Any]:
    status = progress_status(PHASE_FAILED, window, now)
    status["error"] = replace(error, message=clip(error.message, MAX_ITEM_ERROR_MESSAGE)).to_wire()
    return status


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaylistReport:
    url: str
    title: str | None
    entries: int

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url, "entries": self.entries}
        if self.title:
            out["title"] = self.title
        return out


def item_report(item: BatchItem, result: ItemResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": item.index,
        "url": item.url,
        "instanceId": item.instance_id,
        "state": EventState.SUCCEEDED if result.succeeded else EventState.FAILED,
    }
    if item.title:
        out["title"] = item.title
    if result.succeeded:
        if result.blob is not None:
            out["blob"] = dict(result.blob)
        if result.share_link is not None:
            out["shareLink"] = result.share_link
    else:
        error = result.error or JobError(ErrorCode.INTERNAL, "the item failed")
        out["error"] = replace(error, message=clip(error.message, MAX_ITEM_ERROR_MESSAGE)).to_wire()
    return out


def batch_output(
    batch_id: str, items: tuple[BatchItem, ...], window: Window, playlist: PlaylistReport | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "batchId": batch_id,
        "state": batch_state(window),
        "counts": window.counts(),
        "items": [item_report(item, window.results[item.index]) for item in items],
    }
    if playlist is not None:
        out["playlist"] = playlist.to_wire()
    return out


def output_bytes(output: Any) -> int:
    return len(json.dumps(output).encode("utf-8"))
