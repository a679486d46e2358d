"""Which yt-dlp extractor to start with, without testing every site's URL pattern.

yt-dlp picks an extractor by compiling and trying the URL pattern of each of its ~1750 site
extractors in turn, with the generic one last: about half a second of CPU per process,
spent on every job whose URL no site claims. For a URL whose path names a media file or a
manifest (`.../clip.mp4`, `.../master.m3u8`), the generic extractor is almost always the one
that ends up chosen, so this module names it directly, after making sure no site extractor
could claim the URL:

- only extractors whose pattern *text* mentions the host (one of its labels, a label's first
  three letters, or the domain as a regex writes it: `example\\.com`) or accepts any host
  (`https?://[^/]+/...`) can match it; that text test costs no regex compilation;
- those few candidates are then asked for real (`suitable(url)`), in yt-dlp's own order.

If any candidate matches, or the path names no media file (a YouTube watch page, any site
page), the choice is left to yt-dlp exactly as before. What remains possible is a site
extractor whose pattern spells the host in a way none of these terms catch; for a URL that
already names a media file, the generic extractor then downloads that same file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from posixpath import splitext
from typing import Any
from urllib.parse import unquote, urlsplit

from videojob.url_policy import parse_ip_literal

GENERIC = "Generic"

MEDIA_EXTENSIONS: frozenset[str] = frozenset(
    {
        # progressive video and audio
        "mp4", "m4v", "m4a", "mov", "webm", "mkv", "mp3", "aac", "ogg", "oga", "opus", "flac", "wav", "ts",
        # manifests the generic extractor reads
        "m3u8", "mpd", "f4m", "ism",
    }
)  # fmt: skip

_MIN_LABEL = 3
# A pattern whose host starts with a wildcard: `https?://[^/]+/Mediasite/...`, `://(?P<x>[\w-]+)\.site\.com`.
# Some are pinned to a domain after the wildcard; all are tried (a few dozen), which is cheap.
_WILDCARD_HOST = re.compile(r"://\(?(?:\?P<\w+>)?(?:\[\^/|\.[*+]|\[\\w|\\w|\[a-z)", re.IGNORECASE)


def names_media_file(url: str) -> bool:
    """The URL's path ends in a media or manifest file name (`/a/clip.MP4`, `/hls/master.m3u8`)."""
    try:
        path = unquote(urlsplit(url).path)
    except ValueError:
        return False
    ext = splitext(path.rsplit("/", 1)[-1])[1].lstrip(".").lower()
    return ext in MEDIA_EXTENSIONS


def host_terms(host: str) -> tuple[str, ...]:
    """Lower-case strings of which a site extractor's pattern must contain one to match `host`."""
    host = host.lower().rstrip(".")
    if parse_ip_literal(host) is not None:
        return (host, re.escape(host))
    labels = [label for label in host.split(".") if label]
    terms = {r"\.".join(labels[-2:])}
    for label in labels[:-1]:
        if label != "www" and len(label) >= _MIN_LABEL:
            terms.update((label, label[:_MIN_LABEL]))
    return tuple(sorted(terms))


def pattern_text(extractor: Any) -> str:
    """The extractor's `_VALID_URL` source (a string or several), lower-cased; no compilation."""
    raw = getattr(extractor, "_VALID_URL", None)
    if not raw:
        return ""
    return "\n".join(raw if isinstance(raw, (list, tuple)) else [raw]).lower()


def has_wildcard_host(text: str) -> bool:
    return _WILDCARD_HOST.search(text) is not None


def site_candidates(host: str, extractors: Iterable[Any]) -> list[Any]:
    """The extractors (not the generic one) that could claim a URL on `host`, in the given order."""
    terms = host_terms(host)
    found = []
    for ie in extractors:
        if ie.ie_key() == GENERIC:
            continue
        text = pattern_text(ie)
        if text and (any(t in text for t in terms) or has_wildcard_host(text)):
            found.append(ie)
    return found


def choose_extractor(url: str, extractors: Iterable[Any]) -> str | None:
    """`"Generic"` when the URL names a media file and no site extractor claims it; else None
    (let yt-dlp search all of them, as it always does)."""
    if not names_media_file(url):
        return None
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return None
    if not host:
        return None
    for ie in site_candidates(host, extractors):
        if ie.suitable(url):
            return None
    return GENERIC
