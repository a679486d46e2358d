"""Sub-orchestrations in the devhost, as the Durable extension runs them: children are instances
of their own, their outcome reaches the parent as `SubOrchestrationInstanceCompleted` /
`...Failed`, everything persists across a crash, and terminating a parent leaves its children
alone (the extension's behaviour). Driven through HTTP only, with the tiny sample app."""

from __future__ import annotations

import time
import uuid

from tests.devhost.conftest import SampleHost, start
from tests.e2e.harness import Job, http

WEBHOOK = "/runtime/webhooks/durabletask"


def instance(sample: SampleHost, instance_id: str, *, appears_within: float = 30) -> Job:
    """A child instance, once it exists: the parent starts it in an episode of its own, so right
    after the parent's start it may not be there yet (404)."""
    base = f"{sample.base}{WEBHOOK}/instances/{instance_id}"
    status_url = f"{base}?taskHub=x"
    end = time.monotonic() + appears_within
    while http("GET", status_url)[0] == 404:
        assert time.monotonic() < end, f"instance {instance_id} did not appear within {appears_within}s"
        time.sleep(0.2)
    return Job(instance_id, {"statusQueryGetUri": status_url, "terminatePostUri": f"{base}/terminate?reason={{text}}"})


def test_children_run_as_instances_and_report_success_and_failure_to_the_parent(sample: SampleHost):
    tag = uuid.uuid4().hex[:8]
    job = start(sample, "parent", {"children": [
        {"id": f"{tag}-a", "sleep": 1, "echo": "A"},
        {"id": f"{tag}-b", "sleep": 0, "fail": "http_error: HTTP Error 404"},
        {"sleep": 0, "echo": "no id"},
    ]})

    done = job.wait_done(timeout=30)

    assert done["runtimeStatus"] == "Completed", done
    first, second, third = done["output"]
    assert first == {"ok": {"me": f"{tag}-a", "parent": job.id, "echo": "A"}}
    assert "Orchestrator function 'child' failed: http_error: HTTP Error 404" in second["error"]
    assert third["ok"]["me"].startswith(f"{job.id}:") and third["ok"]["parent"] == job.id
    child_a = instance(sample, f"{tag}-a").status()
    assert child_a["runtimeStatus"] == "Completed" and child_a["name"] == "child"
    assert instance(sample, f"{tag}-b").status()["runtimeStatus"] == "Failed"
    code, full = http("GET", f"{job.links['statusQueryGetUri']}&showHistory=true")
    kinds = [e["EventType"] for e in full["historyEvents"]]
    assert kinds.count("SubOrchestrationInstanceCreated") == 3
    assert kinds.count("SubOrchestrationInstanceCompleted") == 2 and kinds.count("SubOrchestrationInstanceFailed") == 1
    created = [e for e in full["historyEvents"] if e["EventType"] == "SubOrchestrationInstanceCreated"]
    assert [e["InstanceId"] for e in created[:2]] == [f"{tag}-a", f"{tag}-b"]


def test_a_child_id_that_is_still_running_fails_the_parents_task(sample: SampleHost):
    taken = f"taken-{uuid.uuid4().hex[:8]}"
    blocker = start(sample, "parent", {"children": [{"id": taken, "sleep": 30}]})
    instance(sample, taken).wait(lambda b: b["runtimeStatus"] == "Running", timeout=20)

    job = start(sample, "parent", {"children": [{"id": taken, "sleep": 0}]})
    done = job.wait_done(timeout=20)

    assert "already exists" in done["output"][0]["error"]
    http("POST", f"{sample.base}{WEBHOOK}/instances/{blocker.id}/terminate?reason=done")
    http("POST", f"{sample.base}{WEBHOOK}/instances/{taken}/terminate?reason=done")


def test_a_failed_child_is_retried_by_call_sub_orchestrator_with_retry(sample: SampleHost, tmp_path):
    job = start(sample, "retrying_parent", {"counter": str(tmp_path / "c"), "failures": 2})

    done = job.wait_done(timeout=30)

    assert done["runtimeStatus"] == "Completed", done
    assert done["output"] == "ok after 3"


def test_terminating_a_parent_leaves_its_children_running_like_the_extension(sample: SampleHost):
    kid = f"kid-{uuid.uuid4().hex[:8]}"
    job = start(sample, "parent", {"children": [{"id": kid, "sleep": 2, "echo": "still here"}]})
    child = instance(sample, kid)
    child.wait(lambda b: b["runtimeStatus"] == "Running", timeout=20)

    terminated = http("POST", job.links["terminatePostUri"].replace("{text}", "stop"))[0]
    child_done = child.wait_done(timeout=20)

    assert terminated == 202 and job.status()["runtimeStatus"] == "Terminated"
    assert child_done["runtimeStatus"] == "Completed" and child_done["output"]["echo"] == "still here"
    assert job.status()["runtimeStatus"] == "Terminated"  # the child's result was not delivered to it


def test_a_terminated_child_fails_the_parents_task(sample: SampleHost):
    kid = f"kid-{uuid.uuid4().hex[:8]}"
    job = start(sample, "parent", {"children": [{"id": kid, "sleep": 60}]})
    instance(sample, kid).wait(lambda b: b["runtimeStatus"] == "Running", timeout=20)

    http("POST", f"{sample.base}{WEBHOOK}/instances/{kid}/terminate?reason=operator")
    done = job.wait_done(timeout=20)

    assert done["runtimeStatus"] == "Completed"
    assert "terminated: operator" in done["output"][0]["error"]


def test_a_crash_mid_batch_resumes_parent_and_children(sample: SampleHost):
    tag = uuid.uuid4().hex[:8]
    job = start(sample, "parent", {"children": [{"id": f"{tag}-{i}", "sleep": 2, "echo": i} for i in range(3)]})
    for i in range(3):
        instance(sample, f"{tag}-{i}").wait(lambda b: (b.get("customStatus") or {}).get("child") == "sleeping",
                                            timeout=20)

    sample.devhost.kill()
    sample.start()
    done = job.wait_done(timeout=30)

    assert done["runtimeStatus"] == "Completed", done
    assert [r["ok"]["echo"] for r in done["output"]] == [0, 1, 2]


def test_a_child_that_continues_as_new_reports_its_last_generations_outcome_to_the_parent(sample: SampleHost):
    job = start(sample, "renewing_parent", {"left": 2})

    done = job.wait_done(timeout=60)

    assert done["runtimeStatus"] == "Completed", done
    child = done["output"]["child"]
    assert child["parent"] == job.id and child["generation"] == 3, child
    assert instance(sample, child["me"]).status()["runtimeStatus"] == "Completed"
