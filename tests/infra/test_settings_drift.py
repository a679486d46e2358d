"""No drift between the settings the code reads, local.settings.sample.json and the Bicep app settings.

"The code reads" is found two ways and both must agree: `videojob.domain.settings.SETTING_NAMES` (the one
list) and a scan of the deployed function app's source for environment reads. The worker's
container env is a separate contract (`videojob/contract/container_env.py`) and is not an app setting.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from videojob.domain.settings import PLATFORM_VARIABLES, SECRET_SETTINGS, SETTING_NAMES, load_settings

from .bicep_model import INFRA, MAIN, REPO, accessor_path, function_call, module_param, template

FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"
SAMPLE = REPO / "local.settings.sample.json"

# What the function app package contains (see .funcignore): the code whose env reads are settings.
DEPLOYED_SOURCES = ("function_app.py", "api", "orchestrators", "activities", "sweeper", "retention", "videojob")
NOT_APP_SETTINGS = {
    REPO / "videojob" / "contract" / "container_env.py": "the worker's container env contract, set per container group",
    REPO / "videojob" / "client" / "cli.py": (
        "the API client command (python -m videojob.client.cli), run by users, not the app"
    ),
}
# Environment variables the deployed code may read that are not app settings, each with its reason.
DEV_ONLY_VARIABLES = {
    "LOCAL_SETTINGS_PATH": "where bootstrap finds local.settings.json when run outside the Functions host",
}
# Functions-runtime settings (read by the host, not by our code).
SAMPLE_RUNTIME_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}
BICEP_RUNTIME_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "AZURE_CLIENT_ID",
    "AzureWebJobsSecretStorageType",  # where the host keeps its keys: stated, not left to the default
}
READER_METHODS = {"str", "required", "int", "float", "bool", "choice"}


def _python_files() -> list[Path]:
    files: list[Path] = []
    for entry in DEPLOYED_SOURCES:
        path = REPO / entry
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return [f for f in files if f not in NOT_APP_SETTINGS]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def env_reads(source: str) -> set[str]:
    """Names read from the environment: os.environ[...] / .get / os.getenv, and `_Reader` calls."""
    tree = ast.parse(source)
    readers = {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _dotted(node.value.func) == "_Reader"
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _dotted(node.value) in ("os.environ", "environ"):
            names.add(_literal(node.slice) or "<dynamic>")
        elif isinstance(node, ast.Call) and node.args:
            func = _dotted(node.func)
            receiver, _, method = func.rpartition(".")
            is_env = receiver in ("os.environ", "environ") and method in ("get", "pop", "setdefault")
            is_env = is_env or func in ("os.getenv", "getenv")
            is_env = is_env or (receiver in readers and method in READER_METHODS)
            if is_env:
                names.add(_literal(node.args[0]) or "<dynamic>")
    return names


def code_reads() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in _python_files():
        for name in env_reads(f.read_text(encoding="utf-8")):
            found.setdefault(name, []).append(str(f.relative_to(REPO)))
    return found


def sample_values() -> dict[str, str]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))["Values"]


def bicep_settings() -> tuple[dict, dict]:
    t = template(FUNCTION_APP)
    return t.variable("runtimeSettings"), t.variable("videojobSettings")


# ---- the scanner itself ----


def test_env_scanner_finds_each_way_of_reading_the_environment():
    source = """
import os
from os import environ, getenv
a = os.environ["A_ONE"]
b = os.environ.get("B_TWO", "x")
c = os.getenv("C_THREE")
d = environ.get("D_FOUR")
def load(env):
    r = _Reader(env)
    r.str("E_FIVE"); r.required("F_SIX", "why"); r.int("G_SEVEN", 1, 0, 2)
    other.get("NOT_ENV")
"""
    assert env_reads(source) == {"A_ONE", "B_TWO", "C_THREE", "D_FOUR", "E_FIVE", "F_SIX", "G_SEVEN"}


def test_scanner_sees_the_deployed_code():
    reads = code_reads()
    assert "CALLBACK_SIGNING_KEY" in reads and "WEBSITE_HOSTNAME" in reads, reads


# ---- code <-> SETTING_NAMES ----


def test_every_env_read_in_the_function_app_is_a_declared_setting():
    reads = code_reads()
    assert "<dynamic>" not in reads, f"an env read with a computed name: {reads.get('<dynamic>')}"
    undeclared = set(reads) - set(SETTING_NAMES) - set(PLATFORM_VARIABLES) - set(DEV_ONLY_VARIABLES)
    assert not undeclared, {n: reads[n] for n in undeclared}


def test_every_declared_setting_is_read_by_the_code():
    reads = code_reads()
    unread = set(SETTING_NAMES) - set(reads)
    assert not unread, f"in SETTING_NAMES but never read: {sorted(unread)}"
    stale = set(DEV_ONLY_VARIABLES) - set(reads)
    assert not stale, f"DEV_ONLY_VARIABLES lists names nothing reads: {sorted(stale)}"


def test_setting_names_has_no_duplicates():
    assert len(SETTING_NAMES) == len(set(SETTING_NAMES))


# ---- SETTING_NAMES <-> local.settings.sample.json ----


def test_sample_lists_exactly_the_settings_plus_the_runtime_ones():
    keys = set(sample_values())
    assert keys - SAMPLE_RUNTIME_SETTINGS == set(SETTING_NAMES), {
        "missing from sample": sorted(set(SETTING_NAMES) - keys),
        "unknown in sample": sorted(keys - SAMPLE_RUNTIME_SETTINGS - set(SETTING_NAMES)),
    }


# ---- SETTING_NAMES <-> Bicep app settings ----


def test_bicep_sets_exactly_the_settings_the_code_reads():
    _, ours = bicep_settings()
    assert set(ours) == set(SETTING_NAMES), {
        "missing from Bicep": sorted(set(SETTING_NAMES) - set(ours)),
        "unknown in Bicep": sorted(set(ours) - set(SETTING_NAMES)),
    }


def test_bicep_runtime_settings_are_the_reviewed_list_and_do_not_overlap():
    runtime, ours = bicep_settings()
    assert set(runtime) == BICEP_RUNTIME_SETTINGS
    assert not set(runtime) & set(ours)
    # Flex Consumption takes the runtime from functionAppConfig and rejects these as app settings.
    assert "FUNCTIONS_WORKER_RUNTIME" not in runtime and "FUNCTIONS_EXTENSION_VERSION" not in runtime


def test_the_app_settings_resource_applies_both_objects():
    t = template(FUNCTION_APP)
    config = t.resource("appSettings")
    assert config.type == "Microsoft.Web/sites/config"
    assert config.prop("name") == "appsettings"
    assert config.prop("parent") == "site"
    name, params = function_call(config.prop("properties"))
    assert name == "union"
    assert sorted(params.values()) == ["runtimeSettings", "videojobSettings"]
    # siteConfig.appSettings would be replaced by the config resource: keep one source.
    assert "appSettings" not in t.resource("site").prop("properties/siteConfig")


# ---- values that matter in Azure ----


def test_azure_values_use_identities_and_no_secrets():
    runtime, ours = bicep_settings()
    assert ours["CONTAINER_BACKEND"] == "aci"
    assert ours["ALLOW_PRIVATE_ADDRESSES"] == "false"
    # No keys or passwords: the worker writes and pulls with its identity.
    assert ours["OUTPUT_CONNECTION_STRING"] == ""
    assert ours["REGISTRY_USERNAME"] == ""
    assert ours["REGISTRY_PASSWORD"] == ""
    assert ours["CALLBACK_SIGNING_KEY"] == "@Microsoft.KeyVault(SecretUri=${signingKeySecretUri})"
    assert ours["CALLBACK_BASE_URL"] == "https://${site.properties.defaultHostName}"
    # The outputs' own account (share links are signed with its key), not the host's `storage`.
    assert accessor_path(ours["OUTPUT_ACCOUNT_URL"]) == ["outputStorage", "properties", "primaryEndpoints", "blob"]
    assert accessor_path(ours["REGISTRY_SERVER"]) == ["registry", "properties", "loginServer"]
    assert accessor_path(ours["WORKER_IDENTITY_RESOURCE_ID"]) == ["workerIdentity", "id"]
    assert accessor_path(ours["WORKER_IDENTITY_CLIENT_ID"]) == ["workerIdentity", "properties", "clientId"]
    assert runtime["AzureWebJobsStorage__credential"] == "managedidentity"
    assert accessor_path(runtime["AzureWebJobsStorage__clientId"]) == ["functionIdentity", "properties", "clientId"]
    assert accessor_path(runtime["AZURE_CLIENT_ID"]) == ["functionIdentity", "properties", "clientId"]
    assert accessor_path(runtime["AzureWebJobsStorage__accountName"]) == ["storage", "name"]


def test_signing_key_reference_points_at_the_generated_secret():
    assert accessor_path(module_param("functionApp", "signingKeySecretUri")) == [
        "keyVault",
        "outputs",
        "signingKeySecretUri",
    ]
    kv = template(INFRA / "modules" / "keyvault.bicep")
    assert accessor_path(kv.outputs["signingKeySecretUri"]["value"]) == [
        "signingKey",
        "properties",
        "secretUriWithVersion",
    ]
    assert kv.resource("signingKey").prop("properties/value") == "callbackSigningKey"
    assert module_param("keyVault", "callbackSigningKey") == "callbackSigningKey"


def test_notify_signing_key_is_a_generated_key_vault_secret():
    _, ours = bicep_settings()
    assert ours["NOTIFY_SIGNING_KEY"] == "@Microsoft.KeyVault(SecretUri=${notifyKeySecretUri})"
    assert accessor_path(module_param("functionApp", "notifyKeySecretUri")) == [
        "keyVault",
        "outputs",
        "notifyKeySecretUri",
    ]
    kv = template(INFRA / "modules" / "keyvault.bicep")
    uri = kv.outputs["notifyKeySecretUri"]["value"]
    assert accessor_path(uri) == ["notifyKey", "properties", "secretUriWithVersion"]
    assert kv.resource("notifyKey").prop("properties/value") == "notifySigningKey"
    assert module_param("keyVault", "notifySigningKey") == "notifySigningKey"
    # azd generates it once per environment, like the callback key; it is never a default value.
    param = template(MAIN).parameters["notifySigningKey"]
    assert param.get("default") is None


def _default_of_main_param(expr):
    """The value main.bicep's defaults give to a functionapp.bicep parameter, or None."""
    main = template(MAIN)
    if isinstance(expr, str) and expr in main.parameters:
        return main.parameters[expr]["default"]
    if isinstance(expr, str) and expr in main.variables:
        return main.variables[expr]["value"]
    return None


def test_the_bicep_defaults_load_as_valid_settings():
    # Resolve each setting from the template defaults; stand-ins only for values Azure computes.
    computed = {
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
        "ACI_RESOURCE_GROUP": "rg-test",
        "ACI_LOCATION": "westeurope",
        "WORKER_IMAGE": "crtest.azurecr.io/video-worker:src-0123456789abcdef",
        "WORKER_IDENTITY_RESOURCE_ID": "/subscriptions/0/resourceGroups/rg-test/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/id-worker",
        "WORKER_IDENTITY_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
        "REGISTRY_SERVER": "crtest.azurecr.io",
        "OUTPUT_ACCOUNT_URL": "https://sttest.blob.core.windows.net/",
        "CALLBACK_BASE_URL": "https://func-test.azurewebsites.net",
        "CALLBACK_SIGNING_KEY": "k" * 64,  # what the Key Vault reference resolves to
        "NOTIFY_SIGNING_KEY": "n" * 64,
        # azd creates both secrets empty: the references resolve to "" until an operator fills them.
        "YOUTUBE_COOKIES": "",
        "WORKER_PROXY_URL": "",
    }
    fa = template(FUNCTION_APP)
    _, ours = bicep_settings()
    env: dict[str, str] = {}
    for name, expr in ours.items():
        if name in computed:
            env[name] = computed[name]
            continue
        if isinstance(expr, str) and not fa.is_symbol(expr):
            env[name] = expr  # a literal
            continue
        call = function_call(expr)
        param = next(iter(call[1].values())) if call and call[0] == "string" else expr
        assert fa.is_symbol(param), f"{name}: cannot resolve {expr}"
        default = _default_of_main_param(module_param("functionApp", param))
        assert default is not None, f"{name}: main.bicep has no default for {param}"
        env[name] = str(default)
    settings = load_settings(environ=env)
    assert settings.container_backend == "aci"
    assert settings.failed_group_policy == "stop"
    assert settings.job_deadline_seconds == 7200
    assert settings.heartbeat_timeout_seconds == 600
    assert settings.progress_interval_seconds == 20
    assert settings.max_download_bytes == 8 * 1024**3
    assert settings.allow_private_addresses is False
    assert settings.registry_username is None and settings.output_connection_string is None
    assert settings.notify_signing_key == "n" * 64
    assert (settings.max_parallel_jobs, settings.max_batch_urls, settings.max_playlist_items) == (3, 25, 25)
    assert settings.deduplicate is False
    assert settings.job_max_attempts == 3 and settings.share_link_hours == 24
    assert settings.job_retry_backoff_seconds == 30
    assert (settings.price_per_vcpu_second, settings.price_per_gb_second) == (0.0000135, 0.0000015)
    assert settings.cost_currency == "USD"
    assert settings.youtube_cookies is None and settings.worker_proxy_url is None
    assert settings.extractor_args == () and settings.retry_bot_check is True


@pytest.mark.parametrize(
    ("setting", "uri_param", "secret", "value_param"),
    [
        ("YOUTUBE_COOKIES", "youtubeCookiesSecretUri", "youtubeCookiesSecret", "youtubeCookies"),
        ("WORKER_PROXY_URL", "workerProxySecretUri", "workerProxySecret", "workerProxyUrl"),
    ],
)
def test_worker_access_secrets_are_key_vault_references_to_secrets_azd_creates(
    setting: str, uri_param: str, secret: str, value_param: str
):
    _, ours = bicep_settings()
    assert ours[setting] == f"@Microsoft.KeyVault(SecretUri=${{{uri_param}}})"
    assert accessor_path(module_param("functionApp", uri_param)) == ["keyVault", "outputs", uri_param]
    kv = template(INFRA / "modules" / "keyvault.bicep")
    assert accessor_path(kv.outputs[uri_param]["value"]) == [secret, "properties", "secretUriWithVersion"]
    assert kv.resource(secret).type == "Microsoft.KeyVault/vaults/secrets"
    assert kv.resource(secret).prop("properties/value") == value_param
    # The value comes from the azd environment through a secure parameter that is empty by default
    # (the secret exists, empty, so the reference always resolves) and never leaves as an output.
    assert module_param("keyVault", value_param) == value_param
    main = template(MAIN)
    assert main.parameters[value_param].get("default") == ""
    assert {"type": "secure"} in main.parameters[value_param]["decorators"]
    assert {"type": "secure"} in kv.parameters[value_param]["decorators"]
    assert all(o.get("value") != value_param for o in main.outputs.values())
    assert setting in SECRET_SETTINGS


def test_operator_access_settings_reach_the_app_from_main_parameters():
    _, ours = bicep_settings()
    assert ours["YTDLP_EXTRACTOR_ARGS"] == "ytdlpExtractorArgs"
    assert module_param("functionApp", "ytdlpExtractorArgs") == "ytdlpExtractorArgs"
    assert function_call(ours["RETRY_BOT_CHECK"]) == ("string", {"value_to_convert": "retryBotCheck"})
    assert module_param("functionApp", "retryBotCheck") == "retryBotCheck"
    assert template(MAIN).parameters["retryBotCheck"]["default"] is True
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    for param, variable in [
        ("youtubeCookies", "YOUTUBE_COOKIES"),
        ("workerProxyUrl", "WORKER_PROXY_URL"),
        ("ytdlpExtractorArgs", "YTDLP_EXTRACTOR_ARGS"),
    ]:
        assert parameters[param]["value"] == f"${{{variable}}}"
