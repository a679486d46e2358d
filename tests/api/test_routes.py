"""What the host sees when it indexes the API: routes, methods, auth levels, client bindings."""

from __future__ import annotations

import pytest

from tests.support.durable_standin import IndexedFunctions

EXPECTED = {
    "start_download": ("downloads", "function"),
    "orchestrator_httpstart": ("orchestrator_httpstart", "function"),
    "cancel_download": ("downloads/{id}/cancel", "function"),
    "job_status_callback": ("jobs/{id}/status", "anonymous"),
}
GET_ROUTES = {
    "list_downloads": ("downloads", "function", True),
    "web_app": ("app", "anonymous", False),  # the page holds no secret; the routes it calls need keys
}


def test_the_blueprint_holds_exactly_the_api_functions(functions: IndexedFunctions) -> None:
    assert set(functions.functions) == set(EXPECTED) | set(GET_ROUTES)


@pytest.mark.parametrize(("name", "route_and_auth"), EXPECTED.items())
def test_route_method_and_auth_level(functions: IndexedFunctions, name: str, route_and_auth) -> None:
    route, auth_level = route_and_auth
    bindings = {b["type"]: b for b in functions.bindings(name)}

    trigger = bindings["httpTrigger"]
    assert trigger["route"] == route
    assert [m.upper() for m in trigger["methods"]] == ["POST"]
    assert trigger["authLevel"].lower() == auth_level
    assert bindings["durableClient"]["name"] == "client"
    assert bindings["http"]["direction"].lower() == "out"


@pytest.mark.parametrize(("name", "route_auth_client"), GET_ROUTES.items())
def test_get_routes(functions: IndexedFunctions, name: str, route_auth_client) -> None:
    route, auth_level, has_client = route_auth_client
    bindings = {b["type"]: b for b in functions.bindings(name)}

    trigger = bindings["httpTrigger"]
    assert (trigger["route"], [m.upper() for m in trigger["methods"]]) == (route, ["GET"])
    assert trigger["authLevel"].lower() == auth_level
    assert ("durableClient" in bindings) is has_client
