"""Completion webhook signatures: what the sender adds and what a receiver checks.

`X-Signature: sha256=<hex HMAC-SHA256(NOTIFY_SIGNING_KEY, f"{timestamp}.{body}")>` and
`X-Signature-Timestamp: <unix seconds>`, where `body` is the exact bytes of the request body.
A receiver recomputes the HMAC over the raw body it received, compares in constant time and
refuses timestamps too far from its clock (replays of an old delivery).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
SCHEME = "sha256="
DEFAULT_TOLERANCE_SECONDS = 300


def sign(key: str, timestamp: int, body: bytes) -> str:
    """The `X-Signature` value for `body` sent at `timestamp`."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return SCHEME + hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_headers(key: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(key, timestamp, body), TIMESTAMP_HEADER: str(int(timestamp))}


def verify(
    key: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when `signature` signs `body` at `timestamp` and the timestamp is within tolerance."""
    if not signature or not timestamp or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(key, int(timestamp), body), signature.strip())
