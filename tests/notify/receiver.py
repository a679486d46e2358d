"""A loopback webhook receiver: records every request (raw body and headers), answers as scripted.

It verifies nothing itself; tests check signatures with `videojob.domain.notify_signature.verify`, the
way a user's receiver would.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class WebhookReceiver:
    port: int = 0
    scheme: str = "http"
    answers: list[int] = field(default_factory=list)
    """Statuses to answer, in order; 204 once they run out."""
    location: str | None = None
    """Sent as `Location` with a 3xx answer."""
    received: list[Delivery] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str = "/hooks/videojob", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def wait_for(self, predicate: Callable[[list[Delivery]], bool], timeout: float = 30) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: predicate(list(self.received)), timeout=timeout)


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with receiver.arrived:
                status = receiver.answers.pop(0) if receiver.answers else 204
                receiver.received.append(
                    Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, raw, status)
                )
                receiver.arrived.notify_all()
            self.send_response(status)
            if 300 <= status < 400 and receiver.location:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET = _serve  # noqa: N815

    return Handler


@contextlib.contextmanager
def run_receiver(
    answers: list[int] | None = None, *, tls: ssl.SSLContext | None = None, location: str | None = None
) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(answers=list(answers or []), location=location, scheme="https" if tls else "http")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
