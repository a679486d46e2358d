"""The worker knows its memory and says so itself when it runs out (issue 18): `out_of_memory`.

The traffic budget bounds what a site can make the worker read (`too_large`: the job's data is
over a stated budget); this is about the container being too small for what the job needs within
those budgets (a long high-resolution merge, a parser's blow-up): `out_of_memory`, not retried
(a container of the same size meets the same limit), the message naming `WORKER_MEMORY_GB`. The
worker reports it before the kernel kills it, so nothing depends on how ACI words a kill:
- The job process sets `RLIMIT_DATA` on itself at start: allocations past it fail with
  `MemoryError`, which the job reports as `out_of_memory`. `RLIMIT_DATA` rather than `RLIMIT_AS`:
  address space that is only reserved (thread stacks' guard areas, malloc arenas, V8's cage in
  the Deno child) does not count, memory that is written does.
- A watchdog (`MemoryWatchdog`) adds up the anonymous memory (`RssAnon`: what cannot be reclaimed
  without swap, which ACI has none of) of the worker's whole process tree (job, upload, ffmpeg,
  Deno) twice a second; past `WATCHDOG_SHARE` of the container it fails the job `out_of_memory`
  and kills the job's helper processes (not the upload process) before the kernel's OOM killer
  would take the whole container. Page cache is not counted: the kernel reclaims it first.

The container's memory comes from `CONTAINER_MEMORY_MB` (written by the container spec), else
from the cgroup's limit. The job process takes `JOB_SHARE` of it: the rest is for the upload
process and the ffmpeg/ffprobe/Deno children (each inherits the same per-process limit).
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from videojob.contract.wire import ErrorCode, JobError

log = logging.getLogger("worker.memory")

MiB = 1024 * 1024
JOB_SHARE = 0.75
MIN_LIMIT_BYTES = 256 * MiB
"""Never below this: the job process needs about 150 MB to start (yt-dlp's extractors)."""
CGROUP_LIMIT_FILES = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
UNLIMITED_CGROUP = 1 << 60
"""cgroup v1 writes "no limit" as a huge number."""
WATCHDOG_SHARE = 0.9
"""The process tree's anonymous memory past this share of the container is `out_of_memory`."""
WATCHDOG_INTERVAL_SECONDS = 0.5


def out_of_memory_error(container_memory_mb: int | None, what: str) -> JobError:
    """`out_of_memory` as the worker reports it: what ran out and the setting that fixes it."""
    size = f"its {container_memory_mb} MiB container" if container_memory_mb else "its container"
    return JobError(
        ErrorCode.OUT_OF_MEMORY,
        f"the worker ran out of memory in {size} ({what}): raise WORKER_MEMORY_GB if the media needs more",
        retryable=False,
    )


def cgroup_memory_bytes(files: tuple[Path, ...] = CGROUP_LIMIT_FILES) -> int | None:
    for file in files:
        try:
            raw = file.read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and 0 < int(raw) < UNLIMITED_CGROUP:
            return int(raw)
    return None


def job_process_limit(container_bytes: int | None) -> int | None:
    """`RLIMIT_DATA` for the job process, given the container's memory (pure)."""
    if not container_bytes or container_bytes <= 0:
        return None
    return max(MIN_LIMIT_BYTES, int(container_bytes * JOB_SHARE))


def apply_limit(limit_bytes: int | None) -> int | None:
    """Lower this process's `RLIMIT_DATA` (soft and hard) to `limit_bytes`; never raise it.
    Returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if limit_bytes is None:
        return None if soft == resource.RLIM_INFINITY else soft
    if hard != resource.RLIM_INFINITY:
        limit_bytes = min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit_bytes, limit_bytes))
    return limit_bytes


def limit_job_process(container_memory_mb: int | None) -> int | None:
    """At the start of `python -m worker`: the job process may not outgrow its share."""
    container_bytes = container_memory_mb * MiB if container_memory_mb else cgroup_memory_bytes()
    limit = apply_limit(job_process_limit(container_bytes))
    log.info("memory limit: %s", f"{limit // MiB} MiB" if limit else "none")
    return limit


# -- the watchdog ------------------------------------------------------------------------------


def anonymous_bytes(pid: int, proc: Path = Path("/proc")) -> int:
    """A process's resident anonymous memory (`RssAnon`), 0 when it is gone or unreadable."""
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def descendants(root: int, proc: Path = Path("/proc")) -> list[int]:
    """Every live process below `root` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_anonymous_bytes(root: int, proc: Path = Path("/proc")) -> int:
    return sum(anonymous_bytes(pid, proc) for pid in [root, *descendants(root, proc)])


class MemoryWatchdog:
    """Calls `on_exceeded(error)` once when the worker's process tree holds more anonymous memory
    than `WATCHDOG_SHARE` of the container, after killing the tree's processes except `spared`
    (the upload process: it writes the result record)."""

    def __init__(
        self,
        container_memory_mb: int,
        on_exceeded: Callable[[JobError], None],
        *,
        spared: Callable[[], Iterable[int | None]] = tuple,
        share: float = WATCHDOG_SHARE,
        interval_seconds: float = WATCHDOG_INTERVAL_SECONDS,
        measure: Callable[[int], int] = tree_anonymous_bytes,
        helpers: Callable[[int], Iterable[int]] = descendants,
    ):
        """`measure(pid)`: the tree's anonymous bytes; `helpers(pid)`: the processes to kill."""
        self._mb = container_memory_mb
        self._threshold = int(container_memory_mb * MiB * share)
        self._on_exceeded = on_exceeded
        self._spared = spared
        self._interval = interval_seconds
        self._measure = measure
        self._helpers = helpers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-watchdog", daemon=True)

    def start(self) -> MemoryWatchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self._interval):
            try:
                used = self._measure(me)
            except Exception:  # noqa: BLE001, S112 - a watchdog that cannot look keeps looking
                continue
            if used <= self._threshold:
                continue
            spared = {pid for pid in self._spared() if pid}
            for pid in self._helpers(me):
                if pid not in spared:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            log.warning("memory watchdog: %d MiB in use, over %d MiB", used // MiB, self._threshold // MiB)
            self._on_exceeded(
                out_of_memory_error(self._mb, f"{used // MiB} MiB in use, over {self._threshold // MiB} MiB")
            )
            return
