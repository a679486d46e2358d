"""Request parsing for batches, playlists and completion webhooks (`notifyUrl`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from videojob.contract.setting_values import DEFAULT_ALLOWED_HOSTS
from videojob.contract.url_policy import UrlPolicy
from videojob.contract.wire import DownloadRequest
from videojob.domain.request_parsing import (
    BatchSubmission,
    PlaylistSubmission,
    RequestLimits,
    RequestRejected,
    SingleSubmission,
    parse_download_request,
    parse_seed_submission,
    parse_submission,
)

LIMITS = RequestLimits(
    UrlPolicy(DEFAULT_ALLOWED_HOSTS), max_deadline_seconds=7200, max_batch_urls=3, max_playlist_items=20,
    notify_enabled=True,
)
VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
VIDEO2 = "https://youtu.be/9bZkp7q19f0"
PLAYLIST = "https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG"
HOOK = "https://hooks.example.com/videojob?token=abc"


def parse(doc: dict[str, Any], limits: RequestLimits = LIMITS):
    return parse_submission(json.dumps(doc).encode(), "application/json", limits)


def rejected(doc: dict[str, Any], limits: RequestLimits = LIMITS) -> RequestRejected:
    with pytest.raises(RequestRejected) as e:
        parse(doc, limits)
    assert e.value.status == 400
    return e.value


def test_one_url_is_a_single_job_and_keeps_its_notify_url():
    submission = parse({"url": VIDEO, "format": "audio", "notifyUrl": HOOK})

    assert submission == SingleSubmission(DownloadRequest(VIDEO, "audio", notify_url=HOOK))
    assert submission.request.to_wire()["notifyUrl"] == HOOK


def test_urls_make_a_batch_with_shared_options_and_one_notification():
    submission = parse({"urls": [VIDEO, VIDEO2], "maxHeight": 720, "notifyUrl": HOOK})

    assert submission == BatchSubmission(
        (DownloadRequest(VIDEO, max_height=720), DownloadRequest(VIDEO2, max_height=720)), notify_url=HOOK
    )
    assert all(r.notify_url is None for r in submission.requests)  # items never notify


def test_a_batch_with_bad_urls_is_refused_as_a_whole_listing_every_bad_index():
    e = rejected({"urls": [VIDEO, "http://169.254.169.254/latest", 42], "format": "video"})

    assert e.code == "invalid_batch"
    assert "2 of 3" in e.message
    assert [(i["index"], i["code"]) for i in e.items] == [(1, "private_address"), (2, "invalid_url")]
    assert all(i["message"] for i in e.items)
    assert e.body() == {"error": {"code": "invalid_batch", "message": e.message, "items": list(e.items)}}


def test_a_batch_refuses_hosts_outside_the_allowlist_per_index():
    e = rejected({"urls": ["https://vimeo.com/1", VIDEO, "ftp://youtube.com/x"]})

    assert [(i["index"], i["code"]) for i in e.items] == [(0, "host_not_allowed"), (2, "scheme_not_allowed")]


@pytest.mark.parametrize(
    "doc",
    [
        {"urls": []},
        {"urls": [VIDEO] * 4},  # more than MAX_BATCH_URLS
        {"urls": VIDEO},
        {"url": VIDEO, "urls": [VIDEO2]},
        {"urls": [VIDEO], "playlist": True},
        {"url": VIDEO, "maxItems": 5},  # maxItems without playlist
        {"url": PLAYLIST, "playlist": "yes"},
        {"url": PLAYLIST, "playlist": True, "maxItems": 0},
        {"url": PLAYLIST, "playlist": True, "maxItems": 21},
        {"url": PLAYLIST, "playlist": True, "maxItems": 2.5},
        {"urls": [VIDEO], "format": "mp4"},
    ],
)
def test_malformed_batch_and_playlist_options_are_invalid_option(doc: dict[str, Any]):
    assert rejected(doc).code == "invalid_option"


def test_a_playlist_takes_max_items_and_defaults_to_the_setting():
    explicit = parse({"url": PLAYLIST, "playlist": True, "maxItems": 5, "format": "audio", "notifyUrl": HOOK})
    default = parse({"url": PLAYLIST, "playlist": True})
    not_a_playlist = parse({"url": VIDEO, "playlist": False})

    assert explicit == PlaylistSubmission(DownloadRequest(PLAYLIST, "audio"), max_items=5, notify_url=HOOK)
    assert default == PlaylistSubmission(DownloadRequest(PLAYLIST), max_items=20)
    assert isinstance(not_a_playlist, SingleSubmission)


def test_a_playlist_url_goes_through_the_policy():
    assert rejected({"url": "https://vimeo.com/album/1", "playlist": True}).code == "host_not_allowed"


def test_notify_url_applies_the_address_rules_but_not_the_video_host_allowlist():
    assert parse({"url": VIDEO, "notifyUrl": "http://receiver.example.org:8080/x"}).request.notify_url
    assert rejected({"url": VIDEO, "notifyUrl": "http://127.0.0.1:9000/hook"}).code == "private_address"
    assert rejected({"url": VIDEO, "notifyUrl": "http://[::ffff:10.0.0.1]/hook"}).code == "private_address"
    assert rejected({"url": VIDEO, "notifyUrl": "http://0x7f000001/"}).code == "private_address"
    assert rejected({"url": VIDEO, "notifyUrl": "ftp://hooks.example.com/"}).code == "scheme_not_allowed"
    assert rejected({"url": VIDEO, "notifyUrl": "https://user:pw@hooks.example.com/"}).code == "invalid_url"
    assert rejected({"url": VIDEO, "notifyUrl": 7}).code == "invalid_option"
    e = rejected({"urls": [VIDEO], "notifyUrl": "http://192.168.1.10/"})
    assert e.code == "private_address" and "notifyUrl" in e.message


def test_private_notify_urls_are_allowed_in_development():
    dev = RequestLimits(UrlPolicy(DEFAULT_ALLOWED_HOSTS, allow_private_addresses=True), 7200, notify_enabled=True)

    assert parse({"url": VIDEO, "notifyUrl": "http://127.0.0.1:9000/hook"}, dev).request.notify_url


def test_notify_url_is_refused_while_no_signing_key_is_configured():
    unsigned = RequestLimits(UrlPolicy(DEFAULT_ALLOWED_HOSTS), 7200, notify_enabled=False)

    e = rejected({"url": VIDEO, "notifyUrl": HOOK}, unsigned)
    assert e.code == "invalid_option" and "NOTIFY_SIGNING_KEY" in e.message
    assert isinstance(parse({"url": VIDEO}, unsigned), SingleSubmission)


def test_the_seed_starter_accepts_a_json_batch_and_the_single_parser_refuses_one():
    body = json.dumps({"urls": [VIDEO, VIDEO2]}).encode()

    assert isinstance(parse_seed_submission(body, "application/json", LIMITS), BatchSubmission)
    with pytest.raises(RequestRejected) as e:
        parse_download_request(body, "application/json", LIMITS)
    assert e.value.code == "invalid_option"
