"""Worker throughput and memory: `python -m bench.worker_bench` (run by `make bench`).

On a generated MP4 of at least 256 MiB served on loopback, into Azurite, side by side:
- the worker (`python -m worker`, a real process) end to end: download, ffprobe, upload with sha256;
- a baseline: a plain HTTP download to disk plus `upload_blob` of the same bytes (max_concurrency 4);
- their ratio, and the worker's peak RSS for this file and for one 4x smaller (it must not grow).
Each side runs `--runs` times and the fastest run counts (the machine is shared and noisy).
The last line is `bench: ratio=<worker/baseline> rss_small_mb=<n> rss_large_mb=<n>`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from tests.support.services import REPO, Azurite, run_azurite
from tests.worker import media
from tests.worker.callback_receiver import CallbackReceiver, run_callback_receiver
from tests.worker.media_server import serve_media
from videojob import container_env as E

MiB = 1024 * 1024
LARGE_MIN_BYTES = 256 * MiB
CONTAINER = "bench"


@dataclass(frozen=True)
class WorkerRun:
    seconds: float
    peak_rss_mb: float
    exit_code: int


def prepare_media(root: Path) -> tuple[Path, Path]:
    """`large.mp4` (>= 256 MiB) and `small.mp4` (about a quarter), cached under `.bench/`."""
    root.mkdir(parents=True, exist_ok=True)
    large, small = root / "large.mp4", root / "small.mp4"
    if not (large.exists() and small.exists()) or large.stat().st_size < LARGE_MIN_BYTES:
        clip = media.make_noisy(root / "clip.mp4", seconds=2)
        media.make_large(large, clip, LARGE_MIN_BYTES)
        media.make_large(small, clip, LARGE_MIN_BYTES // 4)
        clip.unlink()
    return large, small


def run_worker(url: str, azurite: Azurite, callbacks: CallbackReceiver) -> WorkerRun:
    job_id = uuid.uuid4().hex
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO),
        E.JOB_ID: job_id,
        E.JOB_URL: url,
        E.JOB_FORMAT: "video",
        E.JOB_MAX_BYTES: str(4 * 1024 * MiB),
        E.JOB_TIMEOUT_SECONDS: "600",
        E.OUTPUT_CONTAINER: CONTAINER,
        E.OUTPUT_CONNECTION_STRING: azurite.connection_string,
        E.CALLBACK_URL: callbacks.url(job_id),
        E.CALLBACK_TOKEN: "bench-token",
        E.ALLOWED_HOSTS: "127.0.0.1",
        E.ALLOW_PRIVATE_ADDRESSES: "true",
        E.PROGRESS_INTERVAL_SECONDS: "20",
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    stderr = proc.stderr.read() if proc.stderr else b""  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stderr.write(stderr.decode("utf-8", "replace")[-3000:])
    # ru_maxrss (KiB on Linux): the largest of the worker and the ffprobe it waited for.
    return WorkerRun(seconds=seconds, peak_rss_mb=usage.ru_maxrss / 1024, exit_code=proc.returncode)


def run_baseline(url: str, service: BlobServiceClient, scratch: Path) -> float:
    started = time.perf_counter()
    target = scratch / "baseline.mp4"
    with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:  # noqa: S310 - loopback
        shutil.copyfileobj(response, out, 1 * MiB)
    with target.open("rb") as data:
        service.get_blob_client(CONTAINER, f"baseline/{uuid.uuid4().hex}.mp4").upload_blob(
            data, overwrite=True, max_concurrency=4
        )
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def measure(runs: int, media_root: Path) -> None:
    large, small = prepare_media(media_root)
    print(f"media: large {large.stat().st_size / MiB:.0f} MiB, small {small.stat().st_size / MiB:.0f} MiB", flush=True)
    with run_azurite() as azurite, serve_media(media_root) as server, run_callback_receiver() as callbacks:
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        service.create_container(CONTAINER)
        baseline_times, baseline_small, worker_runs, small_runs = [], [], [], []
        with tempfile.TemporaryDirectory() as scratch:
            for i in range(runs):
                baseline_times.append(run_baseline(server.url("large.mp4"), service, Path(scratch)))
                baseline_small.append(run_baseline(server.url("small.mp4"), service, Path(scratch)))
                worker_runs.append(run_worker(server.url("large.mp4"), azurite, callbacks))
                small_runs.append(run_worker(server.url("small.mp4"), azurite, callbacks))
                print(
                    f"run {i + 1}: baseline {baseline_times[-1]:.2f}s, worker {worker_runs[-1].seconds:.2f}s "
                    f"(rss {worker_runs[-1].peak_rss_mb:.0f} MB), worker small {small_runs[-1].seconds:.2f}s "
                    f"(rss {small_runs[-1].peak_rss_mb:.0f} MB)",
                    flush=True,
                )
        _report(large, baseline_times, baseline_small, worker_runs, small_runs)


def _report(
    large: Path,
    baseline_times: list[float],
    baseline_small: list[float],
    worker_runs: list[WorkerRun],
    small_runs: list[WorkerRun],
) -> None:
    failed = [r for r in worker_runs + small_runs if r.exit_code != 0]
    if failed:
        raise SystemExit(f"{len(failed)} worker run(s) failed")
    size_mib = large.stat().st_size / MiB
    small_mib = large.with_name("small.mp4").stat().st_size / MiB
    base, work = min(baseline_times), min(r.seconds for r in worker_runs)
    rss_large = max(r.peak_rss_mb for r in worker_runs)
    rss_small = max(r.peak_rss_mb for r in small_runs)
    ratio = work / base
    base_small, work_small = min(baseline_small), min(r.seconds for r in small_runs)
    # What each extra MiB costs, without the fixed start-up (interpreter, imports, extractor lookup).
    marginal = (work - work_small) / max(base - base_small, 1e-6)
    print()
    print(f"{'':28}{'baseline':>12}{'worker':>12}")
    print(f"{'wall time (s), best run':28}{base:>12.2f}{work:>12.2f}")
    print(f"{'throughput (MiB/s)':28}{size_mib / base:>12.1f}{size_mib / work:>12.1f}")
    print(f"{'small file wall time (s)':28}{base_small:>12.2f}{work_small:>12.2f}")
    print(f"{'ratio worker/baseline':28}{'':>12}{ratio:>12.2f}   (target <= 1.15)")
    print(f"{'marginal ratio (large-small)':28}{'':>12}{marginal:>12.2f}   (per-byte cost, start-up excluded)")
    print(f"{'worker peak RSS (MB)':28}{'':>12}{rss_large:>12.0f}   large ({size_mib:.0f} MiB)")
    print(f"{'':28}{'':>12}{rss_small:>12.0f}   small ({small_mib:.0f} MiB)  (target <= 200, flat)")
    print(f"bench: ratio={ratio:.2f} rss_small_mb={rss_small:.0f} rss_large_mb={rss_large:.0f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="runs per side; the fastest counts")
    parser.add_argument("--media", type=Path, default=REPO / ".bench" / "media", help="where generated media is kept")
    args = parser.parse_args(argv)
    measure(args.runs, args.media)


if __name__ == "__main__":
    main()
