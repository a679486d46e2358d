"""`make serve` (`python -m devhost.serve`): it stops everything it started on SIGTERM as on Ctrl-C,
and comes up on its preferred port right after a previous run closed its connections."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devhost import stack
from tests.e2e.harness import http

FAKE_WORKER = stack.REPO / "tests" / "e2e" / "fake_worker.py"
Process = tuple[int, str]
"""A pid with its start time (so a reused pid is not mistaken for the same process)."""


def port_with_a_connection_in_time_wait() -> int:
    """A port whose listener is gone, with the server's end of a closed connection in TIME_WAIT
    (what a devhost that just stopped leaves behind)."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp and Node listen
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            conn, _ = server.accept()
            conn.close()  # the server closes first: its end waits in TIME_WAIT
            client.recv(1)
    return port


def test_the_preferred_port_is_chosen_while_connections_of_a_previous_run_linger():
    port = port_with_a_connection_in_time_wait()

    assert stack.free_port(port) == port


def test_a_port_with_a_listener_is_not_chosen():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]

        assert stack.free_port(port) != port


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(ppid, state, start time) from /proc, or None when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], fields[19]


def descendants(root: int) -> set[Process]:
    """Every process below `root`, whatever session or process group it moved to."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            parents.setdefault(st[0], []).append(int(entry.name))
            starts[int(entry.name)] = st[2]
    found, todo = set(), [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child in starts:
                found.add((child, starts[child]))
                todo.append(child)
    return found


def alive(processes: set[Process]) -> set[Process]:
    out = set()
    for pid, start in processes:
        st = _stat(pid)
        if st is not None and st[2] == start and st[1] != "Z":
            out.add((pid, start))
    return out


def wait_for(check: Callable[[], object], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not after {timeout:.0f}s")
        time.sleep(0.2)


def answers(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback)
        return resp.status == 200
    return False


def send_sigterm_to_the_process(serve: subprocess.Popen) -> None:
    os.kill(serve.pid, signal.SIGTERM)


def send_sigterm_to_the_group_then_more(serve: subprocess.Popen) -> None:
    """`kill -TERM -<pgid>` on `make serve`: the whole group gets it, GNU make passes SIGTERM on
    to its child once more, and an impatient user repeats it: signals keep coming while serve
    cleans up (the old handler deadlocked when one arrived while it ran)."""
    os.killpg(serve.pid, signal.SIGTERM)
    end = time.monotonic() + 2
    while time.monotonic() < end and serve.poll() is None:
        os.kill(serve.pid, signal.SIGTERM)
        time.sleep(0.001)


def send_ctrl_c(serve: subprocess.Popen) -> None:
    os.killpg(serve.pid, signal.SIGINT)


@pytest.fixture
def kill_leftovers() -> Iterator[set[Process]]:
    """Whatever a failing test leaves running is killed, so one failure does not leak processes."""
    started: set[Process] = set()
    yield started
    for pid, _ in alive(started):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("stop", [send_sigterm_to_the_process, send_sigterm_to_the_group_then_more,
                                  send_ctrl_c])
def test_serve_stops_azurite_the_devhost_and_its_workers_on_a_stop_signal(
        stop: Callable[[subprocess.Popen], None], tmp_path: Path, kill_leftovers: set[Process]):
    state = tmp_path / "state"
    port = port_with_a_connection_in_time_wait()  # as right after `make demo`
    env = dict(os.environ) | {
        "ALLOWED_HOSTS": "127.0.0.1",
        "CALLBACK_SIGNING_KEY": secrets.token_urlsafe(48),
        "DEVHOST_WORKER_COMMAND": f"{sys.executable} {FAKE_WORKER}",
    }
    command = [sys.executable, "-m", "devhost.serve", "--port", str(port),
               "--azurite-port", str(stack.free_port()), "--state-dir", str(state),
               "--settings", str(tmp_path / "local.settings.json")]
    with (tmp_path / "serve.log").open("wb") as log:
        serve = subprocess.Popen(command, cwd=stack.REPO, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(f"{base}/runtime/webhooks/durabletask/instances/") or serve.poll() is not None,
                 120, "the devhost answers")
        assert serve.poll() is None, (tmp_path / "serve.log").read_text()
        # A worker that never exits (the fake worker hangs on /hang/ URLs).
        code, body = http("POST", f"{base}/api/downloads", {"url": "http://127.0.0.1:9/hang/never.mp4"})
        assert code == 202, body
        wait_for(lambda: stack.running_workers(state), 60, "a worker runs")
        started = descendants(serve.pid)
        kill_leftovers |= started | {(serve.pid, _stat(serve.pid)[2])}
        assert len(started) >= 3  # Azurite, the devhost, the worker (at least)

        stop(serve)
        serve.wait(timeout=60)

        wait_for(lambda: not alive(started), 10, "everything serve started has stopped")
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
    assert serve.returncode == 0, (tmp_path / "serve.log").read_text()
    assert stack.running_workers(state) == []
