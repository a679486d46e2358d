"""Least privilege, read from the Bicep: who gets which role where.

The rules (docs/design.md, "Security model"): nobody gets a role that manages access, everything,
account keys or registry content; the function app's identity manages container groups in its
resource group through a custom role and may assign the worker identity only; the worker's identity
gets AcrPull on the registry and nothing else (no storage role anywhere: it writes through per-blob
SAS, issue 19). Built-in roles are named and resolved through tests/infra/data/builtin_roles.json,
an extract of the published list of Azure built-in roles (MicrosoftDocs/azure-docs), never through
GUIDs written here.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from videojob.adapters.job_index_table import JOB_INDEX_TABLE

from .bicep_model import (
    INFRA,
    MAIN,
    Resource,
    accessor_path,
    all_resources,
    all_templates,
    bicep_files,
    function_call,
    module_param,
    one_resource,
    template,
)

EXTRACT = Path(__file__).parent / "data" / "builtin_roles.json"
ROLE_IDS_FILE = INFRA / "modules" / "roles.json"


@cache
def published_roles() -> dict[str, dict[str, Any]]:
    """Role name -> {id, path, commit, actions, ...} as the published list has it."""
    return json.loads(EXTRACT.read_text(encoding="utf-8"))["roles"]


def published_name(guid: str) -> str | None:
    return next((name for name, r in published_roles().items() if r["id"] == guid.lower()), None)


# What makes a role privileged, by the actions the published definition grants: everything, access
# management, a storage account's keys (full data access), or writing/deleting registry content.
PRIVILEGED_ACTIONS = {
    "*",
    "Microsoft.Authorization/*",
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Storage/storageAccounts/*",
    "Microsoft.Storage/storageAccounts/listkeys/action",
    "Microsoft.ContainerRegistry/registries/push/write",
    "Microsoft.ContainerRegistry/registries/artifacts/delete",
}
def _extract_tool_forbidden() -> tuple[str, ...]:
    """The roles the extract keeps because they must never be granted (one list: the tool's)."""
    spec = importlib.util.spec_from_file_location("extract_roles", INFRA / "tools" / "extract_roles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FORBIDDEN


KNOWN_PRIVILEGED = _extract_tool_forbidden()


def is_privileged(role_name: str) -> bool:
    actions = published_roles()[role_name]["actions"]
    return any(a in PRIVILEGED_ACTIONS for a in actions)


ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"
IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"
CONTAINERS = "Microsoft.Storage/storageAccounts/blobServices/containers"
TABLES = "Microsoft.Storage/storageAccounts/tableServices/tables"
REGISTRY = "Microsoft.ContainerRegistry/registries"
STORAGE = "Microsoft.Storage/storageAccounts"
VAULT = "Microsoft.KeyVault/vaults"
APP_INSIGHTS = "Microsoft.Insights/components"
RESOURCE_GROUP = "resourceGroup"

CONTAINER_GROUP_ACTIONS = ["Microsoft.ContainerInstance/containerGroups/*"]
ASSIGN_IDENTITY_ACTIONS = ["Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"]
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


@dataclass(frozen=True)
class Grant:
    """One role assignment, resolved: which identity, which role, on what."""

    symbol: str
    principal: str  # "function" | "worker"
    role: str  # a built-in role's published name, "unpublished:<guid>", or "custom:<actions>"
    guid: str  # the built-in role definition GUID the Bicep resolves to ("" for a custom role)
    scope_type: str  # resource type of the scope, or "resourceGroup"
    scope_symbol: str


def _identity_of(assignment: Resource) -> str:
    t = template(assignment.file)
    path = accessor_path(assignment.prop("properties/principalId"))
    assert path[1:] == ["properties", "principalId"], f"{assignment.symbol}: principalId {path}"
    identity = t.resource(path[0])
    assert identity.type == IDENTITY, f"{assignment.symbol}: principal {path[0]} is not a user-assigned identity"
    name_param = identity.prop("name")
    return {"functionIdentityName": "function", "workerIdentityName": "worker"}[name_param]


def _role_guid(t, expr: Any, symbol: str) -> tuple[str, str | None]:
    """(GUID, the role name the Bicep says) for a roleDefinitionId's role name argument: a literal
    GUID (no name), or `builtInRoles['Name']` where builtInRoles = loadJsonContent('roles.json')."""
    if isinstance(expr, str):
        return expr.lower(), None
    op = expr.get("operator") if isinstance(expr, dict) else None
    assert op and op["type"] == "index_accessor", f"{symbol}: role is neither a GUID nor builtInRoles['Name']"
    table, name = op["operands"]["operand_1"], op["operands"]["operand_2"]
    loaded = function_call(t.variable(table))
    assert loaded and loaded[0] == "load_json_content", f"{symbol}: {table} is not loadJsonContent(...)"
    ids = json.loads((t.path.parent / loaded[1]["file_path"]).read_text(encoding="utf-8"))
    return ids[name].lower(), name


def _role_of(assignment: Resource) -> tuple[str, str, str | None]:
    """(role, GUID, the name the Bicep gives it): see Grant.role."""
    t = template(assignment.file)
    expr = assignment.prop("properties/roleDefinitionId")
    call = function_call(expr)
    if call is not None:
        name, params = call
        assert name == "subscription_resource_id", f"{assignment.symbol}: unexpected roleDefinitionId {name}"
        assert params["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        guid, said = _role_guid(t, params["resource_name_1"], assignment.symbol)
        return published_name(guid) or f"unpublished:{guid}", guid, said
    path = accessor_path(expr)
    assert len(path) == 2 and path[1] == "id", f"{assignment.symbol}: roleDefinitionId is not a GUID or <role>.id"
    definition = t.resource(path[0])
    assert definition.type == ROLE_DEFINITION
    return "custom:" + ",".join(_actions(definition)), "", None


def _scope_of(assignment: Resource) -> tuple[str, str]:
    t = template(assignment.file)
    scope = assignment.config.get("scope")
    if scope is None:
        # No scope: the deployment's own scope. Only allowed in a resource-group template.
        assert t.target_scope == "resourceGroup", f"{assignment.symbol} would be assigned at {t.target_scope} scope"
        return RESOURCE_GROUP, ""
    call = function_call(scope)
    if call is not None:
        assert call[0] == "resource_group" and not any(call[1].values()), f"{assignment.symbol}: scope {call}"
        return RESOURCE_GROUP, ""
    return t.resource(scope).type, scope


def _actions(definition: Resource) -> list[str]:
    permissions = definition.prop("properties/permissions")
    return [a for p in permissions for a in p.get("actions", [])]


def grants() -> list[Grant]:
    out = []
    for a in all_resources(ROLE_ASSIGNMENT):
        scope_type, scope_symbol = _scope_of(a)
        role, guid, _ = _role_of(a)
        out.append(Grant(a.symbol, _identity_of(a), role, guid, scope_type, scope_symbol))
    return out


def test_role_assignments_are_found():
    # Guards the other tests from passing on an empty list (e.g. a parser or layout change).
    assert len(grants()) >= 9


def test_no_role_assignment_at_subscription_scope():
    for t in all_templates():
        if t.target_scope != "resourceGroup":
            types = {r.type for r in t.resources}
            assert ROLE_ASSIGNMENT not in types and ROLE_DEFINITION not in types, t.path.name
    main = template(MAIN)
    assert main.target_scope == "subscription"
    for module in main.modules.values():
        assert module["config"].get("scope") == "rg", "every module deploys into the one resource group"


def test_every_built_in_role_is_in_the_published_list_under_the_name_the_bicep_gives_it():
    # A GUID that is not a built-in role fails `azd provision` (RoleDefinitionDoesNotExist); a GUID
    # of another role grants the wrong rights without an error.
    for a in all_resources(ROLE_ASSIGNMENT):
        role, guid, said = _role_of(a)
        if role.startswith("custom:"):
            continue
        assert not role.startswith("unpublished:"), f"{a.symbol}: {guid} is not an Azure built-in role"
        assert said == role, f"{a.symbol}: the Bicep calls {guid} {said!r}, the published list {role!r}"


def test_the_role_ids_file_matches_the_published_list():
    ids = json.loads(ROLE_IDS_FILE.read_text(encoding="utf-8"))
    for name, guid in ids.items():
        assert name in published_roles(), f"roles.json: {name!r} is not a published built-in role name"
        assert published_roles()[name]["id"] == guid.lower(), f"roles.json: {name} is {published_roles()[name]['id']}"


def test_built_in_role_ids_are_written_in_one_place():
    # roles.json, loaded with loadJsonContent: no GUID literal anywhere in the Bicep.
    for path in bicep_files():
        found = GUID.findall(path.read_text(encoding="utf-8"))
        assert not found, f"{path.name} writes role GUIDs {found}: use builtInRoles['<name>'] (roles.json)"


def test_the_privileged_rule_recognises_the_known_privileged_roles():
    # Guards the next test from passing because the rule (or the extract) lost its teeth.
    for name in KNOWN_PRIVILEGED:
        assert is_privileged(name), name


def test_nobody_gets_a_privileged_role():
    for g in grants():
        assert not g.role.startswith("unpublished:"), f"{g.symbol}: {g.guid} is not a built-in role"
        if not g.role.startswith("custom:"):
            assert not is_privileged(g.role), f"{g.symbol} grants {g.role}"
    privileged = {published_roles()[name]["id"] for name in published_roles() if is_privileged(name)}
    text = "\n".join([t.text.lower() for t in all_templates()] + [ROLE_IDS_FILE.read_text(encoding="utf-8").lower()])
    for guid in privileged:
        assert guid not in text


def test_worker_gets_acr_pull_on_the_registry_and_nothing_else():
    worker = sorted((g.role, g.scope_type, g.scope_symbol) for g in grants() if g.principal == "worker")
    assert worker == [("AcrPull", REGISTRY, "registry")]


def test_worker_has_no_role_on_any_storage_account():
    # A standing right on the output container let a hostile worker overwrite another job's
    # finished blob (issue 19): a worker writes only through its job's per-blob SAS.
    for g in grants():
        if g.principal != "worker":
            continue
        assert g.scope_type not in (STORAGE, CONTAINERS, TABLES), f"{g.symbol}: worker role on storage"
        data = published_roles()[g.role]["dataActions"] if not g.role.startswith("custom:") else []
        assert not [d for d in data if d.startswith("Microsoft.Storage/")], f"{g.symbol}: storage data actions"


def test_worker_scope_is_this_registry():
    access = template(next(g for g in all_resources(ROLE_ASSIGNMENT)).file)
    assert accessor_path(module_param("access", "registryName")) == ["registry", "outputs", "registryName"]
    assert access.resource("registry").existing


def test_the_output_and_staging_containers_are_the_ones_main_names():
    access = template(next(g for g in all_resources(ROLE_ASSIGNMENT)).file)
    main = template(MAIN)
    for symbol, param, value in (
        ("outputContainer", "outputContainerName", "downloads"),
        ("stagingContainer", "stagingContainerName", "staging"),
    ):
        container = access.resource(symbol)
        assert container.prop("name") == param
        assert container.existing
        assert module_param("access", param) == param
        assert module_param("storage", param) == param
        assert module_param("functionApp", param) == param
        assert main.variables[param]["value"] == value


HOST_ACCOUNT, OUTPUT_ACCOUNT = "storageAccountName", "outputStorageAccountName"
"""The two storage accounts, by the access module parameter that names each."""


def _account_of(g: Grant) -> str | None:
    """The storage account a grant's scope lies in (its name parameter); None outside storage."""
    if g.scope_type not in (STORAGE, CONTAINERS, TABLES):
        return None
    t = template(next(a.file for a in all_resources(ROLE_ASSIGNMENT) if a.symbol == g.symbol))
    return _parent_account(t.resource(g.scope_symbol))


def _parent_account(resource: Resource) -> str:
    """The name parameter of the storage account a resource is, or belongs to."""
    t = template(resource.file)
    while resource.type != STORAGE:
        resource = t.resource(resource.prop("parent"))
    return resource.prop("name")


def test_function_app_grants_are_exactly_the_reviewed_list():
    function = sorted((g.role, g.scope_type, _account_of(g) or "") for g in grants() if g.principal == "function")
    assert function == sorted(
        [
            ("custom:" + ",".join(CONTAINER_GROUP_ACTIONS), RESOURCE_GROUP, ""),
            ("custom:" + ",".join(ASSIGN_IDENTITY_ACTIONS), IDENTITY, ""),
            # The Functions host and the Durable task hub, on the host's account only.
            ("Storage Blob Data Owner", STORAGE, HOST_ACCOUNT),
            ("Storage Queue Data Contributor", STORAGE, HOST_ACCOUNT),
            ("Storage Table Data Contributor", STORAGE, HOST_ACCOUNT),
            ("Key Vault Secrets User", VAULT, ""),
            ("Monitoring Metrics Publisher", APP_INSIGHTS, ""),
            # Every SAS: a user-delegation key; verify, copy, clean up: read/write/delete on the
            # output and staging containers, each granted on its container.
            ("Storage Blob Delegator", STORAGE, OUTPUT_ACCOUNT),
            ("Storage Blob Data Contributor", CONTAINERS, OUTPUT_ACCOUNT),
            ("Storage Blob Data Contributor", CONTAINERS, OUTPUT_ACCOUNT),
            # The job list's index (videojob/adapters/job_index_table.py), granted on its table.
            ("Storage Table Data Contributor", TABLES, OUTPUT_ACCOUNT),
        ]
    )


def test_the_apps_data_roles_in_the_output_account_are_scoped_to_its_containers_and_index_table():
    # A user-delegation SAS grants at most its signer's rights in the account whose key signed it.
    # The delegator role is account-wide by nature, so that account must hold nothing but the
    # output and staging containers and the job index table, and the app's data rights there are on
    # those only: no SAS can reach the host's keys (azure-webjobs-secrets), the task hub or the
    # deployment package, and the job list can read and write its index (without a table role it
    # answers 503 in Azure).
    in_output_account = [g for g in grants() if _account_of(g) == OUTPUT_ACCOUNT]
    assert sorted((g.principal, g.role, g.scope_type, g.scope_symbol) for g in in_output_account) == [
        ("function", "Storage Blob Data Contributor", CONTAINERS, "outputContainer"),
        ("function", "Storage Blob Data Contributor", CONTAINERS, "stagingContainer"),
        ("function", "Storage Blob Delegator", STORAGE, "outputStorage"),
        ("function", "Storage Table Data Contributor", TABLES, "jobIndexTable"),
    ]
    for g in in_output_account:
        data = published_roles()[g.role]["dataActions"]
        assert not data or g.scope_type in (CONTAINERS, TABLES), f"{g.symbol}: data role {g.role} on the whole account"
        if g.scope_type == STORAGE:
            assert g.role == "Storage Blob Delegator", f"{g.symbol}: {g.role} on the whole output account"
    delegator = [g for g in grants() if g.role == "Storage Blob Delegator"]
    assert [(g.principal, g.scope_type, _account_of(g)) for g in delegator] == [("function", STORAGE, OUTPUT_ACCOUNT)]
    assert sorted(c.symbol for c in all_resources(CONTAINERS) if _parent_account(c) == OUTPUT_ACCOUNT) == [
        "outputContainer",
        "stagingContainer",
    ]
    assert [t.symbol for t in all_resources(TABLES) if _parent_account(t) == OUTPUT_ACCOUNT] == ["jobIndexTable"]


TABLE_SCOPE = Path(__file__).parent / "data" / "table_role_scope.json"


def _resource_id(resource: Resource) -> str:
    """The ARM id below `/providers/` of a resource, from its parent chain, names as `<>` when
    they are parameters: `Microsoft.Storage/storageAccounts/<>/tableServices/default/tables/<>`."""
    t = template(resource.file)
    segments = []
    while True:
        name = resource.prop("name")
        segments.append(("<>" if t.is_symbol(name) else name, resource.type))
        if "parent" not in resource.config:
            break
        resource = t.resource(resource.prop("parent"))
    top_name, top_type = segments[-1]
    path = [top_type, top_name]
    for name, type_ in reversed(segments[:-1]):
        path += [type_.rsplit("/", 1)[1], name]
    return "/".join(path)


def test_the_index_table_grant_has_the_published_table_scope():
    # A role assignment on one table: the scope form the storage docs give for it (extract).
    published = json.loads(TABLE_SCOPE.read_text(encoding="utf-8"))
    assert published["role"] == "Storage Table Data Contributor"
    documented = re.sub(r"<[^>]+>", "<>", published["tableScope"].split("/providers/", 1)[1])
    grant = next(g for g in grants() if g.scope_type == TABLES)
    t = template(next(a.file for a in all_resources(ROLE_ASSIGNMENT) if a.symbol == grant.symbol))
    assert _resource_id(t.resource(grant.scope_symbol)) == documented
    assert _resource_id(one_resource(TABLES)) == documented


def test_the_index_table_is_the_one_the_code_uses():
    # The code names its table (JOB_INDEX_TABLE, no setting); the Bicep creates it and grants the
    # app a role on it under one name, main.bicep's jobIndexTableName.
    access = template(next(g for g in all_resources(ROLE_ASSIGNMENT)).file)
    table = access.resource("jobIndexTable")
    assert table.existing and table.prop("name") == "jobIndexTableName"
    assert access.resource(table.prop("parent")).prop("name") == "default"
    declared = one_resource(TABLES)
    assert declared.prop("name") == "jobIndexTableName"
    assert template(declared.file).resource(declared.prop("parent")).prop("name") == "default"
    for module in ("storage", "access"):
        assert module_param(module, "jobIndexTableName") == "jobIndexTableName"
    assert template(MAIN).variables["jobIndexTableName"]["value"] == JOB_INDEX_TABLE


def test_the_host_and_the_outputs_live_in_separate_accounts():
    storage = template(MAIN).modules["storage"]["config"]["params"]
    assert storage["storageAccountName"] != storage["outputStorageAccountName"]
    containers = {c.symbol: _parent_account(c) for c in all_resources(CONTAINERS)}
    assert containers == {
        "outputContainer": "outputStorageAccountName",
        "stagingContainer": "outputStorageAccountName",
        "deploymentContainer": "storageAccountName",
    }
    for module in ("access", "functionApp"):
        assert accessor_path(module_param(module, "storageAccountName")) == ["storage", "outputs", "storageAccountName"]
        assert accessor_path(module_param(module, "outputStorageAccountName")) == [
            "storage", "outputs", "outputStorageAccountName"]


def test_the_app_signs_links_with_the_output_account_and_keeps_its_keys_in_the_host_account():
    app = template(INFRA / "modules" / "functionapp.bicep")
    runtime, ours = app.variable("runtimeSettings"), app.variable("videojobSettings")
    assert app.resource("storage").prop("name") == "storageAccountName"
    assert app.resource("outputStorage").prop("name") == "outputStorageAccountName"
    assert accessor_path(runtime["AzureWebJobsStorage__accountName"]) == ["storage", "name"]
    assert accessor_path(ours["OUTPUT_ACCOUNT_URL"])[0] == "outputStorage"
    # Host keys stated explicitly: blobs in the host's account, which no share link can reach.
    storage_type = runtime["AzureWebJobsSecretStorageType"]
    assert (app.variable(storage_type) if app.is_symbol(storage_type) else storage_type) == "blob"


def test_the_function_app_may_assign_only_the_worker_identity():
    assigner = [g for g in grants() if g.role == "custom:" + ",".join(ASSIGN_IDENTITY_ACTIONS)]
    assert len(assigner) == 1
    t = template(next(r.file for r in all_resources(ROLE_ASSIGNMENT) if r.symbol == assigner[0].symbol))
    assert t.resource(assigner[0].scope_symbol).prop("name") == "workerIdentityName"


@pytest.mark.parametrize(
    ("module", "param", "expected"),
    [
        ("access", "functionIdentityName", ["identities", "outputs", "functionIdentityName"]),
        ("access", "workerIdentityName", ["identities", "outputs", "workerIdentityName"]),
        ("functionApp", "functionIdentityName", ["identities", "outputs", "functionIdentityName"]),
        ("functionApp", "workerIdentityName", ["identities", "outputs", "workerIdentityName"]),
    ],
)
def test_identities_are_wired_to_the_right_modules(module, param, expected):
    # A swap here would hand the worker the function app's rights.
    assert accessor_path(module_param(module, param)) == expected


def test_custom_roles_allow_only_container_groups_and_identity_assignment():
    definitions = {d.symbol: d for d in all_resources(ROLE_DEFINITION)}
    assert {tuple(_actions(d)) for d in definitions.values()} == {
        tuple(CONTAINER_GROUP_ACTIONS),
        tuple(ASSIGN_IDENTITY_ACTIONS),
    }
    for d in definitions.values():
        permissions = d.prop("properties/permissions")
        for p in permissions:
            assert not p.get("dataActions"), f"{d.symbol} has data actions"
            assert not p.get("notActions"), f"{d.symbol}: use an allow list, not notActions"
        scopes = d.prop("properties/assignableScopes")
        assert len(scopes) == 1
        # assignableScopes: [resourceGroup().id], never the subscription.
        assert scopes[0].get("function", {}).get("type") == "resource_group", f"{d.symbol}: {scopes[0]}"
        assert scopes[0]["function"].get("property_name") == "id"
        assert d.prop("properties/type") == "CustomRole"


def test_every_assignment_names_a_service_principal():
    # principalType avoids the replication race for new identities and documents who is granted.
    for a in all_resources(ROLE_ASSIGNMENT):
        assert a.prop("properties/principalType") == "ServicePrincipal", a.symbol
