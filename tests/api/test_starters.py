"""The HTTP starters, invoked as the worker invokes them, against the Durable stand-in."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import APP_ORIGIN, Api
from tests.support.durable_standin import SYSTEM_KEY

VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
DURABLE_KEYS = (
    "id",
    "statusQueryGetUri",
    "sendEventPostUri",
    "terminatePostUri",
    "rewindPostUri",
    "purgeHistoryDeleteUri",
    "restartPostUri",
    "suspendPostUri",
    "resumePostUri",
)


def assert_check_status_answer(answer, instance_id: str) -> None:
    assert answer.status == 202
    assert answer.content_type.startswith("application/json")
    payload = answer.json
    assert set(DURABLE_KEYS) <= set(payload)
    assert payload["id"] == instance_id
    for key in DURABLE_KEYS[1:]:
        # The management URLs point at the origin the caller used, with the instance id filled in.
        assert payload[key].startswith(f"{APP_ORIGIN}/runtime/webhooks/durabletask/instances/{instance_id}")
        assert "INSTANCEID" not in payload[key]
    assert answer.headers["location"] == payload["statusQueryGetUri"]
    assert answer.headers["retry-after"]


def test_json_request_starts_download_job_with_the_plan(client_api: Api) -> None:
    answer = client_api.download({"url": VIDEO, "format": "audio", "audioFormat": "mp3", "maxHeight": 720})

    [started] = client_api.standin.started
    assert started.name == "download_job"
    assert_check_status_answer(answer, started.instance_id)
    assert started.input == {
        "request": {"url": VIDEO, "format": "audio", "maxHeight": 720, "audioFormat": "mp3"},
        "deadlineSeconds": 3600,
        "heartbeatTimeoutSeconds": 300,
        "provisionMaxAttempts": 3,
        "failedGroupPolicy": "delete",
        "provisionBackoffSeconds": 5,
        "cleanupMaxAttempts": 5,
        "cleanupBackoffSeconds": 5,
        "mode": "download",
        "maxAttempts": 2,
        "retryBackoffSeconds": 30,
        "workerCpu": 2.0,
        "workerMemoryGb": 3.0,
        "shareLinkHours": 12,
        "costRates": {"vcpuSecond": 0.00002, "gbSecond": 0.000003, "currency": "EUR"},
        "outputContainer": "downloads",
        "retryBotCheck": True,
        "maxRunningJobs": 20,  # MAX_RUNNING_JOBS's default: the job queues for a global slot (issue 13)
    }
    # The start went to the extension's RPC endpoint for the orchestrator, with no instance id.
    [call] = client_api.standin.calls_of("start_new")
    assert call.path == "/durabletask/orchestrators/download_job"


def test_requested_deadline_is_used_when_shorter_than_the_default(client_api: Api) -> None:
    answer = client_api.download({"url": VIDEO, "deadlineSeconds": 600})

    assert answer.status == 202
    [started] = client_api.standin.started
    assert started.input["deadlineSeconds"] == 600
    assert started.input["request"]["deadlineSeconds"] == 600


def test_plain_text_body_is_the_url(client_api: Api) -> None:
    answer = client_api.download(VIDEO, content_type="text/plain; charset=utf-8")

    [started] = client_api.standin.started
    assert_check_status_answer(answer, started.instance_id)
    assert started.input["request"] == {"url": VIDEO, "format": "video"}


def test_check_status_answer_carries_the_durable_keys_the_sdk_would_give(client_api: Api) -> None:
    answer = client_api.download({"url": VIDEO})

    status_uri = urlsplit(answer.json["statusQueryGetUri"])
    assert status_uri.scheme == "https" and status_uri.netloc == "videodl.example.net"
    # The extension's query string (task hub, connection, key) is passed through unchanged.
    assert f"code={SYSTEM_KEY}" in status_uri.query and "taskHub=TestHub" in status_uri.query


def test_seed_starter_accepts_the_readme_curl_body(client_api: Api) -> None:
    # `curl -d "https://www.youtube.com/watch\?v\=ID"` as the seed's README shows it.
    answer = client_api.seed_start("https://www.youtube.com/watch\\?v\\=dQw4w9WgXcQ")

    [started] = client_api.standin.started
    assert started.name == "download_job"
    assert_check_status_answer(answer, started.instance_id)
    assert started.input["request"]["url"] == VIDEO


def test_seed_starter_accepts_a_plain_url_without_content_type(client_api: Api) -> None:
    answer = client_api.seed_start(VIDEO, content_type=None)

    assert answer.status == 202
    assert client_api.standin.started[0].input["request"]["url"] == VIDEO


def test_seed_starter_rejects_what_the_policy_rejects(client_api: Api) -> None:
    answer = client_api.seed_start("http://169.254.169.254/latest/meta-data/")

    assert answer.status == 400
    assert answer.error_code == "private_address"
    assert client_api.standin.calls_of("start_new") == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "invalid_json"),
        ('["https://youtube.com/watch?v=x"]', "application/json", 400, "invalid_json"),
        ("[" * 5000 + "]" * 5000, "application/json", 400, "invalid_json"),
        ("{}", "application/json", 400, "missing_url"),
        ('{"url": ""}', "application/json", 400, "missing_url"),
        ("", "text/plain", 400, "missing_url"),
        ('{"url": 42}', "application/json", 400, "invalid_url"),
        ('{"url": "https://www.youtube.com/watch?v=a b"}', "application/json", 400, "invalid_url"),
        ('{"url": "www.youtube.com/watch?v=x"}', "application/json", 400, "invalid_url"),
        ('{"url": "https://user:pass@www.youtube.com/watch?v=x"}', "application/json", 400, "invalid_url"),
        ('{"url": "https://www.youtube.com/watch?v=' + "a" * 3000 + '"}', "application/json", 400, "url_too_long"),
        ('{"url": "file:///etc/passwd"}', "application/json", 400, "scheme_not_allowed"),
        ('{"url": "javascript:alert(1)"}', "application/json", 400, "scheme_not_allowed"),
        ('{"url": "ftp://youtube.com/x"}', "application/json", 400, "scheme_not_allowed"),
        ('{"url": "https://evil.example.com/watch?v=x"}', "application/json", 400, "host_not_allowed"),
        ('{"url": "https://youtube.com.evil.example/x"}', "application/json", 400, "host_not_allowed"),
        ('{"url": "http://8.8.8.8/x"}', "application/json", 400, "host_not_allowed"),
        ('{"url": "http://169.254.169.254/latest/meta-data/"}', "application/json", 400, "private_address"),
        ('{"url": "http://127.0.0.1/"}', "application/json", 400, "private_address"),
        ('{"url": "http://[::1]/"}', "application/json", 400, "private_address"),
        ('{"url": "http://10.0.0.1/"}', "application/json", 400, "private_address"),
        ('{"url": "http://2130706433/"}', "application/json", 400, "private_address"),
        ('{"url": "http://0x7f000001/"}', "application/json", 400, "private_address"),
        ('{"url": "http://0177.0.0.1/"}', "application/json", 400, "private_address"),
        ('{"url": "http://127.1/"}', "application/json", 400, "private_address"),
        ('{"url": "http://[::ffff:127.0.0.1]/"}', "application/json", 400, "private_address"),
        ('{"url": "http://[::ffff:a9fe:a9fe]/"}', "application/json", 400, "private_address"),
        ('{"url": "http://0.0.0.0/"}', "application/json", 400, "private_address"),
        ('{"url": "' + VIDEO + '", "format": "gif"}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "maxHeight": 99999}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "maxHeight": "720"}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "deadlineSeconds": 7200}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "audioFormat": "wav"}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "callbackUrl": "http://x"}', "application/json", 400, "invalid_option"),
        ('{"url": "' + VIDEO + '", "pad": "' + "x" * 20000 + '"}', "application/json", 413, "body_too_large"),
        ("url=" + VIDEO, "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("<url/>", "application/xml", 415, "unsupported_media_type"),
    ],
)
def test_rejected_requests_answer_an_error_code_and_start_nothing(
    client_api: Api, body: str, content_type: str, status: int, code: str
) -> None:
    answer = client_api.download(body, content_type=content_type)

    assert answer.status == status
    assert answer.content_type.startswith("application/json")
    assert answer.error_code == code
    assert answer.json["error"]["message"]
    assert client_api.standin.calls_of("start_new") == []


def test_rejection_does_not_echo_a_long_url_back(client_api: Api) -> None:
    answer = client_api.download({"url": "https://www.youtube.com/" + "a" * 3000})

    assert answer.error_code == "url_too_long"
    assert len(answer.body) < 500


def test_durable_host_down_answers_503_with_a_code(client_api: Api) -> None:
    client_api.standin.stop()

    answer = client_api.download({"url": VIDEO})

    assert answer.status == 503
    assert answer.error_code == "service_unavailable"
    assert "Traceback" not in answer.body.decode()


def test_durable_host_error_answers_503(client_api: Api) -> None:
    client_api.standin.fail(500)

    answer = client_api.download({"url": VIDEO})

    assert answer.status == 503
    assert answer.error_code == "service_unavailable"
    assert json.dumps(answer.json).find("stand-in scripted failure") == -1
