"""The process shell: env in, exit code out, signals and the job's own deadline.

`main()` runs the job in a thread so the main thread stays free for SIGTERM (ACI stop or
delete, or the local backend's terminate). SIGTERM sets the cancel flag: the job stops at its
next checkpoint and reports `failed`/`cancelled` itself. If it has not stopped within the grace
period (a stalled socket, a long ffmpeg merge), the runner reports for it, removes the work
directory, kills child processes and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from videojob.contract.wire import ErrorCode, JobError

from .cancellation import CancelToken
from .config import Tuning, WorkerConfig, WorkerEnvError, load_config
from .downloader import Downloader, DownloadTuning, YtDlpDownloader
from .job import YTDLP_VERSION, Outcome, WorkArea, run_job
from .logs import configure_logging
from .memory_limit import MemoryWatchdog, MiB, cgroup_memory_bytes, limit_job_process
from .reporter import HttpCallbackTransport, Reporter

if TYPE_CHECKING:
    from .blob_process import BlobProcess
    from .blob_sink import BlobSink, UploadTarget

log = logging.getLogger("worker")

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def upload_target(config: WorkerConfig) -> UploadTarget:
    """The upload's SAS URLs and tuning, from the container env."""
    from .blob_sink import UploadTarget

    e, t = config.env, config.tuning
    return UploadTarget(
        output_container=e.output_container,
        record_url=e.record_upload_url,
        media_url=e.media_upload_url,
        block_bytes=t.upload_block_bytes,
        concurrency=t.upload_concurrency,
    )


def default_sink_factory(config: WorkerConfig) -> Callable[[], BlobSink]:
    def make() -> BlobSink:
        from .blob_sink import AzureBlobSink  # the SDK import overlaps the download (see job)

        return AzureBlobSink.from_target(upload_target(config))

    return make


def process_sink_factory(config: WorkerConfig, process: BlobProcess) -> Callable[[], BlobSink]:
    """The upload in `process` (see `blob_process`); the target reaches it through its pipe."""

    def make() -> BlobSink:
        from .blob_process import ProcessBlobSink

        return ProcessBlobSink(process, upload_target(config))

    return make


@contextlib.contextmanager
def _signals_cancel(cancel: CancelToken) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        log.warning("received %s: cancelling the job", name)
        cancel.cancel(JobError(ErrorCode.CANCELLED, f"the worker was stopped ({name})"))

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _kill_children() -> None:
    """Best effort (Linux): ffmpeg/ffprobe started by this process must not outlive it."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == me:
                os.kill(int(stat.parent.name), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            continue


def main(
    environ: Mapping[str, str] | None = None,
    *,
    tuning: Tuning | None = None,
    cancel: CancelToken | None = None,
    downloader: Downloader | None = None,
    sink_factory: Callable[[], BlobSink] | None = None,
    handle_signals: bool | None = None,
    blob_process: BlobProcess | None = None,
) -> int:
    """Run one job. In-process callers (tests) pass `environ` and, to cancel, a `CancelToken`.
    With `blob_process` (`python -m worker`), the upload runs in that process; the caller closes it."""
    configure_logging()
    in_process = environ is not None
    try:
        config = load_config(os.environ if environ is None else environ, tuning)
    except WorkerEnvError as e:
        log.error("cannot start: %s", e)  # names the variable, never its value
        return EXIT_CONFIG
    env, t = config.env, config.tuning
    cancel = cancel or CancelToken()
    watchdog: MemoryWatchdog | None = None
    if not in_process:  # a test's process is not the worker's to limit
        limit_job_process(env.container_memory_mb)
        container_mb = env.container_memory_mb or (cgroup_memory_bytes() or 0) // MiB
        if container_mb:
            watchdog = MemoryWatchdog(
                container_mb, cancel.cancel, spared=lambda: (blob_process.pid if blob_process else None,)
            ).start()
    reporter = Reporter(
        env.job_id,
        HttpCallbackTransport(env.callback_url, env.callback_token, t.callback_timeout_seconds),
        progress_interval_seconds=env.progress_interval_seconds,
        max_attempts=t.callback_max_attempts,
        backoff_seconds=t.callback_backoff_seconds,
        backoff_max_seconds=t.callback_backoff_max_seconds,
        attempt=env.attempt,
        final_give_up_seconds=t.callback_final_give_up_seconds,
    )
    work = WorkArea()
    outcome: list[Outcome] = []
    log.info(
        "job %s: %s (%s) -> container %s; yt-dlp %s%s%s%s",
        env.job_id, env.url, env.format, env.output_container, YTDLP_VERSION,
        ", cookies" if env.cookies_file else "", ", proxy" if env.proxy_url else "",
        f", extractor args {' '.join(env.extractor_args)}" if env.extractor_args else "",
    )  # fmt: skip

    sinks = sink_factory or (
        process_sink_factory(config, blob_process) if blob_process else default_sink_factory(config)
    )

    def job() -> None:
        try:
            outcome.append(run_mode())
        except BaseException:  # noqa: BLE001 - the runner reports for a job that died (below)
            with contextlib.suppress(Exception):
                log.exception("the job thread died")

    def run_mode() -> Outcome:
        if env.mode == "list":  # a playlist's entries only (see `listing`)
            from .listing import YtDlpLister, run_listing

            return run_listing(
                config, lister=YtDlpLister(DownloadTuning.of(t)), reporter=reporter, cancel=cancel, sink_factory=sinks
            )
        return run_job(
            config,
            downloader=downloader or YtDlpDownloader(DownloadTuning.of(t)),
            sink_factory=sinks,
            reporter=reporter,
            cancel=cancel,
            work=work,
        )

    deadline = threading.Timer(
        env.timeout_seconds,
        cancel.cancel,
        args=(JobError(ErrorCode.DEADLINE_EXCEEDED, f"the job ran longer than {env.timeout_seconds}s"),),
    )
    deadline.daemon = True
    deadline.start()
    thread = threading.Thread(target=job, name="job", daemon=True)
    use_signals = (not in_process) if handle_signals is None else handle_signals
    use_signals = use_signals and threading.current_thread() is threading.main_thread()
    try:
        with _signals_cancel(cancel) if use_signals else contextlib.nullcontext():
            thread.start()
            cancelled_at: float | None = None
            while thread.is_alive():
                thread.join(0.2)
                if cancel.cancelled and cancelled_at is None:
                    cancelled_at = time.monotonic()
                if cancelled_at is not None and time.monotonic() - cancelled_at > t.cancel_grace_seconds:
                    return _give_up(reporter, cancel, work, hard_exit=not in_process)
    finally:
        deadline.cancel()
        if watchdog is not None:
            watchdog.stop()
    if not outcome:
        return _report_for_a_dead_job(reporter, work)
    result = outcome[0]
    with contextlib.suppress(Exception):
        log.info("job %s %s", env.job_id, "succeeded" if result.succeeded else f"failed ({result.error.code})")  # type: ignore[union-attr]
    return EXIT_SUCCEEDED if result.succeeded else EXIT_FAILED


def _report_for_a_dead_job(reporter: Reporter, work: WorkArea) -> int:
    """The job thread ended without an outcome (an exception nothing in the job caught): the
    runner sends the terminal report itself, unless the job queued one before it died. The exit
    code says failed either way, so the container ends and the orchestration learns it from the
    group's state if even this report cannot go out."""
    try:
        if not reporter.terminal_made:
            reporter.failed(JobError(ErrorCode.INTERNAL, "the job ended without an outcome"))
        else:
            reporter.wait_delivered()
    except Exception:  # noqa: BLE001, S110 - the exit code below still tells
        pass
    work.remove()
    return EXIT_FAILED


def _give_up(reporter: Reporter, cancel: CancelToken, work: WorkArea, *, hard_exit: bool) -> int:
    log.warning("the job did not stop within the grace period: reporting and exiting")
    if hard_exit:
        _kill_children()
    reporter.failed(cancel.reason, timeout=10)
    work.remove()
    if hard_exit:
        logging.shutdown()
        os._exit(EXIT_FAILED)  # yt-dlp's fragment threads may never return: do not wait for them
    return EXIT_FAILED
