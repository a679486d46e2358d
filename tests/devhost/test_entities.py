"""Durable entities in the devhost, as the extension runs them: `call_entity` answers, `signal_entity`
is fire-and-forget, one entity's operations run one at a time in arrival order, the state lives
in the SQLite store (a crash loses no accepted operation and applies none twice), and the entity
HTTP API (`GET`/`POST .../entities/{name}/{key}`) on both bases. Driven through HTTP only, with
the sample app's `counter` entity."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.devhost.conftest import SampleHost, start
from tests.e2e.harness import http

WEBHOOK = "/runtime/webhooks/durabletask"
RPC = "/durabletask"


def entity_url(sample: SampleHost, key: str, base: str = WEBHOOK, name: str = "counter") -> str:
    return f"{sample.base}{base}/entities/{name}/{key}"


def state_of(sample: SampleHost, key: str) -> object:
    code, body = http("GET", entity_url(sample, key))
    assert code == 200, (code, body)
    return body


def wait_state(sample: SampleHost, key: str, expected: object, timeout: float = 60) -> None:
    from devhost.stack import wait_until

    wait_until(lambda: http("GET", entity_url(sample, key)) == (200, expected), timeout,
               f"counter {key} == {expected}")


def test_call_entity_returns_the_result_and_signal_is_fire_and_forget(sample: SampleHost):
    key = uuid.uuid4().hex[:8]
    done = start(sample, "counting", {"key": key, "signal": 10, "add": 2}).wait_done(timeout=60)

    assert done["runtimeStatus"] == "Completed", done
    # The signal was sent before the call, to the same entity: it ran first.
    assert done["output"] == {"added": 12, "seen": 12}
    code, full = http("GET", f"{sample.base}{WEBHOOK}/instances/{done['instanceId']}?showHistory=true")
    sent = [e for e in full["historyEvents"] if e["EventType"] == "EventSent"]
    assert [e["InstanceId"] for e in sent] == [f"@counter@{key}"] * 3


def test_operations_run_one_at_a_time_in_order(sample: SampleHost):
    key = uuid.uuid4().hex[:8]
    with ThreadPoolExecutor(max_workers=10) as pool:
        jobs = list(pool.map(lambda _: start(sample, "counting", {"key": key, "add": 1}), range(30)))
    outputs = [job.wait_done(timeout=120) for job in jobs]

    assert all(o["runtimeStatus"] == "Completed" for o in outputs), outputs
    added = sorted(o["output"]["added"] for o in outputs)
    assert added == list(range(1, 31))  # each add saw every earlier one: no lost update
    assert state_of(sample, key) == 30


def test_entity_operation_error_fails_the_call_in_the_orchestrator(sample: SampleHost):
    key = uuid.uuid4().hex[:8]
    done = start(sample, "counting", {"key": key, "boom": True}).wait_done(timeout=60)

    assert done["runtimeStatus"] == "Completed", done
    assert "counter refused: boom" in done["output"]["error"]


def test_a_failing_orchestrator_still_sends_its_signal(sample: SampleHost):
    key = uuid.uuid4().hex[:8]
    done = start(sample, "signal_then_fail", {"key": key}).wait_done(timeout=60)

    assert done["runtimeStatus"] == "Failed", done
    wait_state(sample, key, 5)


@pytest.mark.parametrize("base", [WEBHOOK, RPC])
def test_entity_http_api_get_200_and_404(sample: SampleHost, base: str):
    key = uuid.uuid4().hex[:8]
    assert http("GET", entity_url(sample, key, base))[0] == 404
    start(sample, "counting", {"key": key, "add": 4}).wait_done(timeout=60)

    assert http("GET", entity_url(sample, key, base, name="Counter")) == (200, 4)  # names are case-blind


@pytest.mark.parametrize("base", [WEBHOOK, RPC])
def test_client_signal_through_http_202(sample: SampleHost, base: str):
    """The body as the Python client sends it: JSON text inside a JSON string (codes and the
    encoding are checked against the extension in test_conformance.py)."""
    key = uuid.uuid4().hex[:8]
    assert http("POST", f"{entity_url(sample, key, base)}?op=add", json.dumps(7))[0] == 202
    wait_state(sample, key, 7)
    code, _ = http("POST", f"{entity_url(sample, key, base)}?op=get", None,
                   headers={"Content-Type": "application/json"})
    assert code == 202


def test_entity_state_survives_a_restart(sample: SampleHost):
    """Every signal answered 202 is applied exactly once, though the devhost is killed while
    operations still wait."""
    key = uuid.uuid4().hex[:8]
    url = f"{entity_url(sample, key)}?op=add"
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda _: http("POST", url, "1")[0], range(150)))
    assert codes == [202] * 150
    sample.devhost.kill()
    sample.start()

    wait_state(sample, key, 150)
    assert http("POST", url, "1")[0] == 202
    wait_state(sample, key, 151)
