"""Deliver a completion webhook from an orchestration: the signed POST, retried with backoff.

A helper generator for `download_job` and `download_batch`: `yield from` it. It is deterministic
(durable timers only) and never raises for a failed delivery: the result is a record for the
job's output (`videojob.domain.notification.delivery_record`). Its activity calls and timers go through
the orchestration's `Mailbox` (`kernel`), like every other yield.
"""

from __future__ import annotations

from typing import Any

from videojob.domain.activity_wire import NOTIFY_COMPLETION
from videojob.domain.notification import (
    NOTIFY_FIRST_BACKOFF_SECONDS,
    NOTIFY_MAX_ATTEMPTS,
    NotifyResult,
    delivery_record,
    notify_backoff_seconds,
    notify_input,
)
from videojob.domain.orchestration import wake_at

from .kernel import Mailbox, Steps


def deliver_notification(
    context: Any,
    mailbox: Mailbox,
    url: str,
    payload: Any,
    *,
    max_attempts: int = NOTIFY_MAX_ATTEMPTS,
    first_backoff_seconds: int = NOTIFY_FIRST_BACKOFF_SECONDS,
) -> Steps:
    """POST `payload` to `url` through `notify_completion`; returns
    `{"delivered", "attempts", "status", "error"?}`. Stops early on a non-retryable answer (4xx,
    a refused address)."""
    attempts = max(1, max_attempts)
    last = NotifyResult(False)
    for attempt in range(attempts):
        last = NotifyResult.from_wire((yield from mailbox.call(NOTIFY_COMPLETION, notify_input(url, payload))))
        if last.ok or (last.error is not None and not last.error.retryable) or attempt + 1 >= attempts:
            return delivery_record(attempt + 1, last)
        pause = notify_backoff_seconds(attempt, first_backoff_seconds)
        yield from mailbox.sleep_until(wake_at(context.current_utc_datetime, pause))
    return delivery_record(attempts, last)  # not reached; keeps type checkers calm

