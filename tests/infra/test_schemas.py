"""host.json, azure.yaml and local.settings.sample.json against their published JSON schemas.

The schemas are kept as published (tests/infra/data/schemas/, each with its repository, path and
commit in sources.json): SchemaStore's host.json and local.settings.json (the ones editors apply to
those file names) and azd's own schemas/v1.0/azure.yaml.json. Nothing is fetched at test time: a
schema that points elsewhere ($ref to a URL) fails the test instead of reaching the network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry
from referencing.exceptions import NoSuchResource

from .bicep_model import REPO

SCHEMAS = Path(__file__).parent / "data" / "schemas"
SOURCES = json.loads((SCHEMAS / "sources.json").read_text(encoding="utf-8"))


def _offline(uri: str):
    raise NoSuchResource(ref=uri)


def _errors(schema_file: str, document: Any) -> list[str]:
    schema = json.loads((SCHEMAS / schema_file).read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, registry=Registry(retrieve=_offline))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(document)]


def _read(name: str) -> Any:
    text = (REPO / name).read_text(encoding="utf-8")
    return yaml.safe_load(text) if name.endswith((".yaml", ".yml")) else json.loads(text)


@pytest.mark.parametrize("schema_file", sorted(SOURCES))
def test_the_project_file_matches_its_published_schema(schema_file: str):
    assert _errors(schema_file, _read(SOURCES[schema_file]["validates"])) == []


@pytest.mark.parametrize("schema_file", sorted(SOURCES))
def test_every_schema_names_its_source(schema_file: str):
    source = SOURCES[schema_file]
    assert source["repository"] in ("SchemaStore/schemastore", "Azure/azure-dev")
    assert len(source["commit"]) == 40 and int(source["commit"], 16) >= 0
    assert Path(source["path"]).name == schema_file


@pytest.mark.parametrize(
    ("schema_file", "break_it"),
    [
        ("host.json", lambda d: d | {"version": "3.0"}),
        ("azure.yaml.json", lambda d: {k: v for k, v in d.items() if k != "name"}),
        ("azure.yaml.json", lambda d: d | {"infra": {"provider": "arm-templates"}}),
        ("local.settings.json", lambda d: d | {"IsEncrypted": "no"}),
    ],
)
def test_the_schemas_refuse_a_broken_file(schema_file: str, break_it):
    # Guards the test above from passing on a schema that accepts anything.
    assert _errors(schema_file, break_it(_read(SOURCES[schema_file]["validates"])))
