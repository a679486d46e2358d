"""The principal headers the devhost's stand-in for App Service Authentication sends, for a user
name typed into its sign-in form (or given to `cli --as NAME`). Standard library only (the CLI
uses it). The shape is the platform's (tests/api/data/client_principal.md): the object id a GUID
(here derived from the name, so a name is the same user every time), the claims Base64 JSON.
Local development only: nothing in Azure reads these.
"""

from __future__ import annotations

import base64
import json
import uuid

OPERATOR_ROLE = "Downloads.Admin"
OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
ROLE_CLAIM_TYPE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
_NAMESPACE = uuid.UUID("6f1b8a52-3c1e-4d7a-9a55-0d2f4e3b7c10")
MAX_NAME_LENGTH = 64


def local_object_id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name.strip().lower()))


def valid_name(name: str) -> bool:
    name = name.strip()
    return 1 <= len(name) <= MAX_NAME_LENGTH and name.isprintable()


def principal_headers(name: str, operator: bool = False) -> dict[str, str]:
    """`x-ms-client-principal`, `-id`, `-name`, `-idp` for a local user."""
    name = name.strip()
    object_id = local_object_id(name)
    claims = [{"typ": OBJECT_ID_CLAIM, "val": object_id}, {"typ": "name", "val": name}]
    if operator:
        claims.append({"typ": "roles", "val": OPERATOR_ROLE})
    doc = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": ROLE_CLAIM_TYPE}
    return {
        "x-ms-client-principal": base64.b64encode(json.dumps(doc).encode()).decode(),
        "x-ms-client-principal-id": object_id,
        "x-ms-client-principal-name": name,
        "x-ms-client-principal-idp": "aad",
    }
