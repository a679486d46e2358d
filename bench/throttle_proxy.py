"""A loopback TCP proxy that paces the bytes it forwards to a fixed rate (the bench's slow links).

Every connection through one proxy shares its rate, in each direction separately: in front of
the media server it stands for the site's download bandwidth, in front of Azurite for the
container's upload bandwidth. It runs in the bench process, off the CPU the measured programs
are pinned to.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK = 64 * 1024


class Pace:
    """Bytes may pass at `rate` per second, all senders together."""

    def __init__(self, rate: float):
        self._rate = rate
        self._next = 0.0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + n / self._rate
        if start > now:
            time.sleep(start - now)


@dataclass(frozen=True)
class ThrottleProxy:
    port: int

    def rewrite(self, url: str, upstream_port: int) -> str:
        """`url` (or a connection string) with the upstream's port replaced by the proxy's."""
        return url.replace(f"127.0.0.1:{upstream_port}", f"127.0.0.1:{self.port}")


def _pump(source: socket.socket, target: socket.socket, pace: Pace) -> None:
    try:
        while data := source.recv(CHUNK):
            pace.take(len(data))
            target.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def _serve(listener: socket.socket, upstream_port: int, up: Pace, down: Pace) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            server = socket.create_connection(("127.0.0.1", upstream_port))
        except OSError:
            client.close()
            continue
        for a, b, pace in ((client, server, up), (server, client, down)):
            threading.Thread(target=_pump, args=(a, b, pace), daemon=True).start()


@contextlib.contextmanager
def throttle_proxy(upstream_port: int, *, up_mib_s: float, down_mib_s: float) -> Iterator[ThrottleProxy]:
    """A proxy to `127.0.0.1:upstream_port`: client-to-server bytes at `up_mib_s`, the other way at `down_mib_s`."""
    mib = 1024 * 1024
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(
        target=_serve, args=(listener, upstream_port, Pace(up_mib_s * mib), Pace(down_mib_s * mib)), daemon=True
    )
    thread.start()
    try:
        yield ThrottleProxy(listener.getsockname()[1])
    finally:
        listener.close()
