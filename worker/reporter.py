"""Callbacks: `JobStatus` events to `CALLBACK_URL`, in order, with `seq`, retries and throttling.

Events are sent by one background thread so a slow callback never stalls the download.
- `seq` starts at 1 and increases with every event made; a progress event still waiting
  when a newer one arrives is replaced by it (the orchestrator only needs the latest).
- Connection errors, 5xx and 429 are retried with exponential backoff: progress for
  `max_attempts` tries, a terminal event for at least that and until `final_give_up_seconds`
  (2 minutes) have passed since its first try (the function app may be restarting); the job
  recorded its outcome before (`videojob.contract.result_record`), so the orchestrator still learns it.
- 401/404/410 stop all reporting: the token is wrong or the orchestration is gone or done,
  so nobody is listening; the job reads `rejected_status` and stops working.
- The first terminal event (`succeeded`/`failed`) wins; `finish` waits for its delivery.
The token is sent in `Authorization: Bearer` and is never logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from videojob.contract.wire import EventState, JobError, JobResult, JobStatus, Progress

from .progress import ProgressThrottle

log = logging.getLogger("worker.reporter")

STOP_STATUSES = frozenset({401, 404, 410})


class CallbackTransport(Protocol):
    def post(self, body: bytes) -> int:
        """POST the body; return the HTTP status. Raise `OSError` when no response came back."""


class HttpCallbackTransport:
    def __init__(self, url: str, token: str, timeout_seconds: float = 10.0):
        self._url = url
        self._token = token
        self._timeout = timeout_seconds

    def __repr__(self) -> str:
        return f"HttpCallbackTransport(url={self._url!r})"

    def post(self, body: bytes) -> int:
        request = urllib.request.Request(  # noqa: S310 - the operator's callback URL (http/https)
            self._url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self._token}",
                "User-Agent": "videojob-worker",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as e:
            e.read()
            e.close()
            return int(e.code)
        except urllib.error.URLError as e:
            raise ConnectionError(f"callback unreachable: {e.reason}") from None


def utc_now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reporter:
    def __init__(
        self,
        job_id: str,
        transport: CallbackTransport,
        *,
        progress_interval_seconds: float,
        max_attempts: int = 6,
        backoff_seconds: float = 1.0,
        backoff_max_seconds: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
        attempt: int | None = None,
        final_give_up_seconds: float = 120.0,
    ):
        self._job_id = job_id
        self._attempt = attempt  # the orchestrator ignores events of an attempt it has moved past
        self._transport = transport
        self._max_attempts = max(1, max_attempts)
        self._final_give_up = max(0.0, final_give_up_seconds)
        self._backoff = backoff_seconds
        self._backoff_max = backoff_max_seconds
        self._clock = clock
        self._throttle = ProgressThrottle(progress_interval_seconds)
        self._cond = threading.Condition()
        self._queue: deque[JobStatus] = deque()
        self._seq = 0
        self._terminal_made = False
        self._rejected_status: int | None = None
        self._terminal_delivered = False
        self._thread = threading.Thread(target=self._run, name="reporter", daemon=True)
        self._thread.start()

    # -- what the job calls ------------------------------------------------------------------

    @property
    def rejected_status(self) -> int | None:
        """401/404/410 from the callback: nobody wants this job's events any more."""
        return self._rejected_status

    @property
    def terminal_made(self) -> bool:
        """Whether a terminal event (`succeeded`/`failed`) was queued: the runner reports for a
        job thread that ended without one."""
        return self._terminal_made

    def started(self, phase: str = "downloading") -> None:
        with self._cond:
            self._throttle.sent(self._clock(), phase)
        self._emit(EventState.STARTED, phase=phase)

    def progress_due(self, phase: str) -> bool:
        """Whether a progress event for `phase` would pass the throttle now (nothing is recorded):
        lets a caller on a hot path skip building one that would be dropped."""
        with self._cond:
            return self._throttle.should_send(self._clock(), phase)

    def progress(self, phase: str, progress: Progress | None = None, *, force: bool = False) -> bool:
        """Queue a progress event if the throttle allows it (a phase change always passes)."""
        with self._cond:
            if not (self._throttle.offer(self._clock(), phase) or force):
                return False
        return self._emit(EventState.PROGRESS, phase=phase, progress=progress)

    def succeeded(self, result: JobResult, timeout: float | None = None) -> bool:
        self._emit(EventState.SUCCEEDED, result=result)
        return self.wait_delivered(timeout)

    def failed(self, error: JobError, timeout: float | None = None) -> bool:
        self._emit(EventState.FAILED, error=error)
        return self.wait_delivered(timeout)

    def outcome_event(self, state: str, **fields: object) -> JobStatus:
        """The terminal event `succeeded`/`failed` would send now (same `seq`, job and attempt),
        for the result record the job writes first."""
        with self._cond:
            return JobStatus(
                state=state, job_id=self._job_id, seq=self._seq + 1, sent_at=utc_now_text(), attempt=self._attempt,
                **fields,  # type: ignore[arg-type]
            )

    def wait_delivered(self, timeout: float | None = None) -> bool:
        """Wait until the terminal event is delivered or given up; True when delivered."""
        self._thread.join(timeout)
        return self._terminal_delivered

    # -- internals -------------------------------------------------------------------------

    def _emit(self, state: str, **fields: object) -> bool:
        with self._cond:
            if self._terminal_made or self._rejected_status is not None:
                return False
            self._seq += 1
            event = JobStatus(
                state=state, job_id=self._job_id, seq=self._seq, sent_at=utc_now_text(), attempt=self._attempt,
                **fields,  # type: ignore[arg-type]
            )
            if state in (EventState.SUCCEEDED, EventState.FAILED):
                self._terminal_made = True
            if state == EventState.PROGRESS and self._queue and self._queue[-1].state == EventState.PROGRESS:
                self._queue[-1] = event
            else:
                self._queue.append(event)
            self._cond.notify_all()
            return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                event = self._queue.popleft()
            delivered = self._deliver(event)
            if event.is_terminal:
                self._terminal_delivered = delivered
                return
            if self._rejected_status is not None:
                return

    def _superseded(self, event: JobStatus) -> bool:
        return event.state == EventState.PROGRESS and bool(self._queue)

    def _deliver(self, event: JobStatus) -> bool:
        body = json.dumps(event.to_wire(), separators=(",", ":")).encode("utf-8")
        first_try = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                status = self._transport.post(body)
                problem = f"HTTP {status}"
            except OSError as e:
                status, problem = None, f"{type(e).__name__}: {e}"
            if status is not None and 200 <= status < 300:
                log.info("reported %s seq=%s%s", event.state, event.seq, f" phase={event.phase}" if event.phase else "")
                return True
            if status in STOP_STATUSES:
                log.warning("callback answered %s to %s seq=%s: stopping reports", status, event.state, event.seq)
                with self._cond:
                    self._rejected_status = status
                    self._queue.clear()
                return False
            if status is not None and status < 500 and status != 429:
                log.warning("callback refused %s seq=%s (%s): not retried", event.state, event.seq, problem)
                return False
            if attempt >= self._max_attempts and (
                not event.is_terminal or self._clock() - first_try >= self._final_give_up
            ):
                break
            delay = min(self._backoff * 2 ** min(attempt - 1, 30), self._backoff_max)
            log.info("callback failed (%s), retrying %s seq=%s in %.1fs", problem, event.state, event.seq, delay)
            with self._cond:
                # A newer progress event makes this one pointless; stop retrying it.
                if self._cond.wait_for(lambda: self._superseded(event), timeout=delay):
                    return False
        recorded = "; the outcome is in the job's result record" if event.is_terminal else ""
        log.warning("giving up on %s seq=%s after %d attempts in %.0f s%s",
                    event.state, event.seq, attempt, self._clock() - first_try, recorded)
        return False
