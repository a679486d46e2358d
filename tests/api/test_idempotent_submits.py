"""Idempotent submits through the starter, against the Durable stand-in: a duplicate answers the
existing job and starts nothing; a failed or terminated job is started again."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from tests.api.conftest import Answer, Api
from tests.api.test_starters import assert_check_status_answer
from videojob import bootstrap
from videojob.domain.idempotency import instance_id_for
from videojob.domain.settings import Settings

VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
KEY = "order-2026-0042"
KEYED_ID = instance_id_for("client", KEY)


def submit(api: Api, body: dict[str, Any], key: str | None = KEY) -> Answer:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return api.call("start_download", "downloads", body=json.dumps(body), headers=headers)


def test_a_key_starts_the_job_under_its_deterministic_id(client_api: Api) -> None:
    answer = submit(client_api, {"url": VIDEO})

    [started] = client_api.standin.started
    assert started.instance_id == KEYED_ID
    assert_check_status_answer(answer, KEYED_ID)
    assert "idempotent-replayed" not in answer.headers
    [call] = client_api.standin.calls_of("start_new")
    assert call.path == f"/durabletask/orchestrators/download_job/{KEYED_ID}"


@pytest.mark.parametrize("status", ["Pending", "Running", "Completed", "ContinuedAsNew", "Suspended"])
def test_a_duplicate_answers_the_existing_job_and_starts_nothing(client_api: Api, status: str) -> None:
    first = submit(client_api, {"url": VIDEO})
    client_api.standin.set_status(KEYED_ID, status)

    again = submit(client_api, {"url": VIDEO})

    assert len(client_api.standin.calls_of("start_new")) == 1
    assert_check_status_answer(again, KEYED_ID)
    assert again.json == first.json
    assert again.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("status", ["Failed", "Terminated"])
def test_a_failed_or_terminated_job_is_started_again_under_the_same_id(client_api: Api, status: str) -> None:
    submit(client_api, {"url": VIDEO})
    client_api.standin.set_status(KEYED_ID, status)

    again = submit(client_api, {"url": VIDEO})

    starts = client_api.standin.started
    assert [s.instance_id for s in starts] == [KEYED_ID, KEYED_ID]
    assert_check_status_answer(again, KEYED_ID)
    assert "idempotent-replayed" not in again.headers
    assert client_api.standin.instances[KEYED_ID].runtime_status == "Pending"


def test_a_purged_job_is_started_again(client_api: Api) -> None:
    client_api.standin.add_instance(KEYED_ID, "Completed")
    del client_api.standin.instances[KEYED_ID]

    assert submit(client_api, {"url": VIDEO}).status == 202
    assert len(client_api.standin.started) == 1


def test_a_concurrent_submit_that_wins_the_race_is_answered_as_a_duplicate(client_api: Api) -> None:
    # Between our status read and our start, another submit with the same key starts the job:
    # the extension refuses ours with 409, and the answer is the other one's job.
    client_api.standin.before_next(
        "start_new", lambda: client_api.standin.add_instance(KEYED_ID, "Running", input={"winner": True})
    )

    answer = submit(client_api, {"url": VIDEO})

    assert_check_status_answer(answer, KEYED_ID)
    assert answer.headers["idempotent-replayed"] == "true"
    assert client_api.standin.instances[KEYED_ID].input == {"winner": True}  # ours never replaced it


def test_a_start_that_fails_for_another_reason_is_503(client_api: Api) -> None:
    client_api.standin.fail(500, kind="start_new")

    answer = submit(client_api, {"url": VIDEO})

    assert answer.status == 503 and answer.error_code == "service_unavailable"


def test_a_status_lookup_failure_is_503_and_starts_nothing(client_api: Api) -> None:
    # The instance cannot be read nor listed: whether it exists is unknown, so nothing starts.
    client_api.standin.fail(500, kind="get_status")
    client_api.standin.fail(500, kind="list")

    answer = submit(client_api, {"url": VIDEO})

    assert answer.status == 503
    assert client_api.standin.calls_of("start_new") == []


@pytest.mark.parametrize("key", ["", "x" * 300, "naïve"])
def test_a_malformed_key_is_400_and_starts_nothing(client_api: Api, key: str) -> None:
    answer = submit(client_api, {"url": VIDEO}, key=key)

    assert answer.status == 400 and answer.error_code == "invalid_option"
    assert client_api.standin.calls == []


def test_without_a_key_and_without_deduplication_every_submit_starts_a_job(client_api: Api) -> None:
    submit(client_api, {"url": VIDEO}, key=None)
    submit(client_api, {"url": VIDEO}, key=None)

    starts = client_api.standin.started
    assert len(starts) == 2 and starts[0].instance_id != starts[1].instance_id


@pytest.fixture
def deduplicating(settings: Settings) -> Settings:
    s = dataclasses.replace(settings, deduplicate=True)
    bootstrap.override(settings=s)
    return s


def test_deduplication_maps_the_same_request_to_one_job(client_api: Api, deduplicating: Settings) -> None:
    first = submit(client_api, {"url": VIDEO, "format": "audio", "maxHeight": 720}, key=None)
    same_video = "HTTPS://WWW.YouTube.com:443/watch?v=dQw4w9WgXcQ#t=3"
    again = submit(client_api, {"maxHeight": 720, "format": "audio", "url": same_video}, key=None)
    other = submit(client_api, {"url": VIDEO, "format": "video"}, key=None)

    assert first.json["id"] == again.json["id"]
    assert first.json["id"].startswith("k-")
    assert again.headers["idempotent-replayed"] == "true"
    assert other.json["id"] != first.json["id"]
    assert len(client_api.standin.started) == 2


def test_a_batch_with_a_key_starts_download_batch_once(client_api: Api) -> None:
    body = {"urls": [VIDEO, "https://youtu.be/9bZkp7q19f0"]}
    first = submit(client_api, body, key="batch-1")
    again = submit(client_api, body, key="batch-1")

    [started] = client_api.standin.started
    assert started.name == "download_batch"
    assert started.instance_id == instance_id_for("client", "batch-1")
    assert first.json["id"] == again.json["id"] == started.instance_id
