"""Issue 19: a callback token works for one run and attempt of a job, until that attempt ends or
the job's deadline passes; the callback raises at most a bounded number of events per job.

The tokens are the ones the container spec builder hands the worker (`CALLBACK_TOKEN` in the
spec's secure env), so these tests hold whatever the token's format is."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import Api, issued_token, watching_status
from videojob.domain.settings import Settings

RUN_1, RUN_2 = "0a1b2c3d", "9f8e7d6c"
PLANTED = {
    "seq": 50,
    "state": "succeeded",
    "result": {
        "blob": {"url": "https://account.blob.core.windows.net/downloads/j/planted.mp4", "container": "downloads",
                 "name": "planted.mp4", "sizeBytes": 10, "sha256": "cd" * 32, "contentType": "video/mp4"},
        "media": {"title": "planted"},
    },
}
FAILED = {"seq": 60, "state": "failed", "error": {"code": "network", "message": "x", "retryable": True}}


def test_a_token_of_the_first_run_changes_nothing_in_the_second(client_api: Api, settings: Settings) -> None:
    # A job restarted under its id (the same Idempotency-Key after a failure) runs again as run 2;
    # its first run's worker (maybe hostile) still holds its token and reports a blob it planted.
    job = client_api.standin.add_instance(custom_status=watching_status(RUN_2, attempt=1))
    first_runs_token = issued_token(settings, job.instance_id, RUN_1)

    answers = [client_api.report(job.instance_id, {**event, "attempt": 1}, token=first_runs_token)
               for event in (PLANTED, FAILED, {"seq": 70, "state": "started"})]

    assert [a.status for a in answers] == [401, 401, 401], [a.json for a in answers]
    assert client_api.standin.raised_events == []
    # ... while the second run's own worker is heard.
    own = client_api.report(job.instance_id, {**FAILED, "attempt": 1},
                            token=issued_token(settings, job.instance_id, RUN_2))
    assert own.status == 202 and len(client_api.standin.raised_events) == 1


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (watching_status(RUN_1, attempt=2), PLANTED),
        (watching_status(RUN_1, attempt=2, phase="retrying"), PLANTED),
        (watching_status(RUN_1, attempt=1, phase="uploading", attemptEnded=True), {"seq": 70, "state": "started"}),
        ({**watching_status(RUN_1, attempt=1), "phase": "succeeded", "cleanup": "deleted"},
         {"seq": 70, "state": "progress"}),
        ({"phase": "failed", "error": {"code": "network", "message": "x", "retryable": True}, "run": RUN_1,
          "cleanup": "stopped", "containerGroup": "dl-x", "updatedAt": "2026-01-01T00:00:00Z"}, PLANTED),
    ],
    ids=["attempt 2 runs", "retry pause before attempt 2", "terminal report taken", "finishing after success",
         "finishing after failure"],
)
def test_a_token_stops_working_when_its_attempt_ends(client_api: Api, settings: Settings, status, event) -> None:
    job = client_api.standin.add_instance(custom_status=status)
    attempt_1 = issued_token(settings, job.instance_id, RUN_1, attempt=1)

    answer = client_api.report(job.instance_id, {**event, "attempt": 1}, token=attempt_1)

    assert answer.status == 410, answer.json
    assert answer.error_code == "already_finished"
    assert client_api.standin.raised_events == []


def test_once_the_orchestration_took_the_terminal_report_a_retry_of_it_is_a_duplicate_everywhere(
    client_api: Api, settings: Settings
) -> None:
    # Another app process (no ledger of this job) sees the status the orchestrator wrote.
    job = client_api.standin.add_instance(
        custom_status=watching_status(RUN_1, attempt=1, phase="uploading", attemptEnded=True))
    token = issued_token(settings, job.instance_id, RUN_1, attempt=1)

    retry = client_api.report(job.instance_id, FAILED, token=token)
    other = client_api.report(job.instance_id, PLANTED, token=token)

    assert (retry.status, other.status) == (202, 202)
    assert retry.json["duplicate"] is True and other.json["duplicate"] is True
    assert client_api.standin.raised_events == []


def test_a_token_stops_working_at_the_jobs_deadline(client_api: Api, settings: Settings) -> None:
    job = client_api.standin.add_instance(custom_status=watching_status(RUN_1, attempt=1))
    past_deadline = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    expired = issued_token(settings, job.instance_id, RUN_1, deadline=past_deadline)

    answer = client_api.report(job.instance_id, FAILED, token=expired)

    assert answer.status == 401
    assert client_api.standin.calls == []  # refused before the instance is looked at


def test_an_event_of_another_attempt_is_refused_before_anything_is_raised(client_api: Api, settings: Settings
                                                                           ) -> None:
    job = client_api.standin.add_instance(custom_status=watching_status(RUN_1, attempt=1))
    token = issued_token(settings, job.instance_id, RUN_1, attempt=1)

    answers = [client_api.report(job.instance_id, {**event, "attempt": 9}, token=token)
               for event in ({"seq": 1, "state": "started"}, FAILED, PLANTED)]

    assert {a.status for a in answers} == {400}
    assert client_api.standin.raised_events == []


STATES = [
    {"state": "started", "phase": "downloading"},
    {"state": "progress", "phase": "downloading", "progress": {"percent": 5.0}},
    {"state": "progress", "phase": "processing"},
    {"state": "progress", "phase": "uploading", "progress": {"percent": 99.0}},
    {"state": "failed", "error": {"code": "network", "message": "x", "retryable": True}},
    {"state": "succeeded", "result": PLANTED["result"]},
]
BOUND_PER_MINUTE = 12
"""docs/design.md, "Callback rate limit", with the test settings (PROGRESS_EVENT_MIN_SECONDS 10,
HEARTBEAT_TIMEOUT_SECONDS 300): 1 started + 1 terminal + 3 phase moves + 60 / 10 + 1 progress."""


def test_500_mixed_events_from_one_worker_raise_at_most_the_stated_bound(client_api: Api, settings: Settings
                                                                          ) -> None:
    job = client_api.standin.add_instance(custom_status=watching_status(RUN_1, attempt=1))
    token = issued_token(settings, job.instance_id, RUN_1, attempt=1)
    mixed = itertools.cycle([(state, attempt) for attempt in (1, 9) for state in STATES])
    started_at = datetime.now(UTC)

    answers = [client_api.report(job.instance_id, {"seq": seq, "attempt": attempt, **state}, token=token)
               for seq, (state, attempt) in zip(range(1, 501), mixed, strict=False)]

    took = (datetime.now(UTC) - started_at).total_seconds()
    raised = client_api.standin.raised_events
    assert len(raised) <= BOUND_PER_MINUTE * (1 + int(took // 60)), (len(raised), took)
    assert all(json.loads(e.data) if isinstance(e.data, str) else e.data for e in raised)
    assert {e.payload.get("attempt", 1) for e in raised} == {1}
    # One terminal report reached the job; the started once; every answer was an answer.
    terminal = [e for e in raised if e.payload["state"] in ("failed", "succeeded")]
    assert len(terminal) == 1 and [e.payload["state"] for e in raised].count("started") == 1
    assert {a.status for a in answers} <= {202, 400, 410}, {a.status for a in answers}


def test_a_repeated_terminal_report_is_answered_without_reaching_the_job(client_api: Api, settings: Settings
                                                                         ) -> None:
    job = client_api.standin.add_instance(custom_status=watching_status(RUN_1, attempt=1))
    token = issued_token(settings, job.instance_id, RUN_1, attempt=1)

    first = client_api.report(job.instance_id, FAILED, token=token)
    again = client_api.report(job.instance_id, FAILED, token=token)
    other = client_api.report(job.instance_id, PLANTED, token=token)

    assert (first.status, again.status, other.status) == (202, 202, 202)
    assert "duplicate" not in first.json
    assert again.json["duplicate"] is True and other.json["duplicate"] is True
    assert len(client_api.standin.raised_events) == 1


def test_a_concurrent_burst_in_one_event_loop_raises_one_started_and_one_terminal(client_api: Api,
                                                                                   settings: Settings) -> None:
    # The Functions worker runs async functions concurrently on one loop: 300 reports in flight at
    # once, each past its status read before any is raised, still pass the ledger one by one.
    import asyncio

    from tests.api.conftest import APP_ORIGIN
    from tests.support.durable_standin import client_binding_value, http_request, run

    job = client_api.standin.add_instance(custom_status=watching_status(RUN_1, attempt=1))
    token = issued_token(settings, job.instance_id, RUN_1, attempt=1)
    callback = client_api.functions.user_function("job_status_callback")
    kinds = itertools.cycle(STATES)

    def request(seq: int):
        body = json.dumps({"seq": seq, "attempt": 1, **next(kinds)})
        return http_request("POST", f"{APP_ORIGIN}/api/jobs/{job.instance_id}/status", body=body,
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                            route_params={"id": job.instance_id})

    async def burst():
        return await asyncio.gather(*(callback(req=request(seq), client=client_binding_value(client_api.binding_json))
                                      for seq in range(1, 301)))

    answers = run(burst())

    raised = [e.payload["state"] for e in client_api.standin.raised_events]
    assert len(answers) == 300 and {a.status_code for a in answers} <= {202, 410}
    assert len(raised) <= BOUND_PER_MINUTE, raised
    assert raised.count("started") == 1
    assert sum(1 for state in raised if state in ("failed", "succeeded")) == 1
