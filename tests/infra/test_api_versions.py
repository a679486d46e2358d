"""Every resource type and API version in infra/ exists, and every property the Bicep sets is one
the type has, as Azure/bicep-types-az publishes them (tests/infra/data/bicep_types.json, made by
infra/tools/extract_bicep_types.py; its `source` names the commit). Without a Bicep CLI here, this
is the check `bicep build` would make: a wrong version or a misspelt property fails `azd provision`.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from .bicep_model import Resource, all_resources, bicep_files, template

EXTRACT = Path(__file__).parent / "data" / "bicep_types.json"
TYPE_REF = re.compile(r"'([A-Za-z0-9]+\.[A-Za-z0-9.]+/[A-Za-z0-9/]+)@([0-9]{4}-[0-9]{2}-[0-9]{2}(?:-preview)?)'")
BICEP_ONLY_KEYS = {"parent", "scope", "dependsOn"}  # resource-declaration keywords, not type properties


@cache
def published() -> dict[str, Any]:
    return json.loads(EXTRACT.read_text(encoding="utf-8"))


def _published_type(type_version: str) -> dict[str, Any] | None:
    types = published()["types"]
    return next((v for k, v in types.items() if k.lower() == type_version.lower()), None)


def test_the_extract_names_its_source():
    source = published()["source"]
    assert source["repository"] == "Azure/bicep-types-az"
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    for type_version, entry in published()["types"].items():
        namespace, version = type_version.split("/")[0].lower(), type_version.split("@")[1]
        expected = rf"generated/[^/]+/{re.escape(namespace)}/{version}/types\.json"
        assert re.fullmatch(expected, entry["path"]), type_version


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.name)
def test_every_type_and_api_version_is_published(path: Path):
    for resource_type, version in TYPE_REF.findall(path.read_text(encoding="utf-8")):
        assert _published_type(f"{resource_type}@{version}"), f"{path.name}: {resource_type}@{version} does not exist"


def _is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("function", "operator")


def _is_literal_string(t, value: Any) -> bool:
    return isinstance(value, str) and "${" not in value and not t.is_symbol(value)


def _problems(t, value: Any, shape: Any, where: str) -> list[str]:
    """What in `value` (pycep's form of a Bicep value) the published `shape` does not allow."""
    if shape == "any" or _is_expression(value) or (isinstance(value, str) and t.is_symbol(value)):
        return []
    if isinstance(shape, dict) and "discriminator" in shape:
        key = value.get(shape["discriminator"]) if isinstance(value, dict) else None
        if not _is_literal_string(t, key):
            return []
        if key not in shape["variants"]:
            return [f"{where}: {shape['discriminator']} {key!r} is not one of {sorted(shape['variants'])}"]
        return _problems(t, value, shape["variants"][key], where)
    if isinstance(shape, dict) and "properties" in shape:
        if not isinstance(value, dict):
            return [f"{where}: an object is expected"]
        out = []
        for key, item in value.items():
            if key in shape["readOnly"]:
                out.append(f"{where}.{key} is read-only")
            elif key in shape["properties"]:
                out += _problems(t, item, shape["properties"][key], f"{where}.{key}")
            elif "additional" in shape:
                out += _problems(t, item, shape["additional"], f"{where}.{key}")
            else:
                out.append(f"{where}.{key} is not a property of the type")
        return out
    if isinstance(shape, dict) and "items" in shape:
        if not isinstance(value, list):
            return [f"{where}: an array is expected"]
        return [p for i, item in enumerate(value) for p in _problems(t, item, shape["items"], f"{where}[{i}]")]
    if isinstance(shape, dict) and "enum" in shape:
        if _is_literal_string(t, value) and value not in shape["enum"]:
            return [f"{where}: {value!r} is not one of {shape['enum']}"]
        return []
    expected = {"string": str, "int": int, "bool": bool}[shape]
    if isinstance(value, bool) and expected is not bool or not isinstance(value, expected):
        return [f"{where}: {value!r} is not a {shape}"]
    return []


def _declared() -> list[Resource]:
    return [r for r in all_resources() if not r.existing]


@pytest.mark.parametrize("resource", _declared(), ids=lambda r: f"{r.file.name}:{r.symbol}")
def test_every_property_the_bicep_sets_is_published(resource: Resource):
    t = template(resource.file)
    version = t.doc["resources"][resource.symbol]["api_version"]
    entry = _published_type(f"{resource.type}@{version}")
    assert entry, f"{resource.type}@{version}"
    config = resource.config["config"] if "condition" in resource.config else resource.config  # `if (...)` resources
    body = {k: v for k, v in config.items() if k not in BICEP_ONLY_KEYS}
    assert _problems(t, body, entry["body"], resource.symbol) == []


def test_the_checker_refuses_what_the_published_type_does_not_have():
    # Guards the test above from passing on a checker that lets everything through.
    policy = next(r for r in _declared() if r.type == "Microsoft.Storage/storageAccounts/managementPolicies")
    t = template(policy.file)
    shape = _published_type("Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01")["body"]
    rule = json.loads(json.dumps(policy.config["properties"]["policy"]["rules"][0]))
    rule["definition"]["actions"]["baseBlob"]["delete"] = {"daysAfterFinishGreaterThan": 30}
    bad = {"name": "default", "properties": {"policy": {"rules": [rule]}}}
    assert _problems(t, bad, shape, "p") == [
        "p.properties.policy.rules[0].definition.actions.baseBlob.delete.daysAfterFinishGreaterThan"
        " is not a property of the type"
    ]
    assert _problems(t, {"name": "default", "properties": {"lastModifiedTime": "x"}}, shape, "p") == [
        "p.properties.lastModifiedTime is read-only"
    ]
