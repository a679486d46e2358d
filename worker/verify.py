"""Verification with ffprobe: the file is a media container holding the streams the user asked for.

yt-dlp can succeed with video and no audio (an HLS master whose variants lack `CODECS`), so
every result is probed. `check_streams` is the pure rule; `probe` is the ffprobe edge. The probe
reads the file alone, as one of the expected containers (`media_guard`): a playlist or manifest
posing as media is `invalid_media`, never "verified" by the files it names.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videojob.contract.wire import ErrorCode, JobError

from .errors import JobFailed, clean_message
from .media_guard import INPUT_RESTRICTIONS, is_allowed_format

PROBE_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class StreamInfo:
    kind: str  # "video" | "audio" | other codec_type
    codec: str | None
    width: int | None = None
    height: int | None = None
    attached_picture: bool = False


@dataclass(frozen=True)
class ProbeResult:
    streams: tuple[StreamInfo, ...]
    duration_seconds: float | None
    format_name: str | None

    @property
    def video(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "video" and not s.attached_picture), None)

    @property
    def audio(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "audio"), None)


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f >= 0 else None


def parse_probe(doc: dict[str, Any]) -> ProbeResult:
    streams = []
    for s in doc.get("streams") or []:
        streams.append(
            StreamInfo(
                kind=str(s.get("codec_type") or ""),
                codec=s.get("codec_name"),
                width=s.get("width"),
                height=s.get("height"),
                attached_picture=bool((s.get("disposition") or {}).get("attached_pic")),
            )
        )
    fmt = doc.get("format") or {}
    return ProbeResult(
        streams=tuple(streams), duration_seconds=_float(fmt.get("duration")), format_name=fmt.get("format_name")
    )


def check_streams(probe: ProbeResult, job_format: str) -> JobError | None:
    """None when the file is what a `job_format` job must deliver, else the error to report."""
    if not is_allowed_format(probe.format_name):
        return JobError(ErrorCode.INVALID_MEDIA, f"the downloaded file is not a media container ({probe.format_name})")
    if job_format == "video":
        if probe.video is None:
            return JobError(ErrorCode.INVALID_MEDIA, "the downloaded file has no video stream")
        if probe.audio is None:
            return JobError(ErrorCode.NO_AUDIO, "the downloaded video has no audio stream")
        return None
    if probe.audio is None:
        return JobError(ErrorCode.NO_AUDIO, "the downloaded file has no audio stream")
    return None


def probe(path: Path, ffprobe: str = "ffprobe") -> ProbeResult:
    """Run ffprobe; an unreadable file is `invalid_media`."""
    try:
        out = subprocess.run(
            [ffprobe, "-v", "error", *INPUT_RESTRICTIONS, "-print_format", "json", "-show_streams", "-show_format",
             f"file:{path}"],
            capture_output=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise JobFailed(JobError(ErrorCode.INTERNAL, f"ffprobe could not run: {e}")) from e
    if out.returncode != 0:
        detail = clean_message(out.stderr.decode("utf-8", "replace"))[:300]
        raise JobFailed(JobError(ErrorCode.INVALID_MEDIA, f"ffprobe cannot read the downloaded file: {detail}"))
    try:
        return parse_probe(json.loads(out.stdout))
    except ValueError as e:
        raise JobFailed(JobError(ErrorCode.INVALID_MEDIA, "ffprobe returned no usable description")) from e


def verify(path: Path, job_format: str) -> ProbeResult:
    """Probe and check; raises `JobFailed` with `no_audio`/`invalid_media`."""
    result = probe(path)
    error = check_streams(result, job_format)
    if error is not None:
        raise JobFailed(error)
    return result
