"""Callback tokens: one per job, orchestration run and attempt, valid until the job's deadline.

`v1.<run>.<attempt>.<expires>.<mac>` where `mac = base64url_nopad(HMAC-SHA256(CALLBACK_SIGNING_KEY,
canonical JSON ["videojob-callback", 1, jobId, run, attempt, expires]))`, `run` the orchestration
run's token (`JOB_RUN`, 8 hex; empty when a run has none), `attempt` 1-based and `expires` the
job's deadline in whole Unix seconds. The claims travel in clear so the callback can check the
MAC and the expiry before it reads anything; whether the run and attempt are still the job's
current ones is the callback's second check (`api/callback.py`, against the job's customStatus).

The worker gets only its own attempt's token, never a Durable system key: a leaked token can
report on one attempt of one job, until that attempt ends or the deadline passes, and nothing else.
Every character is in RFC 6750's `b64token` set, so it goes in a header and a URL as it is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime

TOKEN_VERSION = "v1"  # noqa: S105 (a format tag, not a secret)
_MAC_LABEL = "videojob-callback"
_TOKEN_RE = re.compile(
    r"v1\.(?P<run>[0-9a-f]{0,16})\.(?P<attempt>[1-9][0-9]{0,2})\.(?P<expires>[1-9][0-9]{0,11})\.[A-Za-z0-9_-]{43}"
)
MAX_TOKEN_CHARS = 96
"""Longer than any token `worker_token` makes; a longer header is refused before any parsing."""


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token names besides the job (the job is in the URL and in the MAC)."""

    run: str
    attempt: int
    expires: int
    """Unix seconds: the token works strictly before this instant."""

    def expired(self, now: datetime) -> bool:
        return now.timestamp() >= self.expires


def expiry_seconds(expires_at: datetime) -> int:
    """A token's expiry as carried: whole Unix seconds (the deadline's fraction dropped)."""
    return int(expires_at.timestamp())


def _mac(signing_key: str, job_id: str, run: str, attempt: int, expires: int) -> str:
    message = json.dumps([_MAC_LABEL, 1, job_id, run, attempt, expires], separators=(",", ":"), ensure_ascii=True)
    digest = hmac.new(signing_key.encode("utf-8"), message.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def worker_token(signing_key: str, job_id: str, run: str | None, attempt: int, expires_at: datetime) -> str:
    """The token one attempt's worker holds (`CALLBACK_TOKEN`): the one function that derives it, for
    the container spec, the callback and whatever else keys on "the token the worker holds"."""
    run = run or ""
    expires = expiry_seconds(expires_at)
    return f"{TOKEN_VERSION}.{run}.{attempt}.{expires}.{_mac(signing_key, job_id, run, attempt, expires)}"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def verified_claims(signing_key: str, job_id: str, presented: str | None) -> TokenClaims | None:
    """The claims of a token made by `worker_token` for this job with this key, else None. The
    whole token is compared in constant time with the one the claims would give; expiry is the
    caller's check (`TokenClaims.expired`)."""
    if not presented or len(presented) > MAX_TOKEN_CHARS:
        return None
    match = _TOKEN_RE.fullmatch(presented)
    if match is None:
        return None
    claims = TokenClaims(match["run"], int(match["attempt"]), int(match["expires"]))
    expected = f"{TOKEN_VERSION}.{claims.run}.{claims.attempt}.{claims.expires}." + _mac(
        signing_key, job_id, claims.run, claims.attempt, claims.expires
    )
    if not hmac.compare_digest(expected.encode("ascii"), presented.encode("ascii")):
        return None
    return claims
