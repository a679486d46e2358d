"""A hard memory limit for the job process, below the container's memory.

The traffic budget bounds what a site can make the worker read; this bounds what anything else
(a parser's blow-up, a bug) can make it allocate. The job process sets `RLIMIT_DATA` on itself
at start: allocations past it fail with `MemoryError`, which the job reports as `too_large`,
instead of the container being OOM-killed (then `heartbeat_lost`, and retried). `RLIMIT_DATA`
rather than `RLIMIT_AS`: address space that is only reserved (thread stacks' guard areas,
malloc arenas, V8's cage in the Deno child) does not count, memory that is written does.

The container's memory comes from `CONTAINER_MEMORY_MB` (written by the container spec), else
from the cgroup's limit. The job process takes `JOB_SHARE` of it: the rest is for the upload
process and the ffmpeg/ffprobe/Deno children (each inherits the same per-process limit).
"""

from __future__ import annotations

import logging
import resource
from pathlib import Path

log = logging.getLogger("worker.memory")

MiB = 1024 * 1024
JOB_SHARE = 0.75
MIN_LIMIT_BYTES = 256 * MiB
"""Never below this: the job process needs about 150 MB to start (yt-dlp's extractors)."""
CGROUP_LIMIT_FILES = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
UNLIMITED_CGROUP = 1 << 60
"""cgroup v1 writes "no limit" as a huge number."""


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
