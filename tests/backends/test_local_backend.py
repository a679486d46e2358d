"""The `local` backend with a fake worker: real processes, real signals, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from activities.upload_grant import issue_upload_grant
from videojob.adapters.containers import ContainerBackend, make_backend
from videojob.adapters.containers.local import (
    RUNTIME_VARIABLES,
    LocalBackend,
    LocalRecord,
    tail_lines,
    worker_environment,
)
from videojob.contract.wire import DownloadRequest
from videojob.domain.activity_wire import CreateInput
from videojob.domain.container_port import BackendError, ContainerState
from videojob.domain.container_spec import build_container_spec
from videojob.domain.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
FAKE_WORKER = Path(__file__).with_name("fake_worker.py")
CONNECTION_STRING = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/x;"


def spec_for(job_id: str, app: str = "vd-local"):
    settings = load_settings(
        environ={
            "CONTAINER_BACKEND": "local",
            "OUTPUT_CONNECTION_STRING": CONNECTION_STRING,
            "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
            "CALLBACK_SIGNING_KEY": "s" * 40,
            "WEBSITE_SITE_NAME": app,
        }
    )
    now = datetime.now(UTC)
    request = DownloadRequest(url="https://youtu.be/x")
    # As the create activity builds it: the worker's storage credential is its staging SAS.
    grant = issue_upload_grant(settings, CreateInput(job_id, request, now, now + timedelta(hours=1)))
    return build_container_spec(request, settings, job_id, now, now + timedelta(hours=1), upload=grant)


def fake(*args: str) -> list[str]:
    return [sys.executable, str(FAKE_WORKER), *args]


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def live_members(pgid: int) -> list[int]:
    """Independent of the backend: non-zombie processes whose process group is `pgid`."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rfind(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                out.append(int(entry.name))
    return out


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return not live_members(pgid)  # only zombies left, waiting for their parent to reap them


def record_of(state_dir: Path, name: str) -> LocalRecord:
    return LocalRecord.from_json((state_dir / name / "record.json").read_text())


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "containers"


@pytest.fixture
def cleanup(state_dir: Path):
    """Whatever a test leaves running is stopped and removed, so no process outlives the suite."""
    backends: list[LocalBackend] = []
    yield backends.append
    for b in backends:
        for g in b.list_managed("vd-local"):
            b.delete(g.name)


def test_satisfies_the_backend_protocol(state_dir):
    assert isinstance(LocalBackend(state_dir), ContainerBackend)


def test_make_backend_keeps_local_state_under_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={"CONTAINER_BACKEND": "local", "OUTPUT_CONNECTION_STRING": CONNECTION_STRING,
                                      "CALLBACK_BASE_URL": "http://127.0.0.1:7071", "CALLBACK_SIGNING_KEY": "s" * 40})
    b = make_backend(settings)
    assert isinstance(b, LocalBackend)
    assert b.state_dir == tmp_path / ".devhost" / "containers"
    assert b.list_managed("video-downloader") == []


def test_worker_gets_exactly_the_spec_env_plus_runtime_variables(state_dir, tmp_path, monkeypatch, cleanup):
    monkeypatch.setenv("SECRET_FROM_PARENT", "parent-secret-value")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "another-parent-secret")
    out = tmp_path / "env.json"
    b = LocalBackend(state_dir, command=fake("--env-out", str(out)))
    cleanup(b)
    spec = spec_for("env-job")
    assert b.create(spec).state == ContainerState.RUNNING
    wait_until(lambda: b.state(spec.name).state != ContainerState.RUNNING)

    doc = json.loads(out.read_text())
    env = doc["env"]
    assert set(env) == set(spec.environment()) | set(RUNTIME_VARIABLES)
    assert {k: env[k] for k in spec.environment()} == spec.environment()
    assert env["CALLBACK_TOKEN"] == dict(spec.secure_env)["CALLBACK_TOKEN"]
    assert "SECRET_FROM_PARENT" not in env and "AZURE_CLIENT_SECRET" not in env
    assert env["PYTHONPATH"] == str(REPO)
    # A fresh directory of its own, which is also HOME; TMPDIR is private too.
    assert doc["cwd"] == env["HOME"] and Path(doc["cwd"]).is_relative_to(state_dir / spec.name)
    assert Path(env["TMPDIR"]).is_relative_to(state_dir / spec.name)
    # The record on disk never holds the env.
    record_text = (state_dir / spec.name / "record.json").read_text()
    assert dict(spec.secure_env)["CALLBACK_TOKEN"] not in record_text
    assert b.state(spec.name).state == ContainerState.SUCCEEDED and b.state(spec.name).exit_code == 0


COOKIES = "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t4102444800\tSID\tlocal-cookie-secret-value"


def test_no_account_key_reaches_a_local_worker(state_dir, tmp_path, cleanup):
    """Issue 19: the local worker got OUTPUT_CONNECTION_STRING with the Azurite account key."""
    out = tmp_path / "env.json"
    b = LocalBackend(state_dir, command=fake("--env-out", str(out)))
    cleanup(b)
    b.create(spec_for("key-job"))
    wait_until(out.exists)
    env = json.loads(out.read_text())["env"]
    assert not any("AccountKey" in v or "a2V5" in v for v in env.values())
    assert "OUTPUT_CONNECTION_STRING" not in env
    assert {k for k, v in env.items() if "sig=" in v} == {"STAGING_MEDIA_URL", "STAGING_RECORD_URL"}


def test_cookies_reach_the_worker_as_a_private_file_in_the_group_not_as_a_value(state_dir, tmp_path, cleanup):
    out = tmp_path / "env.json"
    b = LocalBackend(state_dir, command=fake("--env-out", str(out)))
    cleanup(b)
    settings = load_settings(
        environ={
            "CONTAINER_BACKEND": "local",
            "OUTPUT_CONNECTION_STRING": CONNECTION_STRING,
            "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
            "CALLBACK_SIGNING_KEY": "s" * 40,
            "YOUTUBE_COOKIES": COOKIES,
        }
    )
    now = datetime.now(UTC)
    spec = build_container_spec(DownloadRequest(url="https://youtu.be/x"), settings, "cookie-job", now, now)
    b.create(spec)
    wait_until(lambda: b.state(spec.name).state != ContainerState.RUNNING)

    env = json.loads(out.read_text())["env"]
    cookies = Path(env["COOKIES_FILE"])
    assert cookies.is_relative_to(state_dir / spec.name)
    assert cookies.read_text() == COOKIES
    assert cookies.stat().st_mode & 0o777 == 0o600
    assert cookies.parent.stat().st_mode & 0o777 == 0o700
    assert all("local-cookie-secret-value" not in v for v in env.values())
    assert "local-cookie-secret-value" not in (state_dir / spec.name / "record.json").read_text()
    b.delete(spec.name)
    assert not cookies.exists()


def test_runtime_python_can_import_the_repo_packages(state_dir, cleanup):
    b = LocalBackend(state_dir, command=[sys.executable, "-c", "import videojob.contract.wire; print('imported ok')"])
    cleanup(b)
    spec = spec_for("import-job")
    b.create(spec)
    wait_until(lambda: b.state(spec.name).state != ContainerState.RUNNING)
    assert b.state(spec.name).state == ContainerState.SUCCEEDED
    assert "imported ok" in b.logs(spec.name)


def test_exit_code_and_log_tail_are_reported(state_dir, cleanup):
    b = LocalBackend(state_dir, command=fake("--exit", "3", "--lines", "200"))
    cleanup(b)
    spec = spec_for("exit-job")
    b.create(spec)
    wait_until(lambda: b.state(spec.name).state != ContainerState.RUNNING)
    s = b.state(spec.name)
    assert (s.state, s.exit_code, s.is_active) == (ContainerState.FAILED, 3, False)
    assert b.logs(spec.name, tail=3) == "line 198\nline 199\nfake worker exiting\n"
    assert "fake worker started" in b.logs(spec.name, tail=1000)


ALLOCATE = "import sys; block = bytearray(int(sys.argv[1]) * 1024 * 1024); print('allocated', flush=True)"


@pytest.mark.parametrize(
    ("allocate_mb", "state"), [(64, ContainerState.SUCCEEDED), (2048, ContainerState.FAILED)], ids=["within", "beyond"]
)
def test_the_worker_cannot_outgrow_the_containers_memory(state_dir, cleanup, allocate_mb, state):
    spec = spec_for(f"memory-job-{allocate_mb}")
    assert spec.memory_gb * 1024 < 2048  # the default container is smaller than the big allocation
    b = LocalBackend(state_dir, command=[sys.executable, "-c", ALLOCATE, str(allocate_mb)])
    cleanup(b)
    b.create(spec)
    wait_until(lambda: b.state(spec.name).state != ContainerState.RUNNING)
    assert b.state(spec.name).state == state, b.logs(spec.name)
    assert ("MemoryError" in b.logs(spec.name)) == (state == ContainerState.FAILED)


def test_create_is_idempotent(state_dir, tmp_path, cleanup):
    go = tmp_path / "go"
    b = LocalBackend(state_dir, command=fake("--wait-for", str(go)))
    cleanup(b)
    spec = spec_for("twice-job")
    b.create(spec)
    pid = record_of(state_dir, spec.name).pid
    assert b.create(spec).state == ContainerState.RUNNING
    assert record_of(state_dir, spec.name).pid == pid
    go.write_text("go")
    wait_until(lambda: b.state(spec.name).state == ContainerState.SUCCEEDED)
    assert b.logs(spec.name).count("fake worker started") == 1


def test_stop_lets_a_cooperative_worker_exit_and_keeps_its_logs(state_dir, tmp_path, cleanup):
    ready = tmp_path / "ready"
    b = LocalBackend(state_dir, command=fake("--term-exit", "7", "--ready", str(ready), "--sleep", "60"))
    cleanup(b)
    spec = spec_for("stop-job")
    b.create(spec)
    wait_until(ready.exists)
    pgid = record_of(state_dir, spec.name).pid
    b.stop(spec.name)
    assert group_gone(pgid)
    s = b.state(spec.name)
    assert (s.state, s.exit_code, s.is_active) == (ContainerState.STOPPED, 7, False)
    assert b.logs(spec.name).count("got SIGTERM") == 1  # delivered once, not once per process
    b.stop(spec.name)  # again: nothing left to stop, no error
    assert b.state(spec.name).state == ContainerState.STOPPED


def test_stop_kills_a_worker_that_ignores_sigterm_and_its_children(state_dir, tmp_path, cleanup):
    ready = tmp_path / "ready"
    b = LocalBackend(
        state_dir, command=fake("--ignore-term", "--spawn-child", "--ready", str(ready), "--sleep", "60"),
        grace_seconds=0.5,
    )
    cleanup(b)
    spec = spec_for("stubborn-job")
    b.create(spec)
    wait_until(ready.exists)
    pgid = record_of(state_dir, spec.name).pid
    assert len(live_members(pgid)) == 3  # runner, worker, worker's child
    b.stop(spec.name)
    assert group_gone(pgid)
    s = b.state(spec.name)
    assert s.state == ContainerState.STOPPED
    assert "killed" in (s.detail or "")
    assert "fake worker started" in b.logs(spec.name)


def test_delete_removes_processes_record_logs_and_work_dir(state_dir, tmp_path, cleanup):
    ready = tmp_path / "ready"
    b = LocalBackend(state_dir, command=fake("--ready", str(ready), "--sleep", "60"), grace_seconds=5)
    cleanup(b)
    spec = spec_for("delete-job")
    b.create(spec)
    wait_until(ready.exists)
    pgid = record_of(state_dir, spec.name).pid
    b.delete(spec.name)
    assert group_gone(pgid)
    assert not (state_dir / spec.name).exists()
    assert b.state(spec.name).state == ContainerState.MISSING
    assert b.logs(spec.name) == ""
    assert b.list_managed("vd-local") == []
    b.delete(spec.name)  # idempotent
    b.stop(spec.name)
    b.delete("dl-never-existed")


def test_a_restarted_devhost_sees_running_groups_and_their_exit_codes(state_dir, tmp_path, cleanup):
    go = tmp_path / "go"
    spec = spec_for("restart-job")
    # The "devhost" that creates the group is another process, and it exits: the group
    # is no longer anybody's child we can wait for.
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.backends.test_local_backend import spec_for, fake
        from videojob.adapters.containers.local import LocalBackend
        b = LocalBackend({str(state_dir)!r}, command=fake("--wait-for", {str(go)!r}, "--exit", "5"))
        print(b.create(spec_for("restart-job")).state)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ContainerState.RUNNING

    b = LocalBackend(state_dir)
    cleanup(b)
    assert b.state(spec.name).state == ContainerState.RUNNING
    (managed,) = b.list_managed("vd-local")
    assert (managed.name, managed.state, managed.job_id) == (spec.name, ContainerState.RUNNING, "restart-job")
    assert b.list_managed("some-other-app") == []

    go.write_text("go")
    wait_until(lambda: b.state(spec.name).state != ContainerState.RUNNING)
    s = b.state(spec.name)
    assert (s.state, s.exit_code) == (ContainerState.FAILED, 5)
    pgid = record_of(state_dir, spec.name).pid
    b.delete(spec.name)
    assert group_gone(pgid)


def test_a_reused_pid_is_not_mistaken_for_the_worker(state_dir):
    # Another process now has the recorded pid: the group is not Running, and stop/delete
    # must not signal that stranger.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        gdir = state_dir / "dl-old-job"
        gdir.mkdir(parents=True)
        record = LocalRecord(name="dl-old-job", pid=stranger.pid, start_time="1", created_at="2026-01-01T00:00:00Z",
                             tags={"managedBy": "vd-local"})
        (gdir / "record.json").write_text(record.to_json())
        b = LocalBackend(state_dir, grace_seconds=0.2)
        assert b.state("dl-old-job").state == ContainerState.FAILED
        b.stop("dl-old-job")
        b.delete("dl-old-job")
        assert stranger.poll() is None
        assert not gdir.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_names_are_checked(state_dir):
    b = LocalBackend(state_dir)
    spec = spec_for("x")
    from dataclasses import replace

    with pytest.raises(BackendError) as e:
        b.create(replace(spec, name="../escape"))
    assert e.value.retryable is False
    assert b.state("../escape").state == ContainerState.MISSING
    assert b.logs("../../etc/passwd") == ""
    b.delete("../escape")
    assert not (state_dir.parent / "escape").exists()


def test_launch_failure_leaves_nothing_behind(state_dir, cleanup):
    b = LocalBackend(state_dir, command=["/nonexistent/worker-binary"])
    cleanup(b)
    spec = spec_for("missing-binary")
    b.create(spec)  # the runner starts; it is the worker that cannot
    wait_until(lambda: b.state(spec.name).state != ContainerState.RUNNING)
    s = b.state(spec.name)
    assert (s.state, s.exit_code) == (ContainerState.FAILED, 127)
    assert "cannot start the worker" in b.logs(spec.name)


def test_worker_environment_policy():
    env = worker_environment({"A": "1"}, {"PATH": "/bin", "LANG": "C", "SECRET": "x"}, home="/h", tmpdir="/t",
                             pythonpath="/repo")
    assert env == {"A": "1", "PATH": "/bin", "HOME": "/h", "LANG": "C.UTF-8", "TMPDIR": "/t",
                   "PYTHONPATH": "/repo", "PYTHONUNBUFFERED": "1"}
    env = worker_environment({}, {"LANG": "de_DE.UTF-8"}, home="/h", tmpdir="/t", pythonpath="/r")
    assert env["LANG"] == "de_DE.UTF-8"


def test_tail_lines(tmp_path):
    p = tmp_path / "log"
    assert tail_lines(p, 5) == ""
    p.write_bytes(b"".join(b"%d\n" % i for i in range(10000)) + b"partial")
    assert tail_lines(p, 3) == "9998\n9999\npartial"
    assert tail_lines(p, 0) == ""
    p.write_bytes(b"one\ntwo\n")
    assert tail_lines(p, 50) == "one\ntwo\n"


def test_exit_reported_like_aci(state_dir, cleanup):
    """A worker that exits without reporting (issue 12): the group reads as ACI shows a terminated
    container (restart policy Never): Succeeded/Failed by exit code, `Completed`/`Error`, when it ended."""
    for code, state, detail in ((0, ContainerState.SUCCEEDED, "Completed"), (4, ContainerState.FAILED, "Error")):
        b = LocalBackend(state_dir, command=fake("--exit", str(code)))
        cleanup(b)
        spec = spec_for(f"exit-{code}")
        b.create(spec)
        wait_until(lambda: b.state(spec.name).state != ContainerState.RUNNING)  # noqa: B023 - waited on at once
        s = b.state(spec.name)
        assert (s.state, s.exit_code, s.detail) == (state, code, detail)
        finished = datetime.fromisoformat(s.finished_at.replace("Z", "+00:00"))
        assert abs((datetime.now(UTC) - finished).total_seconds()) < 3600
