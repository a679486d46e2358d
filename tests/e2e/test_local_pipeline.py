"""The whole pipeline on one machine, through the devhost's HTTP API only.

Azurite holds the blobs, the `local` backend runs each worker as a process group, and every
assertion is on what a user sees: status codes, runtimeStatus, customStatus, output, blobs,
and whether a worker process is still running.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from devhost.media import MediaServer
from tests.e2e.conftest import DEADLINE_SECONDS, HEARTBEAT_SECONDS, MAX_ATTEMPTS, MULTI_SECONDS, RETRY_BACKOFF_SECONDS
from tests.e2e.harness import Job, LocalStack, error_code, http, sha256
from videojob.domain.tokens import worker_token


def assert_gone(local: LocalStack, job: Job) -> None:
    assert job.group not in local.running_workers()


def wait_until_gone(local: LocalStack, job: Job, timeout: float) -> None:
    job.wait(lambda _: job.group not in local.running_workers(), timeout)


def test_a_download_completes_with_a_verified_blob_and_no_worker_left(local: LocalStack, paced_media: MediaServer):
    job = local.submit(paced_media.url("big.mp4"))

    done = job.wait_done(timeout=60)

    assert done["runtimeStatus"] == "Completed", done
    out = done["output"]
    assert out["state"] == "succeeded" and out["url"] == paced_media.url("big.mp4")
    assert out["cleanup"] == "deleted"
    data = local.blob_bytes(out["blob"])
    assert sha256(data) == out["blob"]["sha256"] and len(data) == out["blob"]["sizeBytes"]
    assert out["media"]["videoCodec"] and out["media"]["audioCodec"]
    downloading = [s["customStatus"] for s in job.seen if (s.get("customStatus") or {}).get("phase") == "downloading"]
    assert any(0 < (c.get("percent") or 0) < 100 and c.get("speedBps") for c in downloading), job.seen
    assert_gone(local, job)


def test_a_worker_that_crashes_mid_download_is_detected_and_retried_in_a_fresh_group(
    local: LocalStack, slow_media: MediaServer
):
    job = local.submit(slow_media.url("sample.mp4"))
    assert job.wait_phase("downloading")["runtimeStatus"] == "Running"

    local.kill_worker(job.group)
    retrying = job.wait_phase("retrying", timeout=HEARTBEAT_SECONDS * 3 + 10)
    first_gone = job.group not in local.running_workers()
    done = job.wait_done(timeout=RETRY_BACKOFF_SECONDS + 60)

    assert retrying["customStatus"]["lastError"]["code"] == "heartbeat_lost", retrying
    assert first_gone  # cleaned up before the next attempt starts
    assert done["runtimeStatus"] == "Completed", done
    out = done["output"]
    assert out["containerGroup"] != job.group
    assert [(a["group"], a["outcome"]) for a in out["attempts"]] == [
        (job.group, "heartbeat_lost"), (out["containerGroup"], "succeeded")]
    assert sha256(local.blob_bytes(out["blob"])) == out["blob"]["sha256"]
    assert out["containerGroup"] not in local.running_workers()


def test_a_worker_killed_in_every_attempt_fails_the_job_as_heartbeat_lost_with_nothing_left_running(
    local: LocalStack, slow_media: MediaServer
):
    job = local.submit(slow_media.url("sample.mp4"))
    groups: list[str] = []

    for attempt in range(1, MAX_ATTEMPTS + 1):
        status = job.wait(lambda b, n=attempt: b["runtimeStatus"] not in ("Pending", "Running") or (
            (b.get("customStatus") or {}).get("phase") == "downloading" and b["customStatus"].get("attempt") == n),
            timeout=HEARTBEAT_SECONDS * 3 + RETRY_BACKOFF_SECONDS + 30)
        assert status["runtimeStatus"] == "Running", status
        group = status["customStatus"]["containerGroup"]
        assert group not in groups  # every attempt in a fresh group
        groups.append(group)
        local.kill_worker(group)
    done = job.wait_done(timeout=HEARTBEAT_SECONDS * 3 + 30)

    assert done["runtimeStatus"] == "Failed", done
    assert error_code(done) == "heartbeat_lost"
    assert done["output"].startswith("Orchestrator function 'download_job' failed: heartbeat_lost: ")
    attempts = done["customStatus"]["attempts"]
    assert [(a["attempt"], a["group"], a["outcome"]) for a in attempts] == [
        (n, group, "heartbeat_lost") for n, group in enumerate(groups, start=1)]
    assert not set(groups) & set(local.running_workers())


def test_cancel_fails_the_job_as_cancelled_and_stops_its_worker(local: LocalStack, slow_media: MediaServer):
    job = local.submit(slow_media.url("sample.mp4"))
    job.wait_phase("downloading")

    code, _ = http("POST", f"{local.devhost.base_url}/api/downloads/{job.id}/cancel")
    done = job.wait_done(timeout=30)

    assert code == 202
    assert done["runtimeStatus"] == "Failed" and error_code(done) == "cancelled", done
    assert_gone(local, job)
    again, body = http("POST", f"{local.devhost.base_url}/api/downloads/{job.id}/cancel")
    assert again == 409, body


def test_terminate_webhook_ends_the_job_and_the_next_sweep_removes_its_worker(
    local: LocalStack, slow_media: MediaServer
):
    job = local.submit(slow_media.url("sample.mp4"))
    job.wait_phase("downloading")

    url = job.links["terminatePostUri"].replace("{text}", "operator")
    code, _ = http("POST", url)
    status = job.status()

    assert code == 202
    assert status["runtimeStatus"] == "Terminated" and status["output"] == "operator"
    wait_until_gone(local, job, timeout=20)
    assert http("POST", url)[0] == 410


def test_a_job_survives_a_devhost_crash_and_restart(local: LocalStack, slow_media: MediaServer):
    job = local.submit(slow_media.url("sample.mp4"))
    job.wait_phase("downloading")

    local.restart(crash=True)
    done = job.wait_done(timeout=60)

    assert done["runtimeStatus"] == "Completed", done
    data = local.blob_bytes(done["output"]["blob"])
    assert sha256(data) == done["output"]["blob"]["sha256"]
    assert_gone(local, job)


def test_a_forged_callback_is_refused_and_the_job_is_unaffected(local: LocalStack, slow_media: MediaServer):
    job = local.submit(slow_media.url("sample.mp4"))
    callback = f"{local.devhost.base_url}/api/jobs/{job.id}/status"
    forged = {"jobId": job.id, "seq": 999, "state": "failed",
              "error": {"code": "internal", "message": "forged", "retryable": False}}

    wrong = http("POST", callback, forged, {"Authorization": "Bearer not-the-token"})[0]
    missing = http("POST", callback, forged)[0]
    leaked = worker_token(local.env["CALLBACK_SIGNING_KEY"], "some-other-job", None, 1,
                          datetime.now(UTC) + timedelta(hours=1))
    other_jobs_token = http("POST", callback, forged, {"Authorization": f"Bearer {leaked}"})[0]
    done = job.wait_done(timeout=60)

    assert (wrong, missing, other_jobs_token) == (401, 401, 401)
    assert done["runtimeStatus"] == "Completed", done
    assert all(error_code(s) is None for s in job.seen)


def test_five_jobs_at_once_complete_without_cross_talk(local: LocalStack, fast_media: MediaServer):
    jobs = {seconds: local.submit(fast_media.url(f"clip-{seconds}s.mp4")) for seconds in MULTI_SECONDS}

    results = {seconds: job.wait_done(timeout=120) for seconds, job in jobs.items()}

    names = set()
    for seconds, done in results.items():
        assert done["runtimeStatus"] == "Completed", done
        out = done["output"]
        assert out["jobId"] == jobs[seconds].id and out["url"] == fast_media.url(f"clip-{seconds}s.mp4")
        data = local.blob_bytes(out["blob"])
        assert sha256(data) == out["blob"]["sha256"]
        assert abs(probe_duration(data) - seconds) < 0.5
        names.add(out["blob"]["name"])
    assert len(names) == len(MULTI_SECONDS)
    for job in jobs.values():
        assert_gone(local, job)


def test_the_cli_submits_follows_progress_and_prints_the_output(local: LocalStack, paced_media: MediaServer):
    base = ["--base-url", local.devhost.base_url, "--poll", "0.3"]

    run = cli(*base, "submit", paced_media.url("big.mp4"), "--wait")
    output = json.loads(run.stdout)
    status = cli(*base, "status", output["jobId"])
    cancel = cli(*base, "cancel", output["jobId"])

    assert run.returncode == 0, run.stderr
    assert output["state"] == "succeeded" and output["blob"]["sha256"]
    percents = [float(m.group(1)) for m in re.finditer(r"^downloading .*\] +([0-9.]+)%.*/s +ETA", run.stderr, re.M)]
    assert any(0 < p < 100 for p in percents), run.stderr
    assert status.returncode == 0 and json.loads(status.stdout)["runtimeStatus"] == "Completed"
    assert cancel.returncode == 2 and "409" in cancel.stderr


def test_a_worker_that_never_calls_back_fails_the_job_at_its_deadline(local: LocalStack, stuck_job: Job):
    done = stuck_job.wait_done(timeout=DEADLINE_SECONDS + 60)

    assert done["runtimeStatus"] == "Failed", done
    assert error_code(done) == "deadline_exceeded"
    assert_gone(local, stuck_job)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "videojob.client.cli", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def probe_duration(data: bytes) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", "-i", "pipe:0"],
        input=data, capture_output=True, check=True, timeout=30,
    )
    return float(json.loads(out.stdout)["format"]["duration"])
