"""Upload while downloading (issue 24): a single-file download is staged as blocks while yt-dlp
writes it; only blocks that are exactly the verified file are ever committed.

The jobs run in-process (real yt-dlp, ffprobe, Azurite) against `GateServer`, which holds the
rest of a file until the test sees blocks of it staged in Azurite: so the overlap is shown at the
wire level, and the misbehaving servers act after the worker has staged something.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from tests.support.services import Azurite
from tests.worker import media
from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import FAST, staged_media, upload_target, worker_env
from videojob.contract.wire import ErrorCode, JobError
from worker.blob_process import BlobProcess, ProcessBlobSink
from worker.runner import main

KiB, MiB = 1024, 1024 * 1024
SMALL_BLOCKS = replace(FAST, upload_block_bytes=64 * KiB)
GATE_SECONDS = 60.0


@dataclass
class GateServer:
    """Serves `files` by name. `/gated/<n>`: the first half, then (once `gate` is true) the rest.
    `/broken/<n>`: the first half, then (once `gate` is true) the connection is closed.
    `/hostile/<n>`: like broken; a request with a Range then gets `other[n]` whole, with a 200,
    as a server that "cannot resume" would (yt-dlp then writes the file again from its start)."""

    files: dict[str, bytes]
    other: dict[str, bytes] = field(default_factory=dict)
    gate: Callable[[], bool] = lambda: True
    opened: list[bool] = field(default_factory=list)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0

    def url(self, route: str, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{route}/{name}"

    def wait_gate(self) -> None:
        deadline = time.monotonic() + GATE_SECONDS
        while time.monotonic() < deadline:
            if self.gate():
                self.opened.append(True)
                return
            time.sleep(0.02)
        self.opened.append(False)


def _handler(server: GateServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            pass

        def do_GET(self) -> None:  # noqa: N802
            route, _, name = self.path.strip("/").partition("/")
            server.requests.append((route, self.headers.get("Range")))
            if route == "hostile" and self.headers.get("Range") and name in server.other:
                self._send(server.other[name], len(server.other[name]))
                return
            data = server.files.get(name)
            if data is None:
                self.send_error(404)
                return
            half = len(data) // 2
            self._send(data[:half], len(data))
            server.wait_gate()
            if route == "gated":
                self.wfile.write(data[half:])
            else:
                self.close_connection = True

        def _send(self, body: bytes, length: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

    return Handler


@contextlib.contextmanager
def gate_server(files: dict[str, bytes], other: dict[str, bytes] | None = None) -> Iterator[GateServer]:
    state = GateServer(files=files, other=other or {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """Two different valid MP4s of about 1-2 MB (many 64 KiB blocks each)."""
    root = tmp_path_factory.mktemp("overlap")
    first = media.make_noisy(root / "a.mp4", seconds=1).read_bytes()
    second = media.make_progressive(root / "b.mp4", seconds=2, size="640x360", video_bitrate="4M").read_bytes()
    assert first != second
    return first, second


def uncommitted_blocks(blob_service: BlobServiceClient, job_id: str) -> int:
    try:
        _, uncommitted = staged_media(blob_service, job_id).get_block_list("uncommitted")
    except ResourceNotFoundError:
        return 0
    return len(uncommitted)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_job(
    server: GateServer, route: str, jid: str, callbacks: CallbackReceiver, azurite: Azurite, tuning: Any
) -> dict[str, Any]:
    env = worker_env(job_id=jid, url=server.url(route, "clip.mp4"), callbacks=callbacks, azurite=azurite, fmt="video")
    main(env, tuning=tuning)
    events = callbacks.accepted()
    assert events and events[-1]["state"] in ("succeeded", "failed")
    return events[-1]  # type: ignore[no-any-return]


def test_blocks_are_staged_while_the_file_downloads_and_the_blob_is_the_reported_bytes(
    clips: tuple[bytes, bytes],
    callbacks: CallbackReceiver,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    workspace: Path,
) -> None:
    data = clips[0]
    jid = uuid.uuid4().hex
    with gate_server({"clip.mp4": data}) as server:
        server.gate = lambda: uncommitted_blocks(blob_service, jid) > 0
        event = run_job(server, "gated", jid, callbacks, azurite, SMALL_BLOCKS)

    assert server.opened and all(server.opened), "no block was staged while the second half of the file was held back"
    assert event["state"] == "succeeded", event
    blob = staged_media(blob_service, jid)
    committed = blob.download_blob().readall()
    assert committed == data
    assert event["result"]["blob"]["sha256"] == sha256_of(committed)
    assert event["result"]["blob"]["sizeBytes"] == len(committed)


def test_a_download_that_fails_halfway_leaves_no_blob_and_no_committed_block_list(
    clips: tuple[bytes, bytes],
    callbacks: CallbackReceiver,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    workspace: Path,
) -> None:
    jid = uuid.uuid4().hex
    with gate_server({"clip.mp4": clips[0]}) as server:
        server.gate = lambda: uncommitted_blocks(blob_service, jid) > 0
        event = run_job(server, "broken", jid, callbacks, azurite, SMALL_BLOCKS)

    assert server.opened and all(server.opened), "the download failed before any block was staged"
    assert event["state"] == "failed"
    blob = staged_media(blob_service, jid)
    assert not blob.exists()
    try:  # the service keeps uncommitted blocks a while; the blob has no committed list
        committed, _ = blob.get_block_list("committed")
    except ResourceNotFoundError:
        committed = []
    assert committed == []


def test_bytes_rewritten_after_they_were_staged_are_never_committed(
    clips: tuple[bytes, bytes],
    callbacks: CallbackReceiver,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    workspace: Path,
) -> None:
    """The server drops the first response after half the file (once blocks of it are staged),
    then answers yt-dlp's range request with another file of the same size, whole: yt-dlp writes
    the file again from its start. The blob must be exactly that second file, the one ffprobe
    verified, though its size is the first's."""
    first = clips[0]
    at = len(first) // 4  # in the first half (staged already), inside the media data (moov is first)
    second = first[:at] + bytes(b ^ 0xFF for b in first[at : at + 4096]) + first[at + 4096 :]
    jid = uuid.uuid4().hex
    with gate_server({"clip.mp4": first}, other={"clip.mp4": second}) as server:
        server.gate = lambda: uncommitted_blocks(blob_service, jid) > 0
        event = run_job(server, "hostile", jid, callbacks, azurite, replace(SMALL_BLOCKS, download_retries=2))

    assert server.opened and all(server.opened)
    assert [r for r in server.requests if r[1]], "yt-dlp never asked for the rest with a Range"
    assert event["state"] == "succeeded", event
    committed = staged_media(blob_service, jid).download_blob().readall()
    assert committed == second
    assert event["result"]["blob"]["sha256"] == sha256_of(second)


# -- memory: a 1 GiB file staged while it grows -------------------------------------------------

GiB = 1024 * MiB


def grow_file(path: Path, size: int, chunk: bytes, stop: threading.Event) -> None:
    """Writes `size` bytes (a repeated `chunk`: generated, nothing held) as a download would."""
    with path.open("wb") as out:
        written = 0
        while written < size and not stop.is_set():
            piece = chunk[: size - written]
            out.write(piece)
            out.flush()
            written += len(piece)


def staged_while_growing_rss_kib(azurite: Azurite, tmp_path: Path, size: int) -> tuple[int, str, str]:
    """Peak RSS of the upload process staging a `size`-byte file as it is written, its staged
    sha256, and the file's sha256. The blocks are never committed (Azurite keeps blobs in memory)."""
    jid = uuid.uuid4().hex
    path = tmp_path / f"grow-{size}.part"
    path.touch()
    chunk = os.urandom(MiB)
    process = BlobProcess.start("spawn")
    stop = threading.Event()
    writer = threading.Thread(target=grow_file, args=(path, size, chunk, stop), daemon=True)
    try:
        sink = ProcessBlobSink(process, upload_target(azurite, jid, block_bytes=8 * MiB, concurrency=4))
        sink.begin_growing(path, size)
        writer.start()
        writer.join(timeout=600)
        assert not writer.is_alive()
        staged = sink.finish_growing(path, f"{jid}/media.mp4", lambda *_: None, lambda: None)
        expected = hashlib.sha256()
        with path.open("rb") as f:
            while block := f.read(MiB):
                expected.update(block)
        path.unlink()
    finally:
        stop.set()
        peak = process.close()
    assert peak is not None
    assert staged.size_bytes == size
    return peak, staged.sha256, expected.hexdigest()


def test_staging_a_1_gib_file_while_it_grows_keeps_memory_flat(azurite: Azurite, tmp_path: Path) -> None:
    small_peak, small_staged, small_file = staged_while_growing_rss_kib(azurite, tmp_path, 16 * MiB)
    big_peak, big_staged, big_file = staged_while_growing_rss_kib(azurite, tmp_path, GiB)
    assert small_staged == small_file and big_staged == big_file
    # The file is 1 GiB; the upload process holds at most `concurrency` 8 MiB blocks.
    assert big_peak - small_peak < 48 * 1024, (small_peak, big_peak)
    assert big_peak < 200 * 1024
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < GiB // KiB  # nor did this test hold it


def test_an_abandoned_growing_staging_stops_and_commits_nothing(
    azurite: Azurite, blob_service: BlobServiceClient, tmp_path: Path
) -> None:
    jid = uuid.uuid4().hex
    path = tmp_path / "media.mp4.part"
    path.write_bytes(os.urandom(200 * KiB))
    process = BlobProcess.start("spawn")
    try:
        sink = ProcessBlobSink(process, upload_target(azurite, jid))
        sink.begin_growing(path, 10 * MiB)
        deadline = time.monotonic() + GATE_SECONDS
        while uncommitted_blocks(blob_service, jid) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert uncommitted_blocks(blob_service, jid) > 0
        sink.abandon_growing(JobError(ErrorCode.CANCELLED, "the download failed"))
        # The process answers the next request with its own answer (no stale reply left behind).
        other = tmp_path / "other.bin"
        other.write_bytes(b"x" * 1000)
        assert sink.stage(other, f"{jid}/other.bin", lambda *_: None, lambda: None).size_bytes == 1000
    finally:
        process.close()
    assert not staged_media(blob_service, jid).exists()


def test_a_download_renamed_before_the_staging_opened_it_is_staged_from_its_final_file(
    azurite: Azurite, blob_service: BlobServiceClient, tmp_path: Path
) -> None:
    """A quick download: yt-dlp renamed `media.mp4.part` before the upload side looked at it."""
    jid = uuid.uuid4().hex
    final = tmp_path / "media.mp4"
    final.write_bytes(os.urandom(300 * KiB))
    process = BlobProcess.start("spawn")
    try:
        sink = ProcessBlobSink(process, upload_target(azurite, jid))
        sink.begin_growing(tmp_path / "media.mp4.part", 10 * MiB)
        staged = sink.finish_growing(final, f"{jid}/media.mp4", lambda *_: None, lambda: None)
    finally:
        process.close()
    assert (staged.size_bytes, staged.sha256) == (300 * KiB, sha256_of(final.read_bytes()))
