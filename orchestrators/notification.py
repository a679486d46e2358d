"""Deliver a completion webhook from an orchestration: the signed POST, retried with backoff.

A helper generator for `download_job` and `download_batch`: `yield from` it. It is deterministic
(durable timers only) and never raises for a failed delivery: the result is a record for the
job's output (`videojob.notification.delivery_record`).

The orchestrations keep a `JobStatus` waiter open around every yield (see `download_flow.Mailbox`);
pass their `call` / `sleep_until` to keep doing so here. Without them the helper yields the
activity and timer tasks directly.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import datetime
from typing import Any

from videojob.activity_wire import NOTIFY_COMPLETION, failed_activity_error
from videojob.notification import (
    NOTIFY_FIRST_BACKOFF_SECONDS,
    NOTIFY_MAX_ATTEMPTS,
    NotifyResult,
    delivery_record,
    notify_backoff_seconds,
    notify_input,
)
from videojob.orchestration import wake_at

Steps = Generator[Any, Any, Any]


def deliver_notification(
    context: Any,
    url: str,
    payload: Any,
    *,
    max_attempts: int = NOTIFY_MAX_ATTEMPTS,
    first_backoff_seconds: int = NOTIFY_FIRST_BACKOFF_SECONDS,
    call: Callable[[str, dict[str, Any]], Steps] | None = None,
    sleep_until: Callable[[datetime], Steps] | None = None,
) -> Steps:
    """POST `payload` to `url` through `notify_completion`; returns
    `{"delivered", "attempts", "status", "error"?}`. Stops early on a non-retryable answer (4xx,
    a refused address)."""
    call = call or (lambda name, data: _call_directly(context, name, data))
    sleep_until = sleep_until or (lambda fire_at: _sleep_directly(context, fire_at))
    attempts = max(1, max_attempts)
    last = NotifyResult(False)
    for attempt in range(attempts):
        last = NotifyResult.from_wire((yield from call(NOTIFY_COMPLETION, notify_input(url, payload))))
        if last.ok or (last.error is not None and not last.error.retryable) or attempt + 1 >= attempts:
            return delivery_record(attempt + 1, last)
        pause = notify_backoff_seconds(attempt, first_backoff_seconds)
        yield from sleep_until(wake_at(context.current_utc_datetime, pause))
    return delivery_record(attempts, last)  # not reached; keeps type checkers calm


def _call_directly(context: Any, name: str, data: dict[str, Any]) -> Steps:
    try:
        return (yield context.call_activity(name, data))
    except Exception as e:  # the activity raised: TaskFailed arrives as an exception here
        return {"ok": False, "error": failed_activity_error(e).to_wire()}


def _sleep_directly(context: Any, fire_at: datetime) -> Steps:
    yield context.create_timer(fire_at)
