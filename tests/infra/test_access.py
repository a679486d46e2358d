"""Least privilege, read from the Bicep: who gets which role where.

The rules (docs/design.md, "Security model"): nobody gets Owner/Contributor/User Access
Administrator anywhere; the function app's identity manages container groups in its resource group
through a custom role and may assign the worker identity only; the worker's identity gets Storage
Blob Data Contributor on the output container and AcrPull on the registry, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .bicep_model import (
    INFRA,
    MAIN,
    Resource,
    accessor_path,
    all_resources,
    all_templates,
    function_call,
    module_param,
    template,
)

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a1-9fab-3a9e17e91e30"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
PRIVILEGED = {OWNER, CONTRIBUTOR, USER_ACCESS_ADMINISTRATOR, RBAC_ADMINISTRATOR}

STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
STORAGE_BLOB_DELEGATOR = "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43d2bd2b4d5a"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"
IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"
CONTAINERS = "Microsoft.Storage/storageAccounts/blobServices/containers"
REGISTRY = "Microsoft.ContainerRegistry/registries"
STORAGE = "Microsoft.Storage/storageAccounts"
VAULT = "Microsoft.KeyVault/vaults"
APP_INSIGHTS = "Microsoft.Insights/components"
RESOURCE_GROUP = "resourceGroup"

CONTAINER_GROUP_ACTIONS = ["Microsoft.ContainerInstance/containerGroups/*"]
ASSIGN_IDENTITY_ACTIONS = ["Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"]


@dataclass(frozen=True)
class Grant:
    """One role assignment, resolved: which identity, which role, on what."""

    symbol: str
    principal: str  # "function" | "worker"
    role: str  # a built-in role GUID, or "custom:<actions>"
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


def _role_of(assignment: Resource) -> str:
    t = template(assignment.file)
    expr = assignment.prop("properties/roleDefinitionId")
    call = function_call(expr)
    if call is not None:
        name, params = call
        assert name == "subscription_resource_id", f"{assignment.symbol}: unexpected roleDefinitionId {name}"
        assert params["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        return str(params["resource_name_1"]).lower()
    path = accessor_path(expr)
    assert len(path) == 2 and path[1] == "id", f"{assignment.symbol}: roleDefinitionId is not a GUID or <role>.id"
    definition = t.resource(path[0])
    assert definition.type == ROLE_DEFINITION
    return "custom:" + ",".join(_actions(definition))


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
        out.append(Grant(a.symbol, _identity_of(a), _role_of(a), scope_type, scope_symbol))
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


def test_nobody_gets_owner_contributor_or_access_administration():
    for g in grants():
        assert g.role not in PRIVILEGED, f"{g.symbol} grants a privileged built-in role"
    text = "\n".join(t.text.lower() for t in all_templates())
    for guid in PRIVILEGED:
        assert guid not in text


def test_worker_gets_blob_write_on_the_output_container_and_acr_pull_only():
    worker = sorted((g.role, g.scope_type, g.scope_symbol) for g in grants() if g.principal == "worker")
    assert worker == sorted(
        [
            (STORAGE_BLOB_DATA_CONTRIBUTOR, CONTAINERS, "outputContainer"),
            (ACR_PULL, REGISTRY, "registry"),
        ]
    )


def test_worker_scopes_are_the_output_container_and_this_registry():
    access = template(next(g for g in all_resources(ROLE_ASSIGNMENT)).file)
    container = access.resource("outputContainer")
    assert container.prop("name") == "outputContainerName"
    assert container.existing
    assert module_param("access", "outputContainerName") == "outputContainerName"
    assert template(MAIN).variables["outputContainerName"]["value"] == "downloads"
    registry = access.resource("registry")
    assert accessor_path(module_param("access", "registryName")) == ["registry", "outputs", "registryName"]
    assert registry.existing


HOST_ACCOUNT, OUTPUT_ACCOUNT = "storageAccountName", "outputStorageAccountName"
"""The two storage accounts, by the access module parameter that names each."""


def _account_of(g: Grant) -> str | None:
    """The storage account a grant's scope lies in (its name parameter); None outside storage."""
    if g.scope_type not in (STORAGE, CONTAINERS):
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
            (STORAGE_BLOB_DATA_OWNER, STORAGE, HOST_ACCOUNT),
            (STORAGE_QUEUE_DATA_CONTRIBUTOR, STORAGE, HOST_ACCOUNT),
            (STORAGE_TABLE_DATA_CONTRIBUTOR, STORAGE, HOST_ACCOUNT),
            (KEY_VAULT_SECRETS_USER, VAULT, ""),
            (MONITORING_METRICS_PUBLISHER, APP_INSIGHTS, ""),
            # Share links: a user-delegation key, and read (what the SAS may grant) on the output.
            (STORAGE_BLOB_DELEGATOR, STORAGE, OUTPUT_ACCOUNT),
            (STORAGE_BLOB_DATA_READER, CONTAINERS, OUTPUT_ACCOUNT),
        ]
    )


def test_share_links_can_only_read_the_output_container():
    # A user-delegation SAS grants at most its signer's rights in the account whose key signed it.
    # The delegator role is account-wide by nature, so that account must hold nothing but the
    # output container, and the app's only data right there is read on that container: no link
    # can reach the host's keys (azure-webjobs-secrets), the task hub or the deployment package.
    reader = [g for g in grants() if g.principal == "function" and g.role == STORAGE_BLOB_DATA_READER]
    assert [(g.scope_type, g.scope_symbol) for g in reader] == [(CONTAINERS, "outputContainer")]
    delegator = [g for g in grants() if g.role == STORAGE_BLOB_DELEGATOR]
    assert [(g.principal, g.scope_type, _account_of(g)) for g in delegator] == [("function", STORAGE, OUTPUT_ACCOUNT)]
    in_output_account = [g.role for g in grants() if g.principal == "function" and _account_of(g) == OUTPUT_ACCOUNT]
    assert sorted(in_output_account) == sorted([STORAGE_BLOB_DELEGATOR, STORAGE_BLOB_DATA_READER])
    assert [c.symbol for c in all_resources(CONTAINERS) if _parent_account(c) == OUTPUT_ACCOUNT] == ["outputContainer"]


def test_the_host_and_the_outputs_live_in_separate_accounts():
    storage = template(MAIN).modules["storage"]["config"]["params"]
    assert storage["storageAccountName"] != storage["outputStorageAccountName"]
    containers = {c.symbol: _parent_account(c) for c in all_resources(CONTAINERS)}
    assert containers == {"outputContainer": "outputStorageAccountName", "deploymentContainer": "storageAccountName"}
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
