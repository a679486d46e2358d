"""Cooperative cancellation: one flag, set by SIGTERM or the job's own deadline, read by every step."""

from __future__ import annotations

import threading

from videojob.contract.wire import ErrorCode, JobError


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._reason: JobError | None = None
        self._lock = threading.Lock()

    def cancel(self, reason: JobError) -> None:
        """The first reason wins (a deadline followed by SIGTERM stays a deadline)."""
        with self._lock:
            if self._reason is None:
                self._reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> JobError:
        return self._reason or JobError(ErrorCode.CANCELLED, "the job was cancelled")

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)
