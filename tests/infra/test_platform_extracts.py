"""The extracts of primary sources (tests/infra/data) and the scripts that regenerate them."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

from .bicep_model import INFRA

DATA = Path(__file__).parent / "data"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, INFRA / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def test_extract_roles_reads_the_published_page_format(tmp_path):
    # A checkout holding one published section (AcrPull, containers.md): the script finds the
    # role in the page's JSON block and names the page and the commit it came from.
    extract_roles = _load("extract_roles")
    pages = tmp_path / extract_roles.PAGES
    pages.mkdir(parents=True)
    shutil.copy(DATA / "azure-docs-sample" / "containers-acrpull.md", pages / "containers.md")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "page")
    head = _git(tmp_path, "rev-parse", "HEAD")

    out = extract_roles.extract(tmp_path, {"AcrPull"})

    acr_pull = out["roles"]["AcrPull"]
    assert acr_pull["id"] == "7f951dda-4ed3-4680-a7ca-43fe172d538d"
    assert acr_pull["path"] == f"{extract_roles.PAGES}/containers.md"
    assert acr_pull["commit"] == head
    assert acr_pull["actions"] == ["Microsoft.ContainerRegistry/registries/pull/read"]
    # The kept extract agrees with what the script reads from the published format.
    kept = json.loads((DATA / "builtin_roles.json").read_text(encoding="utf-8"))["roles"]["AcrPull"]
    assert {k: kept[k] for k in ("id", "actions", "dataActions")} == {
        k: acr_pull[k] for k in ("id", "actions", "dataActions")
    }


def test_the_roles_extract_names_its_source_for_every_role():
    extract = json.loads((DATA / "builtin_roles.json").read_text(encoding="utf-8"))
    assert extract["source"]["repository"] == "MicrosoftDocs/azure-docs"
    for name, role in extract["roles"].items():
        assert role["path"].startswith("articles/role-based-access-control/built-in-roles/"), name
        assert len(role["commit"]) == 40 and int(role["commit"], 16) >= 0, name


def test_the_types_extract_covers_exactly_what_the_bicep_uses():
    # A type or version added to the Bicep without regenerating the extract fails here, with the
    # command to run (infra/tools/extract_bicep_types.py) in the script's docstring.
    extract_bicep_types = _load("extract_bicep_types")
    kept = json.loads((DATA / "bicep_types.json").read_text(encoding="utf-8"))["types"]
    assert set(kept) == extract_bicep_types.used_types(INFRA)


def test_extract_bicep_types_reads_the_published_types_format():
    # generated/authorization/microsoft.authorization/2022-04-01/types.json as Azure/bicep-types-az
    # publishes it (commit in bicep_types.json): the script finds the resource type and keeps the
    # body's shape the kept extract has.
    extract_bicep_types = _load("extract_bicep_types")
    sample = DATA / "bicep-types-sample"
    wanted = {
        "Microsoft.Authorization/roleAssignments@2022-04-01",
        "Microsoft.Authorization/roleDefinitions@2022-04-01",
    }
    kept = json.loads((DATA / "bicep_types.json").read_text(encoding="utf-8"))

    out = extract_bicep_types.extract(sample, kept["source"]["commit"], wanted)

    assert out["source"] == kept["source"]
    for type_version in wanted:
        assert out["types"][type_version] == kept["types"][type_version]
    body = out["types"]["Microsoft.Authorization/roleAssignments@2022-04-01"]["body"]
    assert "principalType" in body["properties"]["properties"]["properties"]
    assert "id" in body["readOnly"]
