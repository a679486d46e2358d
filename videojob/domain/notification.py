"""Completion webhooks: the pure parts (activity wire shapes, retry schedule, delivery record).

`notify_completion` makes one signed POST; `orchestrators.notification.deliver_notification`
calls it up to `NOTIFY_MAX_ATTEMPTS` times with durable timers between attempts and records
the outcome in the job's output as `notification`:
`{"delivered": bool, "attempts": n, "status": int|None, "error"?: {code, message, retryable}}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from videojob.contract.wire import JobError

NOTIFY_MAX_ATTEMPTS = 5
NOTIFY_FIRST_BACKOFF_SECONDS = 5
NOTIFY_BACKOFF_CAP_SECONDS = 300

# Error codes of the notification activity.
NOTIFY_CONNECTION_FAILED = "notify_connection_failed"
NOTIFY_HTTP_STATUS = "notify_http_status"
NOTIFY_PRIVATE_ADDRESS = "private_address"
NOTIFY_INVALID_URL = "invalid_url"
NOTIFY_NOT_CONFIGURED = "configuration"
NOTIFY_UNEXPECTED = "unexpected_error"


def notify_input(url: str, payload: Any) -> dict[str, Any]:
    """The input of the `notify_completion` activity."""
    return {"url": url, "payload": payload}


def notify_backoff_seconds(attempt: int, first: int = NOTIFY_FIRST_BACKOFF_SECONDS) -> int:
    """Pause after failed attempt `attempt` (0-based): 5, 10, 20, 40, ... seconds, capped."""
    return min(max(0, first) * 2 ** min(max(attempt, 0), 20), NOTIFY_BACKOFF_CAP_SECONDS)


def is_retryable_status(status: int) -> bool:
    """Worth another attempt: the receiver is overloaded or broken, not refusing us."""
    return status == 429 or status == 408 or status >= 500


@dataclass(frozen=True)
class NotifyResult:
    """One delivery attempt, as the activity answers it."""

    ok: bool
    status: int | None = None
    error: JobError | None = None

    def to_wire(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "status": self.status}
        out: dict[str, Any] = {"ok": False, "error": (self.error or _unknown()).to_wire()}
        if self.status is not None:
            out["status"] = self.status
        return out

    @classmethod
    def from_wire(cls, d: Any) -> NotifyResult:
        if not isinstance(d, dict):
            return cls(False, error=JobError(NOTIFY_UNEXPECTED, "the activity returned no object", retryable=True))
        status = d.get("status")
        status = status if isinstance(status, int) and not isinstance(status, bool) else None
        if d.get("ok") is True:
            return cls(True, status)
        try:
            error = JobError.from_wire(d["error"]) if d.get("error") is not None else _unknown()
        except ValueError:
            error = _unknown()
        return cls(False, status, error)


def _unknown() -> JobError:
    return JobError(NOTIFY_UNEXPECTED, "no error given", retryable=True)


def delivery_record(attempts: int, last: NotifyResult) -> dict[str, Any]:
    """What the job's output records about its completion webhook."""
    record: dict[str, Any] = {"delivered": last.ok, "attempts": attempts, "status": last.status}
    if not last.ok:
        record["error"] = (last.error or _unknown()).to_wire()
    return record
