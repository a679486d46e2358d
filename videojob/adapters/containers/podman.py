"""The `podman` backend: each container group is a container of the worker image on this machine.

The same `ContainerSpec` the ACI backend receives becomes `podman create` arguments: the image,
exactly the spec's environment, ACI's limits (`--memory`/`--cpus`), restart policy never, the
spec's tags as labels. The host's network is shared, so the worker reaches the devhost, Azurite
and test servers on loopback as it would reach public endpoints from ACI.

- Environment values never appear on a command line: podman gets every plain variable by name
  only (`--env NAME`) and reads its value from its own environment (podman's `--env` contract), so
  `ps` shows names. Only `State` is read back from `podman inspect`: the container's config
  (where podman keeps the env) is never read or logged.
- Secure values (the callback token, the storage credential, the proxy URL) are never in the
  container's env, which `podman inspect` shows to anyone on the machine: they go as one JSON
  podman secret, mounted read-only at `SECURE_ENV_MOUNT_PATH` (named by `SECURE_ENV_FILE`), which
  the worker reads at start. Not `--secret ...,type=env`: podman before 5.3 shows such a secret's
  value in `Config.Env` (containers/podman issue 23788, fixed by pull 23959); this machine has
  4.3.1. The secret leaves podman's store right after `podman create` (the container keeps its
  own copy, removed with it), and any left by a crash in between is removed by `delete` and by
  the devhost's `remove_all`.
- Podman records no "stopped by whom": a stop is remembered in `<state_dir>/<name>.stopped`, so a
  stopped group reads `Stopped` (as in ACI) rather than `Failed` with the SIGTERM/SIGKILL code.
- Every container carries `SCOPE_LABEL=<state_dir>`: two devhosts on one machine (parallel test
  runs) each list, sweep and clean up only their own containers.
- Secret files (the operator's cookies) are written 0600 into `<state_dir>/<name>.secrets/` and
  mounted read-only at the spec's secrets path, owned by the image's user (`:ro,U`); removed
  with the container.
- An out-of-memory kill is `Failed` with exit code 137, reason `OUT_OF_MEMORY` and a detail
  that says so (podman's `OOMKilled` flag when the kernel reports it; this machine's cgroup
  layout does not, so a SIGKILL this backend did not send, its stops being marked, is taken for
  the memory limit).
- An ended container reports when it ended (`finished_at`, from podman's `FinishedAt`), as ACI
  and the local backend do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videojob.adapters.containers.local import is_valid_group_name, write_secret_files
from videojob.contract.container_env import SECURE_ENV_FILE
from videojob.domain.container_port import BackendError, ContainerState, GroupState, ManagedGroup
from videojob.domain.container_spec import SECRETS_MOUNT_PATH, TAG_MANAGED_BY, ContainerSpec
from videojob.domain.failure_reason import FailureReason

if TYPE_CHECKING:
    from videojob.domain.settings import Settings

log = logging.getLogger(__name__)

# These machines: runc (crun refuses the hybrid cgroup layout) and ulimits the sandbox allows.
DEFAULT_GLOBAL_ARGS: tuple[str, ...] = ("--runtime", "runc")
DEFAULT_RUN_ARGS: tuple[str, ...] = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
SCOPE_LABEL = "io.videojob.scope"
DEFAULT_GRACE_SECONDS = 10
COMMAND_TIMEOUT_SECONDS = 60.0
CREATE_TIMEOUT_SECONDS = 300.0  # a first `create` may pull the image
MAX_LOG_BYTES = 256 * 1024
MAX_LOG_LINE_BYTES = 64 * 1024
SIGKILL_EXIT = 137
SECURE_ENV_MOUNT_PATH = "/run/videojob/secure-env.json"
"""Where the container finds its secure values (a podman secret, `type=mount`)."""
SECRET_PREFIX = "videojob-"  # noqa: S105 - a name prefix, no secret

Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


# ---------------------------------------------------------------------------------------------
# Pure policy


def memory_mib(memory_gb: float) -> int:
    return max(6, round(memory_gb * 1024))


def secret_name(scope: str, container: str) -> str:
    """The podman secret holding a container's secure values: per scope (a devhost's state dir),
    so one devhost's clean-up never removes another's. Hashed: podman allows 64 characters, a
    group name alone may have 63."""
    return f"{scope_secret_prefix(scope)}{hashlib.sha256(container.encode()).hexdigest()[:24]}"


def scope_secret_prefix(scope: str) -> str:
    return f"{SECRET_PREFIX}{hashlib.sha256(scope.encode()).hexdigest()[:12]}-"


def container_environment(spec: ContainerSpec, secrets_dir: str = SECRETS_MOUNT_PATH) -> dict[str, str]:
    """What goes into the container's env (and so into `podman inspect`): the plain variables and
    the path of the secure values' file; never a secure value."""
    secure = {name for name, _ in spec.secure_env}
    plain = {k: v for k, v in spec.environment(secrets_dir).items() if k not in secure}
    if secure:
        plain[SECURE_ENV_FILE] = SECURE_ENV_MOUNT_PATH
    return plain


def secure_env_document(spec: ContainerSpec) -> bytes:
    """The podman secret's content: the secure variables as one JSON object."""
    return json.dumps(dict(spec.secure_env), separators=(",", ":"), sort_keys=True).encode("utf-8")


def create_arguments(
    spec: ContainerSpec,
    *,
    scope: str,
    run_args: Sequence[str] = DEFAULT_RUN_ARGS,
    entrypoint: Sequence[str] | None = None,
    secrets_dir: str | None = None,
) -> list[str]:
    """`podman create` arguments for a spec: names of plain variables only, never their values;
    the secure values as the podman secret `secret_name(scope, spec.name)` (created by the
    caller); `secrets_dir` (the spec's secret files, written by the caller) mounted read-only."""
    mib = memory_mib(spec.memory_gb)
    args = [
        "create",
        "--name", spec.name,
        "--memory", f"{mib}m",
        "--memory-swap", f"{mib}m",  # no swap, as in ACI: over the limit is a kill
        "--cpus", f"{spec.cpu:g}",
        "--restart", "no",
        "--network", "host",
        "--log-driver", "k8s-file",
        "--log-opt", "max-size=10mb",
        *run_args,
    ]
    for key, value in sorted(spec.tag_map().items()):
        args += ["--label", f"{key}={value}"]
    args += ["--label", f"{SCOPE_LABEL}={scope}"]
    for name in sorted(container_environment(spec)):
        args += ["--env", name]
    if spec.secure_env:
        args += ["--secret", f"{secret_name(scope, spec.name)},type=mount,target={SECURE_ENV_MOUNT_PATH}"]
    if spec.secret_files and secrets_dir:
        args += ["--volume", f"{secrets_dir}:{SECRETS_MOUNT_PATH}:ro,U"]
    if entrypoint is not None:
        args += ["--entrypoint", json.dumps(list(entrypoint))]
    args.append(spec.image)
    return args


def podman_environment(spec_env: Mapping[str, str], parent_env: Mapping[str, str]) -> dict[str, str]:
    """The podman CLI's own environment: ours, plus the spec's variables it copies by name."""
    for name, value in spec_env.items():
        if "\n" in value or "\x00" in value or "=" in name:
            raise BackendError(
                "InvalidEnvironment", f"variable {name} cannot be passed to a container", retryable=False
            )
    return {**parent_env, **spec_env}


def derive_podman_state(
    name: str, state: Mapping[str, Any], *, stopped: bool, memory_limit_bytes: int | None = None
) -> GroupState:
    """ACI's group states from podman's `State` (`Status`, `ExitCode`, `OOMKilled`, `Error`, `FinishedAt`)."""
    status = str(state.get("Status") or "").lower()
    exit_code = state.get("ExitCode")
    exit_code = exit_code if isinstance(exit_code, int) else None
    if status in ("created", "configured", "initialized"):
        return GroupState(name, ContainerState.STOPPED if stopped else ContainerState.PENDING)
    if status in ("running", "paused", "stopping", "restarting"):
        return GroupState(name, ContainerState.RUNNING)
    ended = finish_time(state.get("FinishedAt"))
    if stopped:
        return GroupState(name, ContainerState.STOPPED, exit_code, "stopped", ended)
    if status not in ("exited", "stopped", "removing", "dead"):
        return GroupState(name, ContainerState.FAILED, exit_code, f"unknown container status {status!r}", ended)
    if exit_code == 0:
        return GroupState(name, ContainerState.SUCCEEDED, 0, None, ended)
    limit = f" (limit {memory_limit_bytes // (1024 * 1024)} MiB)" if memory_limit_bytes else ""
    oom = FailureReason.OUT_OF_MEMORY
    if state.get("OOMKilled"):
        return GroupState(
            name, ContainerState.FAILED, exit_code, f"OOMKilled: the worker went over its memory limit{limit}", ended,
            reason=oom,
        )
    if exit_code == SIGKILL_EXIT:
        return GroupState(
            name, ContainerState.FAILED, exit_code,
            f"Killed (SIGKILL): most likely out of memory{limit}, or killed from outside",
            ended, reason=oom,
        )
    error = str(state.get("Error") or "").strip()
    return GroupState(name, ContainerState.FAILED, exit_code, error[:300] or None, ended)


def finish_time(raw: Any) -> str | None:
    """podman's `FinishedAt` (RFC 3339 with nanoseconds and the host's offset) as UTC ISO 8601 text,
    the form ACI's `finishTime` takes; None for Go's zero time (not ended) or anything else."""
    if not isinstance(raw, str):
        return None
    try:
        t = datetime.fromisoformat(raw[:64])
    except ValueError:
        return None
    if t.tzinfo is None or t.year <= 1:
        return None
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def managed_from_listing(rows: Any, stopped_names: set[str]) -> list[ManagedGroup]:
    """`podman ps --format json` rows as the sweeper sees them."""
    out: list[ManagedGroup] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        names = row.get("Names") or []
        if not names or not isinstance(names[0], str):
            continue
        name = names[0]
        state = derive_podman_state(
            name, {"Status": row.get("State"), "ExitCode": row.get("ExitCode")}, stopped=name in stopped_names
        )
        labels = {str(k): str(v) for k, v in (row.get("Labels") or {}).items() if k != SCOPE_LABEL}
        out.append(ManagedGroup(name, state.state, labels))
    return out


def last_lines(data: bytes, lines: int) -> str:
    """The last `lines` lines of bounded output; a hostile endless line is cut to its end."""
    kept = data.splitlines(keepends=True)[-lines:] if lines > 0 else []
    return b"".join(line[-MAX_LOG_LINE_BYTES:] for line in kept).decode("utf-8", errors="replace")


def _missing(stderr: str) -> bool:
    text = stderr.lower()
    return "no such container" in text or "no container with name or id" in text


@dataclass(frozen=True)
class _Failure:
    code: str
    retryable: bool
    reason: FailureReason


def classify_podman_error(stderr: str) -> _Failure:
    text = stderr.lower()
    if "image not known" in text or "unable to find image" in text or "initializing source" in text:
        return _Failure("InaccessibleImage", False, FailureReason.NOT_FOUND)
    if "already in use" in text:
        return _Failure("Conflict", True, FailureReason.TRANSIENT)
    return _Failure("PodmanFailed", True, FailureReason.TRANSIENT)


# ---------------------------------------------------------------------------------------------


class PodmanBackend:
    """Worker containers through the podman CLI (argument lists, timeouts, classified errors)."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        podman: str = "podman",
        global_args: Sequence[str] = DEFAULT_GLOBAL_ARGS,
        run_args: Sequence[str] = DEFAULT_RUN_ARGS,
        grace_seconds: int = DEFAULT_GRACE_SECONDS,
        entrypoint: Sequence[str] | None = None,
        runner: Runner = subprocess.run,
    ):
        """`entrypoint` replaces the image's (tests: a stand-in worker); `runner` runs the CLI."""
        self._state_dir = Path(state_dir).resolve()
        self._podman = podman
        self._global = list(global_args)
        self._run_args = list(run_args)
        self._grace = grace_seconds
        self._entrypoint = list(entrypoint) if entrypoint is not None else None
        self._runner = runner

    @classmethod
    def from_settings(cls, settings: Settings) -> PodmanBackend:
        return cls(Path.cwd() / ".devhost" / "podman")

    @property
    def scope(self) -> str:
        return str(self._state_dir)

    # -- the CLI --------------------------------------------------------------------------------

    def _podman_cmd(
        self,
        args: Sequence[str],
        *,
        timeout: float = COMMAND_TIMEOUT_SECONDS,
        env: Mapping[str, str] | None = None,
        stderr_to_stdout: bool = False,
        stdin: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """`stdin`: bytes for podman to read (a secret's value: never on a command line)."""
        binary = shutil.which(self._podman) or self._podman
        feed: dict[str, Any] = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        try:
            return self._runner(
                [binary, *self._global, *args],
                **feed,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if stderr_to_stdout else subprocess.PIPE,
                env=dict(env) if env is not None else None,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as e:
            raise BackendError("PodmanUnavailable", "podman is not installed", retryable=False,
                               reason=FailureReason.PERMANENT) from e
        except subprocess.TimeoutExpired as e:
            message = f"podman {args[0]} did not answer in {timeout:g}s"
            raise BackendError("PodmanTimeout", message, retryable=True, reason=FailureReason.TRANSIENT) from e

    def _fail(self, operation: str, name: str, result: subprocess.CompletedProcess[bytes]) -> BackendError:
        stderr = (result.stderr or b"").decode("utf-8", errors="replace").strip()
        failure = classify_podman_error(stderr)
        return BackendError(failure.code, f"{operation} {name}: {stderr[-500:]}", retryable=failure.retryable,
                            reason=failure.reason)

    def _inspect(self, name: str) -> tuple[dict[str, Any], int | None] | None:
        """The container's `State` and memory limit, or None when it does not exist."""
        result = self._podman_cmd(
            ["container", "inspect", "--format", "{{json .State}}\t{{.HostConfig.Memory}}", name]
        )
        if result.returncode != 0:
            if _missing((result.stderr or b"").decode("utf-8", errors="replace")):
                return None
            raise self._fail("inspect", name, result)
        state_json, _, memory = result.stdout.decode("utf-8", errors="replace").strip().partition("\t")
        try:
            state = json.loads(state_json)
        except ValueError as e:
            raise BackendError("PodmanFailed", f"inspect {name}: unreadable state", retryable=True) from e
        return (state if isinstance(state, dict) else {}), (int(memory) if memory.strip().isdigit() else None)

    # -- stop records ---------------------------------------------------------------------------

    def _stop_marker(self, name: str) -> Path:
        return self._state_dir / f"{name}.stopped"

    def _secrets_dir(self, name: str) -> Path:
        return self._state_dir / f"{name}.secrets"

    def _stopped_names(self) -> set[str]:
        if not self._state_dir.exists():
            return set()
        return {p.name.removesuffix(".stopped") for p in self._state_dir.glob("*.stopped")}

    # -- ContainerBackend -----------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> GroupState:
        if not is_valid_group_name(spec.name):
            raise BackendError("InvalidContainerGroupName", f"invalid group name {spec.name!r}", retryable=False,
                               reason=FailureReason.PERMANENT)
        existing = self.state(spec.name)
        if existing.state != ContainerState.MISSING:
            log.info("podman container %s exists already; not re-created", spec.name)
            return existing
        env = podman_environment(container_environment(spec), os.environ)
        self._state_dir.mkdir(parents=True, exist_ok=True)  # marks a devhost that ran containers
        secrets = None
        if spec.secret_files:
            shutil.rmtree(self._secrets_dir(spec.name), ignore_errors=True)  # a failed create's
            secrets = str(write_secret_files(spec, self._secrets_dir(spec.name)))
        args = create_arguments(
            spec, scope=self.scope, run_args=self._run_args, entrypoint=self._entrypoint, secrets_dir=secrets
        )
        log.info("creating podman container %s from %s", spec.name, spec.image)
        try:
            if spec.secure_env:
                self._create_secret(spec)
            result = self._podman_cmd(args, timeout=CREATE_TIMEOUT_SECONDS, env=env)
        finally:
            # The container holds its own copy from `create` on (removed with it): podman's store
            # keeps no secure value beyond this call, whatever happened.
            if spec.secure_env:
                self._remove_secret(secret_name(self.scope, spec.name))
        if result.returncode != 0:
            error = self._fail("create", spec.name, result)
            if error.code == "Conflict":  # created meanwhile by a concurrent call
                return self.state(spec.name)
            raise error
        self._stop_marker(spec.name).unlink(missing_ok=True)
        started = self._podman_cmd(["start", spec.name])
        if started.returncode != 0:
            raise self._fail("start", spec.name, started)
        return self.state(spec.name)

    def _create_secret(self, spec: ContainerSpec) -> None:
        name = secret_name(self.scope, spec.name)
        self._remove_secret(name)  # a crashed create's, so the name is free
        result = self._podman_cmd(
            ["secret", "create", "--label", f"{SCOPE_LABEL}={self.scope}", name, "-"],
            stdin=secure_env_document(spec),
        )
        if result.returncode != 0:
            raise self._fail("secret create", spec.name, result)

    def _remove_secret(self, name: str) -> None:
        result = self._podman_cmd(["secret", "rm", name])
        stderr = (result.stderr or b"").decode("utf-8", errors="replace").lower()
        if result.returncode != 0 and "no such secret" not in stderr:
            log.warning("podman secret of %s not removed: %s", name, stderr.strip()[-300:])

    def _scope_secrets(self) -> list[str]:
        result = self._podman_cmd(["secret", "ls", "--format", "{{.Name}}"])
        prefix = scope_secret_prefix(self.scope)
        return [n for n in result.stdout.decode("utf-8", errors="replace").split() if n.startswith(prefix)]

    def state(self, name: str) -> GroupState:
        if not is_valid_group_name(name):
            return GroupState(name, ContainerState.MISSING)
        found = self._inspect(name)
        if found is None:
            return GroupState(name, ContainerState.MISSING)
        state, memory = found
        return derive_podman_state(name, state, stopped=self._stop_marker(name).exists(), memory_limit_bytes=memory)

    def logs(self, name: str, tail: int = 50) -> str:
        if not is_valid_group_name(name) or tail <= 0:
            return ""
        result = self._podman_cmd(["logs", "--tail", str(tail), name], stderr_to_stdout=True)
        if result.returncode != 0:
            return ""
        return last_lines(result.stdout[-MAX_LOG_BYTES:], tail)

    def stop(self, name: str) -> None:
        if not is_valid_group_name(name):
            return
        if self._inspect(name) is None:
            log.info("podman container %s does not exist; nothing to stop", name)
            return
        self._state_dir.mkdir(parents=True, exist_ok=True)
        self._stop_marker(name).touch()
        log.info("stopping podman container %s (grace %ss)", name, self._grace)
        result = self._podman_cmd(
            ["stop", "--time", str(self._grace), name], timeout=COMMAND_TIMEOUT_SECONDS + self._grace
        )
        if result.returncode != 0 and not _missing((result.stderr or b"").decode("utf-8", errors="replace")):
            raise self._fail("stop", name, result)

    def delete(self, name: str) -> None:
        if not is_valid_group_name(name):
            return
        log.info("deleting podman container %s", name)
        result = self._podman_cmd(
            ["rm", "--force", "--ignore", "--time", str(self._grace), name],
            timeout=COMMAND_TIMEOUT_SECONDS + self._grace,
        )
        if result.returncode != 0:
            raise self._fail("delete", name, result)
        self._stop_marker(name).unlink(missing_ok=True)
        shutil.rmtree(self._secrets_dir(name), ignore_errors=True)
        if secret_name(self.scope, name) in self._scope_secrets():  # only a crashed create leaves one
            self._remove_secret(secret_name(self.scope, name))

    def list_managed(self, managed_by: str) -> list[ManagedGroup]:
        result = self._podman_cmd(
            ["ps", "--all", "--format", "json",
             "--filter", f"label={TAG_MANAGED_BY}={managed_by}", "--filter", f"label={SCOPE_LABEL}={self.scope}"]
        )
        if result.returncode != 0:
            raise self._fail("list", managed_by, result)
        try:
            rows = json.loads(result.stdout or b"[]")
        except ValueError as e:
            raise BackendError("PodmanFailed", "list: unreadable podman ps output", retryable=True) from e
        return managed_from_listing(rows, self._stopped_names())

    def remove_all(self) -> int:
        """Stop and delete every container of this scope (a devhost's clean-up on exit)."""
        result = self._podman_cmd(
            ["ps", "--all", "--format", "{{.Names}}", "--filter", f"label={SCOPE_LABEL}={self.scope}"]
        )
        names = [n for n in result.stdout.decode("utf-8", errors="replace").split() if is_valid_group_name(n)]
        for name in names:
            self.delete(name)
        for secret in self._scope_secrets():  # of creates that never made their container
            self._remove_secret(secret)
        return len(names)
