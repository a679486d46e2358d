"""A loopback stand-in for the callback endpoint: records every request, answers as scripted."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    authorization: str | None
    body: dict[str, Any]
    status: int


@dataclass
class CallbackReceiver:
    port: int
    answers: list[int] = field(default_factory=list)
    """Statuses to answer, in order; 202 once they run out."""
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def url(self, job_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/api/jobs/{job_id}/status"

    def accepted(self) -> list[dict[str, Any]]:
        """Bodies of the requests answered with a 2xx, in arrival order."""
        with self.lock:
            return [r.body for r in self.received if 200 <= r.status < 300]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 30) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: predicate(list(self.received)), timeout=timeout)


def _handler(receiver: CallbackReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with receiver.lock:
                status = receiver.answers.pop(0) if receiver.answers else 202
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            with receiver.arrived:
                receiver.received.append(Received(self.path, self.headers.get("Authorization"), body, status))
                receiver.arrived.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@contextlib.contextmanager
def run_callback_receiver(answers: list[int] | None = None) -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver(port=0, answers=list(answers or []))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.port = server.server_address[1]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="callback-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
