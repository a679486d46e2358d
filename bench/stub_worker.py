"""The stub worker for `make load WORKER=stub` (issue 22): the real worker's runner, callback and
upload, with a downloader that copies a prepared 1-second clip instead of running yt-dlp.

So a job still goes through the whole contract the orchestration sees: it reports `started` and
progress with its `CALLBACK_TOKEN`, ffprobe verifies the file, the upload goes through its own
`STAGING_MEDIA_URL` SAS, and it reports `succeeded` with the staged blob's name, size and hash.
What it leaves out is the network download and yt-dlp's start-up (~1-2 s of CPU on this
machine), so the figures measure the queue and the orchestration, not yt-dlp.

Usage (as `DEVHOST_WORKER_COMMAND`): `python bench/stub_worker.py CLIP [SECONDS]`. The clip path
is an argument because the local backend gives a worker no variable of the parent's environment.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from worker.downloader import DownloadedMedia, MediaRequest, PhaseCallback, ProgressCallback  # noqa: E402
from worker.runner import main  # noqa: E402

STUB_SECONDS = 1.0


class CopyClip:
    """A `worker.downloader.Downloader` that copies `clip` and takes about `seconds`."""

    def __init__(self, clip: Path, seconds: float):
        self.clip, self.seconds = clip, seconds

    def download(self, request: MediaRequest, workdir: Path, on_progress: ProgressCallback,
                 on_phase: PhaseCallback) -> DownloadedMedia:
        target = workdir / "stub.mp4"
        size = self.clip.stat().st_size
        on_progress(_hook("downloading", size // 2, size))
        time.sleep(self.seconds)
        shutil.copyfile(self.clip, target)
        on_progress(_hook("finished", size, size))
        return DownloadedMedia(target, "mp4", "stub clip", 1.0, "stub", request.url)


def _hook(status: str, done: int, total: int) -> Mapping[str, Any]:
    return {"status": status, "downloaded_bytes": done, "total_bytes": total}


if __name__ == "__main__":
    clip = Path(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else STUB_SECONDS
    sys.exit(main(downloader=CopyClip(clip, seconds)))
