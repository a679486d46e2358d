"""The pipeline on the `podman` backend: the devhost runs every job in a container of the worker
image (`make image`), with ACI's memory limit, and cleans its containers up."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost import media, stack
from tests.e2e.harness import LocalStack, error_code, http, sha256
from tests.support.podman import container_exists, podman, requires_podman, wait_for, worker_image
from tests.support.services import Azurite

pytestmark = requires_podman

# A container and its Python start within this window even on a busy machine; the worker then
# reports progress every second.
HEARTBEAT_SECONDS = 30
OOM_HEARTBEAT_SECONDS = 8
HOG_IMAGE = "localhost/video-worker-memory-hog:test"


@contextlib.contextmanager
def podman_stack(azurite: Azurite, state: Path, **settings: str) -> Iterator[LocalStack]:
    env = stack.devhost_env(
        azurite,
        {
            "CONTAINER_BACKEND": "podman",
            "ALLOWED_HOSTS": "127.0.0.1",
            "CALLBACK_SIGNING_KEY": secrets.token_urlsafe(48),
            "PROGRESS_INTERVAL_SECONDS": "1",
            "JOB_MAX_ATTEMPTS": "1",
            "FAILED_GROUP_POLICY": "delete",
            "HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_SECONDS),
            **settings,
        },
    )
    args = ("--settings", str(state / "local.settings.json"))
    devhost = stack.Devhost(stack.free_port(), state, state / "devhost.log")
    devhost.start(env, args)
    try:
        yield LocalStack(devhost, azurite, env, args)
    finally:
        devhost.stop()
        stack.stop_local_containers(state)


@pytest.fixture(scope="module")
def image() -> str:
    return worker_image()


@pytest.fixture(scope="module")
def on_podman(image: str, azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with podman_stack(azurite, tmp_path_factory.mktemp("devhost-podman"), WORKER_IMAGE=image) as s:
        yield s


@pytest.fixture(scope="module")
def hog_image(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The worker image with an entrypoint that allocates memory until it is killed."""
    context = tmp_path_factory.mktemp("hog")
    hog = ["python", "-c", "b = []\nwhile True: b.append(bytearray(8 << 20))"]
    (context / "Containerfile").write_text(f"FROM {image}\nENTRYPOINT {json.dumps(hog)}\n")
    built = podman("build", "--quiet", "-t", HOG_IMAGE, str(context), timeout=600)
    assert built.returncode == 0, built.stderr
    yield HOG_IMAGE
    podman("rmi", "--force", HOG_IMAGE)


def running(name: str) -> bool:
    out = podman("container", "inspect", "--format", "{{.State.Running}}", name)
    return out.returncode == 0 and out.stdout.strip() == "true"


def test_a_job_completes_in_a_container_of_the_worker_image_and_the_container_is_removed(
    on_podman: LocalStack, fast_media: media.MediaServer
):
    job = on_podman.submit(fast_media.url("sample.mp4"))
    job.wait_phase("downloading", timeout=HEARTBEAT_SECONDS * 2)
    ran_in_container = container_exists(job.group)

    done = job.wait_done(timeout=180)

    assert done["runtimeStatus"] == "Completed", (done, on_podman.devhost.log_path.read_text()[-3000:])
    assert ran_in_container
    out = done["output"]
    data = on_podman.blob_bytes(out["blob"])
    assert sha256(data) == out["blob"]["sha256"] and len(data) == out["blob"]["sizeBytes"]
    assert out["media"]["videoCodec"] == "h264" and out["media"]["audioCodec"] == "aac"
    assert out["cleanup"] == "deleted" and not container_exists(job.group)


def test_cancel_stops_the_jobs_container(on_podman: LocalStack, slow_media: media.MediaServer):
    job = on_podman.submit(slow_media.url("sample.mp4"))
    job.wait_phase("downloading", timeout=HEARTBEAT_SECONDS * 2)
    assert running(job.group)

    code, _ = http("POST", f"{on_podman.devhost.base_url}/api/downloads/{job.id}/cancel")
    done = job.wait_done(timeout=60)

    assert code == 202
    assert done["runtimeStatus"] == "Failed" and error_code(done) == "cancelled", done
    wait_for(lambda: not running(job.group), 30, f"container {job.group} stops")


def test_a_worker_killed_for_memory_fails_the_job_with_a_clear_error_and_its_container_is_removed(
    hog_image: str, azurite: Azurite, fast_media: media.MediaServer, tmp_path: Path
):
    settings = {"WORKER_IMAGE": hog_image, "WORKER_MEMORY_GB": "0.1",
                "HEARTBEAT_TIMEOUT_SECONDS": str(OOM_HEARTBEAT_SECONDS)}
    state = tmp_path / "devhost"
    state.mkdir()
    with podman_stack(azurite, state, **settings) as s:
        job = s.submit(fast_media.url("sample.mp4"))
        done = job.wait_done(timeout=OOM_HEARTBEAT_SECONDS * 4 + 60)

        assert done["runtimeStatus"] == "Failed", done
        error = done["customStatus"]["error"]
        assert (error["code"], error["retryable"]) == ("out_of_memory", False), error
        assert "exit code 137" in error["message"] and "WORKER_MEMORY_GB" in error["message"], error
        wait_for(lambda: not container_exists(job.group), 30, f"container {job.group} is deleted")
