"""The whole function app indexes, with the functions and triggers the host will register.

Indexed once per module: `get_functions()` is not idempotent (azure-functions-python-worker#1867).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def functions() -> dict[str, str]:
    import function_app

    indexed = function_app.app.get_functions()
    return {f.get_function_name(): f.get_trigger().type for f in indexed}


def test_orchestrator_and_activities_are_registered(functions):
    assert functions["download_job"] == "orchestrationTrigger"
    for name in ("create_container_group", "inspect_container_group", "stop_container_group",
                 "delete_container_group"):
        assert functions[name] == "activityTrigger"


def test_sweeper_and_http_api_are_registered(functions):
    assert functions["sweep_container_groups"] == "timerTrigger"
    assert functions["purge_expired_jobs"] == "timerTrigger"
    assert sum(1 for kind in functions.values() if kind == "httpTrigger") >= 3


def test_the_job_slots_entity_is_registered(functions):
    assert functions["job_slots"] == "entityTrigger"
