"""Security properties of the resources: each must be present and set (a missing one fails)."""

from __future__ import annotations

import re

from videojob.domain.settings import SettingsError, load_settings

from .bicep_model import INFRA, MAIN, all_resources, all_templates, one_resource, template


def test_storage_accounts_are_private_tls12_and_keyless():
    accounts = list(all_resources("Microsoft.Storage/storageAccounts"))
    assert {a.symbol for a in accounts} == {"storage", "outputStorage"}  # the host's and the outputs'
    for storage in accounts:
        assert storage.prop("properties/allowBlobPublicAccess") is False, storage.symbol
        assert storage.prop("properties/minimumTlsVersion") == "TLS1_2", storage.symbol
        assert storage.prop("properties/allowSharedKeyAccess") is False, storage.symbol
        assert storage.prop("properties/supportsHttpsTrafficOnly") is True, storage.symbol
        assert storage.prop("properties/defaultToOAuthAuthentication") is True, storage.symbol


def test_blob_containers_are_private():
    containers = list(all_resources("Microsoft.Storage/storageAccounts/blobServices/containers"))
    assert {c.symbol for c in containers} == {"outputContainer", "stagingContainer", "deploymentContainer"}
    for c in containers:
        assert c.prop("properties/publicAccess") == "None", c.symbol


def test_registry_has_no_admin_user_and_no_anonymous_pull():
    registry = one_resource("Microsoft.ContainerRegistry/registries")
    assert registry.prop("properties/adminUserEnabled") is False
    assert registry.prop("properties/anonymousPullEnabled") is False


def test_key_vault_uses_rbac_and_soft_delete():
    vault = one_resource("Microsoft.KeyVault/vaults")
    assert vault.prop("properties/enableRbacAuthorization") is True
    assert vault.prop("properties/enableSoftDelete") is True
    assert not vault.config.get("properties", {}).get("accessPolicies"), "RBAC only, no access policies"


def test_function_app_is_flex_linux_python311_https_only():
    plan = one_resource("Microsoft.Web/serverfarms")
    assert plan.prop("sku/tier") == "FlexConsumption"
    assert plan.prop("sku/name") == "FC1"
    assert plan.prop("properties/reserved") is True  # Linux
    site = one_resource("Microsoft.Web/sites")
    assert site.prop("kind") == "functionapp,linux"
    assert site.prop("properties/httpsOnly") is True
    assert site.prop("properties/siteConfig/minTlsVersion") == "1.2"
    assert site.prop("properties/functionAppConfig/runtime") == {"name": "python", "version": "3.11"}
    assert site.prop("identity/type") == "UserAssigned"
    assert site.prop("properties/keyVaultReferenceIdentity") is not None
    auth = site.prop("properties/functionAppConfig/deployment/storage/authentication/type")
    assert auth == "UserAssignedIdentity"
    tags = site.prop("tags")
    assert "azd-service-name" in str(tags)


def test_publishing_passwords_are_disabled():
    policies = {p.prop("name"): p for p in all_resources("Microsoft.Web/sites/basicPublishingCredentialsPolicies")}
    assert set(policies) == {"ftp", "scm"}
    for p in policies.values():
        assert p.prop("properties/allow") is False


def test_telemetry_uses_entra_not_the_instrumentation_key():
    insights = one_resource("Microsoft.Insights/components")
    assert insights.prop("properties/DisableLocalAuth") is True


def test_no_template_reads_keys_or_passwords():
    for t in all_templates():
        text = t.text.lower()
        for needle in ("listkeys(", "listcredentials(", "listsecrets(", "accountkey=", "adminpassword"):
            assert needle not in text, f"{t.path.name} uses {needle}"


def test_signing_key_is_a_secure_parameter_without_default_and_never_output():
    main = template(MAIN)
    decorators = main.decorators("callbackSigningKey")
    assert "secure" in decorators
    assert main.parameters["callbackSigningKey"]["default"] is None
    assert decorators["metadata"]["azd"]["type"] == "generate"
    assert decorators["metadata"]["azd"]["config"]["length"] >= 32  # settings require >= 32 characters
    kv = template(INFRA / "modules" / "keyvault.bicep")
    assert "secure" in kv.decorators("callbackSigningKey")
    for t in all_templates():
        for name, output in t.outputs.items():
            assert "callbackSigningKey" not in str(output.get("value")), f"{t.path.name} outputs {name}"


def test_every_resource_is_tagged_with_the_azd_environment():
    for t in all_templates():
        for r in t.resources:
            if r.existing or "/" in r.type.split("/", 1)[1] or r.type.startswith("Microsoft.Authorization/"):
                continue  # child resources, role definitions and assignments carry no tags
            assert "tags" in r.config, f"{t.path.name}: {r.symbol} has no tags"


def test_resource_names_fit_their_limits():
    # uniqueString() is 13 characters; Key Vault allows 24, storage 24 lowercase alphanumerics.
    main = template(MAIN)
    for module, param, limit, pattern in [
        ("storage", "storageAccountName", 24, r"^st\$\{resourceToken\}$"),
        ("storage", "outputStorageAccountName", 24, r"^stout\$\{resourceToken\}$"),
        ("keyVault", "keyVaultName", 24, r"^kv-\$\{resourceToken\}$"),
        ("registry", "registryName", 50, r"^cr\$\{resourceToken\}$"),
    ]:
        value = main.modules[module]["config"]["params"][param]
        assert re.match(pattern, value), value
        assert len(value.replace("${resourceToken}", "x" * 13)) <= limit


def test_an_unresolved_key_vault_reference_is_refused():
    # App Service leaves the reference text in the setting when it cannot resolve it; signing with
    # that public text would let anyone forge callback tokens.
    env = {
        "CONTAINER_BACKEND": "local",
        "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
        "OUTPUT_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "CALLBACK_SIGNING_KEY": "@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/callback-signing-key/0123)",
    }
    try:
        load_settings(environ=env)
    except SettingsError as e:
        assert "CALLBACK_SIGNING_KEY" in str(e) and "Key Vault" in str(e)
        assert "kv-x" not in str(e)
    else:
        raise AssertionError("an unresolved Key Vault reference was accepted as the signing key")
