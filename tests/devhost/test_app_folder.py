"""Which app the devhost serves: the one in the folder it is given, never another module that
happens to be importable under the same name (the Functions host finds no functions there)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devhost.stack import REPO, free_port


def run_devhost(cwd, *args: str) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    env = dict(os.environ) | {"PYTHONPATH": str(REPO)}  # the project importable, as `make serve` has it
    try:
        return subprocess.run(
            [sys.executable, "-m", "devhost", "--port", str(free_port()), "--state-dir", str(cwd / ".state"), *args],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the devhost started serving instead of refusing the folder")


@pytest.mark.parametrize("how", ["current folder", "--app-dir"])
def test_a_folder_without_function_app_is_an_error_not_the_projects_app(tmp_path, how: str):
    folder = tmp_path / "not-an-app"
    folder.mkdir()
    (folder / "host.json").write_text('{"version": "2.0"}')

    if how == "current folder":
        done = run_devhost(folder)
    else:
        done = run_devhost(tmp_path, "--app-dir", str(folder))

    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{folder} has no function_app.py" in done.stderr
    assert "video" not in done.stderr.lower()  # nothing of the project's own app was loaded
