"""Worker cost and memory on one CPU: `python -m bench.worker_bench` (run by `make bench`).

Two generated MP4s (at least 256 MiB, and a quarter of that) served on loopback, into Azurite,
each through two programs, both fresh processes timed from spawn to exit:
- the worker (`python -m worker`) end to end: download, ffprobe, upload with sha256;
- the baseline (`bench.baseline_transfer`): a plain HTTP download to disk plus `upload_blob`
  (max_concurrency 4) of the same bytes: what anyone would write without the worker.

Both run pinned to one CPU (`taskset`, children included: ffmpeg, ffprobe, the upload process),
as in a 1-vCPU container; the media server and Azurite stay off it when the machine has another.
Within each round the four runs are interleaved (in reverse order every other round), and every
time is the median over `--runs` rounds: the machine is shared and noisy.
`--no-pin` lets both sides use every CPU, for comparison.

What a job costs is a fixed part (interpreter start, imports, the extractor, ffprobe, the
commit) plus a part per byte. The two sizes separate them: the slope between them is the cost
per extra byte, and its value extrapolated to zero bytes is the fixed cost. The last line is

    bench: per_byte_ratio=<r> fixed_s=<s> rss_small_mb=<n> rss_large_mb=<n>

    bench: per_byte_ratio=<r> fixed_s=<s> rss_small_mb=<n> rss_large_mb=<n> overlap_ratio=<r> ...

`overlap_ratio` (issue 24) is the worker's wall time for the large file over the raw download
plus the raw upload of the same bytes, both as the baseline measures them in the same run (its
transfers alone, without interpreter start or imports): 1.0 means the worker downloads, then
uploads; 0.5 would be perfect overlap at equal speeds. It is measured where the links, not the
CPU, are the limit, as in a container: the media server and Azurite behind a throttling proxy
(`bench.throttle_proxy`), at equal download and upload rates (`overlap_ratio`, target <= 0.65)
and with the upload the slower side (`overlap_ratio_slow_upload`; its floor is
slower / (download + upload)). `overlap_ratio_loopback` is the same figure on the unthrottled
loopback runs above, where one pinned CPU does all the work of both transfers.

`per_byte_ratio` is the worker's slope over the baseline's (1.0: each extra byte costs the worker
what it costs a raw download + upload); `fixed_s` is the worker's fixed cost in seconds (reported,
not a target: a real job first waits tens of seconds for its container). RSS is the worker's peak
for each size (it must not grow with the file): the sum of the job and upload processes' peaks,
which the worker logs, or what `wait4` reports for the process and the children it reaped,
whichever is larger.
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
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from bench.throttle_proxy import ThrottleProxy, throttle_proxy
from tests.support.services import REPO, Azurite, run_azurite
from tests.worker import media
from tests.worker.callback_receiver import CallbackReceiver, run_callback_receiver
from tests.worker.conftest import upload_env
from tests.worker.media_server import serve_media
from videojob.contract import container_env as E

MiB = 1024 * 1024
LARGE_MIN_BYTES = 256 * MiB
CONTAINER = "bench"


@dataclass(frozen=True)
class ProcessRun:
    seconds: float
    peak_rss_mb: float
    exit_code: int
    download_s: float = 0.0
    upload_s: float = 0.0
    """The baseline's raw transfers (what it prints); 0 for the worker."""


@dataclass(frozen=True)
class Link:
    """A throttled case: the rate the site sends and the rate Blob Storage takes (MiB/s)."""

    label: str
    down_mib_s: float
    up_mib_s: float


LINKS = (Link("overlap_ratio", 32, 32), Link("overlap_ratio_slow_upload", 64, 24))
_TRANSFER = re.compile(rb"transfer: download_s=([0-9.]+) upload_s=([0-9.]+)")


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


def bench_cpu(pin: bool) -> int | None:
    """The CPU both sides run on: the last one this process may use (the first is where the
    system tends to put its own work). None when `taskset` is missing: nothing is pinned."""
    if not pin or shutil.which("taskset") is None:
        return None
    return max(os.sched_getaffinity(0))


def pinned(argv: Sequence[str], cpu: int | None) -> list[str]:
    return ["taskset", "--cpu-list", str(cpu), *argv] if cpu is not None else list(argv)


def run_process(argv: Sequence[str], env: dict[str, str], cpu: int | None) -> ProcessRun:
    """Wall time from spawn to exit on `cpu`, and peak RSS (see `peak_rss_kib`)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(pinned(argv, cpu), cwd=REPO, env=env, stdout=out, stderr=subprocess.PIPE)
        stderr = proc.stderr.read() if proc.stderr else b""  # type: ignore[union-attr]
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        transfer = _TRANSFER.search(out.read())
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(stderr.decode("utf-8", "replace")[-3000:])
    return ProcessRun(
        seconds=seconds,
        peak_rss_mb=peak_rss_kib(usage.ru_maxrss, stderr) / 1024,
        exit_code=code,
        download_s=float(transfer[1]) if transfer else 0.0,
        upload_s=float(transfer[2]) if transfer else 0.0,
    )


def base_env(scratch: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "TMPDIR": str(scratch), "LANG": "C.UTF-8"}


def run_worker(
    url: str,
    azurite: Azurite,
    callbacks: CallbackReceiver,
    scratch: Path,
    cpu: int | None,
    via: ThrottleProxy | None = None,
) -> ProcessRun:
    job_id = uuid.uuid4().hex
    staging = upload_env(azurite, job_id)  # the worker's write-only staging SAS, as the app signs it
    if via is not None:
        staging = {k: via.rewrite(v, azurite.port) for k, v in staging.items()}
    env = {
        **base_env(scratch),
        E.JOB_ID: job_id,
        E.JOB_URL: url,
        E.JOB_FORMAT: "video",
        E.JOB_MAX_BYTES: str(4 * 1024 * MiB),
        E.JOB_TIMEOUT_SECONDS: "600",
        E.OUTPUT_CONTAINER: CONTAINER,
        **staging,
        E.CALLBACK_URL: callbacks.url(job_id),
        E.CALLBACK_TOKEN: "bench-token",
        E.ALLOWED_HOSTS: "127.0.0.1",
        E.ALLOW_PRIVATE_ADDRESSES: "true",
        E.PROGRESS_INTERVAL_SECONDS: "20",
    }
    return run_process([sys.executable, "-m", "worker"], env, cpu)


def run_baseline(
    url: str, azurite: Azurite, scratch: Path, cpu: int | None, via: ThrottleProxy | None = None
) -> ProcessRun:
    connection_string = azurite.connection_string
    env = {
        **base_env(scratch),
        "BASELINE_CONNECTION_STRING": via.rewrite(connection_string, azurite.port) if via else connection_string,
        "BASELINE_CONTAINER": CONTAINER,
    }
    target = scratch / f"baseline-{uuid.uuid4().hex}.mp4"
    argv = [sys.executable, "-m", "bench.baseline_transfer", url, str(target), f"baseline/{uuid.uuid4().hex}.mp4"]
    return run_process(argv, env, cpu)


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

    def overlap_ratio(self) -> float:
        """Worker wall over the baseline's raw download + raw upload (medians)."""
        raw = statistics.median(r.download_s for r in self.baseline) + statistics.median(
            r.upload_s for r in self.baseline
        )
        return self.median("worker") / raw if raw > 0 else float("inf")


@dataclass(frozen=True)
class CostLine:
    """Seconds = fixed_s + per_mib_s * MiB, through two measured points."""

    fixed_s: float
    per_mib_s: float


def cost_line(small_mib: float, small_s: float, large_mib: float, large_s: float) -> CostLine:
    per_mib = (large_s - small_s) / (large_mib - small_mib)
    return CostLine(fixed_s=small_s - per_mib * small_mib, per_mib_s=per_mib)


def measure_links(
    runs: int, large: Path, server_port: int, azurite: Azurite, callbacks: CallbackReceiver,
    service: BlobServiceClient, scratch: Path, cpu: int | None,
) -> dict[str, Series]:  # fmt: skip
    """The large file through throttled links (`LINKS`): worker and baseline, interleaved."""
    results: dict[str, Series] = {}
    for link in LINKS:
        series = results[link.label] = Series([], [])
        with (
            throttle_proxy(server_port, up_mib_s=link.down_mib_s, down_mib_s=link.down_mib_s) as site,
            throttle_proxy(azurite.port, up_mib_s=link.up_mib_s, down_mib_s=link.up_mib_s) as storage,
        ):
            url = f"http://127.0.0.1:{site.port}/{large.name}"
            for i in range(runs):
                for side in ("worker", "baseline") if i % 2 == 0 else ("baseline", "worker"):
                    if side == "worker":
                        run = run_worker(url, azurite, callbacks, scratch, cpu, via=storage)
                    else:
                        run = run_baseline(url, azurite, scratch, cpu, via=storage)
                    getattr(series, side).append(run)
                    empty_container(service)
                base = series.baseline[-1]
                print(
                    f"{link.label} (down {link.down_mib_s:g} MiB/s, up {link.up_mib_s:g} MiB/s) round {i + 1}: "
                    f"worker {series.worker[-1].seconds:.2f}s (rss {series.worker[-1].peak_rss_mb:.0f} MB), "
                    f"raw download {base.download_s:.2f}s + raw upload {base.upload_s:.2f}s; {load()}",
                    flush=True,
                )
    return results


def measure(runs: int, media_root: Path, *, pin: bool = True, link_runs: int = 2) -> None:
    large, small = prepare_media(media_root)
    cpu = bench_cpu(pin)
    others = os.sched_getaffinity(0) - {cpu}
    if cpu is not None and others:
        # This process's threads (media server, callback receiver) and Azurite, started below,
        # inherit this: they stay off the CPU the measured programs run on.
        os.sched_setaffinity(0, others)
    print(f"media: large {large.stat().st_size / MiB:.0f} MiB, small {small.stat().st_size / MiB:.0f} MiB", flush=True)
    print(f"cpu: {f'worker and baseline pinned to CPU {cpu}' if cpu is not None else 'not pinned'}")
    print(f"start: {load()}", flush=True)
    with run_azurite() as azurite, serve_media(media_root) as server, run_callback_receiver() as callbacks:
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        service.create_container(CONTAINER)
        series = {"large": Series([], []), "small": Series([], [])}
        with tempfile.TemporaryDirectory() as scratch_dir:
            scratch = Path(scratch_dir)
            for i in range(runs):
                steps = [(size, side) for size in ("large", "small") for side in ("worker", "baseline")]
                for size, side in steps if i % 2 == 0 else steps[::-1]:
                    url = server.url((large if size == "large" else small).name)
                    if side == "worker":
                        run = run_worker(url, azurite, callbacks, scratch, cpu)
                    else:
                        run = run_baseline(url, azurite, scratch, cpu)
                    getattr(series[size], side).append(run)
                    empty_container(service)
                big, little = series["large"], series["small"]
                print(
                    f"round {i + 1}: large: worker {big.worker[-1].seconds:.2f}s "
                    f"(rss {big.worker[-1].peak_rss_mb:.0f} MB), baseline {big.baseline[-1].seconds:.2f}s; "
                    f"small: worker {little.worker[-1].seconds:.2f}s (rss {little.worker[-1].peak_rss_mb:.0f} MB), "
                    f"baseline {little.baseline[-1].seconds:.2f}s; {load()}",
                    flush=True,
                )
            links = measure_links(link_runs, large, server.port, azurite, callbacks, service, scratch, cpu)
    _report(large, small, series["large"], series["small"], links)


def _report(large: Path, small: Path, big: Series, little: Series, links: dict[str, Series]) -> None:
    failed = [r for s in (big, little, *links.values()) for r in s.worker + s.baseline if r.exit_code != 0]
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed")
    large_mib, small_mib = large.stat().st_size / MiB, small.stat().st_size / MiB
    worker = cost_line(small_mib, little.median("worker"), large_mib, big.median("worker"))
    baseline = cost_line(small_mib, little.median("baseline"), large_mib, big.median("baseline"))
    per_byte_ratio = worker.per_mib_s / baseline.per_mib_s if baseline.per_mib_s > 0 else float("inf")
    rss_large = max(r.peak_rss_mb for r in big.worker)
    rss_small = max(r.peak_rss_mb for r in little.worker)

    def row(label: str, base: float, work: float, digits: int = 2) -> None:
        print(f"{label:40}{base:>10.{digits}f}{work:>10.{digits}f}")

    print()
    print(f"{'':40}{'baseline':>10}{'worker':>10}")
    row(f"large ({large_mib:.0f} MiB) s, median of {len(big.worker)}", big.median("baseline"), big.median("worker"))
    row(f"small ({small_mib:.0f} MiB) s, median", little.median("baseline"), little.median("worker"))
    row("per extra GiB (s)", baseline.per_mib_s * 1024, worker.per_mib_s * 1024)
    row("fixed cost (s), at zero bytes", baseline.fixed_s, worker.fixed_s)
    row("peak RSS (MB), large", max(r.peak_rss_mb for r in big.baseline), rss_large, 0)
    row("peak RSS (MB), small", max(r.peak_rss_mb for r in little.baseline), rss_small, 0)
    print(f"per-byte ratio worker/baseline: {per_byte_ratio:.2f} (target <= 1.15); worker RSS target <= 200 MB, flat")
    for label, series in links.items():
        base = series.baseline
        print(
            f"{label}: worker {series.median('worker'):.2f}s / (raw download "
            f"{statistics.median(r.download_s for r in base):.2f}s + raw upload "
            f"{statistics.median(r.upload_s for r in base):.2f}s) = {series.overlap_ratio():.2f}"
        )
    print("overlap_ratio target <= 0.65 (1.0: download then upload; 0.5: perfect overlap at equal speeds)")
    print(f"end: {load()}")
    ratios = " ".join(f"{label}={series.overlap_ratio():.2f}" for label, series in links.items())
    print(
        f"bench: per_byte_ratio={per_byte_ratio:.2f} fixed_s={worker.fixed_s:.2f} "
        f"rss_small_mb={rss_small:.0f} rss_large_mb={rss_large:.0f} {ratios} "
        f"overlap_ratio_loopback={big.overlap_ratio():.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds; every time is the median over them")
    parser.add_argument("--media", type=Path, default=REPO / ".bench" / "media", help="where generated media is kept")
    parser.add_argument("--link-runs", type=int, default=2, help="rounds of each throttled case")
    parser.add_argument("--no-pin", action="store_true", help="let both sides use every CPU (for comparison)")
    args = parser.parse_args(argv)
    measure(args.runs, args.media, pin=not args.no_pin, link_runs=args.link_runs)


if __name__ == "__main__":
    main()
