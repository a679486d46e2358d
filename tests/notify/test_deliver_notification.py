"""`deliver_notification` through the replay harness: retries with durable-timer backoff, bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import pytest

from orchestrators.kernel import Mailbox
from orchestrators.notification import deliver_notification
from tests.support.replay import ReplayHost
from videojob.domain.activity_wire import NOTIFY_COMPLETION

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RECEIVER = "https://hooks.example.com/videojob"
OUTPUT = {"jobId": "job-1", "state": "succeeded"}

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def notify_only(context: df.DurableOrchestrationContext):
    data = context.get_input()
    record = yield from deliver_notification(context, Mailbox(context), data["url"], data["payload"],
                                             max_attempts=data["attempts"])
    return record


def run(answers: list[Any], attempts: int = 5):
    """Each activity call gets the next answer (a dict, or an Exception to raise)."""
    remaining = list(answers)

    def activity(name: str, input_json: str) -> str:
        assert name == NOTIFY_COMPLETION
        answer = remaining.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return json.dumps(answer)

    host = ReplayHost(
        notify_only,
        instance_id="job-1",
        input={"url": RECEIVER, "payload": OUTPUT, "attempts": attempts},
        start=T0,
        activities=activity,
        activity_seconds=1.0,
    )
    return host.run()


def fail(status: int | None, retryable: bool) -> dict[str, Any]:
    error = {"code": "notify_http_status", "message": "no", "retryable": retryable}
    out: dict[str, Any] = {"ok": False, "error": error}
    if status is not None:
        out["status"] = status
    return out


def pauses(result) -> list[float]:
    return [(t.fire_at - t.created_at).total_seconds() for t in result.timers]


def test_first_attempt_delivers_without_any_timer():
    result = run([{"ok": True, "status": 204}])
    assert result.status == "Completed"
    assert result.output == {"delivered": True, "attempts": 1, "status": 204}
    assert result.timers == []
    call = result.calls(NOTIFY_COMPLETION)[0]
    assert call.input == {"url": RECEIVER, "payload": OUTPUT}


def test_retryable_failures_are_retried_with_doubling_durable_timers():
    result = run([fail(500, True), fail(None, True), fail(429, True), {"ok": True, "status": 200}])
    assert result.output == {"delivered": True, "attempts": 4, "status": 200}
    assert pauses(result) == [5, 10, 20]
    assert all(t.fired for t in result.timers)


def test_gives_up_after_the_attempt_limit_and_records_the_last_error():
    result = run([fail(503, True)] * 5)
    assert result.status == "Completed"
    assert result.output["delivered"] is False
    assert result.output["attempts"] == 5
    assert result.output["status"] == 503
    assert result.output["error"]["code"] == "notify_http_status"
    assert len(result.calls(NOTIFY_COMPLETION)) == 5
    assert pauses(result) == [5, 10, 20, 40]


def test_a_refusal_is_not_retried():
    result = run([fail(404, False), {"ok": True, "status": 200}])
    assert result.output == {
        "delivered": False,
        "attempts": 1,
        "status": 404,
        "error": {"code": "notify_http_status", "message": "no", "retryable": False},
    }
    assert result.timers == []


def test_an_activity_that_raises_counts_as_a_retryable_failure():
    result = run([RuntimeError("boom"), {"ok": True, "status": 202}], attempts=3)
    assert result.output == {"delivered": True, "attempts": 2, "status": 202}
    assert pauses(result) == [5]


@pytest.mark.parametrize("attempts", [1, 2])
def test_the_attempt_limit_is_honoured(attempts: int):
    result = run([fail(500, True)] * attempts, attempts=attempts)
    assert result.output["attempts"] == attempts
    assert len(result.calls(NOTIFY_COMPLETION)) == attempts
    assert result.finished_at - T0 < timedelta(minutes=1)
