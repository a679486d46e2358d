"""The upload in its own process: the Azure SDK import, staging (with sha256) and commit run in
a child started when the worker starts, so they use the second core instead of sharing the
job process's GIL with yt-dlp (its import, the download's hooks and writes).

`python -m worker` forks the child first thing, while the process has one thread and nothing
heavy imported (tests, which have threads, use `spawn`). The child imports the SDK when it is
configured (as the download starts) and only does what the job process asks over a pipe (pickled tuples):

    job process                          upload process
    ("configure", BlobTarget)        ->  ("ready",) | ("failed", JobError)
    ("stage", path, name)            ->  ("progress", sent, total)* then ("staged", StagedBlob) | ("failed", JobError)
    ("grow", path, max_bytes)        ->  nothing yet: stages the file while the download writes it
    ("grown", final path, name)      ->  ("progress", sent, total)* then ("staged", StagedBlob) | ("failed", JobError)
    ("abort", JobError)              ->  (ends a stage or grow in progress: it answers ("failed", ...); else ignored)
    ("commit", StagedBlob, props)    ->  ("committed", BlobResult) | ("failed", JobError)
    ("record", name, bytes)          ->  ("recorded",) | ("failed", JobError)   (the result record)
    ("exit",)                        ->  ("exited", peak RSS KiB), then the process exits

It is told nothing but a local file to read, a blob name and properties: it connects only to
the blob endpoint of its SAS URLs, is not under the download's address guard, and gets the SAS
URLs from the pipe, never from argv. It ignores
SIGINT/SIGTERM (the job process decides, and aborts it) and dies with the job process: pipe EOF,
and `PR_SET_PDEATHSIG` for a parent killed outright. Blocks staged but never committed are
discarded by the service, so an abort or a crash never leaves a blob behind.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from videojob.contract.wire import BlobResult, ErrorCode, JobError

from .blob_sink import AzureBlobSink, BlobProperties, StagedBlob, UploadProgress, UploadTarget
from .failures import JobFailed, clean_message
from .logs import configure_logging

log = logging.getLogger("worker.blob_process")

POLL_SECONDS = 0.1
"""How often a waiting job process looks at its cancel flag."""
ABORT_WAIT_SECONDS = 15.0
"""After an abort, how long the upload process may take to stop (a block in flight) before it is killed."""
EXIT_WAIT_SECONDS = 5.0
PR_SET_PDEATHSIG = 1

Message = tuple[Any, ...]


BlobTarget = UploadTarget
"""What the upload process is configured with (its SAS URLs travel only through the pipe)."""


def _died() -> JobFailed:
    return JobFailed(JobError(ErrorCode.UPLOAD_FAILED, "the upload process ended unexpectedly", retryable=True))


class BlobProcess:
    """The job process's handle on the upload process: start, ask, close."""

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection):
        self._process = process
        self._conn = conn
        self.peak_rss_kib: int | None = None

    @classmethod
    def start(cls, method: str = "spawn") -> BlobProcess:
        """`fork` only while the caller has no other thread (the start of `python -m worker`)."""
        context = multiprocessing.get_context(method)
        ours, theirs = context.Pipe()
        inherited = ours if method == "fork" else None  # a forked child must close our end, or never sees EOF
        process = context.Process(target=serve, args=(theirs, os.getpid(), inherited), name="upload", daemon=True)
        process.start()
        theirs.close()
        return cls(process, ours)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def send(self, message: Message) -> None:
        try:
            self._conn.send(message)
        except (OSError, ValueError):
            raise _died() from None

    def receive(self, timeout: float | None = None) -> Message | None:
        """The next reply; None when none came within `timeout`. Raises when the process is gone."""
        try:
            if timeout is not None and not self._conn.poll(timeout):
                return None
            return self._conn.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError, ValueError):
            raise _died() from None

    def request(self, message: Message, checkpoint: Callable[[], None] = lambda: None) -> Message:
        """Send and wait for the answer, calling `checkpoint` meanwhile (it raises to cancel)."""
        self.send(message)
        while True:
            checkpoint()
            reply = self.receive(POLL_SECONDS)
            if reply is not None:
                return reply

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(EXIT_WAIT_SECONDS)

    def close(self) -> int | None:
        """Stop the process and reap it; its peak RSS (KiB) when it could say."""
        if self._process.is_alive():
            try:
                self.send(("exit",))
                deadline_polls = int(EXIT_WAIT_SECONDS / POLL_SECONDS)
                for _ in range(deadline_polls):
                    reply = self.receive(POLL_SECONDS)
                    if reply is not None and reply[0] == "exited":
                        self.peak_rss_kib = int(reply[1])
                        break
            except JobFailed:
                pass
            self._process.join(EXIT_WAIT_SECONDS)
        self.kill()
        self._conn.close()
        return self.peak_rss_kib


def own_peak_rss_kib() -> int:
    """This process's peak RSS in KiB: the kernel's `VmHWM`, which starts afresh at exec.
    `ru_maxrss` does not: a spawned child would report its parent's size at the fork before exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reply_or_raise(reply: Message, expected: str) -> Message:
    if reply[0] == expected:
        return reply
    if reply[0] == "failed":
        raise JobFailed(reply[1])
    raise JobFailed(JobError(ErrorCode.UPLOAD_FAILED, f"the upload process answered {reply[0]!r}, not {expected!r}"))


class ProcessBlobSink:
    """A `BlobSink` whose SDK work happens in the upload process."""

    def __init__(self, process: BlobProcess, target: BlobTarget):
        self._process = process
        self.endpoint_url = ""
        # Waits (without the GIL) for the child's SDK import, which started with the worker.
        _reply_or_raise(process.request(("configure", target)), "ready")

    def stage(self, path: Path, name: str, on_progress: UploadProgress, checkpoint: Callable[[], None]) -> StagedBlob:
        self._process.send(("stage", str(path), name))
        return self._await_staged(on_progress, checkpoint)

    def begin_growing(self, path: Path, max_bytes: int) -> None:
        # No reply until "grown": the job process reads nothing from the pipe while it downloads.
        self._process.send(("grow", str(path), max_bytes))

    def finish_growing(
        self, final: Path, name: str, on_progress: UploadProgress, checkpoint: Callable[[], None]
    ) -> StagedBlob:
        self._process.send(("grown", str(final), name))
        return self._await_staged(on_progress, checkpoint)

    def abandon_growing(self, reason: JobError) -> None:
        self._abort(reason)

    def _await_staged(self, on_progress: UploadProgress, checkpoint: Callable[[], None]) -> StagedBlob:
        while True:
            try:
                checkpoint()
            except JobFailed as e:
                self._abort(e.error)
                raise
            except BaseException:
                self._abort(JobError(ErrorCode.CANCELLED, "the upload was abandoned"))
                raise
            reply = self._process.receive(POLL_SECONDS)
            if reply is None:
                continue
            if reply[0] == "progress":
                on_progress(reply[1], reply[2])
                continue
            return _reply_or_raise(reply, "staged")[1]  # type: ignore[no-any-return]

    def commit(self, staged: StagedBlob, properties: BlobProperties) -> BlobResult:
        return _reply_or_raise(self._process.request(("commit", staged, properties)), "committed")[1]  # type: ignore[no-any-return]

    def put_record(self, name: str, data: bytes) -> None:
        _reply_or_raise(self._process.request(("record", name, data)), "recorded")

    def _abort(self, reason: JobError) -> None:
        """Stop the stage in progress and wait until the child no longer reads the file."""
        try:
            self._process.send(("abort", reason))
            for _ in range(int(ABORT_WAIT_SECONDS / POLL_SECONDS)):
                reply = self._process.receive(POLL_SECONDS)
                if reply is not None and reply[0] in ("staged", "failed"):
                    return
        except JobFailed:
            return
        log.warning("the upload process did not stop after the abort: killing it")
        self._process.kill()


# -- the upload process ------------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL when the job process dies (Linux; the pipe's EOF covers the rest)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # it died before the request took effect
        os._exit(0)


def serve(conn: Connection, parent_pid: int, inherited: Connection | None = None) -> None:
    """The upload process's main loop."""
    if inherited is not None:
        inherited.close()
    _die_with_parent(parent_pid)
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)
    configure_logging()
    # The Azure SDK is imported when the target arrives ("configure", sent once the job has reported
    # `started`): then it overlaps the download. Imported here at once, on a 1-vCPU container it
    # would share the CPU with the job process's imports and delay the `started` report.

    sink: AzureBlobSink | None = None

    def checkpoint() -> None:
        while conn.poll():
            message = conn.recv()
            if message[0] == "abort":
                raise JobFailed(message[1])
            if message[0] == "exit":  # the job process is leaving: stop now
                os._exit(0)

    def handle(message: Message) -> Message | None:
        nonlocal sink
        kind = message[0]
        if kind == "configure":
            sink = _make_sink(message[1])
            return ("ready",)
        if kind in ("abort", "grown"):
            return None  # late: the stage it meant had already ended (and answered)
        if sink is None:
            raise JobFailed(JobError(ErrorCode.INTERNAL, f"the upload process got {kind!r} before its target"))
        if kind == "stage":
            path, name = Path(message[1]), message[2]

            def progress(done: int, total: int) -> None:
                conn.send(("progress", done, total))

            return ("staged", sink.stage(path, name, progress, checkpoint))
        if kind == "grow":

            def wait_end(timeout: float) -> tuple[Path, str] | None:
                if not conn.poll(timeout):
                    return None
                message = conn.recv()
                if message[0] == "grown":
                    return Path(message[1]), message[2]
                if message[0] == "abort":
                    raise JobFailed(message[1])
                if message[0] == "exit":
                    os._exit(0)
                raise JobFailed(JobError(ErrorCode.INTERNAL, f"the upload process got {message[0]!r} while staging"))

            def growing_progress(done: int, total: int) -> None:
                conn.send(("progress", done, total))

            return ("staged", sink.stage_growing(Path(message[1]), message[2], wait_end, growing_progress, checkpoint))
        if kind == "commit":
            return ("committed", sink.commit(message[1], message[2]))
        if kind == "record":
            sink.put_record(message[1], message[2])
            return ("recorded",)
        raise JobFailed(JobError(ErrorCode.INTERNAL, f"the upload process got an unknown request {kind!r}"))

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "exit":
            reply: Message | None = ("exited", own_peak_rss_kib())
        else:
            try:
                reply = handle(message)
            except JobFailed as e:
                reply = ("failed", e.error)
            except Exception as e:  # noqa: BLE001 - every failure here is the upload's
                log.exception("unexpected failure in the upload process")
                brief = clean_message(f"{type(e).__name__}: {e}")[:300]
                reply = ("failed", JobError(ErrorCode.UPLOAD_FAILED, f"upload failed: {brief}", retryable=True))
        if reply is not None:
            try:
                conn.send(reply)
            except OSError:
                return  # the job process is gone
        if reply is not None and reply[0] == "exited":
            return


def _make_sink(target: UploadTarget) -> AzureBlobSink:
    return AzureBlobSink.from_target(target)
