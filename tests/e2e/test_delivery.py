"""Share links, completion webhooks and idempotent submits through the devhost, as a user sees them."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from devhost import media
from tests.e2e.harness import Job, LocalStack, sha256
from tests.notify.receiver import run_receiver
from videojob.notify_signature import verify

pytestmark = pytest.mark.timeout(180)


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback devhost)
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, json.loads(e.read() or b"null")


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 (loopback Azurite)
        return resp.read()


def test_a_job_with_notify_url_delivers_its_signed_output_once_with_a_share_link(
    local: LocalStack, fast_media: media.MediaServer
) -> None:
    with run_receiver() as receiver:
        job = local.submit(fast_media.url("sample.mp4"), notifyUrl=receiver.url("/hooks/done"))
        final = job.wait_done(timeout=90)
        # Nothing more arrives after the job completed (no duplicate delivery).
        time.sleep(1)
        deliveries = list(receiver.received)

    assert final["runtimeStatus"] == "Completed", final
    output = final["output"]
    assert output["notification"] == {"delivered": True, "attempts": 1, "status": 204}

    [delivery] = deliveries
    assert delivery.path == "/hooks/done"
    key = local.env["NOTIFY_SIGNING_KEY"]
    assert verify(key, delivery.body, delivery.headers["x-signature"], delivery.headers["x-signature-timestamp"],
                  now=time.time())
    sent = json.loads(delivery.body)
    assert sent["jobId"] == job.id and sent["state"] == "succeeded"
    assert sent == {k: v for k, v in output.items() if k != "notification"}

    link = output["shareLink"]
    assert set(link) == {"url", "expiresAt"}
    assert "sp=r" in link["url"]
    data = download(link["url"])
    assert sha256(data) == output["blob"]["sha256"]
    assert data == local.blob_bytes(output["blob"])


def _launches(local: LocalStack, job: Job) -> int:
    log = (local.state_dir / "devhost.log").read_text(encoding="utf-8", errors="replace")
    return log.count(f"starting local group {job.group}")


def test_the_same_idempotency_key_twice_is_one_job_and_one_worker(
    local: LocalStack, slow_media: media.MediaServer
) -> None:
    body = {"url": slow_media.url("sample.mp4")}
    headers = {"Idempotency-Key": f"e2e-{time.time_ns()}"}
    endpoint = f"{local.devhost.base_url}/api/downloads"

    first = post(endpoint, body, headers)
    assert first[0] == 202, first
    job = Job(first[2]["id"], first[2])
    running = job.wait_phase("downloading", timeout=60)
    while_running = post(endpoint, body, headers)
    final = job.wait_done(timeout=90)
    after_completion = post(endpoint, body, headers)

    assert running["runtimeStatus"] == "Running"
    assert final["runtimeStatus"] == "Completed", final
    for status, answer_headers, payload in (while_running, after_completion):
        assert status == 202
        assert payload["id"] == job.id
        assert payload["statusQueryGetUri"] == first[2]["statusQueryGetUri"]
        assert answer_headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first[1]
    # One instance (its creation time never changed) and one worker process ever started.
    assert job.status()["createdTime"] == running["createdTime"]
    assert _launches(local, job) == 1
