"""Callback tokens: one per job, run and attempt, expiring at the deadline, URL/header safe,
checked in constant time (issue 19)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from videojob.domain.tokens import TokenClaims, bearer_token, verified_claims, worker_token

KEY = "a-signing-key-that-is-long-enough-0123456789"
DEADLINE = datetime(2026, 1, 1, 12, 0, 0, 750_000, tzinfo=UTC)
JOB = "0123456789abcdef0123456789abcdef"
# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def test_a_token_names_its_run_attempt_and_expiry() -> None:
    token = worker_token(KEY, JOB, "0a1b2c3d", 2, DEADLINE)

    assert verified_claims(KEY, JOB, token) == TokenClaims("0a1b2c3d", 2, int(DEADLINE.timestamp()))


def test_token_is_compact_and_safe_in_a_header_and_url() -> None:
    token = worker_token(KEY, "k-" + "f" * 32, "ffffffff", 10, DEADLINE + timedelta(days=3650))

    assert B64TOKEN.fullmatch(token) and len(token) <= 80
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


@pytest.mark.parametrize(
    ("job", "key"), [("other-job", KEY), (JOB, KEY + "x")], ids=["another job", "another key"]
)
def test_token_verifies_for_its_own_job_and_key_only(job: str, key: str) -> None:
    assert verified_claims(key, job, worker_token(KEY, JOB, "0a1b2c3d", 1, DEADLINE)) is None


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace(".0a1b2c3d.", ".0a1b2c3e."),
        lambda t: t.replace(".1.", ".2."),
        lambda t: t.replace(f".{int(DEADLINE.timestamp())}.", f".{int(DEADLINE.timestamp()) + 3600}."),
        lambda t: t + "=",
        lambda t: t[:-1],
        lambda t: "v2" + t[2:],
        lambda t: t.upper(),
    ],
    ids=["run", "attempt", "expiry", "padding", "truncated", "version", "case"],
)
def test_a_changed_claim_or_form_never_verifies(edit) -> None:
    token = worker_token(KEY, JOB, "0a1b2c3d", 1, DEADLINE)

    assert verified_claims(KEY, JOB, edit(token)) is None


@pytest.mark.parametrize("presented", [None, "", "x", "é" * 43, "v1.." + "a" * 300, "v1.0a1b2c3d.1.1." + "A" * 43])
def test_garbage_never_verifies(presented: str | None) -> None:
    assert verified_claims(KEY, JOB, presented) is None


def test_expiry_is_the_deadline_to_the_second() -> None:
    claims = verified_claims(KEY, JOB, worker_token(KEY, JOB, "0a1b2c3d", 1, DEADLINE))
    assert claims is not None

    assert not claims.expired(DEADLINE.replace(microsecond=0) - timedelta(seconds=1))
    assert claims.expired(DEADLINE.replace(microsecond=0))


def test_a_run_without_token_is_an_empty_claim() -> None:
    assert verified_claims(KEY, JOB, worker_token(KEY, JOB, None, 1, DEADLINE)) == TokenClaims(
        "", 1, int(DEADLINE.timestamp())
    )


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
