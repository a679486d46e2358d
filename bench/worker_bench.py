"""Worker throughput and memory: `python -m bench.worker_bench` (run by `make bench`).

On a generated MP4 of at least 256 MiB served on loopback, into Azurite, side by side:
- the worker (`python -m worker`, a real process) end to end: download, ffprobe, upload with sha256;
- the baseline: a plain HTTP download to disk plus `upload_blob` of the same bytes
  (max_concurrency 4), also as a fresh process (`bench.baseline_transfer`), measured the same
  way: spawn to exit. The same baseline in this process (no interpreter start, SDK already
  imported) is shown for reference only;
- their ratio, and the worker's peak RSS for this file and for one 4x smaller (it must not grow).
  The worker is two processes (the job and its upload process, see `worker.blob_process`):
  its RSS is the sum of both peaks, which the worker logs, or what `wait4` reports for the
  process and the children it reaped (ffmpeg, ffprobe), whichever is larger.
The sides alternate within each round (which goes first alternates too) and every figure is the
median of `--runs` rounds (best also shown): the machine is shared and noisy.
The last line is `bench: ratio=<worker/baseline> rss_small_mb=<n> rss_large_mb=<n>`, with the
ratio of the medians of the worker and the process baseline on the large file.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
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
class ProcessRun:
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


_WORKER_PEAKS = re.compile(rb"peak RSS: job process (\d+) KiB, upload process (\d+) KiB")


def peak_rss_kib(waited_kib: int, stderr: bytes) -> int:
    """`wait4`'s figure is the largest single process (itself or a child it reaped); the worker's
    job and upload processes run side by side, so their peaks (as it logs them) count together."""
    peaks = _WORKER_PEAKS.search(stderr)
    return max(waited_kib, int(peaks[1]) + int(peaks[2])) if peaks else waited_kib


def run_process(argv: Sequence[str], env: dict[str, str]) -> ProcessRun:
    """Wall time from spawn to exit, and peak RSS (see `peak_rss_kib`)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read() if proc.stderr else b""  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(stderr.decode("utf-8", "replace")[-3000:])
    return ProcessRun(seconds=seconds, peak_rss_mb=peak_rss_kib(usage.ru_maxrss, stderr) / 1024, exit_code=code)


def base_env(scratch: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "TMPDIR": str(scratch), "LANG": "C.UTF-8"}


def run_worker(url: str, azurite: Azurite, callbacks: CallbackReceiver, scratch: Path) -> ProcessRun:
    job_id = uuid.uuid4().hex
    env = {
        **base_env(scratch),
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
    return run_process([sys.executable, "-m", "worker"], env)


def run_baseline_process(url: str, azurite: Azurite, scratch: Path) -> ProcessRun:
    env = {
        **base_env(scratch),
        "BASELINE_CONNECTION_STRING": azurite.connection_string,
        "BASELINE_CONTAINER": CONTAINER,
    }
    target = scratch / f"baseline-{uuid.uuid4().hex}.mp4"
    return run_process(
        [sys.executable, "-m", "bench.baseline_transfer", url, str(target), f"baseline/{uuid.uuid4().hex}.mp4"], env
    )


def run_baseline_in_process(url: str, service: BlobServiceClient, scratch: Path) -> float:
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


def empty_container(service: BlobServiceClient) -> None:
    """In-memory Azurite keeps every blob in RAM: drop them between runs."""
    container = service.get_container_client(CONTAINER)
    for blob in container.list_blobs():
        container.delete_blob(blob.name)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Series:
    worker: list[ProcessRun]
    baseline: list[ProcessRun]

    def median(self, side: str) -> float:
        return statistics.median(r.seconds for r in getattr(self, side))

    def best(self, side: str) -> float:
        return min(r.seconds for r in getattr(self, side))


def measure(runs: int, media_root: Path) -> None:
    large, small = prepare_media(media_root)
    print(f"media: large {large.stat().st_size / MiB:.0f} MiB, small {small.stat().st_size / MiB:.0f} MiB", flush=True)
    print(f"start: {load()}", flush=True)
    with run_azurite() as azurite, serve_media(media_root) as server, run_callback_receiver() as callbacks:
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        service.create_container(CONTAINER)
        series = {"large": Series([], []), "small": Series([], [])}
        in_process: list[float] = []
        with tempfile.TemporaryDirectory() as scratch_dir:
            scratch = Path(scratch_dir)
            for i in range(runs):
                for size, path in (("large", large), ("small", small)):
                    url = server.url(path.name)
                    sides = [("worker", run_worker, (url, azurite, callbacks, scratch)),
                             ("baseline", run_baseline_process, (url, azurite, scratch))]  # fmt: skip
                    for side, run, args in sides if i % 2 == 0 else sides[::-1]:
                        getattr(series[size], side).append(run(*args))  # type: ignore[operator]
                        empty_container(service)
                in_process.append(run_baseline_in_process(server.url(large.name), service, scratch))
                empty_container(service)
                big, little = series["large"].worker[-1], series["small"].worker[-1]
                print(
                    f"run {i + 1}: large: worker {big.seconds:.2f}s (rss {big.peak_rss_mb:.0f} MB), "
                    f"baseline {series['large'].baseline[-1].seconds:.2f}s, in-process baseline {in_process[-1]:.2f}s; "
                    f"small: worker {little.seconds:.2f}s (rss {little.peak_rss_mb:.0f} MB), "
                    f"baseline {series['small'].baseline[-1].seconds:.2f}s; {load()}",
                    flush=True,
                )
    _report(large, small, series["large"], series["small"], in_process)


def _report(large: Path, small: Path, big: Series, little: Series, in_process: list[float]) -> None:
    failed = [r for s in (big, little) for r in s.worker + s.baseline if r.exit_code != 0]
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed")
    size_mib, small_mib = large.stat().st_size / MiB, small.stat().st_size / MiB
    base, work = big.median("baseline"), big.median("worker")
    base_small, work_small = little.median("baseline"), little.median("worker")
    rss_large = max(r.peak_rss_mb for r in big.worker)
    rss_small = max(r.peak_rss_mb for r in little.worker)
    ratio = work / base
    # What each extra MiB costs, without the fixed start-up (interpreter, imports, extractor lookup).
    marginal = (work - work_small) / max(base - base_small, 1e-6)
    n = len(big.worker)
    print()
    print(f"{'':34}{'baseline':>10}{'worker':>10}")
    print(f"{f'large wall time (s), median of {n}':34}{base:>10.2f}{work:>10.2f}")
    print(f"{'large wall time (s), best':34}{big.best('baseline'):>10.2f}{big.best('worker'):>10.2f}")
    print(f"{'large throughput (MiB/s), median':34}{size_mib / base:>10.1f}{size_mib / work:>10.1f}")
    print(f"{'small wall time (s), median':34}{base_small:>10.2f}{work_small:>10.2f}")
    print(f"{'in-process baseline (s), median':34}{statistics.median(in_process):>10.2f}   (no Python start-up)")
    print(f"{'baseline peak RSS (MB), large':34}{max(r.peak_rss_mb for r in big.baseline):>10.0f}")
    print(f"{'ratio worker/baseline, median':34}{'':>10}{ratio:>10.2f}   (target <= 1.15)")
    print(f"{'ratio worker/baseline, best':34}{'':>10}{big.best('worker') / big.best('baseline'):>10.2f}")
    print(f"{'marginal ratio (large - small)':34}{'':>10}{marginal:>10.2f}   (per-byte cost, start-up excluded)")
    print(f"{'worker peak RSS (MB)':34}{'':>10}{rss_large:>10.0f}   large ({size_mib:.0f} MiB)")
    print(f"{'':34}{'':>10}{rss_small:>10.0f}   small ({small_mib:.0f} MiB)  (target <= 200, flat)")
    print(f"end: {load()}")
    print(f"bench: ratio={ratio:.2f} rss_small_mb={rss_small:.0f} rss_large_mb={rss_large:.0f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds; every figure is the median over them")
    parser.add_argument("--media", type=Path, default=REPO / ".bench" / "media", help="where generated media is kept")
    args = parser.parse_args(argv)
    measure(args.runs, args.media)


if __name__ == "__main__":
    main()
