"""The local backend's process-group leader:
`python -m videojob.adapters.containers.local_runner <dir> [--memory-mb N] -- <cmd...>`.

It plays the part of a container's init: starts the worker, forwards SIGTERM/SIGINT to it,
waits, and writes the worker's exit code to `<dir>/exit.json` atomically. With `--memory-mb`,
the worker cannot outgrow the container's memory: it starts with `RLIMIT_DATA` at that size
(inherited by its children; per process, where ACI's limit covers the whole group), and an
allocation past it fails (`MemoryError`) as an OOM would end it in ACI. Because the code is
written by this process and not by whoever launched it, the exit code survives a restart of
the devhost. A signal death is reported as 128 + signal number, as container runtimes do.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

EXIT_FILE = "exit.json"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
COMMAND_NOT_RUNNABLE = 127


def exit_code_of(returncode: int) -> int:
    """Popen's negative "killed by signal N" as the shell and container runtimes report it."""
    return 128 - returncode if returncode < 0 else returncode


def write_exit(record_dir: Path, exit_code: int, detail: str | None = None) -> None:
    doc = {"exitCode": exit_code, "finishedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if detail:
        doc["detail"] = detail
    tmp = record_dir / f".{EXIT_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, record_dir / EXIT_FILE)


def limit_memory(memory_bytes: int | None) -> None:
    """In the worker's process, before it runs: its hard memory limit."""
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))


def run(record_dir: Path, command: list[str], memory_bytes: int | None = None) -> int:
    child: subprocess.Popen[bytes] | None = None
    pending: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child is None:
            pending.append(signum)
        else:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

    for s in FORWARDED_SIGNALS:
        signal.signal(s, forward)

    try:
        # stdin/stdout/stderr, cwd and env are this process's: the backend set them up.
        child = subprocess.Popen(command, preexec_fn=lambda: limit_memory(memory_bytes))  # noqa: PLW1509 - one thread here
    except OSError as e:
        print(f"local_runner: cannot start the worker: {e}", file=sys.stderr, flush=True)
        write_exit(record_dir, COMMAND_NOT_RUNNABLE, "the worker command could not be started")
        return COMMAND_NOT_RUNNABLE
    for signum in pending:
        child.send_signal(signum)
    code = exit_code_of(child.wait())
    write_exit(record_dir, code)
    return code


def main(argv: list[str]) -> int:
    memory_bytes = None
    if len(argv) >= 3 and argv[1] == "--memory-mb":
        try:
            memory_bytes = int(argv[2]) * 1024 * 1024
        except ValueError:
            memory_bytes = -1
        argv = [argv[0], *argv[3:]]
    if len(argv) < 3 or argv[1] != "--" or (memory_bytes is not None and memory_bytes <= 0):
        print(
            "usage: python -m videojob.adapters.containers.local_runner <record-dir> [--memory-mb N] -- <command...>",
            file=sys.stderr,
        )
        return 2
    return run(Path(argv[0]), argv[2:], memory_bytes)


if __name__ == "__main__":
    sys.exit(min(main(sys.argv[1:]), 255))
