"""A worker that runs out of memory says so itself (issue 18): `out_of_memory` naming
`WORKER_MEMORY_GB`, within seconds, whether its own allocation fails under its limit or its
process tree outgrows the container. A real worker process (`memory_hog_worker`: `python -m
worker` whose downloader allocates) against a real callback receiver and Azurite."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.services import REPO, Azurite
from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import worker_env
from videojob.contract import container_env as E
from videojob.contract.wire import ErrorCode, JobError
from videojob.domain.orchestration import is_retryable

CONTAINER_MEMORY_MB = 400


def run_hog(where: str, env: dict[str, str], tmp: Path) -> tuple[int, float, str]:
    tmp.mkdir(exist_ok=True)
    full = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp), "PYTHONPATH": str(REPO), "HOG_WHERE": where, **env}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "worker" / "memory_hog_worker.py")],
        cwd=REPO, env=full, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    return done.returncode, time.monotonic() - start, done.stdout + done.stderr


@pytest.mark.parametrize("where", ["job", "children"])
def test_a_worker_that_allocates_past_its_limit_fails_the_job_out_of_memory_within_seconds(
    where: str, callbacks: CallbackReceiver, azurite: Azurite, tmp_path: Path
) -> None:
    jid = uuid.uuid4().hex
    env = worker_env(job_id=jid, url="http://127.0.0.1:9/video.mp4", callbacks=callbacks, azurite=azurite)
    env[E.CONTAINER_MEMORY_MB] = str(CONTAINER_MEMORY_MB)

    code, seconds, output = run_hog(where, env, tmp_path / "tmp")

    events = [e for e in callbacks.accepted() if e["state"] in ("succeeded", "failed")]
    assert events, output[-3000:]
    error = events[-1]["error"]
    assert error["code"] == "out_of_memory", (error, output[-3000:])
    assert "WORKER_MEMORY_GB" in error["message"]
    assert code == 1
    assert seconds < 60, f"took {seconds:.0f} s"
    print(f"{where}: out_of_memory reported after {seconds:.1f} s (process start included)")


def test_out_of_memory_from_the_worker_is_not_retried() -> None:
    # A worker's word on retrying is not taken for this code: a container of the same size fails alike.
    assert not is_retryable(JobError(ErrorCode.OUT_OF_MEMORY, "ran out", retryable=True))
    assert not is_retryable(JobError(ErrorCode.OUT_OF_MEMORY, "ran out", retryable=True), retry_bot_check=True)
