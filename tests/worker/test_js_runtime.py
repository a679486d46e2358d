"""YouTube needs a JavaScript runtime: the worker hands yt-dlp a Deno that runs here (offline)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yt_dlp
import yt_dlp_ejs
from yt_dlp.extractor.youtube.jsc._builtin import vendor
from yt_dlp.utils._jsruntime import DenoJsRuntime

from worker.downloader import DownloadTuning, MediaRequest, YtDlpDownloader, ydl_params


def worker_params(tmp_path: Path) -> dict:
    downloader = YtDlpDownloader()
    return ydl_params(
        MediaRequest(url="https://www.youtube.com/watch?v=dQw4w9WgXcQ", format="video"),
        tmp_path,
        DownloadTuning(),
        deno_path=downloader.deno_path,
    )


def test_the_worker_names_a_deno_that_runs_javascript(tmp_path: Path) -> None:
    params = worker_params(tmp_path)
    assert list(params["js_runtimes"]) == ["deno"]
    deno = params["js_runtimes"]["deno"]["path"]
    assert deno and Path(deno).is_file()
    out = subprocess.run([deno, "eval", "console.log(6 * 7)"], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "42"


def test_yt_dlp_accepts_that_runtime_and_fetches_nothing(tmp_path: Path) -> None:
    params = worker_params(tmp_path)
    info = DenoJsRuntime(path=params["js_runtimes"]["deno"]["path"]).info
    assert info is not None and info.supported, info
    with yt_dlp.YoutubeDL(params) as ydl:
        assert ydl.params["js_runtimes"] == params["js_runtimes"]
        assert not ydl.params["remote_components"]  # the solver comes from the yt-dlp-ejs package


def test_the_solver_package_is_the_version_this_yt_dlp_expects() -> None:
    assert yt_dlp_ejs.version.split(".")[:2] == vendor.VERSION.split(".")[:2]
