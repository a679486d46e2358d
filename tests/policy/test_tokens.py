"""Per-job callback tokens: HMAC of the job id, URL-safe, checked in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from videojob.tokens import bearer_token, job_token, verify_job_token

KEY = "a-signing-key-that-is-long-enough-0123456789"


def test_token_is_base64url_hmac_sha256_of_the_job_id() -> None:
    expected = base64.urlsafe_b64encode(hmac.new(KEY.encode(), b"job-1", hashlib.sha256).digest()).rstrip(b"=")

    assert job_token(KEY, "job-1") == expected.decode()


def test_token_is_safe_in_a_header_and_url() -> None:
    token = job_token(KEY, "0123456789abcdef0123456789abcdef")

    assert len(token) == 43
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_token_verifies_for_its_own_job_only() -> None:
    token = job_token(KEY, "job-1")

    assert verify_job_token(KEY, "job-1", token)
    assert not verify_job_token(KEY, "job-2", token)
    assert not verify_job_token(KEY + "x", "job-1", token)


@pytest.mark.parametrize("presented", [None, "", "x", "é" * 43])
def test_garbage_never_verifies(presented: str | None) -> None:
    assert not verify_job_token(KEY, "job-1", presented)


def test_a_token_with_its_padding_does_not_verify() -> None:
    # One canonical form: the unpadded base64url the spec builder hands to the worker.
    assert not verify_job_token(KEY, "job-1", job_token(KEY, "job-1") + "=")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("abc", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token_from_the_authorization_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
