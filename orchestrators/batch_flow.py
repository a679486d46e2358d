"""The `download_batch` orchestration: many `download_job` children under one sliding window.

Steps:
1. playlist only: list the entries with a `download_job` child in `list` mode (instance
   `<batch>-list`: the worker lists inside a container, the function app never fetches user
   URLs); its failure is the batch's; no entries fails `playlist_empty`. Entries become items
   (each URL through the URL policy again; refused ones are failed items, never fetched).
2. run the items as `download_job` children `<batch>-<index>`, at most `max_parallel` at once:
   whenever one ends, the next starts in the same episode (a sliding window, not waves).
3. report: every item `succeeded` or `failed` (a failed child's code parsed from its failure
   message); `succeeded`/`partial` output, or, when every item failed, the orchestration fails
   `batch_failed`; the completion webhook (`notify_url`) is delivered last either way.

A child keeps at most one container group alive and removes it before completing, so the
window bounds the batch's groups (the listing child counts as one, alone).

Cancel: a `JobStatus` event `{"state": "cancelled"}` (what the cancel endpoint raises) stops the
batch from starting more items; those fail `cancelled`. Running children are not touched from
here (an orchestrator cannot raise events to other instances): the cancel endpoint
(`api/cancel.py`) cancels the children `customStatus.runningItems` names, by their ids. One
`JobStatus` waiter stays open in every yield (`kernel.Mailbox`, keeping cancels only).
"""

from __future__ import annotations

import logging
from typing import Any

from videojob.contract.wire import (
    PHASE_LISTING,
    PHASE_RUNNING,
    BatchPlan,
    ContractError,
    ErrorCode,
    JobError,
    failure_message,
)
from videojob.domain import batching as B
from videojob.domain.orchestration import is_cancel

from .kernel import NOTHING, Mailbox, OrchestrationFailed, Steps, replay_safe_log
from .notification import deliver_notification

logger = logging.getLogger(__name__)

DOWNLOAD_JOB = "download_job"


class BatchFailed(OrchestrationFailed):
    """The batch's failure. Its message starts with the error code."""


def _log(context: Any, level: int, message: str, *args: Any) -> None:
    replay_safe_log(context, logger, level, message, *args)


def run_batch(context: Any) -> Steps:
    batch_id: str = context.instance_id
    try:
        plan = BatchPlan.from_wire(context.get_input())
    except (ContractError, KeyError, TypeError, ValueError) as e:
        error = JobError(ErrorCode.INTERNAL, f"invalid batch plan: {e}"[:300])
        context.set_custom_status(B.failed_status(error, None, context.current_utc_datetime))
        raise BatchFailed(failure_message(error)) from None

    mailbox = Mailbox(context, keep=is_cancel)
    playlist = None
    if plan.playlist is not None:
        items, playlist = yield from _list_playlist(context, mailbox, plan, batch_id)
    else:
        items = B.items_from_plan(batch_id, plan)
    if not items:
        error = JobError(ErrorCode.BATCH_FAILED, "the batch has no items")
        raise (yield from _failed(context, mailbox, plan, batch_id, error, None))

    window = yield from _run_window(context, mailbox, items, B.open_window(items, plan.max_parallel))

    if B.all_failed(window):
        error = B.batch_failure(window, cancelled=mailbox.holds(is_cancel))
        _log(context, logging.WARNING, "batch %s failed: %s", batch_id, error.message)
        raise (yield from _failed(context, mailbox, plan, batch_id, error, window))

    output = B.batch_output(batch_id, items, window, playlist)
    context.set_custom_status(B.progress_status(output["state"], window, context.current_utc_datetime))
    if plan.notify_url:
        output["notification"] = yield from deliver_notification(context, mailbox, plan.notify_url, output)
    _log(context, logging.INFO, "batch %s %s: %s", batch_id, output["state"], output["counts"])
    return output


def _list_playlist(context: Any, mailbox: Mailbox, plan: BatchPlan, batch_id: str) -> Steps:
    """Run the listing child; returns the items and the playlist's part of the report."""
    assert plan.playlist is not None
    context.set_custom_status(B.progress_status(PHASE_LISTING, None, context.current_utc_datetime))
    listing = context.call_sub_orchestrator(
        DOWNLOAD_JOB, B.listing_plan(plan).to_wire(), B.listing_instance_id(batch_id)
    )
    task = yield from mailbox.until_done(listing)
    if isinstance(task.result, BaseException):
        raise (yield from _failed(context, mailbox, plan, batch_id, B.parse_child_failure(task.result), None))
    if mailbox.holds(is_cancel):
        cancelled = JobError(ErrorCode.CANCELLED, "the batch was cancelled")
        raise (yield from _failed(context, mailbox, plan, batch_id, cancelled, None))
    entries, title = B.listed_entries(task.result, plan.playlist.max_items)
    if not entries:
        empty = JobError(ErrorCode.PLAYLIST_EMPTY, "the playlist has no entries")
        raise (yield from _failed(context, mailbox, plan, batch_id, empty, None))
    report = B.PlaylistReport(plan.playlist.request.url, title, len(entries))
    return B.items_from_entries(batch_id, entries, plan), report


def _run_window(context: Any, mailbox: Mailbox, items: tuple[B.BatchItem, ...], window: B.Window) -> Steps:
    running: dict[int, Any] = {}
    while not window.done:
        if mailbox.holds(is_cancel):
            window = B.cancel_waiting(window, B.batch_cancelled_error())
        window, starting = B.start_next(window)
        for index in starting:
            item = items[index]
            assert item.plan is not None
            running[index] = context.call_sub_orchestrator(DOWNLOAD_JOB, item.plan.to_wire(), item.instance_id)
        context.set_custom_status(B.progress_status(PHASE_RUNNING, window, context.current_utc_datetime))
        if not running:
            break
        if (yield from mailbox.any_of(list(running.values()))) is NOTHING:
            continue  # an event: a cancel stops the waiting items above
        # Every child that has ended by now (the replay reaches the same point in the same order).
        for index in [i for i, task in running.items() if task.is_completed]:
            window = B.finish(window, index, B.child_result(running.pop(index).result))
    return window


def _failed(context: Any, mailbox: Mailbox, plan: BatchPlan, batch_id: str, error: JobError,
            window: B.Window | None) -> Steps:
    """Record the failure and deliver the webhook if asked; returns the exception that ends the
    orchestration (the caller raises it)."""
    context.set_custom_status(B.failed_status(error, window, context.current_utc_datetime))
    if plan.notify_url:
        payload: dict[str, Any] = {"batchId": batch_id, "state": "failed", "error": error.to_wire()}
        if window is not None:
            payload["counts"] = window.counts()
        record = yield from deliver_notification(context, mailbox, plan.notify_url, payload)
        status = B.failed_status(error, window, context.current_utc_datetime)
        context.set_custom_status({**status, "notification": record})
    return BatchFailed(failure_message(error))
