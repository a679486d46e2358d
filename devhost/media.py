"""A sample clip made with ffmpeg, served on loopback (optionally throttled) for the demo and tests."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape, quoteattr

CHUNK = 16 * 1024
CONTENT_TYPES = {".mp4": "video/mp4", ".rss": "application/rss+xml"}


class FfmpegMissing(RuntimeError):
    pass


def require_ffmpeg() -> None:
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        raise FfmpegMissing(
            f"{' and '.join(missing)} not found: install FFmpeg "
            "(Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg)"
        )


def make_clip(path: Path, seconds: float = 4, size: str = "640x360", rate: int = 25,
              video_bitrate: str | None = None) -> Path:
    """An H.264/AAC MP4 test pattern with a tone: real media the worker's ffprobe check accepts."""
    require_ffmpeg()
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        # Noise keeps x264 from compressing the pattern below the asked-for bitrate.
        "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={seconds}"
        + (",noise=alls=30:allf=t" if video_bitrate else ""),
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        *(["-b:v", video_bitrate, "-maxrate", video_bitrate, "-bufsize", video_bitrate] if video_bitrate else []),
        "-c:a", "aac", "-b:a", "96k", "-shortest", "-movflags", "+faststart", str(path),
    ]
    subprocess.run(cmd, check=True, timeout=120)
    return path


def write_feed(path: Path, title: str, items: list[tuple[str, str]]) -> Path:
    """An RSS 2.0 feed whose items (`(title, media URL)`) are `<enclosure>`s: yt-dlp's generic
    extractor lists it as a playlist, which makes an offline playlist for list mode."""
    entries = "".join(
        f"<item><title>{escape(name)}</title><guid>{i}</guid>"
        f"<enclosure url={quoteattr(url)} type=\"video/mp4\" length=\"0\"/></item>"
        for i, (name, url) in enumerate(items, 1)
    )
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
        f"<link>http://127.0.0.1/</link><description>test feed</description>{entries}</channel></rss>",
        encoding="utf-8",
    )
    return path


@dataclass(frozen=True)
class MediaServer:
    port: int

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name.lstrip('/')}"


def _handler(root: Path, bytes_per_second: float | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
            pass

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(head=True)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(head=False)

        def _serve(self, head: bool) -> None:
            file = (root / unquote(urlsplit(self.path).path).lstrip("/")).resolve()
            if root not in file.parents or not file.is_file():
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPES.get(file.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(file.stat().st_size))
            self.end_headers()
            if head:
                return
            with file.open("rb") as f:
                while chunk := f.read(CHUNK):
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    if bytes_per_second:
                        time.sleep(len(chunk) / bytes_per_second)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a worker that is killed mid-download hangs up: expected


@contextlib.contextmanager
def serve_directory(root: Path, bytes_per_second: float | None = None) -> Iterator[MediaServer]:
    """Serve the files of `root` on a free 127.0.0.1 port while the block runs."""
    server = _QuietServer(("127.0.0.1", 0), _handler(root.resolve(), bytes_per_second))
    thread = threading.Thread(target=server.serve_forever, name="media-server", daemon=True)
    thread.start()
    try:
        yield MediaServer(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
