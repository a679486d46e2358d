"""Upload while downloading (issue 24): which download is staged as it is written, and when.

Only a download whose file is the job's final file as it is written: one progressive HTTP(S)
file, already MP4 (the remuxer leaves it alone), written by yt-dlp as `media.mp4` (its `.part`
while it grows). The parts of a merge (`media.f<id>.<ext>`), HLS/DASH, audio extraction and
anything remuxed produce another file at the end: they upload their final file after the
download, as before. Whichever it is, the sink keeps the early blocks only if they are exactly
the final file's bytes (`blob_sink.stage_growing`), so a wrong guess here costs upload bandwidth,
never correctness.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from .blob_sink import BlobSink

log = logging.getLogger("worker.early_upload")

SINGLE_FILE = "media.mp4"
"""The name yt-dlp gives a single-format video download (`outtmpl` `media.%(ext)s`)."""


def growing_file(status: Mapping[str, Any], request_format: str, workdir: Path) -> Path | None:
    """The file to stage while it is written, from a yt-dlp progress hook dict; None if none (pure)."""
    if request_format != "video" or status.get("status") != "downloading":
        return None
    info = status.get("info_dict") or {}
    if info.get("requested_formats") or info.get("protocol") not in ("http", "https") or info.get("ext") != "mp4":
        return None
    filename, tmpfilename = status.get("filename"), status.get("tmpfilename")
    if not filename or not tmpfilename or Path(filename) != workdir / SINGLE_FILE:
        return None
    growing = Path(tmpfilename)
    return growing if growing.parent == workdir else None


class EarlyUpload:
    """Starts the sink's growing staging at the first progress hook that shows a file for it, once
    the sink is ready (the download does not wait for it; the staging catches up)."""

    def __init__(self, sink: Future[BlobSink], request_format: str, workdir: Path, max_bytes: int):
        self._sink = sink
        self._format = request_format
        self._workdir = workdir
        self._max_bytes = max_bytes
        self.started: BlobSink | None = None
        self._declined = False

    def on_progress(self, status: Mapping[str, Any]) -> None:
        if self.started is not None or self._declined or not self._sink.done():
            return
        if self._sink.exception() is not None:
            self._declined = True  # the job fails on it after the download
            return
        path = growing_file(status, self._format, self._workdir)
        if path is None:
            if status.get("status") == "downloading":
                self._declined = True  # this download's file is not the final one: upload after
            return
        sink = self._sink.result()
        sink.begin_growing(path, self._max_bytes)
        self.started = sink
        log.info("staging %s while it downloads", path.name)
