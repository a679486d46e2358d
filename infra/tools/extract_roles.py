"""Regenerate tests/infra/data/builtin_roles.json from the published list of Azure built-in roles.

The source is the MicrosoftDocs/azure-docs repository: every page under
articles/role-based-access-control/built-in-roles/ ends each role's section with the role
definition as a ```json block (id, roleName, permissions). Only the roles this project uses
(infra/modules/roles.json) and the ones its tests forbid (FORBIDDEN below) are kept.

A sparse checkout is enough (the whole repository is tens of gigabytes):

    git clone --filter=blob:none --sparse https://github.com/MicrosoftDocs/azure-docs
    git -C azure-docs sparse-checkout set articles/role-based-access-control/built-in-roles
    python infra/tools/extract_roles.py azure-docs > tests/infra/data/builtin_roles.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = "articles/role-based-access-control/built-in-roles"
USED = REPO / "infra" / "modules" / "roles.json"
# Roles that must never be granted: they manage access, or everything, or read account keys
# (tests/infra/test_access.py derives "privileged" from their permissions and checks these are).
FORBIDDEN = (
    "Owner",
    "Contributor",
    "User Access Administrator",
    "Role Based Access Control Administrator",
    "Storage Account Contributor",
    "Storage Account Key Operator Service Role",
    "AcrPush",
    "AcrDelete",
)
JSON_BLOCK = re.compile(r"```json\n(.*?)\n```", re.DOTALL)


def role_definitions(markdown: str) -> Iterator[dict]:
    """Every built-in role definition in one page, as published."""
    for block in JSON_BLOCK.findall(markdown):
        try:
            definition = json.loads(block)
        except json.JSONDecodeError:
            continue
        if isinstance(definition, dict) and definition.get("roleType") == "BuiltInRole":
            yield definition


def _commit(checkout: Path, page: Path) -> str:
    """The commit that last changed the page, as the checkout has it."""
    out = subprocess.run(
        ["git", "-C", str(checkout), "log", "-1", "--format=%H", "--", str(page.relative_to(checkout))],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def extract(checkout: Path, wanted: set[str]) -> dict:
    roles: dict[str, dict] = {}
    for page in sorted((checkout / PAGES).glob("*.md")):
        for definition in role_definitions(page.read_text(encoding="utf-8")):
            name = definition["roleName"]
            if name not in wanted:
                continue
            (permissions,) = definition["permissions"]
            roles[name] = {
                "id": definition["name"],
                "path": str(page.relative_to(checkout)),
                "commit": _commit(checkout, page),
                **{k: permissions.get(k, []) for k in ("actions", "notActions", "dataActions", "notDataActions")},
            }
    missing = wanted - roles.keys()
    if missing:
        raise SystemExit(f"not in the published list: {sorted(missing)}")
    return {
        "source": {"repository": "MicrosoftDocs/azure-docs", "pages": PAGES},
        "roles": dict(sorted(roles.items())),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a (sparse) checkout of MicrosoftDocs/azure-docs")
    args = parser.parse_args(argv)
    wanted = set(json.loads(USED.read_text(encoding="utf-8"))) | set(FORBIDDEN)
    json.dump(extract(args.checkout.resolve(), wanted), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
