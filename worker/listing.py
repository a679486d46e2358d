"""List mode (`JOB_MODE=list`): a playlist's entries, by yt-dlp flat extraction, nothing downloaded.

The batch orchestrator needs a playlist's entries but the function app never fetches user URLs:
this runs inside the container like a download, under the same URL policy and connection-time
address guard, and reports `started` then `succeeded` with `result.entries` (+ `title`), or
`failed` with a classified error. Nothing is uploaded but the outcome's result record, written
before the terminal report as a download writes it (`job.record_outcome`).

Flat extraction (`extract_flat="in_playlist"`) reads the playlist page or feed only, not each
entry; `playlistend` stops it after `max_items`. A URL that is a single video lists as one entry.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from yt_dlp.utils import unsmuggle_url

from videojob.contract.wire import MAX_PLAYLIST_ENTRIES, ErrorCode, EventState, JobError, JobResult, PlaylistEntry

from . import address_guard, logs, traffic
from .blob_sink import BlobSink
from .cancellation import CancelToken
from .config import WorkerConfig
from .downloader import BoundedYoutubeDL, DownloadTuning, YtDlpLogger
from .errors import OUT_OF_MEMORY_MESSAGE, JobFailed, classify, clean_message
from .job import (
    DOWNLOADING,
    Outcome,
    check_job_url,
    guard_policy,
    hidden_error,
    record_outcome_when_ready,
    record_then_report,
)
from .reporter import Reporter
from .site_access import NO_SITE_ACCESS, SiteAccess, private_cookie_copy, proxy_secrets
from .traffic import TrafficBudget, limits_for

log = logging.getLogger("worker.listing")

MAX_TITLE = 512
MAX_ENTRY_URL = 4096


@dataclass(frozen=True)
class Listing:
    entries: tuple[PlaylistEntry, ...]
    title: str | None = None


class Lister(Protocol):
    def list(self, url: str, max_items: int, access: SiteAccess = NO_SITE_ACCESS) -> Listing: ...


def listing_params(max_items: int, tuning: DownloadTuning, access: SiteAccess = NO_SITE_ACCESS) -> dict[str, Any]:
    """The yt-dlp options for a flat listing (pure)."""
    return access.ydl_options() | {
        "extract_flat": "in_playlist",
        "playlistend": max_items,
        "lazy_playlist": True,
        "skip_download": True,
        "socket_timeout": tuning.socket_timeout_seconds,
        "extractor_retries": tuning.retries,
        "quiet": True,
        "no_warnings": False,
        "noprogress": True,
        "cachedir": False,
        "color": {"stdout": "no_color", "stderr": "no_color"},
        "logger": YtDlpLogger(),
    }


def _absolute(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    url, _ = unsmuggle_url(url)  # the generic extractor smuggles hints into a fragment
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url[:MAX_ENTRY_URL] if parts.scheme in ("http", "https") and parts.netloc else None


def _title(value: Any) -> str | None:
    return clean_message(value)[:MAX_TITLE] or None if isinstance(value, str) else None


def entries_of(info: Mapping[str, Any] | None, max_items: int) -> Listing:
    """What an extraction result lists (pure): each entry's absolute URL (entries without one are
    skipped) and title, at most `max_items`; a single video is a list of one."""
    if not info:
        return Listing(())
    limit = max(0, min(max_items, MAX_PLAYLIST_ENTRIES))
    if info.get("_type") not in ("playlist", "multi_video"):
        url = _absolute(info.get("webpage_url")) or _absolute(info.get("original_url")) or _absolute(info.get("url"))
        entries = (PlaylistEntry(url, _title(info.get("title"))),) if url and limit else ()
        return Listing(entries, _title(info.get("title")))
    out: list[PlaylistEntry] = []
    for entry in info.get("entries") or ():
        if len(out) >= limit:
            break
        if not isinstance(entry, Mapping):
            continue
        url = _absolute(entry.get("url")) or _absolute(entry.get("webpage_url"))
        if url is not None:
            out.append(PlaylistEntry(url, _title(entry.get("title"))))
    return Listing(tuple(out), _title(info.get("title")))


class YtDlpLister:
    def __init__(self, tuning: DownloadTuning | None = None):
        self._tuning = tuning or DownloadTuning()

    def list(self, url: str, max_items: int, access: SiteAccess = NO_SITE_ACCESS) -> Listing:
        # Pages only, no media: the whole wire budget is the in-memory one.
        budget = TrafficBudget(limits_for(0, self._tuning.in_memory_bytes, self._tuning.max_fragments))
        try:
            with traffic.armed(budget), BoundedYoutubeDL(listing_params(max_items, self._tuning, access)) as ydl:
                ydl.traffic = budget
                info = ydl.extract_info(url, download=False)
        except JobFailed:
            raise
        except Exception as e:  # noqa: BLE001 - every yt-dlp failure is classified, none escapes raw
            raise JobFailed(budget.exceeded or classify(e)) from e
        if budget.exceeded is not None:
            raise JobFailed(budget.exceeded)
        return entries_of(info, max_items)


def run_listing(
    config: WorkerConfig,
    *,
    lister: Lister,
    reporter: Reporter,
    cancel: CancelToken,
    sink_factory: Callable[[], BlobSink],
) -> Outcome:
    """List the playlist at `JOB_URL` and report the entries; every path ends in one terminal
    event, recorded first through `sink_factory`'s upload side."""
    env = config.env
    max_items = env.max_items or MAX_PLAYLIST_ENTRIES
    guard_state: address_guard.GuardState | None = None
    secrets = proxy_secrets(env.proxy_url)
    logs.hide(secrets)
    try:
        reporter.started(DOWNLOADING)
        check_job_url(config)
        if cancel.cancelled:
            raise JobFailed(cancel.reason)
        policy = guard_policy(config, env.callback_url)
        with (
            tempfile.TemporaryDirectory(prefix="videojob-") as private,
            private_cookie_copy(env.cookies_file, Path(private)) as (cookie_file, cookie_values),
        ):
            secrets += cookie_values
            logs.hide(cookie_values)
            access = SiteAccess(cookie_file, env.proxy_url, env.extractor_args)
            with address_guard.armed(policy) as guard_state:
                listing = lister.list(env.url, max_items, access)
        if cancel.cancelled:
            raise JobFailed(cancel.reason)
        result = JobResult(entries=listing.entries, title=listing.title)
        log.info("listed %d entries", len(listing.entries))
        reported = record_then_report(
            reporter,
            lambda event: record_outcome_when_ready(config, None, sink_factory, event),
            EventState.SUCCEEDED,
            result=result,
        )
        return Outcome(result=result, reported=reported)
    except JobFailed as e:
        error = e.error
    except MemoryError:  # under the job process's limit (`memory_limit`): the container is too small
        error = JobError(ErrorCode.OUT_OF_MEMORY, OUT_OF_MEMORY_MESSAGE, retryable=False)
    except Exception as e:  # the job must always report, whatever broke
        log.exception("unexpected failure")
        error = JobError(ErrorCode.INTERNAL, clean_message(f"{type(e).__name__}: {e}") or "internal error")
    try:
        if guard_state is not None and guard_state.refusals and error.code in (
            ErrorCode.NETWORK, ErrorCode.HTTP_ERROR, ErrorCode.INTERNAL, ErrorCode.UNAVAILABLE
        ):
            ip, _ = guard_state.refusals[0]
            error = JobError(
                ErrorCode.PRIVATE_ADDRESS, f"a connection to a private or reserved address was refused ({ip})"
            )
        error = hidden_error(error, secrets)
        log.warning("listing failed: %s: %s", error.code, error.message)
    except Exception:  # noqa: BLE001 - nothing here may hold back the report
        error = JobError(ErrorCode.INTERNAL, "internal error")
    reported = record_then_report(
        reporter,
        lambda event: record_outcome_when_ready(config, None, sink_factory, event),
        EventState.FAILED,
        error=error,
    )
    return Outcome(error=error, reported=reported)
