"""Entra mode in the Bicep (issue 21): App Service Authentication with Entra ID in front of the app
when `authMode` is entra, nothing when it is key; the paths it leaves open are exactly the page and
the worker callback, as the app declares those routes (extracts: data/easy_auth_platform.md)."""

from __future__ import annotations

import dataclasses
import fnmatch
import json

import api
from tests.support.durable_standin import IndexedFunctions

from .bicep_model import INFRA, MAIN, Resource, module_param, one_resource, template

FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"


def _auth() -> Resource:
    """The authsettingsV2 resource (pycep nests a conditional resource's body under `config`)."""
    for r in template(FUNCTION_APP).resources:
        body = r.config.get("config", r.config)
        if r.type == "Microsoft.Web/sites/config" and body.get("name") == "authsettingsV2":
            return dataclasses.replace(r, config=body)
    raise AssertionError("functionapp.bicep has no authsettingsV2")


def _condition() -> dict:
    return next(r.config["condition"] for r in template(FUNCTION_APP).resources if r.symbol == "authSettings")


def _routes() -> dict[str, str]:
    functions = IndexedFunctions(api.bp, api.job_routes_bp)
    out = {}
    for name in functions.functions:
        for b in functions.bindings(name):
            if b["type"] == "httpTrigger":
                out[name] = "/api/" + b["route"]
    return out


def _excluded(path: str, patterns: list[str]) -> bool:
    return any(p == path or (p.endswith("/*") and fnmatch.fnmatch(path, p)) for p in patterns)


def test_authentication_is_configured_only_in_entra_mode():
    assert _condition() == {"operator": {"type": "equals", "operands": {"operand_1": "authMode", "operand_2": "entra"}}}
    assert template(FUNCTION_APP).decorators("authMode")["allowed"] == ["key", "entra"]
    assert template(MAIN).parameters["authMode"]["default"] == "key"


def test_unauthenticated_api_calls_get_401_and_entra_id_signs_people_in():
    auth = _auth()
    assert auth.prop("properties/platform/enabled") is True
    assert auth.prop("properties/globalValidation/requireAuthentication") is True
    assert auth.prop("properties/globalValidation/unauthenticatedClientAction") == "Return401"
    aad = auth.prop("properties/identityProviders/azureActiveDirectory")
    assert aad["enabled"] is True and aad["registration"]["clientId"] == "entraClientId"


def test_exactly_the_page_and_the_worker_callback_are_left_open():
    patterns = _auth().prop("properties/globalValidation/excludedPaths")
    routes = _routes()
    sample = {name: route.replace("{id}", "k-0123abcd") for name, route in routes.items()}
    open_routes = {name for name, path in sample.items() if _excluded(path, patterns)}
    assert open_routes == {"web_app", "job_status_callback"}


def test_the_app_registration_reaches_the_module_and_azd_can_set_it():
    assert module_param("functionApp", "entraClientId") == "entraClientId"
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert mapped["entraClientId"]["value"] == "${ENTRA_CLIENT_ID}"
    assert mapped["authMode"]["value"] == "${AUTH_MODE=key}"


def test_the_settings_say_which_mode_the_app_runs_in():
    settings = template(FUNCTION_APP).variable("videojobSettings")
    assert settings["AUTH_MODE"] == "authMode"
    assert one_resource("Microsoft.Web/serverfarms").prop("sku/tier") == "FlexConsumption"
