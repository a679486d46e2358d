"""Podman for the tests that run containers: skip without podman, build the worker image once."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from videojob.domain.settings import PODMAN_DEFAULT_IMAGE

REPO = Path(__file__).resolve().parents[2]
PODMAN = shutil.which("podman")
PODMAN_CMD: tuple[str, ...] = ("podman", "--runtime", "runc")

requires_podman = pytest.mark.skipif(
    PODMAN is None, reason="podman is not installed (`.ci/run` installs podman, runc and mmdebstrap)"
)


def worker_image() -> str:
    """`make image`'s tag (`WORKER_IMAGE_TAG`, as for make), built first if this source tree is not in
    it yet (cached: a hash stamp)."""
    tag = os.environ.get("WORKER_IMAGE_TAG") or PODMAN_DEFAULT_IMAGE
    build = subprocess.run(
        ["make", "--no-print-directory", "image-if-changed", f"WORKER_IMAGE_TAG={tag}"],
        cwd=REPO, capture_output=True, text=True, timeout=3600,
    )
    if build.returncode != 0:
        pytest.fail(f"make image-if-changed failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}")
    return tag


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PODMAN_CMD, *args], capture_output=True, text=True, timeout=timeout, check=False)


def container_exists(name: str) -> bool:
    return podman("container", "exists", name).returncode == 0


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not reached after {timeout:.0f}s")
        time.sleep(0.2)
