"""`JobFailed` and message cleaning, without yt-dlp: the upload process imports these and must
not pay for importing yt-dlp (`errors` re-exports them next to the yt-dlp classification)."""

from __future__ import annotations

import re

from videojob.contract.wire import MAX_ERROR_MESSAGE, JobError

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class JobFailed(Exception):
    """A classified failure raised by a step of the job; `error` goes into the `failed` event."""

    def __init__(self, error: JobError):
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


def clean_message(message: str) -> str:
    """One line, no terminal colours, no yt-dlp `ERROR:` prefix, bounded length."""
    text = _ANSI.sub("", message).replace("\r", " ").replace("\n", " ").strip()
    text = re.sub(r"^(ERROR:\s*)+", "", text)
    return text[:MAX_ERROR_MESSAGE]
