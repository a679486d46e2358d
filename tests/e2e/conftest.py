"""The local stack for the end-to-end tests: Azurite, loopback media servers and a devhost.

Short settings keep the suite fast: 5 s heartbeat window, 1 s progress interval, the minimum
60 s deadline, two attempts per job 2 s apart, and a sweep every 3 seconds. The job that must hit
its deadline is submitted when the devhost starts (before the first test), so its minute runs
while the other scenarios do.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost import media, stack
from tests.e2e.harness import Job, LocalStack
from tests.support.services import Azurite

HEARTBEAT_SECONDS = 5
DEADLINE_SECONDS = 60
SLOW_BYTES_PER_SECOND = 32 * 1024
PACED_BYTES_PER_SECOND = 1024 * 1024
MULTI_SECONDS = (2, 3, 4, 5, 6)
MAX_PARALLEL_JOBS = 3
MAX_ATTEMPTS = 2
RETRY_BACKOFF_SECONDS = 2
FAKE_WORKER = Path(__file__).with_name("fake_worker.py")


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    media.make_clip(root / "sample.mp4", seconds=4)
    # About 4 MB: the worker reads 1 MiB blocks, so progress shows between blocks.
    media.make_clip(root / "big.mp4", seconds=5, size="1280x720", video_bitrate="6M")
    for seconds in MULTI_SECONDS:
        media.make_clip(root / f"clip-{seconds}s.mp4", seconds=seconds, size="320x240")
    return root


@pytest.fixture(scope="session")
def fast_media(clips: Path) -> Iterator[media.MediaServer]:
    with media.serve_directory(clips) as server:
        yield server


@pytest.fixture(scope="session")
def slow_media(clips: Path) -> Iterator[media.MediaServer]:
    """Slow enough (about 4 s for the sample) to act while the worker is downloading."""
    with media.serve_directory(clips, SLOW_BYTES_PER_SECOND) as server:
        yield server


@pytest.fixture(scope="session")
def paced_media(clips: Path) -> Iterator[media.MediaServer]:
    """About 1 MiB/s: a few seconds for big.mp4, with progress reports in between."""
    with media.serve_directory(clips, PACED_BYTES_PER_SECOND) as server:
        yield server


@pytest.fixture(scope="session")
def local(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, fast_media: media.MediaServer
          ) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("devhost")
    env = stack.devhost_env(
        azurite,
        {
            "ALLOWED_HOSTS": "127.0.0.1",
            "CALLBACK_SIGNING_KEY": secrets.token_urlsafe(48),
            # Completion webhooks (signed with this key) and share links (account-key SAS on Azurite).
            "NOTIFY_SIGNING_KEY": secrets.token_urlsafe(48),
            "SHARE_LINK_HOURS": "1",
            "HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_SECONDS),
            "JOB_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
            "PROGRESS_INTERVAL_SECONDS": "1",
            "SWEEP_SCHEDULE": "*/3 * * * * *",
            "MAX_PARALLEL_JOBS": str(MAX_PARALLEL_JOBS),
            "JOB_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "JOB_RETRY_BACKOFF_SECONDS": str(RETRY_BACKOFF_SECONDS),
            "DEVHOST_WORKER_COMMAND": f"{sys.executable} {FAKE_WORKER}",
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


@pytest.fixture(scope="session", autouse=True)
def stuck_job(local: LocalStack, fast_media: media.MediaServer) -> Job:
    """A job whose worker never calls back and never exits (see fake_worker.py). Autouse: it is
    submitted before the first test, so its deadline minute overlaps every other scenario."""
    return local.submit(fast_media.url("hang/never.mp4"))
