"""YouTube needs a JavaScript runtime: the worker hands yt-dlp QuickJS (`qjs`), found on PATH.

Here a stand-in `qjs` answers yt-dlp's version probe the way QuickJS does (`--help`, exit 1), so
the worker's wiring and yt-dlp's acceptance of it are tested without the binary; the real one,
built into the image, solves challenges offline in tests/image/test_worker_image.py.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
import yt_dlp
import yt_dlp_ejs
from yt_dlp.extractor.youtube.jsc._builtin import vendor

from worker.downloader import DownloadTuning, MediaRequest, YtDlpDownloader, ydl_params

# What QuickJS 2025-04-26's `qjs --help` prints first (the version the image builds).
QJS_HELP = "QuickJS version 2025-04-26\nusage: qjs [options] [file [args]]\n"


@pytest.fixture
def qjs_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    qjs = bin_dir / "qjs"
    qjs.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write({QJS_HELP!r})\nsys.exit(1)\n")
    qjs.chmod(qjs.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return qjs


def worker_params(tmp_path: Path) -> dict:
    downloader = YtDlpDownloader()
    return ydl_params(
        MediaRequest(url="https://www.youtube.com/watch?v=dQw4w9WgXcQ", format="video"),
        tmp_path,
        DownloadTuning(),
        js_runtime_path=downloader.js_runtime_path,
    )


def test_the_worker_hands_yt_dlp_the_qjs_on_path(qjs_on_path: Path, tmp_path: Path) -> None:
    params = worker_params(tmp_path)
    assert params["js_runtimes"] == {"quickjs": {"path": str(qjs_on_path)}}


def test_yt_dlp_detects_that_runtime_as_a_supported_quickjs(qjs_on_path: Path, tmp_path: Path) -> None:
    params = worker_params(tmp_path)
    with yt_dlp.YoutubeDL(params) as ydl:
        assert ydl.params["js_runtimes"] == params["js_runtimes"]  # not dropped as unsupported
        info = ydl._js_runtimes["quickjs"].info
        assert info is not None and info.supported, info
        assert (info.name, info.path, info.version_tuple) == ("quickjs", str(qjs_on_path), (2025, 4, 26))
        assert not ydl.params["remote_components"]  # the solver comes from the yt-dlp-ejs package


def test_without_a_qjs_yt_dlp_is_still_told_quickjs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert worker_params(tmp_path)["js_runtimes"] == {"quickjs": {}}


def test_the_solver_package_is_the_version_this_yt_dlp_expects() -> None:
    assert yt_dlp_ejs.version.split(".")[:2] == vendor.VERSION.split(".")[:2]
