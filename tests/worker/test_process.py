"""`python -m worker` as the container runs it: a real process, its exit code and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from tests.support.services import AZURITE_KEY, REPO, Azurite
from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import STAGING, TOKEN, sha256_of, staged_media, worker_env
from tests.worker.media_server import MediaServer
from videojob.contract import container_env as E
from videojob.contract.staging import is_result_record


def start_worker(env: dict[str, str], tmp: Path) -> subprocess.Popen[bytes]:
    tmp.mkdir(exist_ok=True)
    full = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp), "PYTHONPATH": str(REPO), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "worker"], cwd=REPO, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that is not us counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def gone(pids: list[int], within: float = 20) -> bool:
    until = time.monotonic() + within
    while any(alive(p) for p in pids) and time.monotonic() < until:
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


def upload_process_of(proc: subprocess.Popen[bytes]) -> int:
    """The worker's upload process (forked at start), once it runs; its command line holds no secret."""
    until = time.monotonic() + 30
    while time.monotonic() < until:
        children = children_of(proc.pid)
        if children:
            cmdline = Path(f"/proc/{children[0]}/cmdline").read_bytes()
            assert AZURITE_KEY.encode() not in cmdline and TOKEN.encode() not in cmdline
            return children[0]
        time.sleep(0.02)
    raise AssertionError("the worker started no upload process")


def test_the_worker_process_downloads_uploads_reports_and_exits_0(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, blob_service: BlobServiceClient,
    tmp_path: Path,
) -> None:  # fmt: skip
    jid = uuid.uuid4().hex
    env = worker_env(job_id=jid, url=media_server.url("dash/manifest.mpd"), callbacks=callbacks, azurite=azurite)
    proc = start_worker(env, tmp_path / "tmp")
    uploader = upload_process_of(proc)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 0, err.decode()
    assert gone([uploader])
    last = callbacks.accepted()[-1]
    assert last["state"] == "succeeded"
    data = staged_media(blob_service, jid).download_blob().readall()
    assert sha256_of(data) == last["result"]["blob"]["sha256"]
    logs = (out + err).decode()
    assert TOKEN not in logs and AZURITE_KEY not in logs, "a secret reached the logs"
    sas = [env[E.STAGING_MEDIA_URL].split("?", 1)[1], env[E.STAGING_RECORD_URL].split("?", 1)[1]]
    assert not any(s in logs for s in sas), "a SAS reached the logs"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_sigterm_reports_cancelled_removes_its_files_and_exits(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, tmp_path: Path
) -> None:
    env = worker_env(
        job_id=uuid.uuid4().hex, url=media_server.url("slow/clip.mp4"), callbacks=callbacks, azurite=azurite
    )
    proc = start_worker(env, tmp_path / "tmp")
    try:
        uploader = upload_process_of(proc)
        downloading = callbacks.wait_for(
            lambda rs: any(r.body.get("phase") == "downloading" and r.body["state"] == "progress" for r in rs)
        )
        assert downloading, "the download never started"
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode not in (0, None)
    last = callbacks.accepted()[-1]
    assert (last["state"], last["error"]["code"]) == ("failed", "cancelled")
    assert list((tmp_path / "tmp").iterdir()) == []
    assert gone([uploader]), "the upload process outlived the worker"


def test_a_killed_worker_takes_its_upload_process_with_it(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, tmp_path: Path
) -> None:
    env = worker_env(
        job_id=uuid.uuid4().hex, url=media_server.url("slow/clip.mp4"), callbacks=callbacks, azurite=azurite
    )
    proc = start_worker(env, tmp_path / "tmp")
    try:
        uploader = upload_process_of(proc)
        assert callbacks.wait_for(lambda rs: any(r.body["state"] == "progress" for r in rs)), "never started"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert gone([uploader]), "the upload process outlived a crashed worker"


def test_media_failing_verification_is_never_committed_by_the_upload_process(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, blob_service: BlobServiceClient,
    tmp_path: Path,
) -> None:  # fmt: skip
    jid = uuid.uuid4().hex
    env = worker_env(job_id=jid, url=media_server.url("hls-nocodecs/master.m3u8"), callbacks=callbacks, azurite=azurite)
    proc = start_worker(env, tmp_path / "tmp")
    uploader = upload_process_of(proc)
    _, err = proc.communicate(timeout=120)

    assert proc.returncode == 1, err.decode()
    last = callbacks.accepted()[-1]
    assert (last["state"], last["error"]["code"]) == ("failed", "no_audio")
    downloads = blob_service.get_container_client(STAGING)
    assert not downloads.exists() or [
        b.name for b in downloads.list_blobs(name_starts_with=jid) if not is_result_record(jid, b.name)
    ] == []
    assert list((tmp_path / "tmp").iterdir()) == []
    assert gone([uploader])


def test_a_broken_env_exits_non_zero_naming_the_variable(
    callbacks: CallbackReceiver, azurite: Azurite, tmp_path: Path
) -> None:
    env = worker_env(job_id="j", url="http://127.0.0.1/x.mp4", callbacks=callbacks, azurite=azurite)
    del env[E.JOB_URL]
    proc = start_worker(env, tmp_path / "tmp")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert E.JOB_URL in err.decode()
    assert TOKEN not in err.decode()
