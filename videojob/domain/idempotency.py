"""Idempotent submits: a request's key and the deterministic instance id it maps to.

Pure. The key is the client's `Idempotency-Key` header or, when absent and `DEDUPLICATE=true`,
one derived from the request itself: the normalized URL(s) plus the canonical JSON of the
options, so the same video asked for twice (in a different letter case, with a fragment, with the
options in another order) maps to the same job while other options make another job.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from videojob.contract.wire import ErrorCode
from videojob.domain.request_parsing import (
    BatchSubmission,
    PlaylistSubmission,
    RequestRejected,
    SingleSubmission,
    Submission,
)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
INSTANCE_ID_PREFIX = "k-"
KIND_CLIENT_KEY = "client"
KIND_DERIVED = "dedupe"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def instance_id_for(kind: str, key: str, owner: str | None = None) -> str:
    """`k-` + 32 hex digits of `sha256(kind, [owner,] key)`: URL-safe, deterministic, no key material
    readable from it. `kind` keeps a client key from ever colliding with a derived one; `owner`
    (entra mode only, so key-mode ids never change) keeps two users' keys apart."""
    scoped = key if owner is None else f"{owner}\n{key}"
    digest = hashlib.sha256(f"{kind}\n{scoped}".encode()).hexdigest()
    return f"{INSTANCE_ID_PREFIX}{digest[:32]}"


def checked_client_key(raw: str | None) -> str | None:
    """The header's value, or None when absent; 400 `invalid_option` when malformed."""
    if raw is None:
        return None
    key = raw.strip()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise RequestRejected(
            400,
            ErrorCode.INVALID_OPTION,
            f"'{HEADER}' must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
        )
    return key


def normalize_url(url: str) -> str:
    """Lowercase scheme and host, the default port dropped, the fragment dropped; path and query
    unchanged (they are case-sensitive on most sites)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _options(wire: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in wire.items() if k != "url"}


def derived_key(submission: Submission) -> str:
    """The canonical JSON of what the submission asks for."""
    doc: dict[str, Any]
    if isinstance(submission, SingleSubmission):
        wire = submission.request.to_wire()
        doc = {"kind": "single", "url": normalize_url(submission.request.url), "options": _options(wire)}
    elif isinstance(submission, BatchSubmission):
        doc = {
            "kind": "batch",
            "urls": [normalize_url(r.url) for r in submission.requests],
            "options": _options(submission.requests[0].to_wire()),
            "notifyUrl": submission.notify_url,
        }
    elif isinstance(submission, PlaylistSubmission):
        doc = {
            "kind": "playlist",
            "url": normalize_url(submission.request.url),
            "options": _options(submission.request.to_wire()),
            "maxItems": submission.max_items,
            "notifyUrl": submission.notify_url,
        }
    else:  # pragma: no cover - the union is closed
        raise TypeError(type(submission).__name__)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def submission_instance_id(submission: Submission, client_key: str | None, deduplicate: bool,
                           owner: str | None = None) -> str | None:
    """The instance id to start under, or None for a fresh random one (the extension's)."""
    if client_key is not None:
        return instance_id_for(KIND_CLIENT_KEY, client_key, owner)
    if deduplicate:
        return instance_id_for(KIND_DERIVED, derived_key(submission), owner)
    return None
