"""The local stack as child processes: Azurite (blob and table services, in memory) and the devhost.

Used by `make demo`, `make serve` and the end-to-end tests. Every process started here is
stopped by the same context manager, on every path (errors and Ctrl-C included); worker
processes the devhost's local backend left running are stopped too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AZURITE_MAIN = REPO / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
AZURITE_TABLE_MAIN = REPO / "node_modules" / "azurite" / "dist" / "src" / "table" / "main.js"
# Azurite's published development account: a well-known public key, not a secret.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


PODMAN_DIR = "podman"
"""Under a devhost's state dir: the podman backend's records (and its containers' scope)."""


class StackError(RuntimeError):
    pass


def free_port(preferred: int | None = None) -> int:
    """`preferred` if a server could listen on it now, else a free port the kernel picks."""
    if preferred is not None and _can_listen(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _can_listen(port: int) -> bool:
    with socket.socket() as s:
        # As the servers themselves bind (aiohttp and Node set SO_REUSEADDR): connections a
        # previous run left in TIME_WAIT do not make the port busy; a listener does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
        return True


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode}")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.1)
    raise StackError(f"{what} not ready after {timeout:.0f}s")


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


@dataclass(frozen=True)
class Azurite:
    port: int
    table_port: int | None = None
    """The table service's port (the job index); None when only blobs run."""

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def table_endpoint(self) -> str | None:
        return f"http://127.0.0.1:{self.table_port}/{AZURITE_ACCOUNT}" if self.table_port else None

    @property
    def connection_string(self) -> str:
        table = f"TableEndpoint={self.table_endpoint};" if self.table_endpoint else ""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={self.blob_endpoint};{table}"
        )


def _start_azurite_service(node: str, main: Path, service: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [node, str(main), f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port),
         "--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--silent"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
    )
    try:
        wait_until(lambda: port_open(port), 20, f"Azurite ({service})", proc)
    except BaseException:
        stop_process(proc)
        raise
    return proc


@contextlib.contextmanager
def run_azurite(port: int | None = None, table_port: int | None = None) -> Iterator[Azurite]:
    """Azurite's blob service and its table service (the job index), each its own process."""
    node = shutil.which("node")
    if node is None or not AZURITE_MAIN.exists() or not AZURITE_TABLE_MAIN.exists():
        raise StackError("Azurite is not installed: run `make deps` (needs node and npm)")
    port = port or free_port()
    procs = [_start_azurite_service(node, AZURITE_MAIN, "blob", port)]
    try:
        table_port = table_port or free_port()
        procs.append(_start_azurite_service(node, AZURITE_TABLE_MAIN, "table", table_port))
        yield Azurite(port, table_port)
    finally:
        for proc in reversed(procs):
            stop_process(proc)


@dataclass
class Devhost:
    port: int
    state_dir: Path
    log_path: Path
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, env: Mapping[str, str], args: tuple[str, ...] = ()) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devhost", "--port", str(self.port), "--state-dir", str(self.state_dir), *args],
            cwd=REPO, env=dict(env), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        url = f"{self.base_url}/runtime/webhooks/durabletask/instances/"
        wait_until(lambda: _http_ok(url), 30, f"the devhost (log: {self.log_path})", self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no cleanup code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback http)
        return resp.status == 200


def stop_local_containers(state_dir: Path) -> int:
    """Stop and delete every worker process group the local backend tracks under `state_dir`
    (and the containers of the podman backend, when the devhost ran on it)."""
    n = stop_podman_containers(state_dir)
    containers = state_dir / "containers"
    if not containers.exists():
        return n
    from videojob.adapters.containers.local import LocalBackend

    backend = LocalBackend(containers, grace_seconds=3)
    for record in containers.glob("*/record.json"):
        name = record.parent.name
        with contextlib.suppress(Exception):
            if backend.state(name).is_active:
                n += 1
            backend.delete(name)
    return n


def stop_podman_containers(state_dir: Path) -> int:
    """Delete the containers the podman backend started for the devhost of `state_dir`."""
    if not (state_dir / PODMAN_DIR).is_dir():
        return 0
    from videojob.adapters.containers.podman import PodmanBackend

    with contextlib.suppress(Exception):
        return PodmanBackend(state_dir / PODMAN_DIR, grace_seconds=3).remove_all()
    return 0


def running_workers(state_dir: Path) -> list[str]:
    """Names of local groups whose process is still running."""
    containers = state_dir / "containers"
    if not containers.exists():
        return []
    from videojob.adapters.containers.local import LocalBackend

    backend = LocalBackend(containers)
    return [r.parent.name for r in containers.glob("*/record.json") if backend.state(r.parent.name).is_active]


def devhost_env(azurite: Azurite, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a local devhost: the local backend, blobs in this Azurite, loopback media allowed."""
    env = dict(os.environ)
    env.update({
        # `make serve|demo CONTAINER_BACKEND=podman`: the worker image in containers; else processes.
        "CONTAINER_BACKEND": "podman" if os.environ.get("CONTAINER_BACKEND") == "podman" else "local",
        "OUTPUT_CONNECTION_STRING": azurite.connection_string,
        "OUTPUT_ACCOUNT_URL": "",
        "ALLOW_PRIVATE_ADDRESSES": "true",
        "PYTHONUNBUFFERED": "1",
    })
    if env["CONTAINER_BACKEND"] == "podman":
        from videojob.domain.settings import PODMAN_DEFAULT_IMAGE

        # local.settings.json names the cloud's image: here it is what `make image` built, unless set.
        env["WORKER_IMAGE"] = os.environ.get("WORKER_IMAGE") or PODMAN_DEFAULT_IMAGE
    env.update(extra or {})
    return env

