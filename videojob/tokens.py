"""Per-job callback tokens: `base64url(HMAC-SHA256(CALLBACK_SIGNING_KEY, jobId))`.

The worker gets only its own job's token, never a Durable system key, so a leaked token can
report on one job and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def job_token(signing_key: str, job_id: str) -> str:
    digest = hmac.new(signing_key.encode("utf-8"), job_id.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def verify_job_token(signing_key: str, job_id: str, presented: str | None) -> bool:
    """Constant-time comparison of a presented token with the job's token."""
    if not presented:
        return False
    return hmac.compare_digest(job_token(signing_key, job_id).encode("ascii"), presented.encode("utf-8", "replace"))
