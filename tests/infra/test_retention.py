"""Retention in Azure (issue 18): the output account's lifecycle management policy.

Finished jobs' blobs (outputs and result records) in the output container are deleted
`jobRetentionDays` after their last write, the same number the app reads as JOB_RETENTION_DAYS;
staging leftovers are deleted once no job can still be writing them. The policy's shape is checked
against the published resource type in test_api_versions.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from videojob.domain.settings import MAX_TIMER_SECONDS

from .bicep_model import INFRA, MAIN, all_resources, function_call, module_param, template

POLICY = "Microsoft.Storage/storageAccounts/managementPolicies"
STORAGE_BICEP = INFRA / "modules" / "storage.bicep"
DAY = 86400


def _policy():
    policies = list(all_resources(POLICY))
    assert len(policies) == 1, f"expected one lifecycle policy, found {len(policies)}"
    return policies[0]


def _rules() -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in _policy().prop("properties/policy/rules")}


def _deleting_rule(container_param: str) -> dict[str, Any]:
    """The enabled rule whose only prefix is the whole container `container_param` names."""
    found = [
        r for r in _rules().values()
        if r["definition"]["filters"].get("prefixMatch") == [f"${{{container_param}}}/"]
    ]
    assert len(found) == 1, f"expected one rule for the {container_param} container, found {len(found)}"
    rule = found[0]
    assert rule.get("enabled", True) is True and rule["type"] == "Lifecycle"
    assert rule["definition"]["filters"]["blobTypes"] == ["blockBlob"]
    return rule


def test_the_lifecycle_policy_is_on_the_output_account():
    policy = _policy()
    assert policy.file == STORAGE_BICEP
    assert policy.prop("name") == "default"  # the only name the resource type takes
    storage = template(STORAGE_BICEP)
    assert storage.resource(policy.prop("parent")).prop("name") == "outputStorageAccountName"


def test_finished_jobs_blobs_are_deleted_job_retention_days_after_their_last_write():
    rule = _deleting_rule("outputContainerName")
    assert rule["definition"]["actions"] == {
        "baseBlob": {"delete": {"daysAfterModificationGreaterThan": "jobRetentionDays"}}
    }


def test_job_retention_days_is_one_parameter_from_main_to_the_policy_and_the_app():
    main = template(MAIN)
    assert main.parameters["jobRetentionDays"]["default"] == 30
    storage = template(STORAGE_BICEP)
    for t in (main, storage):
        bounds = t.decorators("jobRetentionDays")
        assert (bounds.get("min_value"), bounds.get("max_value")) == (1, 3650), t.path.name
    assert module_param("storage", "jobRetentionDays") == "jobRetentionDays"
    assert module_param("functionApp", "jobRetentionDays") == "jobRetentionDays"
    app = template(INFRA / "modules" / "functionapp.bicep")
    setting = function_call(app.variable("videojobSettings")["JOB_RETENTION_DAYS"])
    assert setting is not None and setting[0] == "string"
    assert list(setting[1].values()) == ["jobRetentionDays"]


def _evaluate(expr: Any, values: dict[str, int]) -> int:
    """An integer Bicep expression as pycep gives it: literals, parameters, + - * /."""
    if isinstance(expr, int):
        return expr
    if isinstance(expr, str):
        return values[expr]
    op = expr["operator"]
    a, b = (_evaluate(op["operands"][k], values) for k in ("operand_1", "operand_2"))
    if op["type"] == "divide":
        return a // b  # Bicep's int division truncates
    return {"add": a + b, "minus": a - b, "multiply": a * b}[op["type"]]


def test_staging_blobs_are_deleted_after_a_day_and_never_while_a_job_may_write_them():
    rule = _deleting_rule("stagingContainerName")
    assert rule["definition"]["actions"] == {
        "baseBlob": {"delete": {"daysAfterModificationGreaterThan": "stagingRetentionDays"}}
    }
    assert module_param("storage", "stagingRetentionDays") == "stagingRetentionDays"
    expr = template(MAIN).variable("stagingRetentionDays")
    default_deadline = template(MAIN).parameters["jobDeadlineSeconds"]["default"]
    assert _evaluate(expr, {"jobDeadlineSeconds": default_deadline}) == 1
    # An attempt writes its staged blobs before its deadline; any deadline the app accepts.
    for deadline in (60, DAY - 1, DAY, DAY + 1, 3 * DAY, MAX_TIMER_SECONDS):
        assert _evaluate(expr, {"jobDeadlineSeconds": deadline}) * DAY > deadline, deadline


@pytest.mark.parametrize("account", ["storageAccountName"])
def test_nothing_expires_in_the_host_account(account):
    # The task hub, the host's keys and the deployment package are not the lifecycle policy's.
    storage = template(STORAGE_BICEP)
    for policy in all_resources(POLICY):
        assert storage.resource(policy.prop("parent")).prop("name") != account
