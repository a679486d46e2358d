"""Idempotency keys: deterministic instance ids from a client key or from the request itself."""

from __future__ import annotations

import json
import re

import pytest

from videojob.contract.setting_values import DEFAULT_ALLOWED_HOSTS
from videojob.contract.url_policy import UrlPolicy
from videojob.contract.wire import is_url_safe_instance_id
from videojob.domain.idempotency import (
    checked_client_key,
    derived_key,
    instance_id_for,
    normalize_url,
    submission_instance_id,
)
from videojob.domain.request_parsing import RequestLimits, RequestRejected, parse_submission

LIMITS = RequestLimits(UrlPolicy(DEFAULT_ALLOWED_HOSTS), 7200, max_batch_urls=5, notify_enabled=True)


def submission(body: str | dict):
    raw = body if isinstance(body, str) else json.dumps(body)
    return parse_submission(raw.encode(), "application/json", LIMITS)


def dedupe_id(body: str | dict) -> str | None:
    return submission_instance_id(submission(body), None, deduplicate=True)


def test_the_same_key_gives_the_same_url_safe_id_and_another_key_another():
    a = instance_id_for("client", "order-42")

    assert a == instance_id_for("client", "order-42")
    assert a != instance_id_for("client", "order-43")
    assert a != instance_id_for("dedupe", "order-42")
    assert re.fullmatch(r"k-[0-9a-f]{32}", a)
    assert is_url_safe_instance_id(a)


def test_a_client_key_wins_and_no_key_without_deduplication_means_a_random_id():
    s = submission({"url": "https://www.youtube.com/watch?v=abc"})

    assert submission_instance_id(s, "key-1", deduplicate=True) == instance_id_for("client", "key-1")
    assert submission_instance_id(s, "key-1", deduplicate=False) == instance_id_for("client", "key-1")
    assert submission_instance_id(s, None, deduplicate=False) is None


@pytest.mark.parametrize("raw", ["", "   ", "a" * 256, "clé", "line\nbreak", "tab\there"])
def test_malformed_client_keys_are_refused(raw: str):
    with pytest.raises(RequestRejected) as e:
        checked_client_key(raw)
    assert (e.value.status, e.value.code) == (400, "invalid_option")


def test_wellformed_client_keys_are_kept():
    assert checked_client_key(None) is None
    assert checked_client_key(" 8a2f-ok_Key:1 ") == "8a2f-ok_Key:1"
    assert checked_client_key("x" * 255) == "x" * 255


def test_url_normalization():
    assert normalize_url("HTTPS://WWW.YouTube.COM:443/watch?v=AbC#t=10") == "https://www.youtube.com/watch?v=AbC"
    assert normalize_url("http://youtube.com:80") == "http://youtube.com/"
    assert normalize_url("https://youtube.com:8443/x") == "https://youtube.com:8443/x"
    assert normalize_url("https://youtube.com./x") == "https://youtube.com/x"


def test_deduplication_ignores_case_fragments_and_option_order():
    base = dedupe_id('{"url": "https://www.youtube.com/watch?v=AbC", "format": "audio", "maxHeight": 720}')

    assert base == dedupe_id('{"maxHeight": 720, "format": "audio", "url": "HTTPS://WWW.YOUTUBE.COM/watch?v=AbC#x"}')
    assert base == dedupe_id('{"url": "https://www.youtube.com:443/watch?v=AbC", "maxHeight": 720, "format": "audio",'
                             ' "audioFormat": "m4a"}')  # the default, written out


def test_deduplication_tells_different_requests_apart():
    base = dedupe_id({"url": "https://www.youtube.com/watch?v=AbC"})
    others = [
        dedupe_id({"url": "https://www.youtube.com/watch?v=abc"}),  # the video id is case-sensitive
        dedupe_id({"url": "https://www.youtube.com/watch?v=AbC", "format": "audio"}),
        dedupe_id({"url": "https://www.youtube.com/watch?v=AbC", "maxHeight": 480}),
        dedupe_id({"url": "https://www.youtube.com/watch?v=AbC", "notifyUrl": "https://h.example.com/"}),
        dedupe_id({"urls": ["https://www.youtube.com/watch?v=AbC"]}),  # a batch of one is a batch
        dedupe_id({"url": "https://www.youtube.com/watch?v=AbC", "playlist": True}),
    ]
    assert base not in others
    assert len(set(others)) == len(others)


def test_a_batch_key_depends_on_the_urls_in_order():
    a = dedupe_id({"urls": ["https://youtu.be/a", "https://youtu.be/b"]})

    assert a == dedupe_id({"urls": ["HTTPS://YOUTU.BE/a", "https://youtu.be/b#frag"]})
    assert a != dedupe_id({"urls": ["https://youtu.be/b", "https://youtu.be/a"]})
    assert json.loads(derived_key(submission({"urls": ["https://youtu.be/a"]})))["kind"] == "batch"
