"""`POST /api/jobs/{id}/status`: the worker callback, per-job token, validation, delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import RUN, SIGNING_KEY, Api, issued_token, watching_status
from videojob import bootstrap
from videojob.contract.wire import EVENT_NAME
from videojob.domain.tokens import worker_token

LATER = datetime.now(UTC) + timedelta(hours=2)


def job_token(key: str, job_id: str, run: str = RUN, attempt: int = 1) -> str:
    return worker_token(key, job_id, run, attempt, LATER)


def job_only_token(key: str, job_id: str) -> str:
    """The token before issue 19: an HMAC of the job id alone, good for every run and forever."""
    digest = hmac.new(key.encode(), job_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

PROGRESS = {
    "seq": 3,
    "state": "progress",
    "phase": "downloading",
    "progress": {"percent": 42.5, "downloadedBytes": 1000, "totalBytes": 2000, "speedBps": 500, "etaSeconds": 2},
    "sentAt": "2026-01-01T00:00:00Z",
}
SUCCEEDED = {
    "seq": 9,
    "state": "succeeded",
    "result": {
        "blob": {
            "url": "https://account.blob.core.windows.net/downloads/x.mp4",
            "container": "downloads",
            "name": "x.mp4",
            "sizeBytes": 12345,
            "sha256": "ab" * 32,
            "contentType": "video/mp4",
        },
        "media": {"title": "A video", "durationSeconds": 12.5, "width": 1280, "height": 720},
    },
}


@pytest.fixture
def job(client_api: Api):
    return client_api.standin.add_instance(runtime_status="Running", custom_status=watching_status())


def test_event_with_the_right_token_is_raised_to_the_job(client_api: Api, job) -> None:
    answer = client_api.report(job.instance_id, {"jobId": job.instance_id, **PROGRESS})

    assert answer.status == 202
    assert answer.json == {"id": job.instance_id, "state": "progress", "seq": 3}
    [event] = client_api.standin.raised_events
    assert (event.instance_id, event.name) == (job.instance_id, EVENT_NAME)
    assert event.payload == {"jobId": job.instance_id, **PROGRESS}


def test_terminal_event_reaches_the_job_in_full(client_api: Api, job) -> None:
    answer = client_api.report(job.instance_id, SUCCEEDED)

    assert answer.status == 202
    [event] = client_api.standin.raised_events
    assert event.payload["result"]["blob"]["sha256"] == "ab" * 32
    assert event.payload["result"]["media"]["height"] == 720


OTHER_KEY = "another-signing-key-0123456789abcdefgh"
WRONG_TOKENS = {
    "missing": lambda job_id: None,
    "empty": lambda job_id: "",
    "garbage": lambda job_id: "not-the-token",
    "signed for another id": lambda job_id: job_token(SIGNING_KEY, job_id + "x"),
    "signed with another key": lambda job_id: job_token(OTHER_KEY, job_id),
    "truncated": lambda job_id: job_token(SIGNING_KEY, job_id)[:-1],
    "the job-only form of before": lambda job_id: job_only_token(SIGNING_KEY, job_id),
    "claims changed": lambda job_id: job_token(SIGNING_KEY, job_id).replace(".1.", ".2.", 1),
}


@pytest.mark.parametrize("make_token", WRONG_TOKENS.values(), ids=WRONG_TOKENS.keys())
def test_missing_or_wrong_token_is_401_and_touches_nothing(client_api: Api, job, make_token) -> None:
    answer = client_api.report(job.instance_id, PROGRESS, token=make_token(job.instance_id))

    assert answer.status == 401
    assert answer.error_code == "unauthorized"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert client_api.standin.calls == []


def test_token_of_another_job_does_not_work(client_api: Api, job) -> None:
    other = client_api.standin.add_instance(runtime_status="Running", custom_status=watching_status())

    answer = client_api.report(job.instance_id, PROGRESS, token=job_token(SIGNING_KEY, other.instance_id))

    assert answer.status == 401
    assert client_api.standin.raised_events == []


def test_basic_auth_scheme_is_not_a_bearer_token(client_api: Api, job) -> None:
    req_token = job_token(SIGNING_KEY, job.instance_id)
    answer = client_api.call(
        "job_status_callback",
        f"jobs/{job.instance_id}/status",
        body=json.dumps(PROGRESS),
        headers={"Authorization": f"Basic {req_token}"},
        route_params={"id": job.instance_id},
    )

    assert answer.status == 401


def test_token_and_key_never_reach_the_logs(client_api: Api, job, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = issued_token(bootstrap.settings(), job.instance_id)

    client_api.report(job.instance_id, PROGRESS)
    client_api.report(job.instance_id, PROGRESS, token=token + "x")

    assert token not in caplog.text
    assert SIGNING_KEY not in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[]",
        json.dumps({"seq": 1}),
        json.dumps({"seq": 1, "state": "exploded"}),
        json.dumps({"state": "progress"}),
        json.dumps({"seq": -1, "state": "progress"}),
        json.dumps({"seq": 1, "state": "progress", "phase": "sleeping"}),
        json.dumps({"seq": 1, "state": "succeeded"}),
        json.dumps({"seq": 1, "state": "failed"}),
        json.dumps({"seq": 1, "state": "progress", "progress": {"percent": "lots"}}),
        json.dumps({"seq": 1, "state": "cancelled"}),
        json.dumps({"state": "cancelled"}),
        json.dumps({"seq": 1, "state": "progress", "jobId": "someone-else"}),
        "[" * 20000 + "]" * 20000,
    ],
)
def test_invalid_event_is_400_and_nothing_is_raised(client_api: Api, job, body: str) -> None:
    answer = client_api.report(job.instance_id, body)

    assert answer.status == 400
    assert answer.error_code == "invalid_event"
    assert client_api.standin.raised_events == []


NON_FINITE = {
    "NaN percent": '{"seq": 1, "state": "progress", "progress": {"percent": NaN}}',
    "Infinity speed": '{"seq": 1, "state": "progress", "progress": {"speedBps": Infinity}}',
    "-Infinity eta": '{"seq": 1, "state": "progress", "progress": {"etaSeconds": -Infinity}}',
    "overflowing literal": '{"seq": 1, "state": "progress", "progress": {"percent": 1e400}}',
    "Infinity sizeBytes": json.dumps(SUCCEEDED).replace('"sizeBytes": 12345', '"sizeBytes": Infinity'),
    "NaN duration": json.dumps(SUCCEEDED).replace('"durationSeconds": 12.5', '"durationSeconds": NaN'),
}


@pytest.mark.parametrize("body", NON_FINITE.values(), ids=NON_FINITE.keys())
def test_non_finite_numbers_are_an_invalid_event(client_api: Api, job, body: str) -> None:
    # Python's json accepts NaN/Infinity (and reads 1e400 as inf), but they are not JSON: passed
    # on, they made the job's status body unparseable, and an infinite size answered 500.
    answer = client_api.report(job.instance_id, body)

    assert answer.status == 400, answer.json
    assert answer.error_code == "invalid_event"
    assert "finite" in answer.json["error"]["message"]
    assert client_api.standin.raised_events == []


def test_oversized_event_is_413(client_api: Api, job) -> None:
    answer = client_api.report(job.instance_id, {**PROGRESS, "pad": "x" * 70_000})

    assert answer.status == 413
    assert answer.error_code == "body_too_large"
    assert client_api.standin.raised_events == []


def test_event_for_an_unknown_job_is_404(client_api: Api) -> None:
    unknown = "0123456789abcdef0123456789abcdef"

    answer = client_api.report(unknown, PROGRESS)

    assert answer.status == 404
    assert answer.error_code == "not_found"
    assert client_api.standin.raised_events == []


@pytest.mark.parametrize("runtime_status", ["Completed", "Failed", "Terminated"])
def test_event_for_a_finished_job_is_410(client_api: Api, runtime_status: str) -> None:
    job = client_api.standin.add_instance(runtime_status=runtime_status)

    answer = client_api.report(job.instance_id, PROGRESS)

    assert answer.status == 410
    assert answer.error_code == "already_finished"
    assert client_api.standin.raised_events == []


def test_url_unsafe_id_with_a_valid_token_never_reaches_the_client(client_api: Api) -> None:
    bad_id = "x/../../orchestrators/download_job"

    answer = client_api.report(bad_id, PROGRESS, token=job_token(SIGNING_KEY, bad_id))

    assert answer.status == 404
    assert client_api.standin.calls == []


def test_durable_host_down_is_503(client_api: Api, job) -> None:
    client_api.standin.stop()

    answer = client_api.report(job.instance_id, PROGRESS)

    assert answer.status == 503
    assert answer.error_code == "service_unavailable"


def test_job_finishing_between_lookup_and_raise_is_410(client_api: Api, job) -> None:
    # The extension answers 410 to the raise; the client reports it as a bare Exception.
    client_api.standin.before_next("raise_event", lambda: client_api.standin.set_status(job.instance_id, "Completed"))

    answer = client_api.report(job.instance_id, PROGRESS)

    assert answer.status == 410
    assert answer.error_code == "already_finished"


def test_status_error_from_the_host_is_503_not_404(client_api: Api, job) -> None:
    # The 1.x client turns a 500 from the status endpoint into a falsy status, like a 404;
    # a worker told 404 would stop reporting, so this must not read as "no such job".
    client_api.standin.fail(500)

    answer = client_api.report(job.instance_id, PROGRESS)

    assert answer.status == 503
    assert answer.error_code == "service_unavailable"


def test_status_endpoint_error_is_confirmed_through_the_list_endpoint(client_api: Api, job) -> None:
    client_api.standin.fail(500, kind="get_status")

    answer = client_api.report(job.instance_id, PROGRESS)

    assert answer.status == 202
    assert len(client_api.standin.raised_events) == 1


# --- PROGRESS_EVENT_MIN_SECONDS (issue 12): at most one progress per job per interval -------------


def _watching(client_api: Api, seconds_ago: float, phase: str = "downloading", attempt: int = 1):
    from datetime import UTC, datetime, timedelta

    from videojob.domain.activity_wire import format_utc

    last = format_utc(datetime.now(UTC) - timedelta(seconds=seconds_ago))
    status = watching_status(RUN, attempt, phase, percent=10.0, updatedAt=last, lastReportAt=last)
    return client_api.standin.add_instance(runtime_status="Running", custom_status=status)


def test_fast_progress_coalesced_202(client_api: Api) -> None:
    job = _watching(client_api, seconds_ago=1)
    answer = client_api.report(job.instance_id, PROGRESS)

    assert answer.status == 202
    assert answer.json == {"id": job.instance_id, "state": "progress", "seq": 3, "coalesced": True}
    assert client_api.standin.raised_events == []
    assert [c.kind for c in client_api.standin.calls] == ["get_status"]  # no extra Durable call


def test_progress_after_the_interval_is_raised(client_api: Api) -> None:
    job = _watching(client_api, seconds_ago=30)
    answer = client_api.report(job.instance_id, PROGRESS)

    assert answer.status == 202 and "coalesced" not in answer.json
    assert len(client_api.standin.raised_events) == 1


@pytest.mark.parametrize(
    "event",
    [
        {**PROGRESS, "phase": "uploading"},
        SUCCEEDED,
        {"seq": 9, "state": "failed", "error": {"code": "network", "message": "x", "retryable": True}},
    ],
    ids=["later phase", "succeeded", "failed"],
)
def test_terminal_and_phase_change_raised_within_the_interval(client_api: Api, event) -> None:
    job = _watching(client_api, seconds_ago=1)
    answer = client_api.report(job.instance_id, event)

    assert answer.status == 202 and "coalesced" not in answer.json
    assert len(client_api.standin.raised_events) == 1


def test_started_is_raised_until_the_job_took_a_report(client_api: Api, job) -> None:
    first = client_api.report(job.instance_id, {"seq": 1, "state": "started", "phase": "downloading"})
    reported = _watching(client_api, seconds_ago=30)  # the orchestration took one (lastReportAt)
    late = client_api.report(reported.instance_id, {"seq": 1, "state": "started", "phase": "downloading"})

    assert first.status == 202 and "duplicate" not in first.json
    assert late.status == 202 and late.json["duplicate"] is True
    assert [e.instance_id for e in client_api.standin.raised_events] == [job.instance_id]


def test_other_attempt_progress_is_410(client_api: Api) -> None:
    job = _watching(client_api, seconds_ago=60, attempt=2)
    answer = client_api.report(job.instance_id, {**PROGRESS, "attempt": 1})

    assert answer.status == 410
    assert client_api.standin.raised_events == []


def test_zero_leaves_a_one_second_spacing(functions, standin, settings) -> None:
    from dataclasses import replace

    bootstrap.override(settings=replace(settings, progress_event_min_seconds=0))
    api = Api(functions, standin, standin.binding_json())
    job = _watching(api, seconds_ago=0)
    began = time.monotonic()
    answers = [api.report(job.instance_id, {**PROGRESS, "seq": seq}) for seq in range(3, 6)]
    took = time.monotonic() - began

    assert "coalesced" not in answers[0].json
    assert len(standin.raised_events) <= 1 + int(took)


def test_a_status_that_names_no_run_is_503_and_nothing_is_raised(client_api: Api) -> None:
    # Not proof that the attempt ended (a status not written yet): the worker retries.
    job = client_api.standin.add_instance(runtime_status="Running", custom_status=None)

    answer = client_api.report(job.instance_id, PROGRESS)

    assert answer.status == 503
    assert client_api.standin.raised_events == []
