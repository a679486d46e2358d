"""`check_output_blob`: what the output storage holds under a reported name, and the URL the job
output shows for it, built from the settings (issue 9, item 1).

Runs the real azure-storage-blob SDK against Azurite; the Entra path (`OUTPUT_ACCOUNT_URL`, no
key) with only the socket replaced, like `test_share_link`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from azure.core.pipeline.transport import HttpRequest, HttpResponse, HttpTransport
from azure.core.utils import case_insensitive_dict
from azure.storage.blob import BlobServiceClient

from activities.output_blob import check_output_blob_activity
from tests.share_link.test_share_link import ACCOUNT_URL, FakeAppIdentity, settings_with
from tests.support.replay import run_activity_function
from tests.support.services import AZURITE_ACCOUNT, AZURITE_KEY, Azurite, free_port
from videojob import bootstrap


@pytest.fixture
def output(azurite: Azurite) -> tuple[BlobServiceClient, str]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = f"out-{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    return service, container


def check(azurite: Azurite, container: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Through the registered activity function, as the Functions host would call it."""
    settings = settings_with(OUTPUT_CONNECTION_STRING=azurite.connection_string, OUTPUT_CONTAINER=container)
    bootstrap.override(settings=settings)
    try:
        import activities

        return json.loads(run_activity_function(activities.check_output_blob)(json.dumps(payload)))
    finally:
        bootstrap.reset()


def test_a_stored_blob_answers_its_real_size_and_the_url_from_the_settings(azurite: Azurite, output):
    service, container = output
    service.get_blob_client(container, "job-7/My clip (1).mp4").upload_blob(b"v" * 4321)

    answer = check(azurite, container, {"jobId": "job-7", "container": container, "name": "job-7/My clip (1).mp4"})

    assert answer == {"ok": True, "exists": True, "sizeBytes": 4321,
                      "url": f"{azurite.blob_endpoint}/{container}/job-7/My%20clip%20%281%29.mp4"}


@pytest.mark.parametrize("name", ["job-7/never-uploaded.mp4", "job-7/sub/also-missing.mp4"])
def test_a_missing_blob_is_reported_missing(azurite: Azurite, output, name: str):
    _, container = output

    answer = check(azurite, container, {"jobId": "job-7", "container": container, "name": name})

    assert answer["ok"] is True and answer["exists"] is False and answer["sizeBytes"] is None


def test_a_missing_output_container_means_a_missing_blob(azurite: Azurite):
    container = f"gone-{uuid.uuid4().hex[:8]}"

    answer = check(azurite, container, {"jobId": "job-7", "container": container, "name": "job-7/v.mp4"})

    assert answer["ok"] is True and answer["exists"] is False


@pytest.mark.parametrize(
    ("container", "name"),
    [("azure-webjobs-secrets", "job-7/host.json"), (None, "job-8/video.mp4"), (None, "job-70/video.mp4"),
     (None, "job-7/../job-8/video.mp4")],
    ids=["another container", "another job", "a sibling prefix", "a climb"],
)
def test_a_blob_outside_the_jobs_output_is_refused_without_asking_storage(azurite: Azurite, output, container, name):
    service, own = output
    target = container or own
    if ".." not in name:
        if not service.get_container_client(target).exists():
            service.create_container(target)
        service.get_blob_client(target, name).upload_blob(b"x", overwrite=True)

    answer = check(azurite, own, {"jobId": "job-7", "container": target, "name": name})

    assert answer["ok"] is False
    assert answer["error"]["code"] == "invalid_result" and answer["error"]["retryable"] is False
    assert "exists" not in answer and "url" not in answer


@pytest.mark.parametrize(
    "payload",
    [None, [], {"container": "downloads", "name": "j/a"}, {"jobId": "j k", "container": "downloads", "name": "j k/a"},
     {"jobId": "j", "container": "", "name": "j/a"}, {"jobId": "j", "container": "downloads", "name": 7}],
)
def test_bad_input_is_refused(payload: Any):
    answer = check_output_blob_activity(payload, lambda: settings_with(OUTPUT_ACCOUNT_URL=ACCOUNT_URL))

    assert answer["ok"] is False and answer["error"]["code"] == "invalid_input"


def test_storage_that_cannot_be_reached_is_a_retryable_error():
    unreachable = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                   f"BlobEndpoint=http://127.0.0.1:{free_port()}/{AZURITE_ACCOUNT};")
    settings = settings_with(OUTPUT_CONNECTION_STRING=unreachable)

    answer = check_output_blob_activity(
        {"jobId": "j", "container": "downloads", "name": "j/v.mp4"}, lambda: settings, retry_total=0
    )

    assert answer["ok"] is False
    assert answer["error"] == {"code": "blob_check_failed", "retryable": True,
                               "message": "output storage not reachable: ServiceRequestError"}


def test_a_wrong_key_is_a_configuration_error_that_is_not_retried(azurite: Azurite, output):
    _, container = output
    wrong = azurite.connection_string.replace(AZURITE_KEY, "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=")

    answer = check_output_blob_activity(
        {"jobId": "j", "container": container, "name": "j/v.mp4"},
        lambda: settings_with(OUTPUT_CONNECTION_STRING=wrong, OUTPUT_CONTAINER=container),
    )

    assert answer["ok"] is False
    assert answer["error"] == {"code": "AuthorizationFailure", "message": "blob properties refused (403)",
                               "retryable": False}


class BlobPropertiesTransport(HttpTransport):
    """Answers Get Blob Properties as Blob Storage does (HEAD, headers only), recording the request."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.requests: list[HttpRequest] = []

    def __enter__(self):
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.requests.append(request)
        response = HttpResponse(request, None)
        response.status_code, response.reason = 200, "OK"
        response.headers = case_insensitive_dict({
            "Content-Length": str(self.size), "Content-Type": "video/mp4", "x-ms-blob-type": "BlockBlob",
            "ETag": '"0x8DC0000000000"', "Last-Modified": "Sun, 01 Mar 2026 12:00:00 GMT", "x-ms-version": "2025-01-05",
        })
        response.body = lambda: b""
        return response


def test_in_azure_the_app_identity_reads_the_properties_at_the_account_url():
    transport, identity = BlobPropertiesTransport(987_654), FakeAppIdentity()

    answer = check_output_blob_activity(
        {"jobId": "job-1", "container": "downloads", "name": "job-1/video.mp4"},
        lambda: settings_with(OUTPUT_ACCOUNT_URL=ACCOUNT_URL),
        credential_factory=lambda: identity,
        transport=transport,
    )

    assert answer == {"ok": True, "exists": True, "sizeBytes": 987_654,
                      "url": f"{ACCOUNT_URL}/downloads/job-1/video.mp4"}
    [request] = transport.requests
    assert request.method == "HEAD" and request.url.startswith(f"{ACCOUNT_URL}/downloads/job-1/video.mp4")
    assert request.headers["Authorization"] == "Bearer fake-app-token"
