"""The built worker image, black box: configured only through the container env contract, run by
the podman backend with ACI's limits, reporting to a callback receiver and uploading to Azurite."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from tests.support.podman import podman, requires_podman, wait_for
from tests.support.services import Azurite
from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import STAGING, sha256_of, staged_media, worker_env
from tests.worker.media_server import MediaServer
from videojob.adapters.containers.podman import PodmanBackend
from videojob.contract import container_env as E
from videojob.contract.staging import is_result_record
from videojob.domain.container_port import ContainerState
from videojob.domain.container_spec import ContainerSpec, group_name

pytestmark = requires_podman


@pytest.fixture
def backend(tmp_path: Path):
    backend = PodmanBackend(tmp_path / "podman", grace_seconds=2)
    yield backend
    backend.remove_all()


def spec_of(env: dict[str, str], image: str) -> ContainerSpec:
    return ContainerSpec(
        name=group_name(env[E.JOB_ID]),
        image=image,
        location=None,
        cpu=1.0,
        memory_gb=1.5,
        env=tuple(sorted((k, v) for k, v in env.items() if k not in E.SECURE_NAMES)),
        secure_env=tuple(sorted((k, v) for k, v in env.items() if k in E.SECURE_NAMES)),
        tags=(("managedBy", "image-test"), ("jobId", env[E.JOB_ID])),
        identity_resource_id=None,
        registry=None,
    )


def run_job(backend: PodmanBackend, image: str, env: dict[str, str]) -> tuple[str, str]:
    spec = spec_of(env, image)
    backend.create(spec)
    wait_for(lambda: not backend.state(spec.name).is_active, 300, f"the worker container {spec.name} ends")
    return backend.state(spec.name).state, backend.logs(spec.name, tail=40)


def terminal(callbacks: CallbackReceiver, logs: str) -> dict[str, Any]:
    events = callbacks.accepted()
    assert events, f"no event reached the callback; container log:\n{logs}"
    return events[-1]


def probe_kinds(data: bytes, tmp_path: Path) -> list[str]:
    f = tmp_path / "probe.bin"
    f.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(f)], capture_output=True, check=True
    )
    return sorted(s["codec_type"] for s in json.loads(out.stdout)["streams"])


@pytest.mark.parametrize(
    ("path", "fmt", "extra", "ext", "kinds", "audio_codec"),
    [
        ("clip.mp4", "video", {}, "mp4", ["audio", "video"], "aac"),
        ("hls/master.m3u8", "video", {}, "mp4", ["audio", "video"], "aac"),
        ("dash/manifest.mpd", "video", {}, "mp4", ["audio", "video"], "aac"),
        ("clip.mp4", "audio", {E.JOB_AUDIO_FORMAT: "mp3"}, "mp3", ["audio"], "mp3"),
        ("dash/manifest.mpd", "audio", {}, "m4a", ["audio"], "aac"),
    ],
    ids=["progressive", "hls-remux", "dash-merged", "audio-mp3-encoded", "audio-m4a-copied"],
)
def test_the_image_downloads_verifies_and_uploads(
    path: str,
    fmt: str,
    extra: dict[str, str],
    ext: str,
    kinds: list[str],
    audio_codec: str,
    image: str,
    backend: PodmanBackend,
    media_server: MediaServer,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    tmp_path: Path,
) -> None:
    jid = uuid.uuid4().hex
    env = worker_env(job_id=jid, url=media_server.url(path), callbacks=callbacks, azurite=azurite, fmt=fmt, **extra)
    state, logs = run_job(backend, image, env)

    event = terminal(callbacks, logs)
    assert event["state"] == "succeeded", (event, logs)
    assert state == ContainerState.SUCCEEDED
    blob_info, media = event["result"]["blob"], event["result"]["media"]
    assert blob_info["name"].startswith(f"{jid}/") and blob_info["name"].endswith(f".{ext}")
    data = staged_media(blob_service, jid).download_blob().readall()  # published from there by the app
    assert sha256_of(data) == blob_info["sha256"] and len(data) == blob_info["sizeBytes"]
    assert probe_kinds(data, tmp_path) == kinds
    assert media["audioCodec"] == audio_codec
    if fmt == "video":
        assert (media["width"], media["height"], media["videoCodec"]) == (320, 240, "h264")


def test_a_missing_page_fails_the_job_with_http_error(
    image: str,
    backend: PodmanBackend,
    media_server: MediaServer,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    blob_service: BlobServiceClient,
) -> None:
    jid = uuid.uuid4().hex
    env = worker_env(job_id=jid, url=media_server.url("status/404"), callbacks=callbacks, azurite=azurite)
    state, logs = run_job(backend, image, env)

    event = terminal(callbacks, logs)
    assert event["state"] == "failed" and event["error"]["code"] == "http_error", (event, logs)
    assert state == ContainerState.FAILED
    stored = blob_service.get_container_client(STAGING).list_blobs(name_starts_with=jid)
    assert [b.name for b in stored if not is_result_record(jid, b.name)] == []


def run_in_image(image: str, *command: str, network: str | None = None) -> subprocess.CompletedProcess[str]:
    return podman(
        "run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
        *([f"--network={network}"] if network else []),
        "--entrypoint", json.dumps(list(command)), image,
    )


def test_the_images_ffmpeg_has_what_the_worker_needs_and_no_network(image: str) -> None:
    encoders = run_in_image(image, "ffmpeg", "-hide_banner", "-encoders")
    protocols = run_in_image(image, "ffmpeg", "-hide_banner", "-protocols")
    bsfs = run_in_image(image, "ffmpeg", "-hide_banner", "-bsfs")
    assert encoders.returncode == protocols.returncode == bsfs.returncode == 0, encoders.stderr
    assert "libmp3lame" in encoders.stdout and " aac " in encoders.stdout
    names = set(protocols.stdout.split())
    assert {"file", "pipe"} <= names
    assert not names & {"http", "https", "tcp", "tls", "udp", "rtmp", "hls"}  # yt-dlp's guard is the only way out
    # yt-dlp's FixupM3u8 and merge paths use these.
    assert {"aac_adtstoasc", "setts"} <= set(bsfs.stdout.split())


SOLVE_CHALLENGE = (Path(__file__).parent / "solve_challenge.py").read_text()


def test_yt_dlp_in_the_image_solves_youtube_challenges_with_quickjs_offline(image: str) -> None:
    solved = run_in_image(image, "python", "-c", SOLVE_CHALLENGE, network="none")
    assert solved.returncode == 0, solved.stderr
    report = json.loads(solved.stdout)
    runtime = report["runtime"]
    assert report["js_runtimes"] == {"quickjs": {"path": runtime["path"]}}
    assert report["available"] == ["QuickJS"]  # the only runtime yt-dlp finds: no Deno, Node or Bun
    assert runtime["name"] == "quickjs" and runtime["supported"], runtime
    assert runtime["version"] >= runtime["recommended"], runtime  # else yt-dlp warns: "very slowly"
    assert report["solutions"] == {"n": {"abcdefgh": "hgfedcba"}, "sig": {"0123456789": "23456789"}}


def test_the_images_quickjs_gives_a_script_no_files_processes_or_modules(image: str) -> None:
    probe = (
        "console.log(typeof std, typeof os, typeof __loadScript, typeof print);"
        "import('os').then(() => console.log('os imported'), e => console.log('no os:', e.message));"
        "import('/etc/passwd').then(() => console.log('file imported'), e => console.log('no file:', e.message));"
    )
    ran = run_in_image(image, "qjs", "-e", probe, network="none")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        "undefined undefined undefined function",
        "no os: could not load module 'os'",
        "no file: could not load module '/etc/passwd'",
    ]


def test_the_image_has_no_shell_and_no_package_manager_but_says_what_it_holds(image: str) -> None:
    for program in ("sh", "bash", "apt-get", "dpkg", "perl"):
        assert run_in_image(image, program, "--version").returncode != 0, program
    status = run_in_image(image, "python", "-c", "print(open('/var/lib/dpkg/status').read())")
    packages = {line.split(": ", 1)[1] for line in status.stdout.splitlines() if line.startswith("Package: ")}
    # What scanners read: the interpreter's packages and the libraries it loads.
    assert {"python3.11-minimal", "libpython3.11-stdlib", "libc6", "libssl3", "ca-certificates"} <= packages
