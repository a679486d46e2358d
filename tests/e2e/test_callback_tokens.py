"""Issue 19 through the devhost: a job restarted under its id (same `Idempotency-Key`) is not
reachable with the token its first run's worker held."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from devhost import media
from tests.e2e.harness import Job, LocalStack, error_code, http, sha256
from videojob.contract.output_blob import job_blob_prefix

pytestmark = pytest.mark.timeout(240)


def test_the_first_runs_token_cannot_end_the_second_run_with_a_planted_blob(
    local: LocalStack, slow_media: media.MediaServer, clips: Path
) -> None:
    name = f"replayed-{time.time_ns()}.mp4"
    body, headers = {"url": slow_media.url(name)}, {"Idempotency-Key": f"e2e-replay-{time.time_ns()}"}
    endpoint = f"{local.devhost.base_url}/api/downloads"
    code, started = http("POST", endpoint, body, headers)
    assert code == 202, started
    job = Job(started["id"], started)
    failed = job.wait_done(timeout=90)  # run 1: the video is missing (404)
    assert failed["runtimeStatus"] == "Failed" and error_code(failed) == "http_error", failed
    # Run 1's worker (say a hostile one) kept its token and planted a blob under the job's prefix.
    first_runs_token = local.worker_token(job.id, failed["customStatus"])
    planted = b"not the video" * 100
    planted_name = f"{job_blob_prefix(job.id)}planted.mp4"
    service = BlobServiceClient.from_connection_string(local.azurite.connection_string)
    service.get_blob_client(local.env.get("OUTPUT_CONTAINER", "downloads"), planted_name).upload_blob(
        planted, overwrite=True)

    shutil.copyfile(clips / "sample.mp4", clips / name)  # the video is there now: run 2 downloads it
    code, again = http("POST", endpoint, body, headers)
    assert code == 202 and again["id"] == job.id, again
    rerun = Job(job.id, again)
    rerun.wait(lambda b: (b.get("customStatus") or {}).get("phase") in ("running", "downloading")
               and b["runtimeStatus"] == "Running", timeout=60)
    claim = {"jobId": job.id, "seq": 10_000, "attempt": 1, "state": "succeeded",
             "result": {"blob": {"url": "http://x/planted.mp4", "container": "downloads", "name": planted_name,
                                 "sizeBytes": len(planted), "sha256": sha256(planted), "contentType": "video/mp4"},
                        "media": {"title": "planted"}}}
    replayed = http("POST", f"{local.devhost.base_url}/api/jobs/{job.id}/status", claim,
                    {"Authorization": f"Bearer {first_runs_token}"})[0]
    done = rerun.wait_done(timeout=120)

    assert replayed == 401
    assert done["runtimeStatus"] == "Completed", (done.get("customStatus"), done.get("output"))
    out = done["output"]
    assert out["blob"]["name"] != planted_name
    assert sha256(local.blob_bytes(out["blob"])) == out["blob"]["sha256"] == sha256((clips / "sample.mp4").read_bytes())
