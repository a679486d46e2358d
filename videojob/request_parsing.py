"""Turn an HTTP request body into a `DownloadRequest`, or a 4xx with an error code.

Pure: the HTTP trigger passes bytes and headers in and maps `RequestRejected` to a response.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .contract import AUDIO_FORMATS, FORMATS, DownloadRequest, ErrorCode
from .url_policy import UrlPolicy, UrlRejected, check_url

MAX_BODY_BYTES = 16 * 1024
MIN_HEIGHT, MAX_HEIGHT = 144, 4320
MIN_DEADLINE_SECONDS = 60
JSON_FIELDS = ("url", "format", "maxHeight", "deadlineSeconds", "audioFormat")


class RequestRejected(ValueError):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RequestLimits:
    policy: UrlPolicy
    max_deadline_seconds: int


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


def parse_json_request(body: bytes, limits: RequestLimits) -> DownloadRequest:
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
    if doc.get("url") is None or doc.get("url") == "":
        raise RequestRejected(400, ErrorCode.MISSING_URL, "'url' is required")
    if not isinstance(doc["url"], str):
        raise RequestRejected(400, ErrorCode.INVALID_URL, "'url' must be a string")
    fmt = doc.get("format", "video")
    if fmt not in FORMATS:
        raise RequestRejected(400, ErrorCode.INVALID_OPTION, f"'format' must be one of {', '.join(FORMATS)}")
    audio_format = doc.get("audioFormat", "m4a")
    if audio_format not in AUDIO_FORMATS:
        raise RequestRejected(400, ErrorCode.INVALID_OPTION, f"'audioFormat' must be one of {', '.join(AUDIO_FORMATS)}")
    max_height = _int_option(doc, "maxHeight", MIN_HEIGHT, MAX_HEIGHT)
    deadline = _int_option(doc, "deadlineSeconds", MIN_DEADLINE_SECONDS, limits.max_deadline_seconds)
    return DownloadRequest(
        url=_checked_url(doc["url"], limits),
        format=fmt,
        max_height=max_height,
        deadline_seconds=deadline,
        audio_format=audio_format,
    )


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


def parse_download_request(body: bytes, content_type: str | None, limits: RequestLimits) -> DownloadRequest:
    """`POST /api/downloads`: JSON, or text/plain with just the URL."""
    media_type = _media_type(content_type)
    if media_type == "application/json" or media_type.endswith("+json"):
        return parse_json_request(body, limits)
    if media_type in ("text/plain", ""):
        return parse_raw_url(body, limits)
    _check_size(body)
    raise RequestRejected(
        415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send application/json or text/plain (just the URL)"
    )


def parse_seed_request(body: bytes, content_type: str | None, limits: RequestLimits) -> DownloadRequest:
    """`POST /api/orchestrator_httpstart`: the raw URL whatever the content type (curl -d sends
    form-urlencoded), or JSON when declared as such."""
    media_type = _media_type(content_type)
    if media_type == "application/json":
        return parse_json_request(body, limits)
    return parse_raw_url(body, limits)
