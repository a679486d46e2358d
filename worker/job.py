"""The job: check the URL, download, verify, upload, report. One function, `run_job`.

Every path ends in exactly one terminal event (`succeeded` or `failed` with a classified
error) and the work directory, on the container's local disk, removed.
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from yt_dlp.version import __version__ as YTDLP_VERSION

from videojob.contract.result_record import ResultRecord
from videojob.contract.staging import result_record_name
from videojob.contract.url_policy import UrlRejected, check_url, is_forbidden_address
from videojob.contract.wire import ErrorCode, EventState, JobError, JobResult, JobStatus, MediaInfo, Progress

from . import address_guard, logs
from .blob_sink import BlobProperties, BlobSink, StagedBlob
from .cancellation import CancelToken
from .config import WorkerConfig
from .downloader import DownloadedMedia, Downloader, MediaRequest
from .early_upload import EarlyUpload
from .errors import OUT_OF_MEMORY_MESSAGE, DownloadAborted, JobFailed, clean_message
from .naming import blob_name, content_disposition, content_type, header_safe
from .progress import progress_from_hook
from .reporter import Reporter
from .site_access import SiteAccess, private_cookie_copy, proxy_secrets
from .verify import ProbeResult, verify

log = logging.getLogger("worker.job")
# One thread builds the blob client while the download runs; the other stages the upload while
# ffprobe verifies the file.
_background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="background")

DOWNLOADING, PROCESSING, UPLOADING = "downloading", "processing", "uploading"
RECORD_SINK_WAIT_SECONDS = 10.0
"""A failed job records its outcome only if the upload side is ready within this."""
RECORD_WRITE_SECONDS = 30.0
"""How long the result record's write may hold back the terminal report (a stuck upload process
or storage retrying): far below a heartbeat (`HEARTBEAT_TIMEOUT_SECONDS`, 600 s by default)."""


@dataclass(frozen=True)
class Outcome:
    result: JobResult | None = None
    error: JobError | None = None
    reported: bool = False

    @property
    def succeeded(self) -> bool:
        return self.result is not None


@dataclass
class WorkArea:
    """Where the job writes; the runner removes it too when it has to give up on the job."""

    path: Path | None = None

    def create(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="videojob-"))
        return self.path

    def remove(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


def media_request(config: WorkerConfig, access: SiteAccess | None = None) -> MediaRequest:
    e = config.env
    return MediaRequest(
        url=e.url,
        format=e.format,
        audio_format=e.audio_format,
        max_height=e.max_height,
        max_bytes=e.max_bytes,
        access=access or SiteAccess(proxy_url=e.proxy_url, extractor_args=e.extractor_args),
    )


def guard_policy(config: WorkerConfig, *endpoints: str | None) -> address_guard.GuardPolicy:
    """The address guard for a job: the operator's endpoints (`endpoints`, the proxy) trusted."""
    env = config.env
    pairs = [address_guard.endpoint_of(url) for url in endpoints if url]
    if env.proxy_url:
        pairs.append(address_guard.endpoint_of(env.proxy_url))
    return address_guard.GuardPolicy(
        allow_private_addresses=env.allow_private_addresses,
        trusted=address_guard.resolve_trusted(ep for ep in pairs if ep),
    )


def hidden_error(error: JobError, secrets: list[str]) -> JobError:
    """The error as reported: no cookie value or proxy credential in its message."""
    message = logs.redact(error.message, secrets)
    return error if message == error.message else replace(error, message=message)


def resolve_addresses(host: str) -> list[str]:
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)})
    except OSError:
        return []


def check_job_url(config: WorkerConfig, resolve: Callable[[str], list[str]] = resolve_addresses) -> None:
    """The starter's URL policy again, plus where the host resolves now (the guard re-checks
    every connection; this gives a clear error before yt-dlp starts)."""
    try:
        checked = check_url(config.env.url, config.url_policy)
    except UrlRejected as e:
        raise JobFailed(JobError(e.code, e.message)) from None
    if config.env.allow_private_addresses or checked.address is not None:
        return
    forbidden = [a for a in resolve(checked.host) if is_forbidden_address(a.split("%", 1)[0])]
    if forbidden:
        raise JobFailed(
            JobError(ErrorCode.PRIVATE_ADDRESS, f"{checked.host} resolves to a private or reserved address")
        )


def media_info(media: DownloadedMedia, probe: ProbeResult) -> MediaInfo:
    video, audio = probe.video, probe.audio
    return MediaInfo(
        title=media.title,
        duration_seconds=round(probe.duration_seconds or media.duration_seconds or 0, 3) or None,
        width=video.width if video else None,
        height=video.height if video else None,
        video_codec=video.codec if video else None,
        audio_codec=audio.codec if audio else None,
        extractor=media.extractor,
        ytdlp_version=YTDLP_VERSION,
    )


def blob_properties(config: WorkerConfig, media: DownloadedMedia, info: MediaInfo, name: str) -> BlobProperties:
    metadata = {"jobid": header_safe(config.env.job_id), "sourceurl": header_safe(config.env.url)}
    if media.title:
        metadata["title"] = header_safe(media.title)
    if info.duration_seconds is not None:
        metadata["durationseconds"] = f"{info.duration_seconds:g}"
    return BlobProperties(
        content_type=content_type(media.ext),
        metadata=metadata,
        content_disposition=content_disposition(name.rsplit("/", 1)[-1]),
    )


def record_outcome(config: WorkerConfig, sink: BlobSink, event: JobStatus) -> bool:
    """Store the terminal event as this attempt's result record before reporting it, so the
    orchestrator learns the outcome even if the report never arrives. Best effort, and bounded:
    the write runs on its own thread for at most `RECORD_WRITE_SECONDS`; whatever it raises (a
    name the naming refuses, a dead upload process) is logged and changes nothing, because the
    report comes after it."""
    env = config.env
    done = threading.Event()
    failure: list[str] = []

    def write() -> None:
        try:
            name = result_record_name(env.job_id, env.attempt, env.run)
            sink.put_record(name, ResultRecord(event, env.run).to_bytes(env.callback_token))
        except BaseException as e:  # noqa: BLE001 - the report still goes out
            failure.append(str(getattr(getattr(e, "error", None), "code", None) or type(e).__name__))
        finally:
            done.set()

    threading.Thread(target=write, name="result-record", daemon=True).start()
    if not done.wait(RECORD_WRITE_SECONDS):
        _log_quietly(logging.WARNING, "result record not written within %.0f s", RECORD_WRITE_SECONDS)
        return False
    if failure:
        _log_quietly(logging.WARNING, "result record not written: %s", failure[0])
        return False
    _log_quietly(logging.INFO, "outcome %s recorded", event.state)
    return True


def record_outcome_when_ready(
    config: WorkerConfig, sink: Future[BlobSink] | None, sink_factory: Callable[[], BlobSink], event: JobStatus
) -> bool:
    """`record_outcome` through the upload side `sink` (asked for now when None), if it is ready
    within `RECORD_SINK_WAIT_SECONDS`; otherwise the report alone tells."""
    try:
        if sink is None:
            sink = _background.submit(sink_factory)
        ready = sink.result(timeout=RECORD_SINK_WAIT_SECONDS)
    except BaseException as e:  # noqa: BLE001 - no upload side: the report alone tells
        _log_quietly(logging.WARNING, "result record not written: no upload side (%s)", type(e).__name__)
        return False
    return record_outcome(config, ready, event)


def record_then_report(
    reporter: Reporter, record: Callable[[JobStatus], object], state: str, **fields: Any
) -> bool:
    """The job's last step: the result record (best effort), then the terminal report, which
    nothing before it may prevent (issue 19: a record that could not be named once killed the job
    thread before its report). True when the report was delivered."""
    try:
        record(reporter.outcome_event(state, **fields))
    except BaseException:  # noqa: BLE001 - the record is a second channel; the report is the first
        _log_quietly(logging.WARNING, "result record not written (unexpected failure)")
    if state == EventState.SUCCEEDED:
        return reporter.succeeded(fields["result"])
    return reporter.failed(fields["error"])


def _log_quietly(level: int, message: str, *args: object) -> None:
    """A log call on the way to the final report: it may not raise (a broken handler, a
    formatting bug) and hold the report back."""
    try:
        log.log(level, message, *args)
    except Exception:  # noqa: BLE001, S110 - logging is not worth a missing report
        pass


class _Steps:
    """The job's callbacks into reporting and cancellation, shared by download and upload."""

    def __init__(self, reporter: Reporter, cancel: CancelToken, clock: Callable[[], float]):
        self.reporter = reporter
        self.cancel = cancel
        self.clock = clock
        self.verified = threading.Event()
        self.abandoned = threading.Event()
        self.early_upload: EarlyUpload | None = None

    def staging_checkpoint(self) -> None:
        if self.abandoned.is_set():
            raise JobFailed(JobError(ErrorCode.INTERNAL, "the upload was abandoned"))
        self.checkpoint()

    def stop_reason(self) -> JobError | None:
        if self.cancel.cancelled:
            return self.cancel.reason
        status = self.reporter.rejected_status
        if status is not None:
            return JobError(ErrorCode.CANCELLED, f"the callback answered {status}: the job is no longer wanted")
        return None

    def checkpoint(self) -> None:
        reason = self.stop_reason()
        if reason is not None:
            raise JobFailed(reason)

    def on_download_progress(self, status: Mapping[str, Any]) -> None:
        reason = self.stop_reason()
        if reason is not None:
            raise DownloadAborted(reason)
        if self.early_upload is not None:
            self.early_upload.on_progress(status)
        # Called for every block read: the throttle is asked first, so a dropped event costs no work.
        if status.get("status") == "downloading" and self.reporter.progress_due(DOWNLOADING):
            self.reporter.progress(DOWNLOADING, progress_from_hook(status))

    def on_phase(self, phase: str) -> None:
        self.checkpoint()
        self.reporter.progress(phase)

    def on_upload_progress(self, current: int, total: int) -> None:
        if not self.verified.is_set():
            return  # staging while ffprobe still runs: the job is "processing" until it is done
        percent = round(100.0 * current / total, 1) if total else None
        self.reporter.progress(UPLOADING, Progress(percent=percent, downloaded_bytes=current, total_bytes=total))


def run_job(
    config: WorkerConfig,
    *,
    downloader: Downloader,
    sink_factory: Callable[[], BlobSink],
    reporter: Reporter,
    cancel: CancelToken,
    work: WorkArea | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    work = work or WorkArea()
    steps = _Steps(reporter, cancel, clock)
    env = config.env
    guard_state: address_guard.GuardState | None = None
    staging: Future[StagedBlob] | None = None
    sink_future: Future[BlobSink] | None = None
    secrets = proxy_secrets(env.proxy_url)
    logs.hide(secrets)
    try:
        reporter.started(DOWNLOADING)
        check_job_url(config)
        # The blob client (and its SDK import) is built while the download runs.
        sink_future = _background.submit(sink_factory)
        workdir = work.create()
        # A single-file download is staged while it is written (`early_upload`); its blocks are
        # committed only after the file on disk proved to be exactly them and passed ffprobe.
        steps.early_upload = EarlyUpload(sink_future, env.format, workdir, env.max_bytes)
        steps.checkpoint()
        policy = guard_policy(config, env.callback_url, config.blob_endpoint)
        # yt-dlp works on a private copy of the operator's cookies, gone before the upload starts.
        with private_cookie_copy(env.cookies_file, workdir) as (cookie_file, cookie_values):
            secrets += cookie_values
            logs.hide(cookie_values)
            access = SiteAccess(cookie_file, env.proxy_url, env.extractor_args)
            # Armed for the download only: the upload's token request goes to the managed identity
            # endpoint, which is link-local on purpose.
            with address_guard.armed(policy) as guard_state:
                media = downloader.download(
                    media_request(config, access), workdir, steps.on_download_progress, steps.on_phase
                )
        log.info("downloaded %s (%d bytes)", media.path.name, media.path.stat().st_size)

        steps.on_phase(PROCESSING)
        size = media.path.stat().st_size
        if size > env.max_bytes:
            raise JobFailed(JobError(ErrorCode.TOO_LARGE, f"the media is {size} bytes, over the {env.max_bytes} limit"))
        # The upload starts now and ffprobe runs meanwhile; the blob only appears on commit,
        # after the file passed verification.
        sink = sink_future.result()
        name = blob_name(env.job_id, media.title, media.ext)
        early = steps.early_upload.started
        stage = early.finish_growing if early is not None else sink.stage
        staging = _background.submit(stage, media.path, name, steps.on_upload_progress, steps.staging_checkpoint)
        info = media_info(media, verify(media.path, env.format))

        steps.verified.set()
        steps.on_phase(UPLOADING)
        staged: StagedBlob = staging.result()
        steps.checkpoint()
        if staged.size_bytes != size or media.path.stat().st_size != size:
            # ffprobe read the file alone (`media_guard`); the upload must hold those very bytes.
            raise JobFailed(JobError(ErrorCode.INTERNAL, "the file changed between verification and upload"))
        blob = sink.commit(staged, blob_properties(config, media, info, name))
        steps.checkpoint()
        result = JobResult(blob=blob, media=info)
        log.info("uploaded %s (%d bytes, sha256 %s)", blob.name, blob.size_bytes, blob.sha256)
        reported = record_then_report(
            reporter, lambda event: record_outcome(config, sink, event), EventState.SUCCEEDED, result=result
        )
        return Outcome(result=result, reported=reported)
    except (JobFailed, DownloadAborted) as e:
        error = e.error
    except MemoryError:  # under the job process's limit (`memory_limit`): the container is too small
        error = JobError(ErrorCode.OUT_OF_MEMORY, OUT_OF_MEMORY_MESSAGE, retryable=False)
    except Exception as e:  # the job must always report, whatever broke
        log.exception("unexpected failure")
        error = JobError(ErrorCode.INTERNAL, clean_message(f"{type(e).__name__}: {e}") or "internal error")
    finally:
        # A failure while the upload was being staged (verification, cancellation): stop the
        # staging at its next block before the file goes. Its blocks are never committed.
        steps.abandoned.set()
        if staging is not None:
            wait([staging])
        elif steps.early_upload is not None and steps.early_upload.started is not None:
            steps.early_upload.started.abandon_growing(JobError(ErrorCode.CANCELLED, "the download failed"))
        work.remove()
    try:
        if guard_state is not None and guard_state.refusals and error.code in (
            ErrorCode.NETWORK,
            ErrorCode.HTTP_ERROR,
            ErrorCode.INTERNAL,
            ErrorCode.UNAVAILABLE,
        ):
            ip, port = guard_state.refusals[0]
            error = JobError(
                ErrorCode.PRIVATE_ADDRESS, f"a connection to a private or reserved address was refused ({ip})"
            )
        error = hidden_error(error, secrets)
    except Exception:  # noqa: BLE001 - the error as it stands is still worth reporting
        error = JobError(ErrorCode.INTERNAL, "internal error")
    _log_quietly(logging.WARNING, "job failed: %s: %s", error.code, error.message)
    reported = record_then_report(
        reporter,
        lambda event: record_outcome_when_ready(config, sink_future, sink_factory, event),
        EventState.FAILED,
        error=error,
    )
    return Outcome(error=error, reported=reported)
