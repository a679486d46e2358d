"""Failure classification: every way a job can fail, mapped to a `videojob.contract.wire.ErrorCode`.

Pure: it inspects exception types and messages and returns a `JobError`; no I/O. yt-dlp wraps
the real cause (`DownloadError.exc_info`, `ExtractorError.cause`), so the whole cause chain is
searched, and the message text is matched for the YouTube challenges that have no type of
their own (bot check, sign-in, geo).
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterator

from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadCancelled, ExtractorError, GeoRestrictedError, PostProcessingError, UnsupportedError

from videojob.contract.wire import ErrorCode, JobError

from .address_guard import AddressRefused
from .failures import JobFailed, clean_message
from .traffic import TrafficExceeded

__all__ = ["DownloadAborted", "JobFailed", "classify", "clean_message", "failure"]


class DownloadAborted(DownloadCancelled):
    """Raised from a yt-dlp progress hook to stop a download (byte cap, cancellation).

    A `DownloadCancelled` subclass because yt-dlp lets that type through its own error handling
    instead of turning it into a `DownloadError`.
    """

    def __init__(self, error: JobError):
        super().__init__(error.message)
        self.error = error


def failure(code: str, message: str, *, retryable: bool = False) -> JobFailed:
    return JobFailed(JobError(code=code, message=clean_message(message), retryable=retryable))


def cause_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps, each once (yt-dlp's `exc_info`/`cause`, `__cause__`)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        exc_info = getattr(e, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1 and isinstance(exc_info[1], BaseException):
            todo.append(exc_info[1])
        for nxt in (getattr(e, "cause", None), e.__cause__, e.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


# Order matters: the bot check also tells the user to pass cookies, like a sign-in wall does.
_MESSAGE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (ErrorCode.BOT_CHECK, re.compile(r"confirm you.?re not a bot|not a robot|captcha", re.I)),
    (
        ErrorCode.GEO_BLOCKED,
        re.compile(
            r"not (?:be )?available (?:in|from) your (?:country|location|region)|geo.?restrict|geo.?block", re.I
        ),
    ),
    (
        ErrorCode.LOGIN_REQUIRED,
        re.compile(
            r"sign in to confirm your age|age.?restricted|login required|requires? (?:a )?(?:login|sign.?in|"
            r"authentication|subscription)|private video|members.?only|join this channel|"
            r"use --cookies|account (?:has been )?terminated|premium",
            re.I,
        ),
    ),
    (
        ErrorCode.UNSUPPORTED_URL,
        re.compile(
            r"unsupported url|no suitable extractor|is not a valid url|playlists? (?:are|is) not supported", re.I
        ),
    ),
    (
        ErrorCode.UNAVAILABLE,
        re.compile(
            r"video unavailable|is not available|has been removed|no longer available|does not exist|"
            r"requested format is not available|no video formats found|copyright|live event will begin|"
            r"this live stream|premieres in",
            re.I,
        ),
    ),
)


BOT_CHECK_HINT = (
    "the site asked this address to prove it is not a bot; the operator can set YOUTUBE_COOKIES, "
    "WORKER_PROXY_URL or YTDLP_EXTRACTOR_ARGS (README: YouTube from the cloud)"
)
"""Leads a `bot_check` message (clipping keeps it), so the failure a user sees after the last
attempt says what fixes it."""


OUT_OF_MEMORY_MESSAGE = (
    "the worker ran out of memory (an allocation failed under its limit, below CONTAINER_MEMORY_MB): "
    "raise WORKER_MEMORY_GB if the media needs more"
)

_NETWORK_ERRORS = (TransportError, socket.timeout, TimeoutError, ConnectionError, socket.gaierror, ssl.SSLError)
_NETWORK_TEXT = re.compile(
    r"timed out|connection (?:refused|reset)|name or service not known|network is unreachable", re.I
)


def _http_error(status: int, message: str) -> JobError:
    return JobError(
        code=ErrorCode.HTTP_ERROR,
        message=clean_message(message),
        retryable=status == 429 or status >= 500,
    )


def classify(exc: BaseException) -> JobError:
    """The `JobError` for any exception raised while extracting or downloading."""
    chain = list(cause_chain(exc))
    for e in chain:
        if isinstance(e, JobFailed):
            return e.error
        if isinstance(e, DownloadAborted):
            return e.error
        if isinstance(e, AddressRefused):
            return JobError(ErrorCode.PRIVATE_ADDRESS, clean_message(str(e)))
        if isinstance(e, TrafficExceeded):
            return e.error
    for e in chain:
        if isinstance(e, MemoryError):
            # Every data budget (traffic) held, or it would have said `too_large`: the container is
            # too small for this job (see `memory_limit`).
            return JobError(ErrorCode.OUT_OF_MEMORY, OUT_OF_MEMORY_MESSAGE, retryable=False)
    message = clean_message(str(exc)) or type(exc).__name__
    for e in chain:
        if isinstance(e, PostProcessingError):
            # ffmpeg could not read what was downloaded as the media containers it is limited to.
            return JobError(ErrorCode.INVALID_MEDIA, f"the downloaded media cannot be processed: {message}")
    for e in chain:
        if isinstance(e, GeoRestrictedError):
            return JobError(ErrorCode.GEO_BLOCKED, message)
    # Text first: YouTube's challenges arrive as generic ExtractorErrors (sometimes over a 403/429).
    full_text = " ".join(clean_message(str(e)) for e in chain)
    for code, pattern in _MESSAGE_RULES:
        if pattern.search(full_text):
            if code == ErrorCode.BOT_CHECK:
                return JobError(code, clean_message(f"{BOT_CHECK_HINT}: {message}"))
            return JobError(code, message)
    for e in chain:
        if isinstance(e, UnsupportedError):
            return JobError(ErrorCode.UNSUPPORTED_URL, message)
    for e in chain:
        if isinstance(e, HTTPError):
            return _http_error(e.status, message)
    for e in chain:
        if isinstance(e, _NETWORK_ERRORS):
            return JobError(ErrorCode.NETWORK, message, retryable=True)
    for e in chain:
        if isinstance(e, ExtractorError) and e.expected:
            return JobError(ErrorCode.UNAVAILABLE, message)
    http_status = re.search(r"HTTP Error (\d{3})", full_text)
    if http_status:
        return _http_error(int(http_status.group(1)), message)
    if _NETWORK_TEXT.search(full_text):
        return JobError(ErrorCode.NETWORK, message, retryable=True)
    return JobError(ErrorCode.INTERNAL, message)
