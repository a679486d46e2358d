"""`download_job` attempts, cost, share link and completion webhook, replayed episode by episode.

Same setting as `test_download_job`: the container activities are the real ones on an in-memory
backend, an activity takes 2 s, the worker's reports are `EventRaised` events on a simulated
clock. Each attempt's worker stamps its events with `attempt` (the `JOB_ATTEMPT` it was given).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from orchestrators import download_job
from tests.orchestration.conftest import (
    BLOB,
    CANCEL,
    GROUP,
    JOB_ID,
    MEDIA,
    RUN_KEY,
    SHARE_LINK_EXPIRES,
    T0,
    VIDEO_URL,
    at,
    check_invariants,
    plan,
    run_activity,
    run_key_of,
    share_link_url,
    status_at,
)
from tests.support.replay import ReplayHost
from videojob.contract import container_env as E
from videojob.contract.wire import CostRates, DownloadRequest
from videojob.domain.activity_wire import (
    CREATE_CONTAINER_GROUP,
    CREATE_SHARE_LINK,
    DELETE_CONTAINER_GROUP,
    INSPECT_CONTAINER_GROUP,
    NOTIFY_COMPLETION,
    PUBLISH_OUTPUT_BLOB,
    READ_RESULT_RECORD,
    STOP_CONTAINER_GROUP,
)
from videojob.domain.container_port import ContainerState, GroupState
from videojob.domain.container_spec import attempt_group_name

pytestmark = pytest.mark.timeout(60)

CREATE, INSPECT, STOP, DELETE = (
    CREATE_CONTAINER_GROUP,
    INSPECT_CONTAINER_GROUP,
    STOP_CONTAINER_GROUP,
    DELETE_CONTAINER_GROUP,
)
SHARE, NOTIFY, CHECK = CREATE_SHARE_LINK, NOTIFY_COMPLETION, PUBLISH_OUTPUT_BLOB
GROUP2, GROUP3 = attempt_group_name(JOB_ID, 2, RUN_KEY), attempt_group_name(JOB_ID, 3, RUN_KEY)
HOOK = "https://hooks.example.net/videos"
BLOB2 = {**BLOB, "name": "job-0001/video-2.mp4", "url": BLOB["url"].replace("video.mp4", "video-2.mp4")}


def event(attempt: int | None, seq: int, state: str, **fields: Any) -> dict[str, Any]:
    e = {"jobId": JOB_ID, "seq": seq, "state": state, **fields}
    if attempt is not None:
        e["attempt"] = attempt
    return e


def started(attempt: int | None, seq: int = 1) -> dict[str, Any]:
    return event(attempt, seq, "started", phase="downloading")


def progress(attempt: int | None, seq: int, percent: float) -> dict[str, Any]:
    return event(attempt, seq, "progress", phase="downloading", progress={"percent": percent})


def succeeded(attempt: int | None, seq: int, blob: dict[str, Any] = BLOB) -> dict[str, Any]:
    return event(attempt, seq, "succeeded", result={"blob": blob, "media": MEDIA})


def failed(attempt: int | None, seq: int, code: str, retryable: bool = False, message: str = "it broke") -> dict:
    return event(attempt, seq, "failed", error={"code": code, "message": message, "retryable": retryable})


def retrying_plan(**changes: Any):
    return plan(**{"max_attempts": 3, "retry_backoff_seconds": 30, **changes})


def timer_span(timer) -> tuple[float, float]:
    """(created, fireAt) in seconds after the start."""
    return (timer.created_at - at(0)).total_seconds(), (timer.fire_at - at(0)).total_seconds()


def answering(**answers: Any):
    """`run_activity`, except that the named activities answer (or raise) what the test says.
    A list answers successive calls."""

    def activity(name: str, input_json: str) -> str:
        if name in answers:
            answer = answers[name].pop(0) if isinstance(answers[name], list) else answers[name]
            if isinstance(answer, Exception):
                raise answer
            return json.dumps(answer)
        return run_activity(name, input_json)

    return activity


# --- retries ----------------------------------------------------------------------------------


def test_a_network_failure_is_retried_in_a_fresh_group_after_the_backoff(host, backend):
    h = host(retrying_plan())
    h.raise_event(10, started(1))
    h.raise_event(20, failed(1, 2, "network", True, "connection reset by peer"))
    # Attempt 1 is stopped 20-22 s, then 30 s of backoff; attempt 2's group exists from 54 s.
    h.raise_event(60, started(2))  # its worker counts seq from 1 again
    h.raise_event(65, progress(2, 2, 40.0))
    h.raise_event(70, succeeded(2, 3, BLOB2))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    # The first group is cleaned up before the second is created, and only then.
    assert result.activity_names == [CREATE, STOP, CREATE, CHECK, DELETE]
    assert backend.calls == [("create", GROUP), ("stop", GROUP), ("create", GROUP2), ("delete", GROUP2)]
    assert GROUP2 != GROUP and GROUP2.startswith(f"dl-{JOB_ID}-r{RUN_KEY}-a2-")
    assert [c.input["attempt"] for c in result.calls(CREATE)] == [1, 2]
    assert [c.input["group"] for c in result.calls(CREATE)] == [GROUP, GROUP2]
    assert result.calls(CREATE)[1].scheduled_at == at(52)
    assert backend.specs[1].environment()[E.JOB_ATTEMPT] == "2"
    assert backend.specs[1].tag_map()["deadline"] == "2026-01-01T01:00:00Z"  # the job's one deadline
    # Heartbeat of attempt 1, the backoff timer (22 s + 30 s), heartbeat of attempt 2; at 65 s the
    # job hands over to its next generation (issue 12), which arms the heartbeat from the last report.
    assert [timer_span(t) for t in result.timers] == [(2.0, 602.0), (22.0, 52.0), (54.0, 654.0), (65.0, 665.0)]
    assert [t.cancelled for t in result.timers] == [True, False, True, True]
    # While waiting, customStatus says what comes next.
    assert status_at(result, 22) == {
        "phase": "retrying", "percent": None, "downloadedBytes": None, "totalBytes": None, "speedBps": None,
        "etaSeconds": None, "containerGroup": GROUP2, "attempt": 2, "run": RUN_KEY, "updatedAt": "2026-01-01T00:00:22Z",
        "retryAt": "2026-01-01T00:00:52Z",
        "lastError": {"code": "network", "message": "connection reset by peer", "retryable": True},
    }
    assert status_at(result, 65)["percent"] == 40.0  # seq 2 of attempt 2, although seq 2 was seen in attempt 1
    out = result.output
    assert out["blob"] == BLOB2 and out["containerGroup"] == GROUP2 and out["cleanup"] == "deleted"
    assert out["attempts"] == [
        {"attempt": 1, "group": GROUP, "outcome": "network", "startedAt": "2026-01-01T00:00:00Z",
         "endedAt": "2026-01-01T00:00:22Z", "cleanup": "stopped"},
        {"attempt": 2, "group": GROUP2, "outcome": "succeeded", "startedAt": "2026-01-01T00:00:52Z",
         "endedAt": "2026-01-01T00:01:14Z", "cleanup": "deleted"},  # blob check 70-72, delete 72-74
    ]
    # Provision and run of the attempt that succeeded; total of the whole job.
    assert out["timings"] == {"provisionSeconds": 2.0, "runSeconds": 16.0, "totalSeconds": 74.0}


RETRIED = [("network", True), ("network", False), ("upload_failed", True), ("upload_failed", False),
           ("http_error", True)]
NOT_RETRIED = [("unavailable", False), ("login_required", False), ("geo_blocked", False), ("bot_check", False),
               ("too_large", False), ("unsupported_url", False), ("http_error", False), ("internal", False),
               ("invalid_media", False), ("private_address", False),
               # The worker's flag does not make a permanent problem worth another container.
               ("unavailable", True), ("bot_check", True)]


@pytest.mark.parametrize(("code", "flag"), RETRIED)
def test_retryable_worker_failures_get_a_second_attempt(host, backend, code, flag):
    h = host(retrying_plan())
    h.raise_event(10, failed(1, 1, code, flag))
    h.raise_event(60, succeeded(2, 1))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert [a["outcome"] for a in result.output["attempts"]] == [code, "succeeded"]
    assert backend.ops("create") == [GROUP, GROUP2]


@pytest.mark.parametrize(("code", "flag"), NOT_RETRIED)
def test_permanent_worker_failures_end_the_job_after_one_attempt(host, backend, code, flag):
    h = host(retrying_plan())
    h.raise_event(10, failed(1, 1, code, flag, "the worker gave up"))
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error == f"{code}: the worker gave up"
    assert result.activity_names == [CREATE, STOP]
    assert [a["outcome"] for a in result.custom_status["attempts"]] == [code]
    assert [t for t in result.timers if not t.cancelled] == []  # no backoff timer


def test_a_lost_heartbeat_is_retried_in_a_fresh_group(host, backend):
    backend.states = [GroupState(GROUP, ContainerState.FAILED, exit_code=1, detail="Error")]
    h = host(retrying_plan())
    h.raise_event(10, started(1))
    # 610 s: window passed; inspect 610-612: terminated; no result record 612-614; stop 614-616;
    # backoff 30 s; create 646-648.
    h.raise_event(700, succeeded(2, 1))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert result.activity_names == [CREATE, INSPECT, READ_RESULT_RECORD, STOP, CREATE, CHECK, DELETE]
    assert result.calls(CREATE)[1].scheduled_at == at(646)
    assert [(a["group"], a["outcome"], a["cleanup"]) for a in result.output["attempts"]] == [
        (GROUP, "heartbeat_lost", "stopped"), (GROUP2, "succeeded", "deleted")]


def test_a_job_restarted_under_its_id_runs_in_groups_of_its_own(host, backend):
    # An `Idempotency-Key` resubmit after a failure starts the same instance id again. Were the
    # names the same, the restart's create would meet the first run's stopped group, which every
    # backend reports as is: no worker would start.
    first = host(retrying_plan(max_attempts=2))
    first.raise_event(10, started(1))
    first.raise_event(20, failed(1, 2, "network", True))
    first.raise_event(60, started(2))
    first.raise_event(70, failed(2, 2, "unavailable"))
    assert first.run().status == "Failed"
    first_groups = backend.ops("create")
    later = T0 + timedelta(hours=2)
    restart = ReplayHost(
        download_job, instance_id=JOB_ID, input=retrying_plan().to_wire(), start=later, activities=run_activity
    )
    restart.raise_event(10, started(1))
    restart.raise_event(20, succeeded(1, 2))
    result = restart.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert first_groups == [GROUP, GROUP2]
    [restart_group] = backend.ops("create")[2:]
    assert restart_group == result.output["containerGroup"] == attempt_group_name(JOB_ID, 1, run_key_of(JOB_ID, later))
    assert restart_group not in first_groups
    stopped = ContainerState.STOPPED
    assert {name: g.state for name, g in backend.groups.items()} == {GROUP: stopped, GROUP2: stopped}
    assert backend.ops("delete") == [restart_group]


def test_when_every_attempt_fails_the_job_fails_with_the_last_error_and_lists_them_all(host, backend):
    h = host(retrying_plan(retry_backoff_seconds=10))
    h.raise_event(10, failed(1, 1, "network", True, "timed out"))  # stop 10-12, wait 10 s
    h.raise_event(30, failed(2, 1, "upload_failed", True, "503"))  # create 22-24; stop 30-32, wait 20 s
    h.raise_event(60, failed(3, 1, "http_error", True, "HTTP Error 502"))  # create 52-54; stop 60-62
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error == "http_error: HTTP Error 502"
    assert result.activity_names == [CREATE, STOP, CREATE, STOP, CREATE, STOP]
    assert backend.ops("create") == backend.ops("stop") == [GROUP, GROUP2, GROUP3]
    backoffs = [timer_span(t) for t in result.timers if not t.cancelled]
    assert backoffs == [(12.0, 22.0), (32.0, 52.0)]  # 10 s, then doubled
    status = result.custom_status
    assert status["error"]["code"] == "http_error" and status["containerGroup"] == GROUP3
    assert [(a["attempt"], a["group"], a["outcome"], a["cleanup"]) for a in status["attempts"]] == [
        (1, GROUP, "network", "stopped"), (2, GROUP2, "upload_failed", "stopped"), (3, GROUP3, "http_error", "stopped")]
    assert [(a["startedAt"][-3:-1], a["endedAt"][-3:-1]) for a in status["attempts"]] == [
        ("00", "12"), ("22", "32"), ("52", "02")]
    assert [a["seconds"] for a in status["cost"]["attempts"]] == [12.0, 10.0, 10.0]


def test_reports_from_an_earlier_attempt_are_ignored(host, backend):
    h = host(retrying_plan(retry_backoff_seconds=10))
    h.raise_event(10, failed(1, 3, "network", True))  # stop 10-12, wait until 22, create 22-24
    h.raise_event(20, progress(None, 2, 70.0))  # attempt 1's worker, late and without `attempt`
    h.raise_event(25, succeeded(1, 4))  # the same worker again (a redelivery after its failure)
    h.raise_event(26, failed(1, 5, "internal"))
    h.raise_event(30, progress(2, 1, 10.0))
    h.raise_event(31, progress(None, 2, 90.0))
    h.raise_event(50, succeeded(2, 2, BLOB2))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert status_at(result, 26)["phase"] == "running"  # attempt 2 has heard nothing yet
    assert status_at(result, 31)["percent"] == 10.0
    assert result.output["blob"] == BLOB2
    assert [a["outcome"] for a in result.output["attempts"]] == ["network", "succeeded"]


def test_the_deadline_spans_all_attempts(host, backend):
    h = host(retrying_plan(deadline_seconds=300))
    h.raise_event(100, failed(1, 1, "network", True))  # stop 100-102, wait 30 s, create 132-134
    for i in range(8):
        h.raise_event(140 + i * 30, progress(2, i + 1, 10.0 * i))
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error.startswith("deadline_exceeded: the job did not finish within 300 s")
    assert timer_span(result.timers[-1])[1] == 300.0  # attempt 2 gets no deadline of its own
    assert backend.specs[1].tag_map()["deadline"] == "2026-01-01T00:05:00Z"
    assert backend.specs[1].environment()[E.JOB_TIMEOUT_SECONDS] == str(300 - 132)
    assert [a["outcome"] for a in result.custom_status["attempts"]] == ["network", "deadline_exceeded"]


def test_no_retry_starts_when_its_backoff_would_reach_the_deadline(host, backend):
    h = host(retrying_plan(deadline_seconds=100, retry_backoff_seconds=60))
    h.raise_event(50, failed(1, 1, "network", True, "timed out"))  # stopped at 52; 52 + 60 > 100
    result = h.run()

    check_invariants(result)
    assert result.error == "network: timed out"  # the real reason, not deadline_exceeded
    assert result.activity_names == [CREATE, STOP]


def test_cancel_during_the_backoff_ends_the_job_without_another_group(host, backend):
    h = host(retrying_plan(retry_backoff_seconds=300))
    h.raise_event(10, failed(1, 1, "network", True))  # stop 10-12; next attempt at 312
    h.raise_event(40, CANCEL)
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error == "cancelled: the job was cancelled"
    assert result.activity_names == [CREATE, STOP]
    assert result.finished_at == at(40)
    assert timer_span(result.timers[-1]) == (12.0, 312.0) and result.timers[-1].cancelled
    assert [a["outcome"] for a in result.custom_status["attempts"]] == ["network"]


def test_one_attempt_by_default(host, backend):
    h = host()  # JobPlan.max_attempts defaults to 1
    h.raise_event(10, failed(1, 1, "network", True, "timed out"))
    result = h.run()

    assert result.error == "network: timed out"
    assert result.activity_names == [CREATE, STOP]


# --- cost -------------------------------------------------------------------------------------


def test_cost_counts_each_group_from_its_create_call_to_the_end_of_its_cleanup(host, backend):
    h = host(retrying_plan(worker_cpu=2.0, worker_memory_gb=4.0,
                           cost_rates=CostRates(vcpu_second=0.0000135, gb_second=0.0000015, currency="EUR")))
    h.raise_event(100, failed(1, 1, "network", True))  # group 1: 0 s to 102 s (stopped)
    h.raise_event(300, succeeded(2, 1))  # backoff 102-132; group 2: 132 s to 304 s (checked, deleted)
    result = h.run()

    assert result.status == "Completed"
    assert result.output["cost"] == {
        "vcpuSeconds": 548.0,  # (102 + 172) s x 2 vCPU
        "gbSeconds": 1096.0,  # (102 + 172) s x 4 GB
        "estimate": 0.009042,  # 548 x 0.0000135 + 1096 x 0.0000015
        "currency": "EUR",
        "attempts": [
            {"attempt": 1, "seconds": 102.0, "vcpuSeconds": 204.0, "gbSeconds": 408.0},
            {"attempt": 2, "seconds": 172.0, "vcpuSeconds": 344.0, "gbSeconds": 688.0},
        ],
    }


def test_a_failed_job_reports_its_cost_in_custom_status(host, backend):
    h = host(plan(cost_rates=CostRates(0.00001, 0.000001)))
    h.raise_event(48, failed(1, 1, "too_large"))  # 0 s to 50 s, 1 vCPU, 1.5 GB
    result = h.run()

    assert result.custom_status["cost"] == {
        "vcpuSeconds": 50.0, "gbSeconds": 75.0, "estimate": 0.000575, "currency": "USD",
        "attempts": [{"attempt": 1, "seconds": 50.0, "vcpuSeconds": 50.0, "gbSeconds": 75.0}]}


# --- share link -------------------------------------------------------------------------------


def test_a_share_link_is_made_after_cleanup_and_returned(host, backend):
    h = host(plan(share_link_hours=24))
    h.raise_event(30, succeeded(1, 1))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert result.activity_names == [CREATE, CHECK, DELETE, SHARE]
    assert result.calls(SHARE)[0].input == {"jobId": JOB_ID, "container": BLOB["container"], "name": BLOB["name"],
                                            "hours": 24}
    assert result.output["shareLink"] == {"url": share_link_url(BLOB["container"], BLOB["name"]),
                                          "expiresAt": SHARE_LINK_EXPIRES}
    assert result.output["blob"] == BLOB


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"ok": False, "error": {"code": "AuthorizationPermissionMismatch", "message": "no delegation rights",
                                 "retryable": False}},
         {"code": "AuthorizationPermissionMismatch", "message": "no delegation rights", "retryable": False}),
        (RuntimeError("host restarted"), {"code": "activity_failed", "retryable": True}),
        ({"ok": True}, {"code": "unexpected_error", "message": "the activity returned no link", "retryable": True}),
    ],
)
def test_a_share_link_that_cannot_be_made_does_not_fail_the_job(host, backend, answer, error):
    h = host(plan(share_link_hours=1), activities=answering(create_share_link=answer))
    h.raise_event(30, succeeded(1, 1))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    link = result.output["shareLink"]
    assert list(link) == ["error"] and link["error"].items() >= error.items()
    assert len(link["error"]["message"]) <= 300
    assert result.output["blob"] == BLOB and result.output["cleanup"] == "deleted"


def test_no_share_link_when_it_is_switched_off(host, backend):
    h = host(plan(share_link_hours=0))
    h.raise_event(30, succeeded(1, 1))
    result = h.run()

    assert result.activity_names == [CREATE, CHECK, DELETE]
    assert "shareLink" not in result.output


def test_a_list_job_returns_the_entries_and_no_share_link(host, backend):
    entries = [{"url": "https://www.youtube.com/watch?v=a", "title": "A"}, {"url": "https://youtu.be/b"}]
    h = host(plan(mode="list", max_items=10, share_link_hours=24))
    h.raise_event(10, started(1))
    h.raise_event(20, event(1, 2, "succeeded", result={"entries": entries, "title": "My playlist"}))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert result.activity_names == [CREATE, DELETE]
    out = result.output
    assert out["entries"] == entries and out["title"] == "My playlist"
    assert "blob" not in out and "media" not in out and "shareLink" not in out
    assert out["state"] == "succeeded" and out["url"] == VIDEO_URL and out["cleanup"] == "deleted"
    assert [a["outcome"] for a in out["attempts"]] == ["succeeded"]
    assert result.custom_status["phase"] == "succeeded" and result.custom_status["downloadedBytes"] is None


# --- completion webhook -----------------------------------------------------------------------


def notified_plan(**changes: Any):
    return plan(request=DownloadRequest(url=VIDEO_URL, notify_url=HOOK), **changes)


def test_the_webhook_gets_the_output_after_the_share_link(host, backend):
    h = host(notified_plan(share_link_hours=24))
    h.raise_event(30, succeeded(1, 1))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert result.activity_names == [CREATE, CHECK, DELETE, SHARE, NOTIFY]
    sent = result.calls(NOTIFY)[0].input
    assert sent["url"] == HOOK
    body = sent["payload"]
    assert body["jobId"] == JOB_ID and body["state"] == "succeeded" and body["blob"] == BLOB
    assert body["shareLink"]["url"] == share_link_url(BLOB["container"], BLOB["name"])
    assert body["attempts"] == result.output["attempts"] and body["cost"] == result.output["cost"]
    assert {k: v for k, v in result.output.items() if k != "notification"} == body
    assert result.output["notification"] == {"delivered": True, "attempts": 1, "status": 204}


def test_the_webhook_hears_of_a_failure_before_the_job_fails(host, backend):
    h = host(notified_plan(max_attempts=2, retry_backoff_seconds=10))
    h.raise_event(10, failed(1, 1, "network", True))  # stop 10-12, wait 10 s, create 22-24
    h.raise_event(30, failed(2, 1, "geo_blocked", False, "not available in your country"))  # stop 30-32
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error == "geo_blocked: not available in your country"
    assert result.activity_names == [CREATE, STOP, CREATE, STOP, NOTIFY]
    status = result.custom_status
    assert result.calls(NOTIFY)[0].input == {
        "url": HOOK,
        "payload": {
            "jobId": JOB_ID,
            "state": "failed",
            "url": VIDEO_URL,
            "error": {"code": "geo_blocked", "message": "not available in your country", "retryable": False},
            "attempts": status["attempts"],
            "cost": status["cost"],
        },
    }
    assert [a["outcome"] for a in status["attempts"]] == ["network", "geo_blocked"]
    assert status["notification"] == {"delivered": True, "attempts": 1, "status": 204}
    assert status["updatedAt"] == "2026-01-01T00:00:34Z"  # after the delivery


def test_webhook_retries_and_late_reports_do_not_disturb_the_replay(host, backend):
    busy = {"ok": False, "status": 503, "error": {"code": "notify_http_status", "message": "HTTP 503",
                                                  "retryable": True}}
    h = host(notified_plan(), activities=answering(notify_completion=[busy, {"ok": True, "status": 200}]))
    h.raise_event(30, succeeded(1, 1))
    # Check 30-32; delete 32-34; POST 34-36 answers 503; wait 5 s; POST 41-43 delivers. Meanwhile the worker's
    # redelivery, a cancel and a stranger's event arrive: the outcome is already decided.
    for second, payload in [(33, succeeded(1, 1)), (36, CANCEL), (37, failed(1, 2, "internal")), (40, CANCEL)]:
        h.raise_event(second, payload)
    result = h.run()  # the harness checks every replay schedules what the history recorded

    check_invariants(result)
    assert result.status == "Completed"
    assert result.activity_names == [CREATE, CHECK, DELETE, NOTIFY, NOTIFY]
    assert [c.scheduled_at for c in result.calls(NOTIFY)] == [at(34), at(41)]
    assert result.output["notification"] == {"delivered": True, "attempts": 2, "status": 200}
    assert result.output["blob"] == BLOB


def test_an_undeliverable_webhook_does_not_change_the_outcome(host, backend):
    refused = {"ok": False, "status": 410, "error": {"code": "notify_http_status", "message": "HTTP 410",
                                                     "retryable": False}}
    h = host(notified_plan(), activities=answering(notify_completion=refused))
    h.raise_event(30, succeeded(1, 1))
    result = h.run()

    assert result.status == "Completed"
    assert result.output["notification"] == {"delivered": False, "attempts": 1, "status": 410,
                                             "error": refused["error"]}


def test_no_webhook_without_a_notify_url(host, backend):
    h = host(retrying_plan())
    h.raise_event(10, failed(1, 1, "unavailable"))
    result = h.run()

    assert NOTIFY not in result.activity_names
    assert "notification" not in result.custom_status


def test_with_retry_bot_check_a_bot_check_is_tried_again_in_a_fresh_group(host, backend):
    """RETRY_BOT_CHECK (issue 14): a new container group usually gets another egress address."""
    h = host(retrying_plan(retry_bot_check=True))
    h.raise_event(10, failed(1, 1, "bot_check", False, "the site asked this address to prove it is not a bot"))
    h.raise_event(60, succeeded(2, 1))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert [a["outcome"] for a in result.output["attempts"]] == ["bot_check", "succeeded"]
    assert backend.ops("create") == [GROUP, GROUP2]


def test_a_bot_check_in_every_attempt_fails_the_job_with_the_worker_s_advice(host, backend):
    advice = "the site asked this address to prove it is not a bot; the operator can set YOUTUBE_COOKIES, ..."
    h = host(retrying_plan(retry_bot_check=True, max_attempts=2))
    h.raise_event(10, failed(1, 1, "bot_check", False, advice))
    h.raise_event(60, failed(2, 1, "bot_check", False, advice))
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error == f"bot_check: {advice}"
    assert [a["outcome"] for a in result.custom_status["attempts"]] == ["bot_check", "bot_check"]
