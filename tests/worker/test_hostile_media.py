"""What a hostile site can send instead of media: files that make ffmpeg read local files, and
pages and manifests that grow the worker's memory without bound. Real yt-dlp, ffmpeg, ffprobe
and Azurite; the memory cases run `python -m worker` as the container does."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from tests.support.services import REPO, Azurite
from tests.worker import media
from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import FAST, STAGING, worker_env
from tests.worker.media_server import MediaServer
from videojob.contract import container_env as E
from videojob.contract.staging import is_result_record
from worker.runner import main

MiB = 1024 * 1024
CONTAINER_MEMORY_MB = 1536
SAFETY_LIMIT_BYTES = 3 * 1024 * MiB
"""The harness's own ceiling on the worker's data segment, so that code without the fix fails
here instead of taking the machine down."""


def blobs_of(blob_service: BlobServiceClient, job_id: str) -> dict[str, bytes]:
    downloads = blob_service.get_container_client(STAGING)
    if not downloads.exists():
        return {}
    return {
        b.name: downloads.get_blob_client(b.name).download_blob().readall()
        for b in downloads.list_blobs(name_starts_with=job_id)
    }


def media_only(job_id: str, blobs: dict[str, bytes]) -> dict[str, bytes]:
    """What is left once the job's result record (written on failure too) is set aside."""
    return {name: data for name, data in blobs.items() if not is_result_record(job_id, name)}


def last_event(callbacks: CallbackReceiver) -> dict[str, Any]:
    events = callbacks.accepted()
    assert events, "no event reached the callback"
    return events[-1]


# -- local files named inside "media" -------------------------------------------------------------


@pytest.fixture
def secret(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, str]:
    """A marker and local media files holding it (TS for HLS; MP4 and M4A for DASH), outside the served tree."""
    marker = f"SECRET-{uuid.uuid4().hex}"
    where = tmp_path_factory.mktemp("secret")
    mp4 = media.make_secret(where / "secret.mp4", marker)
    return media.make_secret(where / "secret.ts", marker), mp4, media.make_audio_only(mp4, where / "a.m4a"), marker


@pytest.mark.parametrize(
    ("served_as", "kind", "fmt"),
    [
        ("clip.mp4", "hls", "video"),
        ("clip.mkv", "hls", "video"),
        ("clip.webm", "hls", "video"),
        ("clip.mkv", "dash", "video"),
        ("clip.mp4", "hls", "audio"),
        ("clip.mp4", "dash", "audio"),
    ],
    ids=["hls-in-mp4", "hls-in-mkv", "hls-in-webm", "dash-in-mkv", "hls-in-mp4-audio", "dash-in-mp4-audio"],
)
def test_a_playlist_posing_as_media_never_brings_a_local_file_into_a_blob(
    served_as: str,
    kind: str,
    fmt: str,
    secret: tuple[Path, Path, Path, str],
    media_server: MediaServer,
    media_root: Path,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    workspace: Path,
    tmp_path: Path,
) -> None:
    ts, mp4, m4a, marker = secret
    folder = media_root / f"hostile-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    if kind == "hls":
        media.make_local_file_hls(folder / served_as, ts)
    else:
        media.make_local_file_dash(folder / served_as, mp4, m4a)
    jid = uuid.uuid4().hex
    url = media_server.url(f"{folder.name}/{served_as}")

    code = main(worker_env(job_id=jid, url=url, callbacks=callbacks, azurite=azurite, fmt=fmt), tuning=FAST)

    blobs = blobs_of(blob_service, jid)
    assert not any(media.carries_secret(data, marker, tmp_path / "blob") for data in blobs.values()), (
        "a local file's media reached a blob"
    )
    assert media_only(jid, blobs) == {}, "a blob was committed for a file that is not media"
    event = last_event(callbacks)
    assert (event["state"], event.get("error", {}).get("code")) == ("failed", "invalid_media"), event
    assert code != 0
    assert list(workspace.iterdir()) == []


# -- memory: pages and manifests that never end or explode when parsed ----------------------------


@pytest.fixture(scope="module")
def bombs(media_root: Path) -> Path:
    folder = media_root / "bombs"
    folder.mkdir(exist_ok=True)
    media.make_huge_duration_dash(folder / "huge.mpd")
    media.make_many_segment_hls(folder / "many.m3u8")
    return folder


def run_worker_process(env: dict[str, str], tmp: Path) -> tuple[int, int, str]:
    """`python -m worker` to its end: (exit code, its peak RSS in KiB, its output)."""
    tmp.mkdir(exist_ok=True)
    log = tmp.parent / f"{tmp.name}.log"
    full = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp), "PYTHONPATH": str(REPO), **env}

    def safety_limit() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (SAFETY_LIMIT_BYTES, SAFETY_LIMIT_BYTES))

    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker"], cwd=REPO, env=full, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=safety_limit,  # noqa: PLW1509 - the test process forks nothing else meanwhile
        )  # fmt: skip
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            proc.returncode = 0  # reaped above: keep Popen from waiting again
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss, log.read_text(errors="replace")


@pytest.mark.parametrize(
    "path",
    ["endless/page.html", "gzipbomb/page.html", "bombs/huge.mpd", "bombs/many.m3u8"],
    ids=["endless-page", "gzip-bomb", "huge-duration-dash", "million-segment-hls"],
)
def test_a_page_or_manifest_that_would_exhaust_memory_ends_as_too_large(
    path: str,
    bombs: Path,
    media_server: MediaServer,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    tmp_path: Path,
) -> None:
    jid = uuid.uuid4().hex
    env = worker_env(job_id=jid, url=media_server.url(path), callbacks=callbacks, azurite=azurite)
    env[E.CONTAINER_MEMORY_MB] = str(CONTAINER_MEMORY_MB)

    code, peak_kib, output = run_worker_process(env, tmp_path / "tmp")

    reported = re.search(r"peak RSS: job process (\d+) KiB", output)
    print(f"{path}: peak RSS {peak_kib} KiB (job process {reported.group(1) if reported else '?'} KiB)")
    event = last_event(callbacks)
    assert (event["state"], event.get("error", {}).get("code")) == ("failed", "too_large"), (event, output[-2000:])
    assert code == 1, output[-2000:]
    # Generous: the container's memory, far above what the fix needs (see the report's numbers).
    assert peak_kib * 1024 < CONTAINER_MEMORY_MB * MiB, f"peak RSS {peak_kib} KiB"
    assert media_only(jid, blobs_of(blob_service, jid)) == {}
    assert list((tmp_path / "tmp").iterdir()) == [], "partial files were left behind"
