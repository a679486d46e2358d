"""Share links, completion webhooks and idempotent submits through the devhost, as a user sees them."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devhost import media
from tests.e2e.harness import Job, LocalStack, error_code, first_group, sha256
from tests.notify.receiver import run_receiver
from videojob.domain.notify_signature import verify

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


def test_a_failed_job_resubmitted_with_its_key_runs_a_worker_again(
    local: LocalStack, fast_media: media.MediaServer, clips: Path
) -> None:
    # The restart runs under the same instance id; its groups must not be the failed run's (kept,
    # stopped, for its logs), which the backend would report as the new run's without starting it.
    name = f"late-{time.time_ns()}.mp4"
    body = {"url": fast_media.url(name)}
    headers = {"Idempotency-Key": f"e2e-restart-{time.time_ns()}"}
    endpoint = f"{local.devhost.base_url}/api/downloads"

    first = post(endpoint, body, headers)
    job = Job(first[2]["id"], first[2])
    failed = job.wait_done(timeout=90)
    shutil.copyfile(clips / "sample.mp4", clips / name)  # the video is there now
    again = post(endpoint, body, headers)
    rerun = Job(job.id, again[2])
    done = rerun.wait(lambda b: b["runtimeStatus"] == "Completed" or (
        b["runtimeStatus"] == "Failed" and first_group(b) != first_group(failed)), timeout=120)

    assert failed["runtimeStatus"] == "Failed" and error_code(failed) == "http_error", failed
    assert again[0] == 202 and again[2]["id"] == job.id and "idempotent-replayed" not in again[1], again
    assert done["runtimeStatus"] == "Completed", (done.get("customStatus"), done.get("output"))
    out = done["output"]
    assert [a["outcome"] for a in out["attempts"]] == ["succeeded"]  # no lost heartbeat on the way
    assert out["containerGroup"] != job.group
    assert _launches(local, rerun) == 1
    assert sha256(local.blob_bytes(out["blob"])) == out["blob"]["sha256"]
