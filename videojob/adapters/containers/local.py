"""The `local` backend: each container group is a worker subprocess on this machine.

For the devhost and tests. A group is a directory `<state_dir>/<name>/`:
- `record.json`  what we launched (pid, process start time, tags, stopped?) — never the env;
- `exit.json`    the worker's exit code, written by the runner (`local_runner`) when it ends;
- `worker.log`   the worker's stdout and stderr;
- `work/`        its working directory and HOME, `tmp/` its TMPDIR;
- `secrets/`     the spec's secret files (cookies.txt), mode 0600 in a 0700 directory (the worker
                 reads them and works on its own copies); removed with the group.

The runner leads its own process group (`start_new_session`), starts the worker inside it with
the spec's memory as its hard memory limit, forwards SIGTERM/SIGINT and records the exit code,
so a restarted devhost still knows how a group ended. The worker sees exactly the spec's
environment plus the few variables a process needs to run here (`RUNTIME_VARIABLES`): nothing
else of the parent's environment leaks into it.

Stop works like a container runtime's: SIGTERM to the group leader (the runner, which forwards
it to the worker), a grace period, then SIGKILL to the whole process group.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videojob.adapters.containers import local_runner
from videojob.domain.container_port import BackendError, ContainerState, GroupState, ManagedGroup
from videojob.domain.container_spec import TAG_MANAGED_BY, ContainerSpec
from videojob.domain.failure_reason import FailureReason

if TYPE_CHECKING:
    from videojob.domain.settings import Settings

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_COMMAND: tuple[str, ...] = (sys.executable, "-m", "worker")
DEFAULT_GRACE_SECONDS = 10.0
KILL_WAIT_SECONDS = 5.0
POLL_SECONDS = 0.05
MAX_LOG_TAIL_BYTES = 1024 * 1024

RECORD_FILE = "record.json"
LOG_FILE = "worker.log"
WORK_DIR = "work"
TMP_DIR = "tmp"
SECRETS_DIR = "secrets"

RUNTIME_VARIABLES: tuple[str, ...] = ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH", "PYTHONUNBUFFERED")
"""What the worker gets besides the spec's env: where programs are, a home, a locale, a temp dir,
how to import `worker`, and unbuffered output so `logs()` shows what it printed before dying."""

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


# ---------------------------------------------------------------------------------------------
# Pure policy


def is_valid_group_name(name: str) -> bool:
    """ACI's rule (1-63 lowercase alnum and `-`, no edge `-`, no `--`); also keeps paths inside state_dir."""
    return bool(_NAME.match(name)) and "--" not in name


def worker_environment(
    spec_env: Mapping[str, str], parent_env: Mapping[str, str], *, home: str, tmpdir: str, pythonpath: str
) -> dict[str, str]:
    """The worker's whole environment: the spec's variables plus `RUNTIME_VARIABLES`, nothing else."""
    lang = parent_env.get("LANG") or ""
    if lang in ("", "C", "POSIX"):
        # A C locale would make Python coerce it and add LC_CTYPE to the child's environment.
        lang = "C.UTF-8"
    env = dict(spec_env)
    env.update(
        {
            "PATH": parent_env.get("PATH") or os.defpath,
            "HOME": home,
            "LANG": lang,
            "TMPDIR": tmpdir,
            "PYTHONPATH": pythonpath,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass(frozen=True)
class LocalRecord:
    name: str
    pid: int
    start_time: str | None
    created_at: str
    tags: dict[str, str] = field(default_factory=dict)
    stopped: bool = False
    stopped_at: str | None = None
    stop_detail: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LocalRecord:
        d = json.loads(text)
        return cls(
            name=str(d["name"]),
            pid=int(d["pid"]),
            start_time=d.get("start_time"),
            created_at=str(d.get("created_at", "")),
            tags={str(k): str(v) for k, v in (d.get("tags") or {}).items()},
            stopped=bool(d.get("stopped", False)),
            stopped_at=d.get("stopped_at"),
            stop_detail=d.get("stop_detail"),
        )


def derive_local_state(record: LocalRecord, exit_doc: Mapping[str, Any] | None, leader_alive: bool) -> GroupState:
    """Stopped after stop(); else the recorded exit code; else Running while the runner lives."""
    exit_code = exit_doc.get("exitCode") if exit_doc else None
    if record.stopped:
        return GroupState(record.name, ContainerState.STOPPED, exit_code, record.stop_detail)
    if exit_doc is not None:
        # As ACI shows a terminated container: Succeeded/Failed by exit code, `Completed`/`Error`, its finish time.
        state = ContainerState.SUCCEEDED if exit_code == 0 else ContainerState.FAILED
        detail = exit_doc.get("detail") or ("Completed" if exit_code == 0 else "Error")
        finished = exit_doc.get("finishedAt")
        return GroupState(record.name, state, exit_code, detail, finished if isinstance(finished, str) else None)
    if leader_alive:
        return GroupState(record.name, ContainerState.RUNNING)
    return GroupState(
        record.name, ContainerState.FAILED, None, "the worker's process ended without recording an exit code"
    )


def tail_lines(path: Path, lines: int, max_bytes: int = MAX_LOG_TAIL_BYTES) -> str:
    """The last `lines` lines of a file, reading backwards from its end (at most `max_bytes`)."""
    if lines <= 0:
        return ""
    data = b""
    try:
        with open(path, "rb") as f:
            pos = f.seek(0, os.SEEK_END)
            while pos > 0 and data.count(b"\n") <= lines and len(data) < max_bytes:
                step = min(8192, pos)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
    except FileNotFoundError:
        return ""
    return b"".join(data.splitlines(keepends=True)[-lines:]).decode("utf-8", errors="replace")


def memory_mb(memory_gb: float) -> int:
    """The container's memory as the runner limits the worker to it (ACI's GB are GiB)."""
    return max(1, round(memory_gb * 1024))


def write_secret_files(spec: ContainerSpec, directory: Path) -> Path:
    """The spec's secret files in `directory` (0700), each 0600 from its creation on: as an ACI
    secret volume holds them, never where another user of the machine could read them."""
    directory.mkdir(mode=0o700)
    for secret in spec.secret_files:
        fd = os.open(directory / secret.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(secret.content)
    return directory


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Processes (Linux /proc when available; plain signals elsewhere)

PROC = Path("/proc")


def _proc_stat(pid: int) -> tuple[str, int, str] | None:
    """(state, pgrp, start time) of a process from /proc/<pid>/stat, or None if it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    # fields[0] is field 3 (state), fields[2] field 5 (pgrp), fields[19] field 22 (starttime).
    return fields[0], int(fields[2]), fields[19]


def has_proc() -> bool:
    return (PROC / "self" / "stat").exists()


def process_start_time(pid: int) -> str | None:
    stat = _proc_stat(pid) if has_proc() else None
    return stat[2] if stat else None


def is_leader_alive(pid: int, start_time: str | None) -> bool:
    """The recorded process is still running (not a zombie, and not a new process with its pid)."""
    if has_proc():
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return start_time is None or stat[2] == start_time
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_reused(pid: int, start_time: str | None) -> bool:
    """A different process now has the pid: our group is certainly gone (Linux keeps a pid
    unallocated while a process group of that id has members)."""
    if start_time is None or not has_proc():
        return False
    stat = _proc_stat(pid)
    return stat is not None and stat[2] != start_time


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in the process group."""
    if not has_proc():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            return [pgid]
        return [pgid]
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def wait_group_gone(pgid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while True:
        if not group_members(pgid):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(POLL_SECONDS)


# ---------------------------------------------------------------------------------------------


class LocalBackend:
    """Worker subprocesses, one process group each, with state kept in `state_dir`."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        command: Sequence[str] = DEFAULT_COMMAND,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        pythonpath: str | os.PathLike[str] = REPO_ROOT,
    ):
        self._state_dir = Path(state_dir).resolve()
        self._command = list(command)
        self._grace = grace_seconds
        self._pythonpath = str(pythonpath)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        return cls(Path.cwd() / ".devhost" / "containers")

    @property
    def state_dir(self) -> Path:
        return self._state_dir

    # -- files ----------------------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self._state_dir / name

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def _read_record(self, name: str) -> LocalRecord | None:
        if not is_valid_group_name(name):
            return None
        try:
            return LocalRecord.from_json((self._dir(name) / RECORD_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as e:
            log.warning("ignoring unreadable record of local group %s: %s", name, e)
            return None

    def _write_record(self, record: LocalRecord) -> None:
        path = self._dir(record.name) / RECORD_FILE
        tmp = path.with_name(f".{RECORD_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(record.to_json(), encoding="utf-8")
        os.replace(tmp, path)

    def _read_exit(self, name: str) -> dict[str, Any] | None:
        try:
            doc = json.loads((self._dir(name) / local_runner.EXIT_FILE).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def _state_of(self, record: LocalRecord) -> GroupState:
        alive = is_leader_alive(record.pid, record.start_time)
        return derive_local_state(record, self._read_exit(record.name), alive)

    # -- ContainerBackend -----------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> GroupState:
        if not is_valid_group_name(spec.name):
            raise BackendError("InvalidContainerGroupName", f"invalid group name {spec.name!r}", retryable=False,
                               reason=FailureReason.PERMANENT)
        with self._lock(spec.name):
            existing = self._read_record(spec.name)
            if existing is not None:
                log.info("local group %s exists already; not re-created", spec.name)
                return self._state_of(existing)
            return self._launch(spec)

    def _launch(self, spec: ContainerSpec) -> GroupState:
        gdir = self._dir(spec.name)
        if gdir.exists():
            # Left over from a launch that died before writing its record.
            shutil.rmtree(gdir, ignore_errors=True)
        work, tmp = gdir / WORK_DIR, gdir / TMP_DIR
        work.mkdir(parents=True)
        tmp.mkdir()
        secrets = write_secret_files(spec, gdir / SECRETS_DIR)
        env = worker_environment(
            spec.environment(str(secrets)), os.environ, home=str(work), tmpdir=str(tmp), pythonpath=self._pythonpath
        )
        memory = ["--memory-mb", str(memory_mb(spec.memory_gb))] if spec.memory_gb > 0 else []
        runner = [sys.executable, "-m", local_runner.__name__, str(gdir), *memory, "--", *self._command]
        log.info("starting local group %s", spec.name)
        try:
            with open(gdir / LOG_FILE, "ab") as out:
                proc = subprocess.Popen(
                    runner,
                    cwd=work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as e:
            shutil.rmtree(gdir, ignore_errors=True)
            raise BackendError("LaunchFailed", f"cannot start local group {spec.name}: {e}", retryable=False,
                               reason=FailureReason.PERMANENT) from e
        # Reap the runner when it ends, so no zombie is left behind while this process lives.
        threading.Thread(target=proc.wait, name=f"reap-{spec.name}", daemon=True).start()
        record = LocalRecord(
            name=spec.name,
            pid=proc.pid,
            start_time=process_start_time(proc.pid),
            created_at=utc_now(),
            tags=spec.tag_map(),
        )
        self._write_record(record)
        return GroupState(spec.name, ContainerState.RUNNING)

    def state(self, name: str) -> GroupState:
        record = self._read_record(name)
        if record is None:
            return GroupState(name, ContainerState.MISSING)
        return self._state_of(record)

    def logs(self, name: str, tail: int = 50) -> str:
        if not is_valid_group_name(name):
            return ""
        return tail_lines(self._dir(name) / LOG_FILE, tail)

    def stop(self, name: str) -> None:
        with self._lock(name):
            record = self._read_record(name)
            if record is None:
                return
            if not record.stopped:
                record = replace(record, stopped=True, stopped_at=utc_now())
                self._write_record(record)
            detail = self._terminate(record)
            if detail and detail != record.stop_detail:
                self._write_record(replace(record, stop_detail=detail))

    def _terminate(self, record: LocalRecord) -> str | None:
        """End every process of the group: SIGTERM to the leader, grace, SIGKILL to the group.

        Returns a note when the group had to be killed."""
        pgid = record.pid
        if pid_reused(record.pid, record.start_time) or not group_members(pgid):
            return None
        log.info("stopping local group %s (grace %ss)", record.name, self._grace)
        if is_leader_alive(record.pid, record.start_time):
            # Like a container stop: the group's init gets SIGTERM and passes it on, so the
            # worker sees it exactly once.
            try:
                os.kill(record.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        else:
            signal_group(pgid, signal.SIGTERM)
        if wait_group_gone(pgid, self._grace):
            return None
        log.warning("local group %s did not stop within %ss; killing it", record.name, self._grace)
        signal_group(pgid, signal.SIGKILL)
        if not wait_group_gone(pgid, KILL_WAIT_SECONDS):
            raise BackendError("StopFailed", f"processes of local group {record.name} survived SIGKILL", retryable=True,
                               reason=FailureReason.TRANSIENT)
        return f"killed after a grace period of {self._grace:g}s"

    def delete(self, name: str) -> None:
        if not is_valid_group_name(name):
            return
        with self._lock(name):
            record = self._read_record(name)
            if record is not None:
                self._terminate(record)
            gdir = self._dir(name)
            if gdir.exists():
                log.info("deleting local group %s", name)
                shutil.rmtree(gdir)

    def list_managed(self, managed_by: str) -> list[ManagedGroup]:
        if not self._state_dir.is_dir():
            return []
        out = []
        for gdir in sorted(self._state_dir.iterdir()):
            record = self._read_record(gdir.name)
            if record is None or record.tags.get(TAG_MANAGED_BY) != managed_by:
                continue
            out.append(ManagedGroup(record.name, self._state_of(record).state, dict(record.tags)))
        return out
