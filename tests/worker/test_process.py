"""`python -m worker` as the container runs it: a real process, its exit code and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from tests.support.services import AZURITE_KEY, REPO, Azurite
from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import TOKEN, sha256_of, worker_env
from tests.worker.media_server import MediaServer
from videojob import container_env as E


def start_worker(env: dict[str, str], tmp: Path) -> subprocess.Popen[bytes]:
    tmp.mkdir(exist_ok=True)
    full = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp), "PYTHONPATH": str(REPO), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "worker"], cwd=REPO, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_the_worker_process_downloads_uploads_reports_and_exits_0(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, blob_service: BlobServiceClient,
    tmp_path: Path,
) -> None:  # fmt: skip
    env = worker_env(
        job_id=uuid.uuid4().hex, url=media_server.url("dash/manifest.mpd"), callbacks=callbacks, azurite=azurite
    )
    proc = start_worker(env, tmp_path / "tmp")
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 0, err.decode()
    last = callbacks.accepted()[-1]
    assert last["state"] == "succeeded"
    data = blob_service.get_blob_client("downloads", last["result"]["blob"]["name"]).download_blob().readall()
    assert sha256_of(data) == last["result"]["blob"]["sha256"]
    logs = (out + err).decode()
    assert TOKEN not in logs and AZURITE_KEY not in logs, "a secret reached the logs"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_sigterm_reports_cancelled_removes_its_files_and_exits(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, tmp_path: Path
) -> None:
    env = worker_env(
        job_id=uuid.uuid4().hex, url=media_server.url("slow/clip.mp4"), callbacks=callbacks, azurite=azurite
    )
    proc = start_worker(env, tmp_path / "tmp")
    try:
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
