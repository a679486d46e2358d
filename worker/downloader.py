"""The yt-dlp edge: one call, `download()`, behind the small `Downloader` interface.

Decisions made here:
- yt-dlp's Python API, never a shell string; format `bv*+ba/b` merged to mp4 (height-capped
  when asked), or best audio extracted to m4a/mp3.
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
- A URL that names a media file skips yt-dlp's search through every site's URL pattern
  when no site extractor can claim it (`extractor_choice`).
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
from yt_dlp.extractor import gen_extractor_classes
from yt_dlp.postprocessor.common import PostProcessor

from videojob.contract import ErrorCode, JobError

from . import traffic
from .errors import DownloadAborted, JobFailed, classify
from .extractor_choice import choose_extractor
from .media_guard import restrict_ytdlp_ffmpeg
from .progress import ByteBudget
from .traffic import TrafficBudget, bound_response, limits_for

log = logging.getLogger("worker.download")

ProgressCallback = Callable[[Mapping[str, Any]], None]
"""Called with each yt-dlp progress-hook dict (after the byte cap check); may raise `DownloadAborted`."""
PhaseCallback = Callable[[str], None]


@dataclass(frozen=True)
class MediaRequest:
    url: str
    format: str  # "video" | "audio"
    audio_format: str = "m4a"
    max_height: int | None = None
    max_bytes: int = 8 * 1024**3


@dataclass(frozen=True)
class DownloadTuning:
    concurrent_fragments: int = 4
    socket_timeout_seconds: float = 30.0
    retries: int = 3
    in_memory_bytes: int = 32 * 1024 * 1024
    """Pages, API answers, playlists and manifests of one job, together (YouTube needs about 10 MB)."""
    max_fragments: int = 100_000
    """Segments one playlist or manifest may describe (a 10-hour stream of 2 s segments has 18,000)."""


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


def find_deno() -> str | None:
    """The Deno binary yt-dlp runs YouTube's player JavaScript with: the one the `deno` package
    installed next to this Python (image and dev venv alike), else one on PATH."""
    try:
        from deno import find_deno_bin

        return find_deno_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("deno")


def ydl_params(
    request: MediaRequest, workdir: Path, tuning: DownloadTuning, *, deno_path: str | None = None
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
        "external_downloader": {"default": "native"},
        "hls_prefer_native": True,
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
        # by Deno (sandboxed: yt-dlp grants it no network or file access) with the solver
        # scripts of the `yt-dlp-ejs` package. Nothing is fetched at run time (no remote components).
        "js_runtimes": {"deno": {"path": deno_path} if deno_path else {}},
        "remote_components": [],
        "logger": YtDlpLogger(),
    }
    if request.format == "video":
        params["merge_output_format"] = "mp4"
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


def _refuse_ffmpeg_download(self: FFmpegFD, tmpfilename: str, info_dict: dict[str, Any]) -> int:
    raise DownloadAborted(
        JobError(
            ErrorCode.UNSUPPORTED_URL,
            "this stream can only be downloaded by ffmpeg, which the worker does not use as a downloader "
            "(its connections would bypass the byte cap and the address guard)",
        )
    )


_ffmpeg_refusal_lock = threading.Lock()


def refuse_ffmpeg_downloads() -> None:
    """Process-wide: yt-dlp may delegate an HLS/DASH stream to ffmpeg (live streams, some
    encryptions); ffmpeg would then open connections this process cannot guard or count."""
    with _ffmpeg_refusal_lock:
        if FFmpegFD._call_downloader is not _refuse_ffmpeg_download:  # type: ignore[comparison-overlap]
            FFmpegFD._call_downloader = _refuse_ffmpeg_download  # type: ignore[method-assign]


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
    """Every response yt-dlp opens (pages, manifests, media) reads its body within `traffic`."""

    traffic: TrafficBudget | None = None

    def urlopen(self, req: Any) -> Any:
        response = super().urlopen(req)
        return bound_response(response, self.traffic) if self.traffic is not None else response


def new_youtube_dl(params: dict[str, Any], budget: TrafficBudget | None = None) -> yt_dlp.YoutubeDL:
    """A `YoutubeDL` with the same extractors, in the same order, as `YoutubeDL(params)` registers,
    whose responses are read within `budget`.

    yt-dlp de-duplicates its ~1,750 extractor names through a list (quadratic: about 50 ms of
    CPU per job, on the job's critical path); the default set is already unique, so it is
    registered directly. A test compares the result with yt-dlp's own registration.
    """
    if "allowed_extractors" in params:
        ydl = BoundedYoutubeDL(params)
        ydl.traffic = budget
        return ydl
    ydl = BoundedYoutubeDL(params, auto_init=False)
    ydl.traffic = budget
    by_name = {ie.IE_NAME.lower(): ie for ie in gen_extractor_classes()}
    for ie in by_name.values():
        if ie._ENABLED:
            ydl.add_info_extractor(ie)
    return ydl


class YtDlpDownloader:
    def __init__(self, tuning: DownloadTuning | None = None):
        self._tuning = tuning or DownloadTuning()
        self.deno_path = find_deno()
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

        params = ydl_params(request, workdir, tuning, deno_path=self.deno_path)
        params["progress_hooks"] = [progress_hook]
        params["postprocessor_hooks"] = [postprocessor_hook]
        params["retry_sleep_functions"] = dict.fromkeys(("http", "fragment", "extractor"), retry_sleep)
        try:
            with traffic.armed(traffic_budget), new_youtube_dl(params, traffic_budget) as ydl:
                ydl.add_post_processor(
                    BeforeDownloadCheckPP(request.max_bytes, tuning.max_fragments), when="before_dl"
                )
                # A direct media link goes straight to the generic extractor (see extractor_choice).
                ie_key = choose_extractor(request.url, gen_extractor_classes())
                raw = ydl.extract_info(request.url, download=False, process=False, ie_key=ie_key)
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
