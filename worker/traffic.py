"""The job's traffic budget: bytes received at the socket, and bytes a response's body is read
into memory, both bounded while yt-dlp runs.

The byte cap in the progress hooks sees media files only. Pages, API answers, playlists and
manifests are read whole into memory, by extractors and by the HLS/DASH downloaders, before any
hook runs: an endless page, a gzip bomb (small on the wire, huge once decoded) or a playlist of a
million segments would grow the worker until the container is killed. So:

- Every byte received by this process's sockets while the budget is armed is counted (plain
  `socket.socket.recv`/`recv_into`, and `ssl.SSLSocket.read`, which TLS reads end in); past
  `wire_bytes` (the media cap plus the in-memory allowance) the next read fails.
- The byte cap holds on the wire, not only in yt-dlp's progress hooks (issue 19): bytes received
  outside a whole-body read (media, headers, sized reads) may not pass `media_bytes` (the cap).
  Each read asks the socket for no more than the room left, so the worker never reads past the
  cap, and once it is spent no read and no send (a new request: a fragment thread's next
  fragment) goes out. What the kernel holds unread is bounded too: every socket the job reads
  gets a fixed receive buffer (`RECEIVE_BUFFER_BYTES`, no autotuning up to megabytes), so the
  server can have sent at most one such window per open connection beyond the cap:
  `wire_margin(connections)`.
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
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from videojob.contract.wire import ErrorCode, JobError

from .manifests import fragment_upper_bound

MiB = 1024 * 1024
READ_CHUNK = MiB
SNIFF_BYTES = 64 * 1024
RECEIVE_BUFFER_BYTES = 256 * 1024
"""`SO_RCVBUF` of every socket the job reads (Linux doubles it for its bookkeeping). 256 KiB over a
20 ms round trip still carries about 12 MB/s per connection."""


def wire_margin(connections: int) -> int:
    """How far past the cap the server may have sent: one full receive buffer (doubled by Linux)
    per connection open when the cap was reached, plus the response that was in flight."""
    return connections * 2 * RECEIVE_BUFFER_BYTES + 64 * 1024


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
    media_bytes: int | None = None
    """Bytes received outside whole-body reads (media, headers): the byte cap, on the wire."""


def limits_for(max_bytes: int, in_memory_bytes: int, max_fragments: int) -> TrafficLimits:
    """The media cap plus what pages and manifests may add on the wire. `max_bytes` 0 (list mode:
    nothing is downloaded, only headers besides pages) leaves the wire limit alone in force."""
    return TrafficLimits(max_bytes + in_memory_bytes, in_memory_bytes, max_fragments, media_bytes=max_bytes or None)


@dataclass
class TrafficBudget:
    limits: TrafficLimits
    received: int = 0
    in_memory: int = 0
    media_received: int = 0
    exceeded: JobError | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def media_room(self) -> int | None:
        """Bytes that may still be received outside whole-body reads; None without a cap."""
        if self.limits.media_bytes is None:
            return None
        return self.limits.media_bytes - self.media_received

    def cap_error(self) -> JobError:
        return JobError(
            ErrorCode.TOO_LARGE,
            f"the download exceeds the limit of {self.limits.media_bytes} bytes (counted on the wire)",
        )

    def spent(self) -> bool:
        """Nothing more may be asked for: the budget is over, or the cap is used up."""
        room = self.media_room()
        return self.exceeded is not None or (room is not None and room <= 0)

    def _fail(self, error: JobError) -> TrafficExceeded:
        if self.exceeded is None:
            self.exceeded = error
        return TrafficExceeded(self.exceeded)

    def stop(self, error: JobError) -> None:
        """The job is over (byte cap, cancellation): every later read fails with `error`."""
        with self._lock:
            if self.exceeded is None:
                self.exceeded = error

    def on_received(self, n: int, *, whole_body: bool = False) -> None:
        with self._lock:
            self.received += n
            if not whole_body:
                self.media_received += n
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
        _thread.whole_body = True  # this thread's socket reads are a page now, not media
        try:
            while True:
                chunk = read(READ_CHUNK)
                if not chunk:
                    break
                budget.on_read_into_memory(len(chunk))
                chunks.append(chunk)
        finally:
            _thread.whole_body = False
        body = b"".join(chunks)
        budget.check_body(body)
        return body[len(head) :] if head else body

    response.read = bounded_read
    return response


# -- the socket meter ----------------------------------------------------------------------------

_real_recv = socket.socket.recv
_real_recv_into = socket.socket.recv_into
_real_ssl_read = ssl.SSLSocket.read
_real_sendall = socket.socket.sendall
_real_ssl_sendall = ssl.SSLSocket.sendall
_lock = threading.Lock()
_installed = False
_active: TrafficBudget | None = None
_thread = threading.local()
_buffered: weakref.WeakSet[socket.socket] = weakref.WeakSet()


def _trusted(sock: socket.socket) -> bool:
    from .address_guard import is_trusted_peer  # the operator's endpoints (the callback)

    return is_trusted_peer(sock)


def _read_size(sock: socket.socket, asked: int) -> int:
    """How much this read may ask the socket for: `asked`, or less near the cap; raises once the
    cap is spent. Also fixes the socket's receive buffer on its first read."""
    budget = _active
    if budget is None or getattr(_thread, "whole_body", False):
        return asked
    if sock not in _buffered:
        with contextlib.suppress(OSError, TypeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            _buffered.add(sock)
    room = budget.media_room()
    if room is None or room >= asked:
        return asked
    if _trusted(sock):
        return asked
    if room <= 0:
        budget.stop(budget.cap_error())
        raise TrafficExceeded(budget.exceeded or budget.cap_error())
    return room


def _count(sock: socket.socket, n: int) -> None:
    budget = _active
    if budget is None or n <= 0:
        return
    try:
        budget.on_received(n, whole_body=getattr(_thread, "whole_body", False))
    except TrafficExceeded:
        # The operator's endpoints (the callback) stay readable: the job still has to report.
        if not _trusted(sock):
            raise


def _check_send(sock: socket.socket) -> None:
    """Once the budget is spent no new request goes out (a fragment thread's next fragment):
    a server never answers one the worker could not read."""
    budget = _active
    if budget is not None and budget.spent() and not _trusted(sock):
        raise TrafficExceeded(budget.exceeded or budget.cap_error())


def _metered_recv(self: socket.socket, bufsize: int, *args: Any) -> bytes:
    data = _real_recv(self, _read_size(self, bufsize), *args)
    _count(self, len(data))
    return data


def _metered_recv_into(self: socket.socket, buffer: Any, nbytes: int = 0, *args: Any) -> int:
    asked = nbytes or memoryview(buffer).nbytes
    n = _real_recv_into(self, buffer, _read_size(self, asked), *args)
    _count(self, n)
    return n


def _metered_ssl_read(self: ssl.SSLSocket, size: int = 1024, buffer: Any = None) -> Any:
    asked = _read_size(self, size)
    result = _real_ssl_read(self, asked, buffer) if buffer is not None else _real_ssl_read(self, asked)
    _count(self, result if isinstance(result, int) else len(result))
    return result


def _metered_sendall(self: socket.socket, data: Any, *args: Any) -> None:
    _check_send(self)
    return _real_sendall(self, data, *args)


def _metered_ssl_sendall(self: ssl.SSLSocket, data: Any, *args: Any) -> None:
    _check_send(self)
    return _real_ssl_sendall(self, data, *args)


def install() -> None:
    """Put the meter on sockets (once per process). Counts nothing until `armed()`."""
    global _installed
    with _lock:
        if _installed:
            return
        socket.socket.recv = _metered_recv  # type: ignore[method-assign]
        socket.socket.recv_into = _metered_recv_into  # type: ignore[method-assign]
        ssl.SSLSocket.read = _metered_ssl_read  # type: ignore[method-assign]
        socket.socket.sendall = _metered_sendall  # type: ignore[method-assign]
        ssl.SSLSocket.sendall = _metered_ssl_sendall  # type: ignore[method-assign]
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
