"""A loopback HTTP server for generated media, with the misbehaviours the worker must survive.

Routes (all under the served directory):
- `/<path>`: the file, with Content-Length and Range support.
- `/nolength/<path>`: the file with no Content-Length (connection closes at the end).
- `/slow/<path>`: the file trickled slowly (for cancellation tests).
- `/status/<code>`: an empty response with that status.
- `/redirect?to=<url>`: a 302 to `to`.
- `/endless/<name>`: an HTML page that never ends (no Content-Length; until the client hangs up).
- `/gzipbomb/<name>`: an HTML page of about 1 GiB sent gzip-encoded (about 1 MB on the wire).
- `/cookie-gate/<path>`: the file only to a request carrying the cookie
  `GATE_COOKIE_NAME=GATE_COOKIE_VALUE`; anything else gets 403 with YouTube's bot-check page.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".ts": "video/mp2t",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".html": "text/html; charset=utf-8",
    ".m4a": "audio/mp4",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
}
CHUNK = 256 * 1024
GATE_COOKIE_NAME = "SID"
GATE_COOKIE_VALUE = "gate-cookie-value-7f3a91c2e5"
BOT_CHECK_PAGE = (
    b"<!doctype html><html><head><title>YouTube</title></head><body>"
    b"<p>Sign in to confirm you\xe2\x80\x99re not a bot</p></body></html>"
)
_GZIP_BOMB: list[bytes] = []
_BOMB_LOCK = threading.Lock()


@dataclass
class SentCounter:
    """Bytes the server's sockets accepted (body and headers), in small writes through a small send
    buffer (`SEND_BUFFER`), so what is counted is what went on the wire within one buffer per
    connection: the server side of the worker's byte cap."""

    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, n: int) -> None:
        with self.lock:
            self.sent += n


SEND_BUFFER = 32 * 1024
COUNTED_CHUNK = 16 * 1024


@dataclass
class MediaServer:
    root: Path
    port: int
    requests: list[str]
    counter: SentCounter | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"


def _handler(root: Path, requests: list[str], counter: SentCounter | None = None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            if counter is not None:
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            super().setup()
            if counter is not None:
                self.wfile = _CountingWriter(self.connection, counter)  # type: ignore[assignment]

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            pass

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(head=True)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(head=False)

        def _serve(self, head: bool) -> None:
            requests.append(self.path)
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            if path.startswith("/status/"):
                code = int(path.rsplit("/", 1)[1])
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path == "/redirect":
                self.send_response(302)
                self.send_header("Location", parse_qs(parts.query)["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path.startswith("/endless/"):
                self._endless_page()
                return
            if path.startswith("/gzipbomb/"):
                self._gzip_bomb()
                return
            if path.startswith("/cookie-gate/"):
                if f"{GATE_COOKIE_NAME}={GATE_COOKIE_VALUE}" not in (self.headers.get("Cookie") or ""):
                    self.send_response(403)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(BOT_CHECK_PAGE)))
                    self.end_headers()
                    if not head:
                        self.wfile.write(BOT_CHECK_PAGE)
                    return
                path = "/" + path[len("/cookie-gate/") :]
            mode = "plain"
            for prefix in ("/nolength/", "/slow/"):
                if path.startswith(prefix):
                    mode, path = prefix.strip("/"), "/" + path[len(prefix) :]
            file = (root / path.lstrip("/")).resolve()
            if root.resolve() not in file.parents or not file.is_file():
                self.send_error(404)
                return
            size = file.stat().st_size
            start, end = 0, size - 1
            status = 200
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and mode == "plain":
                a, _, b = rng[6:].partition("-")
                start = int(a) if a else 0
                end = min(int(b), size - 1) if b else size - 1
                status = 206
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPES.get(file.suffix, "application/octet-stream"))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            if mode == "nolength":
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            if head:
                return
            with file.open("rb") as f:
                f.seek(start)
                remaining = end - start + 1
                while remaining > 0:
                    chunk = f.read(min(CHUNK if mode != "slow" else 512, remaining))
                    if not chunk:
                        break
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    remaining -= len(chunk)
                    if mode == "slow":
                        time.sleep(0.05)

        def _endless_page(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            block = b"<p>" + b"x" * CHUNK + b"</p>\n"
            try:
                self.wfile.write(b"<!doctype html><html><head><title>endless</title></head><body>")
                while True:
                    self.wfile.write(block)
            except (BrokenPipeError, ConnectionResetError):
                return

        def _gzip_bomb(self) -> None:
            from tests.worker.media import gzip_bomb

            with _BOMB_LOCK:
                if not _GZIP_BOMB:
                    _GZIP_BOMB.append(gzip_bomb())
            body = _GZIP_BOMB[0]
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler


class _CountingWriter:
    """An unbuffered `wfile` counting every byte the socket accepted, in `COUNTED_CHUNK` writes."""

    def __init__(self, sock: socket.socket, counter: SentCounter):
        self._sock = sock
        self._counter = counter

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        for start in range(0, len(view), COUNTED_CHUNK):
            chunk = view[start : start + COUNTED_CHUNK]
            self._sock.sendall(chunk)
            self._counter.add(len(chunk))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up mid-transfer (byte cap, cancellation) are expected here


@contextlib.contextmanager
def serve_media(root: Path, *, count_sent: bool = False) -> Iterator[MediaServer]:
    """Serve `root` on a free 127.0.0.1 port for the duration of the block; with `count_sent`,
    `server.counter` counts the bytes sent."""
    requests: list[str] = []
    counter = SentCounter() if count_sent else None
    server = _QuietServer(("127.0.0.1", 0), _handler(root, requests, counter))
    thread = threading.Thread(target=server.serve_forever, name="media-server", daemon=True)
    thread.start()
    try:
        yield MediaServer(root=root, port=server.server_address[1], requests=requests, counter=counter)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

