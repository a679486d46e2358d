"""Blob naming and content types (pure)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from videojob.contract.output_blob import job_blob_prefix

MAX_TITLE_CHARS = 120
FALLBACK_TITLE = "media"

CONTENT_TYPES: dict[str, str] = {
    "mp4": "video/mp4",
    "m4a": "audio/mp4",
    "mp3": "audio/mpeg",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "opus": "audio/ogg",
    "ogg": "audio/ogg",
}

# Characters that break URLs, paths or shells: anything but letters, digits, space and a few marks.
_UNSAFE = re.compile(r"[^\w \-.,()\[\]&+'!]", re.UNICODE)


def sanitize_title(title: str | None) -> str:
    """A title usable as a blob name segment: no `/`, `\\`, `?`, `#`, `%` or control characters,
    whitespace collapsed, no leading/trailing dots or spaces, at most `MAX_TITLE_CHARS`."""
    text = unicodedata.normalize("NFC", title or "")
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    text = _UNSAFE.sub("_", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"_{2,}", "_", text)
    text = text[:MAX_TITLE_CHARS].strip(" ._")
    return text or FALLBACK_TITLE


def blob_name(job_id: str, title: str | None, ext: str) -> str:
    """`{job_blob_prefix(jobId)}{sanitized title}.{ext}`: under the job's own prefix, the one rule the
    orchestrator checks the reported name against (`videojob.contract.output_blob`)."""
    return f"{job_blob_prefix(job_id)}{sanitize_title(title)}.{ext.lower()}"


def content_type(ext: str) -> str:
    return CONTENT_TYPES.get(ext.lower(), "application/octet-stream")


def header_safe(value: str, max_chars: int = 1024) -> str:
    """Blob metadata travels in HTTP headers (ASCII): percent-encode anything else."""
    return quote(value[:max_chars], safe=" /:?&=#,;()[]!'*@+$-._~")


def content_disposition(filename: str) -> str:
    """`attachment` with an RFC 6266 UTF-8 file name, so browsers save it under its title."""
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace('"', "'").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
