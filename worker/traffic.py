"""The job's traffic budget: bytes received at the socket, and bytes a response's body is read
into memory, both bounded while yt-dlp runs.

The byte cap in the progress hooks sees media files only. Pages, API answers, playlists and
manifests are read whole into memory, by extractors and by the HLS/DASH downloaders, before any
hook runs: an endless page, a gzip bomb (small on the wire, huge once decoded) or a playlist of a
million segments would grow the worker until the container is killed. So:

- Every byte received by this process's sockets while the budget is armed is counted (plain
  `socket.socket.recv`/`recv_into`, and `ssl.SSLSocket.read`, which TLS reads end in); past
  `wire_bytes` (the media cap plus the in-memory allowance) the next read fails. Concurrent
  fragment threads share the one counter, so the cap holds to within one read per thread.
- A response body read whole (`read()` without a size: how yt-dlp reads pages and manifests) is
  read in chunks after decoding, counted against `in_memory_bytes` for the whole job, and a
  playlist or manifest in it may not describe more than `max_fragments` segments
  (`manifests.fragment_upper_bound`). Sized reads (`read(n)`) are downloads streamed to disk:
  the socket counter and the byte cap bound them, and urllib3 decodes at most `n` bytes per read.

Exceeding the budget is `too_large`.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from videojob.contract.wire import ErrorCode, JobError

from .manifests import fragment_upper_bound

MiB = 1024 * 1024
READ_CHUNK = MiB
SNIFF_BYTES = 64 * 1024


class TrafficExceeded(ConnectionAbortedError):
    """Raised from a socket or response read once the budget is spent. An `OSError`, so every
    HTTP stack treats it as a failed connection; `classify` finds `error` in the cause chain."""

    def __init__(self, error: JobError):
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class TrafficLimits:
    wire_bytes: int
    in_memory_bytes: int
    max_fragments: int


def limits_for(max_bytes: int, in_memory_bytes: int, max_fragments: int) -> TrafficLimits:
    """The media cap plus what pages and manifests may add on the wire."""
    return TrafficLimits(max_bytes + in_memory_bytes, in_memory_bytes, max_fragments)


@dataclass
class TrafficBudget:
    limits: TrafficLimits
    received: int = 0
    in_memory: int = 0
    exceeded: JobError | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _fail(self, error: JobError) -> TrafficExceeded:
        if self.exceeded is None:
            self.exceeded = error
        return TrafficExceeded(self.exceeded)

    def stop(self, error: JobError) -> None:
        """The job is over (byte cap, cancellation): every later read fails with `error`."""
        with self._lock:
            if self.exceeded is None:
                self.exceeded = error

    def on_received(self, n: int) -> None:
        with self._lock:
            self.received += n
            over = self.received > self.limits.wire_bytes
        if self.exceeded is not None:
            raise TrafficExceeded(self.exceeded)
        if over:
            raise self._fail(
                JobError(
                    ErrorCode.TOO_LARGE,
                    f"the job received more than {self.limits.wire_bytes} bytes (media limit plus pages and manifests)",
                )
            )

    def on_read_into_memory(self, n: int) -> None:
        with self._lock:
            self.in_memory += n
            over = self.in_memory > self.limits.in_memory_bytes
        if over:
            raise self._fail(
                JobError(
                    ErrorCode.TOO_LARGE,
                    f"the site's pages and manifests exceed {self.limits.in_memory_bytes} bytes",
                )
            )

    def check_body(self, body: bytes) -> None:
        """A playlist or manifest may not describe more segments than `max_fragments`."""
        fragments = fragment_upper_bound(body)
        if fragments > self.limits.max_fragments:
            raise self._fail(
                JobError(
                    ErrorCode.TOO_LARGE,
                    f"a playlist or manifest describes about {fragments} segments, over the limit of "
                    f"{self.limits.max_fragments}",
                )
            )


def bound_response(response: Any, budget: TrafficBudget) -> Any:
    """Make `response.read()` (a yt-dlp `Response`) read its body into memory within `budget`."""
    read: Callable[..., bytes] = response.read
    head = bytearray()  # what sized reads returned first: extractors sniff a few bytes, then read the rest

    def bounded_read(amt: int | None = None) -> bytes:
        if amt is not None and amt >= 0:
            data = read(amt)
            if len(head) < SNIFF_BYTES:
                head.extend(data[: SNIFF_BYTES - len(head)])
            return data
        chunks = [bytes(head)] if head else []
        while True:
            chunk = read(READ_CHUNK)
            if not chunk:
                break
            budget.on_read_into_memory(len(chunk))
            chunks.append(chunk)
        body = b"".join(chunks)
        budget.check_body(body)
        return body[len(head) :] if head else body

    response.read = bounded_read
    return response


# -- the socket meter ----------------------------------------------------------------------------

_real_recv = socket.socket.recv
_real_recv_into = socket.socket.recv_into
_real_ssl_read = ssl.SSLSocket.read
_lock = threading.Lock()
_installed = False
_active: TrafficBudget | None = None


def _count(sock: socket.socket, n: int) -> None:
    budget = _active
    if budget is None or n <= 0:
        return
    try:
        budget.on_received(n)
    except TrafficExceeded:
        # The operator's endpoints (the callback) stay readable: the job still has to report.
        from .address_guard import is_trusted_peer

        if not is_trusted_peer(sock):
            raise


def _metered_recv(self: socket.socket, *args: Any) -> bytes:
    data = _real_recv(self, *args)
    _count(self, len(data))
    return data


def _metered_recv_into(self: socket.socket, *args: Any) -> int:
    n = _real_recv_into(self, *args)
    _count(self, n)
    return n


def _metered_ssl_read(self: ssl.SSLSocket, *args: Any) -> Any:
    result = _real_ssl_read(self, *args)
    _count(self, result if isinstance(result, int) else len(result))
    return result


def install() -> None:
    """Put the meter on sockets (once per process). Counts nothing until `armed()`."""
    global _installed
    with _lock:
        if _installed:
            return
        socket.socket.recv = _metered_recv  # type: ignore[method-assign]
        socket.socket.recv_into = _metered_recv_into  # type: ignore[method-assign]
        ssl.SSLSocket.read = _metered_ssl_read  # type: ignore[method-assign]
        _installed = True


@contextlib.contextmanager
def armed(budget: TrafficBudget) -> Iterator[TrafficBudget]:
    """Count every byte this process receives against `budget` while the block runs."""
    global _active
    install()
    with _lock:
        if _active is not None:
            raise RuntimeError("a traffic budget is already armed (one job per process)")
        _active = budget
    try:
        yield budget
    finally:
        with _lock:
            _active = None
