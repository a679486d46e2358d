"""Regenerate tests/infra/data/bicep_types.json: the resource types and API versions infra/ uses,
as Azure/bicep-types-az publishes them (the type definitions the Bicep compiler checks against).

For every `'<type>@<apiVersion>'` in infra/**/*.bicep, the script finds the types.json under
generated/ that defines it and keeps the resource body's shape: property names, which are
read-only, nested objects, arrays, string enums. tests/infra/test_api_versions.py checks that
every type@version exists and that every property the Bicep sets is one the type has.

    git clone --depth 1 https://github.com/Azure/bicep-types-az
    python infra/tools/extract_bicep_types.py bicep-types-az > tests/infra/data/bicep_types.json

(`--commit` names the source commit when the checkout is an export without .git.)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TYPE_REF = re.compile(r"'([A-Za-z0-9]+\.[A-Za-z0-9.]+/[A-Za-z0-9/]+)@([0-9]{4}-[0-9]{2}-[0-9]{2}(?:-preview)?)'")
READ_ONLY = 2  # bicep-types PropertyFlags: Required=1, ReadOnly=2, WriteOnly=4, DeployTimeConstant=8


def used_types(infra: Path) -> set[str]:
    return {f"{t}@{v}" for p in infra.rglob("*.bicep") for t, v in TYPE_REF.findall(p.read_text(encoding="utf-8"))}


class Shapes:
    """The compact shape of a bicep-types type: "string" | "int" | "bool" | "any" | {"enum": [...]}
    | {"items": shape} | {"properties": {name: shape}, "readOnly": [names], "additional": shape}
    | {"discriminator": name, "variants": {value: shape}}."""

    def __init__(self, types: list[dict[str, Any]]):
        self.types = types

    def ref(self, ref: dict[str, str]) -> dict[str, Any]:
        return self.types[int(ref["$ref"].split("/")[-1])]

    def shape(self, t: dict[str, Any], seen: frozenset[int] = frozenset()) -> Any:
        kind = t["$type"]
        if kind in ("StringType", "IntegerType", "BooleanType", "AnyType"):
            return {"StringType": "string", "IntegerType": "int", "BooleanType": "bool", "AnyType": "any"}[kind]
        if kind == "StringLiteralType":
            return {"enum": [t["value"]]}
        if kind == "UnionType":
            parts = [self.shape(self.ref(e), seen) for e in t["elements"]]
            if all(isinstance(p, dict) and "enum" in p for p in parts):
                return {"enum": sorted({v for p in parts for v in p["enum"]})}
            return "string" if "string" in parts else "any"
        if kind == "ArrayType":
            return {"items": self._follow(t["itemType"], seen)}
        if kind == "DiscriminatedObjectType":
            # One shape per value of the discriminator property, each with the shared properties.
            variants = {}
            for value, element in sorted(t["elements"].items()):
                variant = dict(self.ref(element))
                variant["properties"] = {**t.get("baseProperties", {}), **variant.get("properties", {})}
                variants[value] = self.shape(variant, seen)
            return {"discriminator": t["discriminator"], "variants": variants}
        if kind == "ObjectType":
            props = t.get("properties") or {}
            out: dict[str, Any] = {
                "properties": {name: self._follow(p["type"], seen) for name, p in sorted(props.items())},
                "readOnly": sorted(name for name, p in props.items() if p.get("flags", 0) & READ_ONLY),
            }
            if t.get("additionalProperties"):
                out["additional"] = self._follow(t["additionalProperties"], seen)
            return out
        return "any"

    def _follow(self, ref: dict[str, str], seen: frozenset[int]) -> Any:
        index = int(ref["$ref"].split("/")[-1])
        if index in seen:
            return "any"  # a recursive type: not followed
        return self.shape(self.types[index], seen | {index})


def find(checkout: Path, type_version: str) -> tuple[Path, dict[str, Any]]:
    resource_type, version = type_version.split("@")
    namespace = resource_type.split("/")[0].lower()
    for path in sorted(checkout.glob(f"generated/*/{namespace}/{version}/types.json")):
        types = json.loads(path.read_text(encoding="utf-8"))
        for t in types:
            if t.get("$type") == "ResourceType" and t["name"].lower() == type_version.lower():
                shapes = Shapes(types)
                return path, shapes.shape(shapes.ref(t["body"]))
    raise SystemExit(f"{type_version}: not in Azure/bicep-types-az")


def extract(checkout: Path, commit: str, wanted: set[str]) -> dict[str, Any]:
    types = {}
    for type_version in sorted(wanted):
        path, body = find(checkout, type_version)
        types[type_version] = {"path": str(path.relative_to(checkout)), "body": body}
    return {"source": {"repository": "Azure/bicep-types-az", "commit": commit}, "types": types}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a checkout (or export) of Azure/bicep-types-az")
    parser.add_argument("--commit", help="the source commit, when the checkout has no .git")
    args = parser.parse_args(argv)
    checkout = args.checkout.resolve()
    commit = args.commit or subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    json.dump(extract(checkout, commit, used_types(REPO / "infra")), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
