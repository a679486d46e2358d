"""Request parsing: JSON and plain-text bodies into a DownloadRequest, or a 4xx with a code."""

from __future__ import annotations

import json

import pytest

from videojob.contract.setting_values import DEFAULT_ALLOWED_HOSTS
from videojob.contract.url_policy import UrlPolicy
from videojob.contract.wire import DownloadRequest
from videojob.domain.request_parsing import (
    MAX_BODY_BYTES,
    RequestLimits,
    RequestRejected,
    parse_download_request,
    parse_seed_request,
)

LIMITS = RequestLimits(UrlPolicy(DEFAULT_ALLOWED_HOSTS), max_deadline_seconds=7200)
VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


def rejected(body: bytes | str, content_type: str | None, parse=parse_download_request) -> RequestRejected:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(RequestRejected) as e:
        parse(raw, content_type, LIMITS)
    return e.value


def test_json_with_every_option() -> None:
    body = json.dumps(
        {"url": VIDEO, "format": "audio", "audioFormat": "mp3", "maxHeight": 1080, "deadlineSeconds": 900}
    )

    request = parse_download_request(body.encode(), "application/json; charset=utf-8", LIMITS)

    assert request == DownloadRequest(VIDEO, "audio", 1080, 900, "mp3")


def test_json_defaults_to_video_m4a_without_limits() -> None:
    request = parse_download_request(json.dumps({"url": VIDEO}).encode(), "application/json", LIMITS)

    assert request == DownloadRequest(VIDEO)
    assert request.to_wire() == {"url": VIDEO, "format": "video"}


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=utf-8", None, ""])
def test_plain_text_is_just_the_url(content_type: str | None) -> None:
    assert parse_download_request(f"{VIDEO}\n".encode(), content_type, LIMITS) == DownloadRequest(VIDEO)


def test_vendor_json_media_type_is_json() -> None:
    body = json.dumps({"url": VIDEO}).encode()

    assert parse_download_request(body, "application/vnd.api+json", LIMITS).url == VIDEO


def test_byte_order_mark_is_not_part_of_the_body() -> None:
    bom = b"\xef\xbb\xbf"

    assert parse_download_request(bom + json.dumps({"url": VIDEO}).encode(), "application/json", LIMITS).url == VIDEO
    assert parse_download_request(bom + VIDEO.encode(), "text/plain", LIMITS).url == VIDEO


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{", "application/json", 400, "invalid_json"),
        ("null", "application/json", 400, "invalid_json"),
        ('"' + VIDEO + '"', "application/json", 400, "invalid_json"),
        (b"\xff\xfe{}", "application/json", 400, "invalid_json"),
        ("[" * 5000 + "]" * 5000, "application/json", 400, "invalid_json"),
        ("", "application/json", 400, "invalid_json"),
        ("{}", "application/json", 400, "missing_url"),
        ('{"url": null}', "application/json", 400, "missing_url"),
        ('{"url": ["x"]}', "application/json", 400, "invalid_url"),
        (b"\xff\xfe", "text/plain", 400, "invalid_url"),
        ("  ", "text/plain", 400, "missing_url"),
        (VIDEO + "\n" + VIDEO, "text/plain", 400, "invalid_url"),
        ('{"url": "' + VIDEO + '", "format": "mp4"}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "maxHeight": 100}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "maxHeight": 720.5}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "maxHeight": true}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "deadlineSeconds": 59}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "deadlineSeconds": 7201}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "audioFormat": "flac"}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "extra": 1}', "application/json", 400, "invalid_option"),
        ("x" * (MAX_BODY_BYTES + 1), "text/plain", 413, "body_too_large"),
        ("x" * (MAX_BODY_BYTES + 1), "application/json", 413, "body_too_large"),
        ("x" * (MAX_BODY_BYTES + 1), "image/png", 413, "body_too_large"),
        ("url=" + VIDEO, "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (VIDEO, "multipart/form-data; boundary=x", 415, "unsupported_media_type"),
    ],
)
def test_rejections(body: bytes | str, content_type: str, status: int, code: str) -> None:
    e = rejected(body, content_type)

    assert (e.status, e.code) == (status, code)
    assert e.message


def test_url_policy_codes_come_through() -> None:
    assert rejected(json.dumps({"url": "http://169.254.169.254/"}), "application/json").code == "private_address"
    assert rejected("https://vimeo.com/1", "text/plain").code == "host_not_allowed"


@pytest.mark.parametrize(
    "body",
    [
        "https://www.youtube.com/watch\\?v\\=dQw4w9WgXcQ",  # the seed README's curl, quoted in a shell
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        " https://www.youtube.com/watch?v=dQw4w9WgXcQ\n",
    ],
)
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_seed_body_is_the_raw_url_whatever_curl_declares(body: str, content_type: str | None) -> None:
    assert parse_seed_request(body.encode(), content_type, LIMITS) == DownloadRequest(VIDEO)


def test_seed_body_unescapes_ampersands_too() -> None:
    body = b"https://www.youtube.com/watch\\?v\\=abc\\&t\\=42"

    assert parse_seed_request(body, None, LIMITS).url == "https://www.youtube.com/watch?v=abc&t=42"


def test_seed_starter_takes_json_when_declared() -> None:
    body = json.dumps({"url": VIDEO, "format": "audio"}).encode()

    assert parse_seed_request(body, "application/json", LIMITS).format == "audio"


def test_seed_starter_still_applies_the_policy() -> None:
    assert rejected("file:///etc/passwd", None, parse_seed_request).code == "scheme_not_allowed"
    assert rejected("", None, parse_seed_request).code == "missing_url"
