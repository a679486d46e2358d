"""The yt-dlp edge: one call, `download()`, behind the small `Downloader` interface.

Decisions made here:
- yt-dlp's Python API, never a shell string; format `bv*+ba/b` merged to mp4 (height-capped
  when asked), or best audio extracted to m4a/mp3.
- yt-dlp's public embedding API: `YoutubeDL(params)`, its extractors chosen by yt-dlp itself.
  The two exceptions, each documented where it is made: the ffmpeg downloader is refused
  (`refuse_ffmpeg_downloads`) and ffmpeg/ffprobe inputs are restricted (`media_guard`).
- Native downloaders only (HTTP, HLS, DASH fragments, several fragments at once), so every
  connection is made by this process (the address guard sees it) and every byte goes through
  a progress hook (the byte cap sees it). When yt-dlp would hand a stream to ffmpeg as a
  downloader, the download is refused instead.
- The byte cap is checked on every hook call, across all files of the job, against the bytes
  actually received (a missing or lying Content-Length changes nothing); an announced size
  over the cap stops the job before the transfer.
- Pages, manifests and media share one traffic budget (`traffic`): bytes received at the
  socket, bytes read into memory, segments per manifest. Once the byte cap or the budget is
  hit, every socket read of the job fails, so concurrent fragment threads stop within one read.
- ffmpeg and ffprobe, run by yt-dlp's postprocessors, read downloaded files only as the media
  containers we expect (`media_guard`).
- No playlists; live streams refused; bounded retries and a socket timeout.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yt_dlp
from yt_dlp.downloader.external import FFmpegFD
from yt_dlp.postprocessor.common import PostProcessor

from videojob.contract.container_env import DEFAULT_AUDIO_FORMAT, DEFAULT_MAX_BYTES
from videojob.contract.wire import ErrorCode, JobError

from . import traffic
from .config import Tuning
from .errors import DownloadAborted, JobFailed, classify
from .media_guard import restrict_ytdlp_ffmpeg
from .progress import ByteBudget
from .site_access import SiteAccess
from .traffic import TrafficBudget, bound_response, limits_for

log = logging.getLogger("worker.download")

ProgressCallback = Callable[[Mapping[str, Any]], None]
"""Called with each yt-dlp progress-hook dict (after the byte cap check); may raise `DownloadAborted`."""
PhaseCallback = Callable[[str], None]


@dataclass(frozen=True)
class MediaRequest:
    url: str
    format: str  # "video" | "audio"
    audio_format: str = DEFAULT_AUDIO_FORMAT
    max_height: int | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    access: SiteAccess = SiteAccess()
    """The operator's cookies, proxy and extractor arguments (`site_access`)."""


@dataclass(frozen=True)
class DownloadTuning:
    """The download's share of `config.Tuning` (which owns the defaults and says what each knob is)."""

    concurrent_fragments: int = Tuning.concurrent_fragments
    socket_timeout_seconds: float = Tuning.socket_timeout_seconds
    retries: int = Tuning.download_retries
    in_memory_bytes: int = Tuning.in_memory_bytes
    max_fragments: int = Tuning.max_fragments

    @classmethod
    def of(cls, tuning: Tuning) -> DownloadTuning:
        return cls(
            concurrent_fragments=tuning.concurrent_fragments,
            socket_timeout_seconds=tuning.socket_timeout_seconds,
            retries=tuning.download_retries,
            in_memory_bytes=tuning.in_memory_bytes,
            max_fragments=tuning.max_fragments,
        )


@dataclass(frozen=True)
class DownloadedMedia:
    path: Path
    ext: str
    title: str | None
    duration_seconds: float | None
    extractor: str | None
    webpage_url: str | None


class Downloader(Protocol):
    def download(
        self, request: MediaRequest, workdir: Path, on_progress: ProgressCallback, on_phase: PhaseCallback
    ) -> DownloadedMedia: ...


def format_selector(request: MediaRequest) -> str:
    if request.format == "audio":
        return "ba/b"
    if request.max_height:
        # `<=?` keeps formats whose height is unknown (generic extractor) eligible.
        h = int(request.max_height)
        return f"bv*[height<=?{h}]+ba/b[height<=?{h}]"
    return "bv*+ba/b"


def postprocessors(request: MediaRequest) -> list[dict[str, Any]]:
    if request.format == "audio":
        pp: dict[str, Any] = {"key": "FFmpegExtractAudio", "preferredcodec": request.audio_format}
        if request.audio_format == "mp3":
            pp["preferredquality"] = "2"  # LAME VBR ~190 kbit/s
        return [pp]
    return [{"key": "FFmpegVideoRemuxer", "preferedformat": "mp4"}]


def _retry_sleep(n: int) -> float:
    return min(1.0 * 2**n, 10.0)


JS_RUNTIME = "quickjs"
"""yt-dlp's name (`js_runtimes`) for the JavaScript runtime the worker gives it: QuickJS."""


def find_js_runtime() -> str | None:
    """The QuickJS binary (`qjs`) yt-dlp runs YouTube's player JavaScript with: in the image
    /opt/quickjs/bin/qjs (on PATH, see worker/Dockerfile), elsewhere whichever `qjs` is on PATH.
    None without one: yt-dlp then skips the formats whose challenges need solving, and says so."""
    return shutil.which("qjs")


def ydl_params(
    request: MediaRequest, workdir: Path, tuning: DownloadTuning, *, js_runtime_path: str | None = None
) -> dict[str, Any]:
    """The yt-dlp options for one job (pure)."""
    params: dict[str, Any] = {
        "format": format_selector(request),
        "outtmpl": {"default": "media.%(ext)s"},
        "paths": {"home": str(workdir), "temp": str(workdir)},
        "postprocessors": postprocessors(request),
        "noplaylist": True,
        "playlist_items": "1",
        "concurrent_fragment_downloads": tuning.concurrent_fragments,
        # yt-dlp starts plain HTTP reads at 1 KiB and grows them; starting at 1 MiB doubles loopback speed.
        "buffersize": 1024 * 1024,
        "socket_timeout": tuning.socket_timeout_seconds,
        "retries": tuning.retries,
        "fragment_retries": tuning.retries,
        "extractor_retries": tuning.retries,
        "file_access_retries": 1,
        "retry_sleep_functions": {"http": _retry_sleep, "fragment": _retry_sleep, "extractor": _retry_sleep},
        # A missing fragment must fail the job, not produce a file with a hole in it.
        "skip_unavailable_fragments": False,
        # Every protocol's native downloader (`--downloader native`; for HLS this is what the
        # deprecated `hls_prefer_native` did). yt-dlp still picks ffmpeg for what no native
        # downloader handles: see `refuse_ffmpeg_downloads`.
        "external_downloader": {"default": "native"},
        "noprogress": True,
        # yt-dlp formats a progress line (templates, byte/speed strings) for every block even
        # when it prints nothing; this makes it do that at most once an hour. Our own hooks still
        # get every block (the byte cap needs them).
        "progress_delta": 3600,
        "quiet": True,
        "no_warnings": False,
        "color": {"stdout": "no_color", "stderr": "no_color"},
        "cachedir": False,
        "overwrites": True,
        "continuedl": False,
        "updatetime": False,
        "restrictfilenames": True,
        "check_formats": False,
        # Most YouTube formats need the player's JavaScript run (signature and `n` challenges):
        # by QuickJS with the solver scripts of the `yt-dlp-ejs` package. The image's qjs has no
        # file, process, network or module access (worker/quickjs-sandbox.patch). Nothing is
        # fetched at run time (no remote components).
        "js_runtimes": {JS_RUNTIME: {"path": js_runtime_path} if js_runtime_path else {}},
        "remote_components": [],
        "logger": YtDlpLogger(),
    }
    if request.format == "video":
        params["merge_output_format"] = "mp4"
    params.update(request.access.ydl_options())
    return params


class YtDlpLogger:
    """yt-dlp's screen output to the `worker.ytdlp` logger (debug chatter stays at DEBUG)."""

    _log = logging.getLogger("worker.ytdlp")

    def debug(self, msg: str) -> None:
        self._log.debug("%s", msg)

    def info(self, msg: str) -> None:
        self._log.debug("%s", msg)

    def warning(self, msg: str) -> None:
        self._log.warning("%s", msg)

    def error(self, msg: str) -> None:
        self._log.info("%s", msg)  # the job reports the classified error itself


def _refuse_ffmpeg_download(self: FFmpegFD, filename: str, info_dict: dict[str, Any]) -> bool:
    raise DownloadAborted(
        JobError(
            ErrorCode.UNSUPPORTED_URL,
            "this stream can only be downloaded by ffmpeg, which the worker does not use as a downloader "
            "(its connections would bypass the byte cap and the address guard)",
        )
    )


_ffmpeg_refusal_lock = threading.Lock()


def refuse_ffmpeg_downloads() -> None:
    """Process-wide: yt-dlp never downloads through ffmpeg, whose connections this process could
    neither guard nor count.

    No public option forbids it. `external_downloader` (`--downloader`) only names a preferred
    downloader per protocol, and yt-dlp still picks ffmpeg for live HLS (before any option is
    read), `rtmp_ffmpeg`, section downloads, and, at run time, for an HLS playlist its native
    downloader declines (SAMPLE-AES or other key methods, AES-128 without pycryptodomex): that
    last choice is made inside `HlsFD.real_download` after the playlist is fetched, where no
    option and no `before_dl` check can see it. So the patch sits on the one method every
    route ends in: `FFmpegFD.real_download`, the downloader interface yt-dlp's own code calls
    (`FileDownloader.download`, the HLS fallback, fragment downloaders' `real_downloader`).
    """
    with _ffmpeg_refusal_lock:
        if FFmpegFD.real_download is not _refuse_ffmpeg_download:  # type: ignore[comparison-overlap]
            FFmpegFD.real_download = _refuse_ffmpeg_download  # type: ignore[method-assign]


class BeforeDownloadCheckPP(PostProcessor):
    """Runs after format selection, before any byte is fetched: refuse what cannot succeed."""

    def __init__(self, max_bytes: int, max_fragments: int = DownloadTuning.max_fragments):
        super().__init__()
        self._max_bytes = max_bytes
        self._max_fragments = max_fragments

    def run(self, info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        if info.get("is_live") or info.get("live_status") in ("is_live", "is_upcoming", "post_live"):
            raise DownloadAborted(JobError(ErrorCode.UNSUPPORTED_URL, "live streams are not supported"))
        formats = info.get("requested_formats") or [info]
        fragments = sum(len(f["fragments"]) for f in formats if isinstance(f.get("fragments"), (list, tuple)))
        if fragments > self._max_fragments:
            raise DownloadAborted(
                JobError(
                    ErrorCode.TOO_LARGE, f"the media has {fragments} segments, over the limit of {self._max_fragments}"
                )
            )
        sizes = [f.get("filesize") or f.get("filesize_approx") for f in formats]
        if all(isinstance(s, (int, float)) and s > 0 for s in sizes) and sum(sizes) > self._max_bytes:
            raise DownloadAborted(
                JobError(
                    ErrorCode.TOO_LARGE,
                    f"the media is about {int(sum(sizes))} bytes, over the limit of {self._max_bytes} bytes",
                )
            )
        return [], info


def too_large(max_bytes: int, seen: int) -> DownloadAborted:
    return DownloadAborted(
        JobError(ErrorCode.TOO_LARGE, f"the download exceeds the limit of {max_bytes} bytes (at {seen} bytes)")
    )


def check_hook_against_budget(status: Mapping[str, Any], budget: ByteBudget) -> None:
    """Raise `DownloadAborted(too_large)` when a hook dict shows the cap is or will be exceeded."""
    filename = str(status.get("tmpfilename") or status.get("filename") or "")
    downloaded = status.get("downloaded_bytes")
    if isinstance(downloaded, int):
        budget.update(filename, downloaded)
        if budget.exceeded:
            raise too_large(budget.max_bytes, budget.total)
        announced = status.get("total_bytes")
        if status.get("status") == "downloading" and isinstance(announced, int) and announced > downloaded:
            if budget.announced_too_large(announced - downloaded):
                raise too_large(budget.max_bytes, budget.total + announced - downloaded)


class BoundedYoutubeDL(yt_dlp.YoutubeDL):
    """Every response yt-dlp opens (pages, manifests, media) reads its body within `traffic`.

    yt-dlp has no option bounding what a response may hold; `urlopen` is the public method
    extractors and downloaders open every request through, so the bound goes there.
    """

    traffic: TrafficBudget | None = None

    def urlopen(self, req: Any) -> Any:
        response = super().urlopen(req)
        return bound_response(response, self.traffic) if self.traffic is not None else response


class YtDlpDownloader:
    def __init__(self, tuning: DownloadTuning | None = None):
        self._tuning = tuning or DownloadTuning()
        self.js_runtime_path = find_js_runtime()
        refuse_ffmpeg_downloads()
        restrict_ytdlp_ffmpeg()

    def download(
        self, request: MediaRequest, workdir: Path, on_progress: ProgressCallback, on_phase: PhaseCallback
    ) -> DownloadedMedia:
        tuning = self._tuning
        budget = ByteBudget(request.max_bytes)
        traffic_budget = TrafficBudget(limits_for(request.max_bytes, tuning.in_memory_bytes, tuning.max_fragments))
        lock = threading.Lock()

        def progress_hook(status: dict[str, Any]) -> None:
            # Fragment downloads call this from several threads.
            with lock:
                if traffic_budget.exceeded is not None:
                    raise DownloadAborted(traffic_budget.exceeded)
                try:
                    check_hook_against_budget(status, budget)
                    on_progress(dict(status, job_downloaded_bytes=budget.total))
                except DownloadAborted as e:
                    # Every other thread's next socket read fails too: no fragment queued
                    # behind this one downloads anything more.
                    traffic_budget.stop(e.error)
                    raise

        def retry_sleep(n: int) -> float:
            return 0.0 if traffic_budget.exceeded is not None else _retry_sleep(n)

        def postprocessor_hook(status: dict[str, Any]) -> None:
            # Our own before-download check is not processing; everything after the download is.
            if status.get("status") == "started" and status.get("postprocessor") != BeforeDownloadCheckPP.pp_key():
                on_phase("processing")

        params = ydl_params(request, workdir, tuning, js_runtime_path=self.js_runtime_path)
        params["progress_hooks"] = [progress_hook]
        params["postprocessor_hooks"] = [postprocessor_hook]
        params["retry_sleep_functions"] = dict.fromkeys(("http", "fragment", "extractor"), retry_sleep)
        try:
            with traffic.armed(traffic_budget), BoundedYoutubeDL(params) as ydl:
                ydl.traffic = traffic_budget
                ydl.add_post_processor(BeforeDownloadCheckPP(request.max_bytes, tuning.max_fragments), when="before_dl")
                raw = ydl.extract_info(request.url, download=False, process=False)
                if raw is None:
                    raise JobFailed(JobError(ErrorCode.UNAVAILABLE, "nothing to download at this URL"))
                if raw.get("_type") in ("playlist", "multi_video"):
                    raise JobFailed(JobError(ErrorCode.UNSUPPORTED_URL, "playlists are not supported: send one video"))
                info = ydl.process_ie_result(raw, download=True)
        except (JobFailed, DownloadAborted):
            raise
        except Exception as e:  # noqa: BLE001 - every yt-dlp failure is classified, none escapes raw
            # A spent budget explains whatever yt-dlp made of the failed read.
            raise JobFailed(traffic_budget.exceeded or classify(e)) from e
        if traffic_budget.exceeded is not None:  # an extractor that swallowed the failed read
            raise JobFailed(traffic_budget.exceeded)
        return _downloaded_media(info, workdir)


def _downloaded_media(info: Mapping[str, Any] | None, workdir: Path) -> DownloadedMedia:
    downloads = (info or {}).get("requested_downloads") or []
    path = None
    for d in downloads:
        candidate = d.get("filepath") or d.get("_filename")
        if candidate and Path(candidate).is_file():
            path = Path(candidate)
    if path is None:
        # yt-dlp skipped the download without an error (e.g. a filter); never report success for that.
        raise JobFailed(JobError(ErrorCode.INTERNAL, "yt-dlp finished without producing a file"))
    if workdir.resolve() not in path.resolve().parents:
        raise JobFailed(JobError(ErrorCode.INTERNAL, "yt-dlp wrote outside the work directory"))
    info = info or {}
    duration = info.get("duration")
    return DownloadedMedia(
        path=path,
        ext=path.suffix.lstrip(".").lower(),
        title=info.get("title") or None,
        duration_seconds=float(duration) if isinstance(duration, (int, float)) else None,
        extractor=info.get("extractor_key") or info.get("extractor"),
        webpage_url=info.get("webpage_url") or info.get("original_url"),
    )
