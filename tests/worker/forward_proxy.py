"""A loopback forward HTTP proxy for the worker's tests: it records every request it is sent and
serves each one, whatever host it names, from one loopback upstream (the media server).

So a job can name a public address (`http://<global IP>/clip.mp4`): the worker's requests go to
this proxy, which never connects anywhere but the upstream, and no traffic leaves loopback.
CONNECT (an https target) is recorded and refused: the tests use http targets.

It runs in the worker's process but stands for another machine: its own connection to the
upstream is not the worker's, so it bypasses the worker's address guard.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from worker import address_guard

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade",
}  # fmt: skip


class _UnguardedConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        address_guard._real_connect(self.sock, (self.host, self.port))


@dataclass
class ForwardProxy:
    port: int
    seen: list[tuple[str, str]] = field(default_factory=list)
    """(method, target) of every request, in order: the absolute URL, or `host:port` for CONNECT."""
    authorizations: list[str | None] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(proxy: ForwardProxy, upstream_port: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            pass

        def do_CONNECT(self) -> None:  # noqa: N802
            proxy.seen.append(("CONNECT", self.path))
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            self._forward()

        def do_HEAD(self) -> None:  # noqa: N802
            self._forward()

        def _forward(self) -> None:
            proxy.seen.append((self.command, self.path))
            proxy.authorizations.append(self.headers.get("Proxy-Authorization"))
            target = urlsplit(self.path)
            if not target.scheme:  # not a proxy request
                self.send_error(400)
                return
            path = target.path + (f"?{target.query}" if target.query else "")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream = _UnguardedConnection("127.0.0.1", upstream_port, timeout=30)
            try:
                upstream.request(self.command, path, headers=headers)
                answer = upstream.getresponse()
                body = answer.read()
            finally:
                upstream.close()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@contextlib.contextmanager
def run_forward_proxy(upstream_port: int) -> Iterator[ForwardProxy]:
    proxy = ForwardProxy(port=0)
    server = _Server(("127.0.0.1", 0), _handler(proxy, upstream_port))
    proxy.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="forward-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
