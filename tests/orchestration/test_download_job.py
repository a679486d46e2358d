"""`download_job` replayed episode by episode, as the Durable extension would run it.

The activities are the real ones, on an in-memory container backend; the worker's reports are
`EventRaised` events on a simulated clock (the job starts at T0; an activity takes 2 s).
"""

from __future__ import annotations

import json

import pytest

from tests.orchestration.conftest import (
    BLOB,
    CANCEL,
    GROUP,
    JOB_ID,
    MEDIA,
    RUN_KEY,
    VIDEO_URL,
    at,
    check_invariants,
    failed,
    plan,
    progress,
    run_activity,
    started,
    status_at,
    succeeded,
)
from videojob.domain.activity_wire import (
    CREATE_CONTAINER_GROUP,
    DELETE_CONTAINER_GROUP,
    INSPECT_CONTAINER_GROUP,
    PUBLISH_OUTPUT_BLOB,
    STOP_CONTAINER_GROUP,
)
from videojob.domain.container_port import BackendError, ContainerState, GroupState
from videojob.domain.failure_reason import FailureReason
from videojob.domain.settings import MAX_TIMER_SECONDS

pytestmark = pytest.mark.timeout(60)

CREATE, INSPECT, CHECK, STOP, DELETE = (
    CREATE_CONTAINER_GROUP,
    INSPECT_CONTAINER_GROUP,
    PUBLISH_OUTPUT_BLOB,
    STOP_CONTAINER_GROUP,
    DELETE_CONTAINER_GROUP,
)


def fire_times(result) -> list[float]:
    return [(t.fire_at - at(0)).total_seconds() for t in result.timers]


# --- success --------------------------------------------------------------------------------


def test_success_returns_the_result_and_deletes_the_group(host, backend):
    h = host()
    h.raise_event(10, started(0))
    h.raise_event(30, progress(1, 50.0, speedBps=2_000_000.5, etaSeconds=30))
    h.raise_event(45, progress(2, 80.0, phase="uploading"))
    h.raise_event(60, succeeded(3))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert result.output == {
        "jobId": JOB_ID,
        "state": "succeeded",
        "url": VIDEO_URL,
        "blob": BLOB,
        "media": MEDIA,
        "containerGroup": GROUP,
        "cleanup": "deleted",
        # The blob check (60-62 s) ends the run; the group is deleted after it (62-64 s).
        "timings": {"provisionSeconds": 2.0, "runSeconds": 58.0, "totalSeconds": 64.0},
        "attempts": [{"attempt": 1, "group": GROUP, "outcome": "succeeded", "startedAt": "2026-01-01T00:00:00Z",
                      "endedAt": "2026-01-01T00:01:04Z", "cleanup": "deleted"}],
        # Default resources (1 vCPU, 1.5 GB) for 64 s; the default plan carries no prices.
        "cost": {"vcpuSeconds": 64.0, "gbSeconds": 96.0, "estimate": 0.0, "currency": "USD",
                 "attempts": [{"attempt": 1, "seconds": 64.0, "vcpuSeconds": 64.0, "gbSeconds": 96.0}]},
    }
    assert result.activity_names == [CREATE, CHECK, DELETE]
    # Published from this attempt's staging blob, checked against what the worker reported.
    assert result.calls(CHECK)[0].input == {"jobId": JOB_ID, "run": RUN_KEY, "attempt": 1, "container": "downloads",
                                            "name": BLOB["name"], "sizeBytes": BLOB["sizeBytes"],
                                            "sha256": BLOB["sha256"]}
    assert backend.groups == {}
    # The container was created for this job, with the orchestration's own start and deadline.
    assert result.calls(CREATE)[0].input == {
        "jobId": JOB_ID,
        "request": {"url": VIDEO_URL, "format": "video"},
        "createdAt": "2026-01-01T00:00:00Z",
        "deadline": "2026-01-01T01:00:00Z",
        "attempt": 1,
        "run": RUN_KEY,
        "group": GROUP,
    }
    assert backend.specs[0].tag_map()["deadline"] == "2026-01-01T01:00:00Z"
    # Progress shows up in customStatus as it arrives.
    assert status_at(result, 0)["phase"] == "provisioning"
    assert status_at(result, 10)["phase"] == "running"
    assert status_at(result, 30) == {
        "phase": "downloading",
        "percent": 50.0,
        "downloadedBytes": 50000,
        "totalBytes": 100000,
        "speedBps": 2000000.5,
        "etaSeconds": 30.0,
        "containerGroup": GROUP,
        "attempt": 1,
        "run": RUN_KEY,  # with `attempt`: whose worker's token the callback accepts
        "updatedAt": "2026-01-01T00:00:30Z",
        "lastReportAt": "2026-01-01T00:00:30Z",  # what the callback's rate limit reads
    }
    assert status_at(result, 45)["phase"] == "uploading"
    # Taking the terminal report ends the attempt's token for every app process (issue 19).
    assert "attemptEnded" not in status_at(result, 45)
    assert status_at(result, 60)["attemptEnded"] is True
    assert (status_at(result, 60)["run"], status_at(result, 60)["attempt"]) == (RUN_KEY, 1)
    assert result.custom_status["phase"] == "succeeded"
    assert result.custom_status["percent"] == 100.0
    assert result.custom_status["cleanup"] == "deleted"
    # One heartbeat timer (created once the group exists), cancelled when the result came.
    assert fire_times(result) == [602.0]
    assert result.timers[0].cancelled


# --- worker-reported failure ------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "cleanup", "op"), [("stop", "stopped", "stop"), ("delete", "deleted", "delete")])
def test_worker_failure_fails_with_its_code_and_applies_the_failed_group_policy(host, backend, policy, cleanup, op):
    h = host(plan(failed_group_policy=policy))
    h.raise_event(10, started(0))
    h.raise_event(20, failed(1, "unavailable", "Video unavailable: this video is private"))
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error == "unavailable: Video unavailable: this video is private"
    assert result.custom_status == {
        "phase": "failed",
        "error": {"code": "unavailable", "message": "Video unavailable: this video is private", "retryable": False},
        "cleanup": cleanup,
        "containerGroup": GROUP,
        "run": RUN_KEY,
        "updatedAt": "2026-01-01T00:00:22Z",
        "attempts": [{"attempt": 1, "group": GROUP, "outcome": "unavailable", "startedAt": "2026-01-01T00:00:00Z",
                      "endedAt": "2026-01-01T00:00:22Z", "cleanup": cleanup}],
        "cost": {"vcpuSeconds": 22.0, "gbSeconds": 33.0, "estimate": 0.0, "currency": "USD",
                 "attempts": [{"attempt": 1, "seconds": 22.0, "vcpuSeconds": 22.0, "gbSeconds": 33.0}]},
    }
    assert backend.ops("stop") + backend.ops("delete") == [GROUP]
    assert backend.ops(op) == [GROUP]
    if policy == "stop":
        assert backend.groups[GROUP].state == ContainerState.STOPPED  # kept, with its logs
    else:
        assert GROUP not in backend.groups


# --- deadline and heartbeat -------------------------------------------------------------------


def test_deadline_fails_the_job_even_while_the_worker_keeps_reporting(host, backend):
    h = host(plan(deadline_seconds=1000))
    for i in range(20):
        h.raise_event(10 + i * 100, progress(i, min(99.0, i * 5.0)))
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error.startswith("deadline_exceeded: the job did not finish within 1000 s")
    assert result.custom_status["error"]["code"] == "deadline_exceeded"
    assert result.custom_status["cleanup"] == "stopped"
    assert backend.ops("state") == []  # reports kept coming: no need to ask the backend
    # First window ends at 602; reports moved it, but never past the deadline.
    assert fire_times(result) == [602.0, 1000.0]
    assert result.calls(STOP)[0].scheduled_at == at(1000)


def test_heartbeat_lost_when_the_container_has_terminated(host, backend):
    backend.states = [GroupState(GROUP, ContainerState.FAILED, exit_code=1, detail="Error")]
    backend.log_text = "\n".join(f"log line {i}" for i in range(100)) + "\nMemoryError: out of memory"
    h = host()
    h.raise_event(10, started(0))
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error.startswith("heartbeat_lost: no report from the worker for 600 s")
    error = result.custom_status["error"]
    assert error["code"] == "heartbeat_lost"
    assert "Failed" in error["message"] and "exit code 1" in error["message"] and "Error" in error["message"]
    assert "MemoryError: out of memory" in error["message"]  # the end of the log tail
    assert "log line 0 " not in error["message"]  # only the tail
    assert len(error["message"]) <= 1000
    assert result.calls(INSPECT)[0].scheduled_at == at(610)
    assert result.custom_status["cleanup"] == "stopped"


def test_a_container_killed_at_its_memory_limit_fails_out_of_memory_and_is_not_retried(host, backend):
    backend.states = [GroupState(GROUP, ContainerState.FAILED, exit_code=137, detail="OOMKilled",
                                 reason=FailureReason.OUT_OF_MEMORY)]
    h = host(plan(max_attempts=3))
    h.raise_event(10, started(0))
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    error = result.custom_status["error"]
    assert (error["code"], error["retryable"]) == ("out_of_memory", False)
    assert "exit code 137" in error["message"] and "OOMKilled" in error["message"]
    assert "WORKER_MEMORY_GB" in error["message"]
    assert len(result.calls(CREATE)) == 1  # a container of the same size would meet the same limit


@pytest.mark.parametrize(
    ("state", "detail"),
    [(ContainerState.STOPPED, "Killed"), (ContainerState.FAILED, "Error"), (ContainerState.FAILED, None),
     (ContainerState.FAILED, "OOMKilled: out of memory")],
    ids=["stopped", "killed-from-outside", "no-detail", "words-without-the-backends-reason"],
)
def test_a_sigkill_the_backend_does_not_put_down_to_memory_is_a_lost_heartbeat(host, backend, state, detail):
    backend.states = [GroupState(GROUP, state, exit_code=137, detail=detail)]
    h = host()
    h.raise_event(10, started(0))
    result = h.run()

    assert result.custom_status["error"]["code"] == "heartbeat_lost"


def test_heartbeat_window_passed_but_container_running_keeps_waiting(host, backend):
    backend.states = [GroupState(GROUP, ContainerState.RUNNING)]
    h = host()
    h.raise_event(10, started(0))
    h.raise_event(900, succeeded(1))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert result.activity_names == [CREATE, INSPECT, CHECK, DELETE]
    assert result.calls(INSPECT)[0].result["logTail"] == ""  # no logs fetched while it runs
    assert backend.ops("logs") == []
    # 602 (first window), 610 (window from the last report), then a new window after the check.
    assert fire_times(result) == [602.0, 610.0, 1212.0]
    assert result.timers[-1].cancelled


def test_heartbeat_lost_when_the_group_is_gone(host, backend):
    backend.states = [GroupState(GROUP, ContainerState.MISSING)]
    h = host()
    h.raise_event(10, started(0))
    result = h.run()

    check_invariants(result)
    assert result.custom_status["error"]["code"] == "heartbeat_lost"
    assert f"container group {GROUP} is Missing" in result.custom_status["error"]["message"]


def test_a_backend_that_cannot_tell_the_state_does_not_fail_the_job(host, backend):
    def unreachable(name):
        raise BackendError("ServiceUnavailable", "try later", retryable=True)

    backend.state = unreachable
    h = host()
    h.raise_event(10, started(0))
    h.raise_event(1000, succeeded(1))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert result.activity_names == [CREATE, INSPECT, CHECK, DELETE]


def test_a_report_arriving_while_the_backend_is_asked_wins_over_a_terminated_container(host, backend):
    backend.states = [GroupState(GROUP, "Succeeded", exit_code=0)]
    h = host()
    h.raise_event(10, started(0))
    h.raise_event(611, succeeded(1))  # the inspect activity runs from 610 to 612
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert result.activity_names == [CREATE, INSPECT, CHECK, DELETE]


# --- provisioning ---------------------------------------------------------------------------


def test_transient_provisioning_errors_are_retried_with_timer_backoff(host, backend):
    backend.create_errors = [
        BackendError("ServiceUnavailable", "no capacity in the region", retryable=True),
        BackendError("InternalServerError", "try again", retryable=True),
    ]
    h = host()
    h.raise_event(100, succeeded(0))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert result.activity_names == [CREATE, CREATE, CREATE, CHECK, DELETE]
    # create 0-2 s fails, wait 5 s; create 7-9 s fails, wait 10 s; create 19-21 s works.
    assert fire_times(result)[:2] == [7.0, 19.0]
    assert [c.scheduled_at for c in result.calls(CREATE)] == [at(0), at(7), at(19)]
    assert result.output["timings"]["provisionSeconds"] == 21.0


def test_provisioning_gives_up_after_the_attempts_allowed(host, backend):
    backend.create_errors = [BackendError("ServiceUnavailable", "no capacity", retryable=True)] * 3
    result = host(plan(provision_max_attempts=3, provision_backoff_seconds=60)).run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error == "provisioning_failed: ServiceUnavailable: no capacity"
    assert [c.name for c in result.activity_calls] == [CREATE, CREATE, CREATE, STOP]
    assert fire_times(result) == [62.0, 184.0]  # 60 s, then 120 s after each failed attempt


def test_a_create_refused_while_roles_propagate_is_waited_out_without_spending_tries(host, backend):
    # Right after a deployment ARM answers AuthorizationFailed until the role assignments land; the
    # backend marks it "not now" for a bounded window. Six refusals outlast three tries.
    backend.create_errors = [
        BackendError("AuthorizationFailed", "no access yet", retryable=True, retry_after_seconds=30)
    ] * 6
    h = host(plan(provision_max_attempts=3))
    h.raise_event(400, succeeded(0))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert [c.scheduled_at for c in result.calls(CREATE)] == [at(32 * n) for n in range(7)]


def test_a_create_refused_for_good_after_the_window_fails_the_job(host, backend):
    backend.create_errors = [
        BackendError("AuthorizationFailed", "no access yet", retryable=True, retry_after_seconds=30),
        BackendError("AuthorizationFailed", "no access", retryable=False),
    ]
    result = host(plan(provision_max_attempts=3)).run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error == "provisioning_failed: AuthorizationFailed: no access"
    assert [c.name for c in result.activity_calls][:2] == [CREATE, CREATE]


def test_backoff_is_capped(host, backend):
    backend.create_errors = [BackendError("ServiceUnavailable", "no capacity", retryable=True)] * 5
    result = host(plan(provision_max_attempts=6, provision_backoff_seconds=100)).run()

    delays = [(t.fire_at - t.created_at).total_seconds() for t in result.timers if t.fired]
    assert delays[:5] == [100.0, 200.0, 300.0, 300.0, 300.0]


def test_permanent_provisioning_error_fails_at_once_and_still_cleans_up(host, backend):
    backend.create_errors = [BackendError("InaccessibleImage", "image 'worker:9' not found", retryable=False)]
    backend.failed_create_leaves_group = True  # ACI keeps a group whose provisioning failed
    result = host().run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error == "provisioning_failed: InaccessibleImage: image 'worker:9' not found"
    assert result.custom_status["error"] == {
        "code": "provisioning_failed",
        "message": "InaccessibleImage: image 'worker:9' not found",
        "retryable": False,
    }
    assert result.activity_names == [CREATE, STOP]
    assert result.timers == []
    assert backend.groups[GROUP].state == ContainerState.STOPPED
    assert result.custom_status["cleanup"] == "stopped"


def test_an_activity_that_raises_is_retried_like_a_transient_error(host, backend):
    calls = {"n": 0}

    def flaky(name: str, input_json: str) -> str:
        if name == CREATE and calls["n"] == 0:
            calls["n"] += 1
            raise RuntimeError("host restarted")
        return run_activity(name, input_json)

    h = host(activities=flaky)
    h.raise_event(60, succeeded(0))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert result.activity_names == [CREATE, CREATE, CHECK, DELETE]


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_fails_the_job_and_stops_the_group(host, backend):
    h = host()
    h.raise_event(10, started(0))
    h.raise_event(20, progress(1, 10.0))
    h.raise_event(50, CANCEL)
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error == "cancelled: the job was cancelled"
    assert result.custom_status["cleanup"] == "stopped"
    assert result.calls(STOP)[0].scheduled_at == at(50)
    assert result.timers[0].cancelled


def test_cancel_during_provisioning_backoff_stops_retrying(host, backend):
    backend.create_errors = [BackendError("ServiceUnavailable", "no capacity", retryable=True)] * 3
    h = host()
    h.raise_event(4, CANCEL)  # while waiting 5 s before the second attempt
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error.startswith("cancelled:")
    assert result.activity_names == [CREATE, STOP]


# --- events: order, duplicates, encodings, size ---------------------------------------------------


def test_duplicate_and_out_of_order_reports_are_ignored(host, backend):
    h = host()
    h.raise_event(10, started(0))
    h.raise_event(20, progress(2, 40.0))
    h.raise_event(21, progress(1, 20.0))  # older than what we have: ignored
    h.raise_event(22, progress(2, 99.0))  # seq 2 again (redelivery): ignored
    h.raise_event(23, started(0))  # seq 0 again
    h.raise_event(30, succeeded(5))  # terminal, ahead of seq 4: honoured
    h.raise_event(31, progress(4, 90.0))
    result = h.run()

    check_invariants(result)
    for second in (20, 21, 22, 23):
        assert status_at(result, second)["percent"] == 40.0
    assert status_at(result, 22)["updatedAt"] == "2026-01-01T00:00:20Z"
    assert result.status == "Completed"
    assert result.output["blob"] == BLOB


def test_a_redelivered_failure_after_success_cannot_change_the_outcome(host, backend):
    h = host()
    h.raise_event(10, succeeded(1))
    h.raise_event(11, failed(1, "internal"))  # same seq
    result = h.run()
    assert result.status == "Completed"


@pytest.mark.parametrize("encoding", ["dict", "string", "double"])
def test_reports_are_accepted_as_objects_json_strings_and_double_encoded_strings(host, backend, encoding):
    h = host()
    h.raise_event(10, progress(0, 25.0), encoding=encoding)
    h.raise_event(20, succeeded(1), encoding=encoding)
    result = h.run()

    check_invariants(result)
    assert status_at(result, 10)["percent"] == 25.0
    assert result.status == "Completed"
    assert result.output["blob"]["sha256"] == BLOB["sha256"]


def test_invalid_reports_are_ignored(host, backend):
    h = host()
    h.raise_event(10, "not json at all")  # a JSON string that is no JSON object
    h.raise_event(11, {"state": "exploded", "seq": 1})
    h.raise_event(12, {"state": "succeeded", "seq": 2})  # a success without a result
    h.raise_event(13, ["a", "list"])
    h.raise_event(14, None)
    h.raise_event(20, succeeded(3))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"


def test_custom_status_stays_small_with_the_largest_progress_report(host, backend):
    huge = (
        '{"jobId": "' + "j" * 100_000 + '", "seq": 1, "state": "progress", "phase": "downloading",'
        ' "progress": {"percent": 1e308, "downloadedBytes": ' + "9" * 4000 + ', "totalBytes": -5,'
        ' "speedBps": 1.7976931348623157e308, "etaSeconds": 123456789012345678901234567890},'
        ' "sentAt": "' + "2" * 10_000 + '"}'
    )
    h = host()
    h.raise_event(10, huge, encoding="raw")
    h.raise_event(20, failed(2, "x" * 5000, "m" * 200_000))
    result = h.run()

    check_invariants(result)
    status = status_at(result, 10)
    assert status["percent"] == 100.0
    assert status["downloadedBytes"] == 2**53 - 1
    assert status["totalBytes"] == 0
    assert len(json.dumps(status)) < 400
    assert result.status == "Failed"
    assert len(result.error) < 1024
    assert len(json.dumps(result.custom_status)) < 2000


def test_reports_that_arrive_while_the_group_is_being_created_are_not_lost_or_repeated(host, backend):
    # The worker can report before the create activity returns. With the SDK's own buffering an
    # early event would be handed to every later wait (azure-functions-durable-python#507).
    h = host(activity_seconds=5)
    h.raise_event(1, started(0))
    h.raise_event(2, progress(1, 30.0))
    h.raise_event(3, progress(2, 60.0))
    h.raise_event(20, progress(3, 90.0))
    h.raise_event(40, succeeded(4))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert status_at(result, 5)["percent"] == 60.0  # all three applied once the group existed
    assert status_at(result, 20)["percent"] == 90.0
    assert len(result.episodes) < 12


# --- cleanup failures -------------------------------------------------------------------------


def test_cleanup_failure_is_retried_and_reported_without_changing_a_success(host, backend):
    backend.delete_errors = [BackendError("InternalServerError", "try again", retryable=True)] * 3
    h = host()
    h.raise_event(30, succeeded(0))
    result = h.run()

    check_invariants(result)
    assert result.status == "Completed"
    assert result.output["cleanup"] == "failed"
    assert result.custom_status["cleanup"] == "failed"
    assert result.output["blob"] == BLOB
    assert [c.scheduled_at for c in result.calls(DELETE)] == [at(32), at(39), at(51)]  # after the check


def test_cleanup_waits_its_own_backoff_not_the_provisioning_one(host, backend):
    backend.delete_errors = [BackendError("InternalServerError", "try again", retryable=True)] * 3
    h = host(plan(provision_backoff_seconds=60, cleanup_backoff_seconds=1))
    h.raise_event(30, succeeded(0))
    result = h.run()

    # Each try takes 2 s; the pauses are 1 s, then 2 s (CLEANUP_BACKOFF_SECONDS, doubled).
    assert [c.scheduled_at for c in result.calls(DELETE)] == [at(32), at(35), at(39)]


def test_cleanup_recovers_after_a_retry(host, backend):
    backend.stop_errors = [BackendError("Conflict", "group is transitioning", retryable=True)]
    h = host()
    h.raise_event(30, failed(0, "too_large", "the file is larger than 8 GiB"))
    result = h.run()

    check_invariants(result)
    assert result.error.startswith("too_large: ")
    assert result.custom_status["cleanup"] == "stopped"
    assert len(result.calls(STOP)) == 2


def test_a_permanent_cleanup_failure_keeps_the_jobs_own_error(host, backend):
    backend.stop_errors = [BackendError("AuthorizationFailed", "no permission", retryable=False)]
    h = host()
    h.raise_event(30, failed(0, "too_large", "the file is larger than 8 GiB"))
    result = h.run()

    check_invariants(result)
    assert result.status == "Failed"
    assert result.error == "too_large: the file is larger than 8 GiB"
    assert result.custom_status["error"]["code"] == "too_large"
    assert result.custom_status["cleanup"] == "failed"
    assert len(result.calls(STOP)) == 1  # not retried: it cannot get better


# --- limits ---------------------------------------------------------------------------------


def test_every_timer_stays_under_six_days_with_the_longest_settings(host, backend):
    backend.states = [GroupState(GROUP, ContainerState.RUNNING)] * 5
    h = host(plan(deadline_seconds=MAX_TIMER_SECONDS, heartbeat_timeout_seconds=MAX_TIMER_SECONDS))
    result = h.run()

    check_invariants(result)  # includes: every timer < 6 days
    assert result.status == "Failed"
    assert result.error.startswith("deadline_exceeded:")
    assert len(result.timers) == 1  # a single short timer, never the SDK's long-timer chain


def test_an_unusable_input_fails_with_a_short_message(backend):
    from orchestrators import download_job
    from tests.orchestration.conftest import T0
    from tests.support.replay import ReplayHost

    result = ReplayHost(download_job, instance_id=JOB_ID, input={"nope": 1}, start=T0, activities=run_activity).run()
    assert result.status == "Failed"
    assert result.error.startswith("internal: invalid job plan")
    assert result.activity_calls == []
