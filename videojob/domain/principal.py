"""Who is calling, and which jobs they may see (issue 21, README "Users").

Pure. In `AUTH_MODE=entra` App Service Authentication ("Easy Auth") signs people in with
Microsoft Entra ID and hands the app the caller in request headers (Microsoft's "Work with user
identities in Azure App Service authentication"; extract in tests/api/data/client_principal.md):

- `X-MS-CLIENT-PRINCIPAL-ID`: the caller's identifier (the Entra object id, a GUID);
- `X-MS-CLIENT-PRINCIPAL-NAME`: a human-readable name (shown, never trusted for anything);
- `X-MS-CLIENT-PRINCIPAL`: Base64 JSON `{"auth_typ", "claims": [{"typ", "val"}], "name_typ",
  "role_typ"}`.

The platform strips these headers from outside requests, so they are the platform's only when its
authentication is on, which App Service says by injecting `WEBSITE_AUTH_ENABLED`. Without that
flag the headers are anyone's: entra mode then refuses every request (`AuthMisconfigured`) rather
than trust them.

App roles reach the claims as `roles` (Easy Auth uses Entra's v2.0 tokens, whose role claim is
`roles`; microsoft-identity-web PR #2166) or under the principal's `role_typ`; both are read.
A caller holding `Downloads.Admin` is an operator: sees and manages every job.

In `key` mode there is one kind of caller, whoever holds a function key: `KEY_CALLER`, the owner
of the single `default` partition, with every job in sight (today's behaviour).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from videojob.domain.job_index import DEFAULT_OWNER

PRINCIPAL_HEADER = "x-ms-client-principal"
PRINCIPAL_ID_HEADER = "x-ms-client-principal-id"
PRINCIPAL_NAME_HEADER = "x-ms-client-principal-name"
PRINCIPAL_IDP_HEADER = "x-ms-client-principal-idp"
OPERATOR_ROLE = "Downloads.Admin"
ROLES_CLAIM = "roles"
OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
"""Where the principal carries the object id (the first after claims mapping, the second raw)."""
MAX_PRINCIPAL_HEADER_CHARS = 32 * 1024
MAX_NAME_CHARS = 256


class Unauthenticated(Exception):
    """No signed-in caller, or principal headers that do not hold together (401)."""


class AuthMisconfigured(Exception):
    """`AUTH_MODE=entra` without the platform's authentication in front of the app."""


@dataclass(frozen=True)
class Caller:
    owner: str
    """The partition of the caller's jobs: the Entra object id (lowercase GUID), or `default`."""
    name: str | None = None
    is_operator: bool = False

    def may_see(self, job_owner: str | None) -> bool:
        """A job with no owner (one started in key mode) belongs to `default`."""
        return self.is_operator or (job_owner or DEFAULT_OWNER) == self.owner


KEY_CALLER = Caller(DEFAULT_OWNER, None, is_operator=True)


def _decode_principal(raw: str) -> Mapping[str, Any]:
    if len(raw) > MAX_PRINCIPAL_HEADER_CHARS:
        raise Unauthenticated("the client principal header is too long")
    try:
        decoded = base64.b64decode(raw.strip(), validate=True)
        doc = json.loads(decoded.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise Unauthenticated("the client principal header is not Base64 JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list):
        raise Unauthenticated("the client principal has no claims")
    for claim in doc["claims"]:
        if not isinstance(claim, dict) or not isinstance(claim.get("typ"), str) or not isinstance(
            claim.get("val"), str
        ):
            raise Unauthenticated("a claim of the client principal is malformed")
    return doc


def _object_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        raise Unauthenticated("the client principal id is not an object id") from None


def roles_of(principal: Mapping[str, Any]) -> frozenset[str]:
    role_type = principal.get("role_typ")
    types = {ROLES_CLAIM} | ({role_type} if isinstance(role_type, str) and role_type else set())
    return frozenset(c["val"] for c in principal["claims"] if c["typ"] in types)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict from a test or another host: match case-insensitively
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value if value else None


def caller_from_headers(headers: Mapping[str, str], *, platform_auth_enabled: bool) -> Caller:
    """The signed-in caller of an entra-mode request. Raises `AuthMisconfigured` when the platform's
    authentication is off, `Unauthenticated` when nobody signed in or the headers disagree."""
    if not platform_auth_enabled:
        raise AuthMisconfigured(
            "AUTH_MODE=entra needs App Service Authentication in front of the app (WEBSITE_AUTH_ENABLED is not set)"
        )
    raw_id = _header(headers, PRINCIPAL_ID_HEADER)
    raw_principal = _header(headers, PRINCIPAL_HEADER)
    if raw_id is None or raw_principal is None:
        raise Unauthenticated("sign in first")
    owner = _object_id(raw_id)
    principal = _decode_principal(raw_principal)
    claimed = {c["val"].strip().lower() for c in principal["claims"] if c["typ"] in OBJECT_ID_CLAIMS}
    if claimed and claimed != {owner}:
        raise Unauthenticated("the client principal names another caller")
    name = _header(headers, PRINCIPAL_NAME_HEADER)
    return Caller(
        owner=owner,
        name=name[:MAX_NAME_CHARS] if name else None,
        is_operator=OPERATOR_ROLE in roles_of(principal),
    )


def parse_owner(raw: str) -> str | None:
    """An owner named in a query (`?owner=`): an object id, or `default` (jobs from key mode)."""
    if raw == DEFAULT_OWNER:
        return raw
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def job_owner(plan_wire: Any) -> str | None:
    """The owner a job's input names (`JobPlan` / `BatchPlan` wire, as the Durable status shows it:
    a mapping or its JSON text); None for a job started without one (key mode)."""
    if isinstance(plan_wire, str):
        try:
            plan_wire = json.loads(plan_wire)
        except ValueError:
            return None
    owner = plan_wire.get("owner") if isinstance(plan_wire, Mapping) else None
    return owner if isinstance(owner, str) and owner else None


def scoped_idempotency_owner(mode: str, caller: Caller) -> str | None:
    """The owner an idempotency key is scoped to: the caller in entra mode (two users' keys never
    name the same job); none in key mode, so key-mode instance ids stay what they were."""
    return caller.owner if mode == "entra" else None
