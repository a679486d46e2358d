"""`python -m worker` with one change: the downloader allocates memory instead of downloading.

`HOG_WHERE=job`: the job process itself allocates until an allocation fails (its `RLIMIT_DATA`);
`HOG_WHERE=children`: three child processes (as ffmpeg would be) each fill 40 % of the
container's memory, which no per-process limit stops; only the worker's watchdog sees the sum.
Everything else (env, the upload process, the memory limit, the reporter, the exit) is the worker's.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import worker.runner

MiB = 1024 * 1024
FILL_AND_WAIT = "import sys, time; b = bytearray(int(sys.argv[1])); b[::4096] = b'x' * len(b[::4096]); time.sleep(120)"


class Hog:
    def __init__(self, *args: Any) -> None:
        pass

    def download(self, request: Any, workdir: Path, on_progress: Any, on_phase: Any) -> Any:
        status = {"status": "downloading", "downloaded_bytes": 0}
        if os.environ.get("HOG_WHERE") == "children":
            size = int(os.environ["CONTAINER_MEMORY_MB"]) * MiB * 4 // 10
            children = [subprocess.Popen([sys.executable, "-c", FILL_AND_WAIT, str(size)]) for _ in range(3)]
            try:
                while True:  # a download that checks in, as yt-dlp's hooks do
                    on_progress(status)
                    time.sleep(0.2)
            finally:
                for child in children:
                    child.kill()
        kept = []
        while True:
            on_progress(status)
            kept.append(bytearray(16 * MiB))


worker.runner.YtDlpDownloader = Hog  # type: ignore[misc, assignment]
sys.argv = ["worker"]
runpy.run_module("worker", run_name="__main__", alter_sys=True)
