"""The four activities, called like the Python worker calls them (JSON in, JSON out through the
library's converter), on an in-memory backend installed with `bootstrap.override`."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from tests.orchestration.conftest import ACTIVITY_RUNNERS, GROUP, JOB_ID, RUN_KEY, VIDEO_URL
from videojob import bootstrap
from videojob.contract.container_env import CALLBACK_TOKEN, JOB_URL
from videojob.contract.container_env import JOB_ID as JOB_ID_VAR
from videojob.domain.activity_wire import InspectResult
from videojob.domain.container_port import BackendError, ContainerState, GroupState
from videojob.domain.container_spec import attempt_group_name, group_name
from videojob.domain.failure_reason import FailureReason
from videojob.domain.tokens import verified_claims


def call(name: str, payload) -> dict:
    return json.loads(ACTIVITY_RUNNERS[name](json.dumps(payload)))


CREATE_INPUT = {
    "jobId": JOB_ID,
    "request": {"url": VIDEO_URL, "format": "audio", "audioFormat": "mp3"},
    "createdAt": "2026-01-01T00:00:00Z",
    "deadline": "2026-01-01T02:00:00Z",
    "run": RUN_KEY,
}


def test_create_builds_the_spec_and_starts_the_group(backend, caplog):
    caplog.set_level(logging.DEBUG)
    assert call("create_container_group", CREATE_INPUT) == {"ok": True, "group": GROUP, "state": ContainerState.RUNNING}

    spec = backend.specs[0]
    env = spec.environment()
    assert (env[JOB_ID_VAR], env[JOB_URL], env["JOB_FORMAT"], env["JOB_TIMEOUT_SECONDS"]) == (
        JOB_ID, VIDEO_URL, "audio", "7200"
    )
    token = dict(spec.secure_env)[CALLBACK_TOKEN]
    claims = verified_claims(bootstrap.settings().callback_signing_key, JOB_ID, token)
    assert claims is not None and (claims.run, claims.attempt) == (RUN_KEY, 1)
    assert claims.expires == int(datetime(2026, 1, 1, 2, tzinfo=UTC).timestamp())  # the deadline
    assert token not in caplog.text and bootstrap.settings().callback_signing_key not in caplog.text


def test_create_for_a_retry_uses_the_attempts_own_group(backend):
    group = attempt_group_name(JOB_ID, 2, RUN_KEY)
    answer = call("create_container_group", {**CREATE_INPUT, "attempt": 2, "group": group})

    assert answer == {"ok": True, "group": group, "state": ContainerState.RUNNING}
    assert backend.specs[0].name == group and backend.specs[0].environment()["JOB_ATTEMPT"] == "2"


def test_create_for_another_run_of_the_job_uses_that_runs_own_group(backend):
    other_run = "0123abcd"
    answer = call("create_container_group", {**CREATE_INPUT, "run": other_run})

    assert answer["ok"] is True and answer["group"] == backend.specs[0].name
    assert answer["group"] == attempt_group_name(JOB_ID, 1, other_run) != GROUP


def test_create_input_from_before_runs_were_named_keeps_its_group(backend):
    # An orchestration started by the previous version replays with inputs that carry no run.
    legacy = {k: v for k, v in CREATE_INPUT.items() if k != "run"}
    assert call("create_container_group", {**legacy, "group": group_name(JOB_ID)})["group"] == group_name(JOB_ID)


@pytest.mark.parametrize(
    "changes",
    [
        {"attempt": 2, "group": GROUP},
        {"attempt": 0},
        {"attempt": 11},
        {"attempt": "2"},
        {"run": "NOT-A-RUN"},
        {"run": 12345678},
        {"run": "0123abcd", "group": GROUP},
    ],
)
def test_create_refuses_an_attempt_and_group_that_do_not_match(backend, changes):
    answer = call("create_container_group", {**CREATE_INPUT, **changes})

    assert answer["ok"] is False and answer["error"]["code"] == "invalid_input"
    assert backend.calls == []


def test_create_answers_a_backend_error_instead_of_raising(backend):
    backend.create_errors = [BackendError("InaccessibleImage", "image not found", retryable=False)]
    assert call("create_container_group", CREATE_INPUT) == {
        "ok": False,
        "group": GROUP,
        "error": {"code": "InaccessibleImage", "message": "image not found", "retryable": False,
                  "reason": "permanent"},
    }


def test_create_answers_the_backends_reason_for_a_refusal(backend):
    backend.create_errors = [BackendError("ContainerGroupQuotaReached", "quota 'StandardCores' allows 1",
                                          retryable=False, reason=FailureReason.QUOTA_IMPOSSIBLE)]
    assert call("create_container_group", CREATE_INPUT)["error"]["reason"] == "quota_impossible"


def test_create_answers_an_unexpected_exception_as_retryable(backend):
    def broken(spec):
        raise RuntimeError("connection reset")

    backend.create = broken
    result = call("create_container_group", CREATE_INPUT)
    assert result["ok"] is False
    assert result["error"] == {"code": "unexpected_error", "message": "RuntimeError: connection reset",
                               "retryable": True, "reason": "transient"}


def test_create_rejects_a_malformed_input_without_calling_the_backend(backend):
    result = call("create_container_group", {**CREATE_INPUT, "deadline": "tomorrow"})
    assert result["ok"] is False and result["error"]["code"] == "invalid_input"
    assert result["error"]["retryable"] is False
    assert backend.calls == []


def test_create_reports_missing_settings_as_a_configuration_error(monkeypatch, tmp_path):
    for name in ("CALLBACK_SIGNING_KEY", "CALLBACK_BASE_URL", "WEBSITE_HOSTNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOCAL_SETTINGS_PATH", str(tmp_path / "absent.json"))
    monkeypatch.setenv("CONTAINER_BACKEND", "local")
    bootstrap.reset()
    try:
        result = call("create_container_group", CREATE_INPUT)
    finally:
        bootstrap.reset()
    assert result["ok"] is False
    assert result["error"]["code"] == "configuration"
    assert "CALLBACK" in result["error"]["message"]
    assert result["error"]["retryable"] is False


def test_inspect_a_running_group_does_not_fetch_logs(backend):
    call("create_container_group", CREATE_INPUT)
    assert call("inspect_container_group", {"group": GROUP}) == {
        "ok": True, "state": ContainerState.RUNNING, "exitCode": None, "detail": None, "logTail": "", "reason": None
    }
    assert backend.ops("logs") == []


def test_inspect_a_terminated_group_returns_exit_code_and_a_short_log_tail(backend):
    backend.states = [GroupState(GROUP, ContainerState.FAILED, exit_code=1, detail="Error")]
    backend.log_text = "\n".join("x" * 500 + f" line {i}" for i in range(100))
    result = call("inspect_container_group", {"group": GROUP})
    assert (result["state"], result["exitCode"], result["detail"]) == (ContainerState.FAILED, 1, "Error")
    assert result["logTail"].endswith(" line 99")
    assert len(result["logTail"]) <= 2000


def test_inspect_carries_the_backends_out_of_memory_reason(backend):
    backend.states = [GroupState(GROUP, ContainerState.FAILED, exit_code=137, reason=FailureReason.OUT_OF_MEMORY)]
    result = call("inspect_container_group", {"group": GROUP})
    assert result["reason"] == "out_of_memory"
    assert InspectResult.from_wire(result).reason == FailureReason.OUT_OF_MEMORY


@pytest.mark.parametrize(("detail", "reason"), [("OOMKilled", FailureReason.OUT_OF_MEMORY), ("Error", None)])
def test_an_inspect_answer_from_before_reasons_is_read_as_it_was_then(detail, reason):
    """In-flight histories: no `reason` key, the detail text the orchestration matched then."""
    old = {"ok": True, "state": "Failed", "exitCode": 137, "detail": detail, "logTail": ""}
    assert InspectResult.from_wire(old).reason == reason
    assert InspectResult.from_wire({**old, "reason": None}).reason is None


def test_inspect_a_missing_group(backend):
    result = call("inspect_container_group", {"group": "dl-nothing"})
    assert result["ok"] is True and result["state"] == ContainerState.MISSING


def test_inspect_keeps_the_state_when_logs_cannot_be_read(backend):
    backend.states = [GroupState(GROUP, ContainerState.FAILED, exit_code=2)]
    backend.logs_error = BackendError("ResourceNotFound", "no logs", retryable=False)
    result = call("inspect_container_group", {"group": GROUP})
    assert (result["ok"], result["state"], result["exitCode"], result["logTail"]) == (
        True, ContainerState.FAILED, 2, "")


def test_inspect_answers_a_backend_error(backend):
    def down(name):
        raise BackendError("AuthorizationFailed", "no access", retryable=False)

    backend.state = down
    assert call("inspect_container_group", {"group": GROUP}) == {
        "ok": False, "error": {"code": "AuthorizationFailed", "message": "no access", "retryable": False}
    }


def test_stop_keeps_the_group_and_delete_removes_it(backend):
    call("create_container_group", CREATE_INPUT)
    assert call("stop_container_group", {"group": GROUP}) == {"ok": True}
    assert backend.groups[GROUP].state == ContainerState.STOPPED
    assert call("delete_container_group", {"group": GROUP}) == {"ok": True}
    assert GROUP not in backend.groups


@pytest.mark.parametrize("name", ["stop_container_group", "delete_container_group"])
def test_stop_or_delete_a_missing_group_is_ok(backend, name):
    assert call(name, {"group": "dl-never-created"}) == {"ok": True}


@pytest.mark.parametrize("name", ["stop_container_group", "delete_container_group"])
def test_stop_or_delete_failure_is_answered(backend, name):
    error = BackendError("Conflict", "group is transitioning", retryable=True)
    backend.stop_errors, backend.delete_errors = [error], [error]
    assert call(name, {"group": GROUP}) == {
        "ok": False, "error": {"code": "Conflict", "message": "group is transitioning", "retryable": True}
    }


@pytest.mark.parametrize("name", ["inspect_container_group", "stop_container_group", "delete_container_group"])
def test_a_payload_without_group_is_invalid_input(backend, name):
    result = call(name, {})
    assert result["ok"] is False and result["error"]["code"] == "invalid_input"
    assert backend.calls == []
