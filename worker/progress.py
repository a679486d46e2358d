"""Progress policy (pure): what to report and when, and how many bytes a job may download.

The job feeds yt-dlp's progress-hook dicts in; these functions decide. No clock is read here:
callers pass `now` (monotonic seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from videojob.contract.wire import Progress


@dataclass
class ProgressThrottle:
    """At most one progress event per `interval_seconds`, except that a phase change always goes."""

    interval_seconds: float
    _last_sent_at: float | None = None
    _last_phase: str | None = None

    def should_send(self, now: float, phase: str) -> bool:
        if phase != self._last_phase:
            return True
        return self._last_sent_at is None or now - self._last_sent_at >= self.interval_seconds

    def sent(self, now: float, phase: str) -> None:
        self._last_sent_at = now
        self._last_phase = phase

    def offer(self, now: float, phase: str) -> bool:
        """`should_send` and, when it says yes, record the send."""
        if self.should_send(now, phase):
            self.sent(now, phase)
            return True
        return False


@dataclass
class ByteBudget:
    """The byte cap across every file of a job (video and audio of a merge count together).

    yt-dlp reports cumulative `downloaded_bytes` per file; a file's count only grows, so the
    total is the sum of each file's latest figure.
    """

    max_bytes: int
    _per_file: dict[str, int] = field(default_factory=dict)

    def update(self, filename: str, downloaded_bytes: int) -> int:
        self._per_file[filename] = max(downloaded_bytes, self._per_file.get(filename, 0))
        return self.total

    @property
    def total(self) -> int:
        return sum(self._per_file.values())

    @property
    def exceeded(self) -> bool:
        return self.total > self.max_bytes

    def announced_too_large(self, expected_bytes: int | None) -> bool:
        """A size announced before the transfer (Content-Length, format filesize) is already over."""
        return expected_bytes is not None and self.total + expected_bytes > self.max_bytes


def _num(d: Mapping[str, Any], key: str) -> float | None:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return v


def progress_from_hook(status: Mapping[str, Any]) -> Progress:
    """A wire `Progress` from a yt-dlp progress-hook dict.

    `job_downloaded_bytes` (added by the downloader: all files of the job so far) wins over the
    file's own count, so a merge's audio does not restart the count at zero; total and percent
    stay per file because yt-dlp does not know the next file's size in advance.
    """
    downloaded = _num(status, "downloaded_bytes")
    total = _num(status, "total_bytes") or _num(status, "total_bytes_estimate")
    percent = None
    if downloaded is not None and total:
        percent = round(min(100.0, 100.0 * downloaded / total), 1)
    elif status.get("fragment_count") and isinstance(status.get("fragment_index"), int):
        percent = round(min(100.0, 100.0 * status["fragment_index"] / status["fragment_count"]), 1)
    job_bytes = _num(status, "job_downloaded_bytes")
    if job_bytes is not None:
        downloaded = job_bytes
    speed = _num(status, "speed")
    eta = _num(status, "eta")
    return Progress(
        percent=percent,
        downloaded_bytes=int(downloaded) if downloaded is not None else None,
        total_bytes=int(total) if total else None,
        speed_bps=round(speed, 1) if speed is not None else None,
        eta_seconds=round(eta, 1) if eta is not None else None,
    )
