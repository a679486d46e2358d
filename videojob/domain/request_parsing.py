"""Turn an HTTP request body into a submission (one job, a batch or a playlist), or a 4xx.

Pure: the HTTP trigger passes bytes and headers in and maps `RequestRejected` to a response.

JSON bodies (camelCase):
- one job: `{"url", "format"?, "maxHeight"?, "deadlineSeconds"?, "audioFormat"?, "notifyUrl"?}`
- a batch: `{"urls": [...], ...the same options}`; every URL goes through the URL policy and the
  whole request is refused (`invalid_batch`, with one entry per bad index) if any is bad
- a playlist: `{"url": <playlist>, "playlist": true, "maxItems"?, ...options}`
A `text/plain` body is just one URL.

`notifyUrl` (completion webhook) passes the URL policy's scheme, length, credential and
private-address rules but not the host allowlist (that lists video sites, not receivers). It is
refused while the service has no `NOTIFY_SIGNING_KEY` (an unsigned webhook could be forged).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from videojob.contract.url_policy import UrlPolicy, UrlRejected, check_url
from videojob.contract.wire import AUDIO_FORMATS, FORMATS, DownloadRequest, ErrorCode

MAX_BODY_BYTES = 16 * 1024
MIN_HEIGHT, MAX_HEIGHT = 144, 4320
MIN_DEADLINE_SECONDS = 60
OPTION_FIELDS = ("format", "maxHeight", "deadlineSeconds", "audioFormat", "notifyUrl")
JSON_FIELDS = ("url", "urls", "playlist", "maxItems", *OPTION_FIELDS)
MAX_REPORTED_ITEMS = 50
"""At most this many per-index errors in one `invalid_batch` answer (keeps the answer small)."""


class RequestRejected(ValueError):
    def __init__(self, status: int, code: str, message: str, items: tuple[dict[str, Any], ...] = ()):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.items = items
        """`invalid_batch`: `{"index", "code", "message"}` for each refused URL."""

    def body(self) -> dict[str, Any]:
        """The HTTP error body: `{"error": {"code", "message", "items"?}}`."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.items:
            error["items"] = list(self.items)
        return {"error": error}


@dataclass(frozen=True)
class RequestLimits:
    policy: UrlPolicy
    max_deadline_seconds: int
    max_batch_urls: int = 25
    max_playlist_items: int = 25
    notify_enabled: bool = False
    """True when `NOTIFY_SIGNING_KEY` is configured (webhooks are signed)."""


@dataclass(frozen=True)
class SingleSubmission:
    request: DownloadRequest


@dataclass(frozen=True)
class BatchSubmission:
    requests: tuple[DownloadRequest, ...]
    """One per URL, in request order, with the shared options and no `notify_url`."""
    notify_url: str | None = None


@dataclass(frozen=True)
class PlaylistSubmission:
    request: DownloadRequest
    """The playlist URL with the options every entry gets (no `notify_url`)."""
    max_items: int
    notify_url: str | None = None


Submission = SingleSubmission | BatchSubmission | PlaylistSubmission


@dataclass(frozen=True)
class _Options:
    format: str = "video"
    max_height: int | None = None
    deadline_seconds: int | None = None
    audio_format: str = "m4a"
    notify_url: str | None = None

    def request(self, url: str, *, with_notify: bool) -> DownloadRequest:
        return DownloadRequest(
            url=url,
            format=self.format,  # type: ignore[arg-type]
            max_height=self.max_height,
            deadline_seconds=self.deadline_seconds,
            audio_format=self.audio_format,  # type: ignore[arg-type]
            notify_url=self.notify_url if with_notify else None,
        )


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _check_size(body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        raise RequestRejected(413, ErrorCode.BODY_TOO_LARGE, f"the request body is larger than {MAX_BODY_BYTES} bytes")


def _decode_text(body: bytes, code: str = ErrorCode.INVALID_URL) -> str:
    # utf-8-sig: a leading byte-order mark (some editors and PowerShell add one) is not content.
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequestRejected(400, code, "the body is not UTF-8 text") from None


def _checked_url(url: Any, limits: RequestLimits) -> str:
    try:
        return check_url(url, limits.policy).url
    except UrlRejected as e:
        raise RequestRejected(400, e.code, e.message) from None


def _int_option(d: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise RequestRejected(400, ErrorCode.INVALID_OPTION, f"'{key}' must be a whole number from {lo} to {hi}")
    return v


def notify_policy(policy: UrlPolicy) -> UrlPolicy:
    """The URL policy for webhook receivers: any host, the same address rules."""
    return UrlPolicy(allowed_hosts=("*",), allow_private_addresses=policy.allow_private_addresses)


def _notify_url(doc: dict[str, Any], limits: RequestLimits) -> str | None:
    raw = doc.get("notifyUrl")
    if raw is None:
        return None
    if not limits.notify_enabled:
        raise RequestRejected(
            400, ErrorCode.INVALID_OPTION, "'notifyUrl' is not available: this service has no NOTIFY_SIGNING_KEY"
        )
    if not isinstance(raw, str) or not raw.strip():
        raise RequestRejected(400, ErrorCode.INVALID_OPTION, "'notifyUrl' must be an http(s) URL")
    try:
        return check_url(raw, notify_policy(limits.policy)).url
    except UrlRejected as e:
        raise RequestRejected(400, e.code, f"'notifyUrl': {e.message}") from None


def _options(doc: dict[str, Any], limits: RequestLimits) -> _Options:
    fmt = doc.get("format", "video")
    if fmt not in FORMATS:
        raise RequestRejected(400, ErrorCode.INVALID_OPTION, f"'format' must be one of {', '.join(FORMATS)}")
    audio_format = doc.get("audioFormat", "m4a")
    if audio_format not in AUDIO_FORMATS:
        raise RequestRejected(400, ErrorCode.INVALID_OPTION, f"'audioFormat' must be one of {', '.join(AUDIO_FORMATS)}")
    return _Options(
        format=fmt,
        max_height=_int_option(doc, "maxHeight", MIN_HEIGHT, MAX_HEIGHT),
        deadline_seconds=_int_option(doc, "deadlineSeconds", MIN_DEADLINE_SECONDS, limits.max_deadline_seconds),
        audio_format=audio_format,
        notify_url=_notify_url(doc, limits),
    )


def _load_json_object(body: bytes) -> dict[str, Any]:
    _check_size(body)
    try:
        doc = json.loads(_decode_text(body, ErrorCode.INVALID_JSON) or "null")
    except (ValueError, RecursionError):  # RecursionError: nesting too deep for the decoder
        raise RequestRejected(400, ErrorCode.INVALID_JSON, "the body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise RequestRejected(400, ErrorCode.INVALID_JSON, "the body must be a JSON object")
    unknown = sorted(set(doc) - set(JSON_FIELDS))
    if unknown:
        raise RequestRejected(400, ErrorCode.INVALID_OPTION, f"unknown field '{unknown[0]}'")
    return doc


def _batch_urls(raw: Any, limits: RequestLimits) -> tuple[str, ...]:
    n = limits.max_batch_urls
    if not isinstance(raw, list) or not 1 <= len(raw) <= n:
        raise RequestRejected(400, ErrorCode.INVALID_OPTION, f"'urls' must be a list of 1 to {n} URLs")
    urls: list[str] = []
    items: list[dict[str, Any]] = []
    for index, url in enumerate(raw):
        if not isinstance(url, str):
            items.append({"index": index, "code": ErrorCode.INVALID_URL, "message": "each URL must be a string"})
            continue
        try:
            urls.append(check_url(url, limits.policy).url)
        except UrlRejected as e:
            items.append({"index": index, "code": e.code, "message": e.message})
    if items:
        count = len(items)
        raise RequestRejected(
            400,
            ErrorCode.INVALID_BATCH,
            f"{count} of {len(raw)} URLs {'was' if count == 1 else 'were'} refused; nothing was started",
            tuple(items[:MAX_REPORTED_ITEMS]),
        )
    return tuple(urls)


def parse_json_submission(body: bytes, limits: RequestLimits) -> Submission:
    doc = _load_json_object(body)
    has_url = doc.get("url") is not None and doc.get("url") != ""
    if has_url and doc.get("urls") is not None:
        raise RequestRejected(400, ErrorCode.INVALID_OPTION, "send either 'url' or 'urls', not both")
    playlist = doc.get("playlist", False)
    if not isinstance(playlist, bool):
        raise RequestRejected(400, ErrorCode.INVALID_OPTION, "'playlist' must be true or false")
    if doc.get("maxItems") is not None and not playlist:
        raise RequestRejected(400, ErrorCode.INVALID_OPTION, "'maxItems' needs \"playlist\": true")

    if doc.get("urls") is not None:
        if playlist:
            raise RequestRejected(400, ErrorCode.INVALID_OPTION, "'playlist' takes one 'url', not 'urls'")
        urls = _batch_urls(doc["urls"], limits)
        options = _options(doc, limits)
        return BatchSubmission(tuple(options.request(u, with_notify=False) for u in urls), options.notify_url)

    if not has_url:
        raise RequestRejected(400, ErrorCode.MISSING_URL, "'url' (or 'urls') is required")
    if not isinstance(doc["url"], str):
        raise RequestRejected(400, ErrorCode.INVALID_URL, "'url' must be a string")
    url = _checked_url(doc["url"], limits)
    options = _options(doc, limits)
    if playlist:
        max_items = _int_option(doc, "maxItems", 1, limits.max_playlist_items) or limits.max_playlist_items
        return PlaylistSubmission(options.request(url, with_notify=False), max_items, options.notify_url)
    return SingleSubmission(options.request(url, with_notify=True))


def parse_raw_url(body: bytes, limits: RequestLimits) -> DownloadRequest:
    """The seed-compatible body: just the URL. The seed's README quotes it shell-escaped
    (`watch\\?v\\=ID` inside double quotes reaches us with the backslashes), so those are undone."""
    _check_size(body)
    text = _decode_text(body).strip()
    for ch in "?=&":
        text = text.replace("\\" + ch, ch)
    if not text:
        raise RequestRejected(400, ErrorCode.MISSING_URL, "the body must be the video URL")
    return DownloadRequest(url=_checked_url(text, limits))


def parse_submission(body: bytes, content_type: str | None, limits: RequestLimits) -> Submission:
    """`POST /api/downloads`: JSON (one job, a batch or a playlist), or text/plain with one URL."""
    media_type = _media_type(content_type)
    if media_type == "application/json" or media_type.endswith("+json"):
        return parse_json_submission(body, limits)
    if media_type in ("text/plain", ""):
        return SingleSubmission(parse_raw_url(body, limits))
    _check_size(body)
    raise RequestRejected(
        415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send application/json or text/plain (just the URL)"
    )


def parse_seed_submission(body: bytes, content_type: str | None, limits: RequestLimits) -> Submission:
    """`POST /api/orchestrator_httpstart`: the raw URL whatever the content type (curl -d sends
    form-urlencoded), or JSON when declared as such."""
    if _media_type(content_type) == "application/json":
        return parse_json_submission(body, limits)
    return SingleSubmission(parse_raw_url(body, limits))


def _single(submission: Submission) -> DownloadRequest:
    if not isinstance(submission, SingleSubmission):
        raise RequestRejected(400, ErrorCode.INVALID_OPTION, "this endpoint takes one 'url'")
    return submission.request


def parse_download_request(body: bytes, content_type: str | None, limits: RequestLimits) -> DownloadRequest:
    """One job from `POST /api/downloads` (see `parse_submission` for batches and playlists)."""
    return _single(parse_submission(body, content_type, limits))


def parse_seed_request(body: bytes, content_type: str | None, limits: RequestLimits) -> DownloadRequest:
    return _single(parse_seed_submission(body, content_type, limits))

