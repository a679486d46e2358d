"""The podman backend mounts the spec's secret files (the operator's cookies) read-only, readable
by the image's user, never as env values or on a command line (issue 14)."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.podman import requires_podman, wait_for, worker_image
from videojob.adapters.containers.podman import PodmanBackend, create_arguments
from videojob.contract.wire import DownloadRequest
from videojob.domain.container_port import ContainerState
from videojob.domain.container_spec import SECRETS_MOUNT_PATH, build_container_spec
from videojob.domain.settings import load_settings

COOKIES = "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t4102444800\tSID\tpodman-cookie-secret-31"
READ_AND_TRY_TO_WRITE = [
    "python3", "-c",
    "import hashlib, os\n"
    "path = os.environ['COOKIES_FILE']\n"
    "print(hashlib.sha256(open(path, 'rb').read()).hexdigest())\n"
    "try:\n    open(path, 'a').write('x')\n    print('WRITABLE')\n"
    "except OSError:\n    print('READ-ONLY')\n",
]  # the worker image has python3 and no shell


def spec():
    settings = load_settings(
        environ={
            "CONTAINER_BACKEND": "podman",
            "OUTPUT_CONNECTION_STRING": "UseDevelopmentStorage=true",
            "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
            "CALLBACK_SIGNING_KEY": "k" * 40,
            "YOUTUBE_COOKIES": COOKIES,
        }
    )
    now = datetime.now(UTC)
    job = f"job-{uuid.uuid4().hex[:12]}"
    return build_container_spec(DownloadRequest(url="https://youtu.be/x"), settings, job, now, now + timedelta(hours=1))


def test_the_secret_directory_is_mounted_read_only_and_named_only_by_path():
    s = spec()
    args = create_arguments(s, scope="/state", secrets_dir="/state/x.secrets")
    assert args[args.index("--volume") + 1] == f"/state/x.secrets:{SECRETS_MOUNT_PATH}:ro,U"
    assert "podman-cookie-secret-31" not in " ".join(args)
    assert s.environment()["COOKIES_FILE"] == f"{SECRETS_MOUNT_PATH}/cookies.txt"
    assert "--volume" not in create_arguments(replace(s, secret_files=()), scope="/state", secrets_dir=None)


@requires_podman
def test_the_worker_reads_the_cookies_file_and_cannot_write_it(tmp_path: Path) -> None:
    argv: list[list[str]] = []

    def runner(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        argv.append(list(args))
        return subprocess.run(args, **kwargs)  # noqa: PLW1510 - check is passed by the backend

    backend = PodmanBackend(tmp_path / "podman", grace_seconds=2, entrypoint=READ_AND_TRY_TO_WRITE, runner=runner)
    s = replace(spec(), image=worker_image())
    try:
        backend.create(s)
        wait_for(lambda: not backend.state(s.name).is_active, 120, f"{s.name} ends")
        assert backend.state(s.name).state == ContainerState.SUCCEEDED
        out = backend.logs(s.name, tail=5)
        assert hashlib.sha256(COOKIES.encode()).hexdigest() in out and "READ-ONLY" in out, out
        assert not any("podman-cookie-secret-31" in " ".join(a) for a in argv)
        secrets = tmp_path / "podman" / f"{s.name}.secrets"
        assert (secrets / "cookies.txt").read_text() == COOKIES  # unchanged
    finally:
        backend.remove_all()
    assert not secrets.exists()
