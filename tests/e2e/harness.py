"""What the end-to-end tests do as a user would: HTTP calls to the devhost, blobs in Azurite."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devhost import stack

Body = dict[str, Any]


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw) if raw else None
        except ValueError:
            return e.code, raw.decode(errors="replace")


@dataclass
class Job:
    id: str
    links: Body
    seen: list[Body] = field(default_factory=list)

    def status(self) -> Body:
        code, body = http("GET", self.links["statusQueryGetUri"])
        assert code in (200, 202), (code, body)
        self.seen.append(body)
        return body

    def wait(self, until: Callable[[Body], bool], timeout: float, interval: float = 0.2) -> Body:
        end = time.monotonic() + timeout
        while True:
            body = self.status()
            if until(body):
                return body
            if time.monotonic() > end:
                raise AssertionError(f"job {self.id} still {body.get('runtimeStatus')} "
                                     f"({body.get('customStatus')}) after {timeout}s")
            time.sleep(interval)

    def wait_done(self, timeout: float = 60) -> Body:
        return self.wait(lambda b: b["runtimeStatus"] not in ("Pending", "Running"), timeout)

    def wait_phase(self, phase: str, timeout: float = 30) -> Body:
        return self.wait(lambda b: (b.get("customStatus") or {}).get("phase") == phase
                         or b["runtimeStatus"] not in ("Pending", "Running"), timeout)

    @property
    def group(self) -> str:
        """The container group of the job's first attempt, as its status names it (names are
        unique per orchestration run, so they cannot be derived from the id alone)."""
        for body in self.seen:
            if name := first_group(body):
                return name
        return first_group(self.wait(lambda b: first_group(b) is not None, timeout=30)) or ""


def first_group(body: Body) -> str | None:
    """The first attempt's group in a status: from a progress status of attempt 1, or from the
    attempts list a finished job reports."""
    custom = body.get("customStatus") or {}
    if custom.get("attempt") == 1 and custom.get("containerGroup"):
        return custom["containerGroup"]
    output = body.get("output") if isinstance(body.get("output"), dict) else {}
    attempts = custom.get("attempts") or output.get("attempts") or []
    return attempts[0].get("group") if attempts else None


@dataclass
class LocalStack:
    devhost: stack.Devhost
    azurite: stack.Azurite
    env: dict[str, str]
    args: tuple[str, ...]

    @property
    def state_dir(self) -> Path:
        return self.devhost.state_dir

    def submit(self, url: str, **options: Any) -> Job:
        code, body = http("POST", f"{self.devhost.base_url}/api/downloads", {"url": url, **options})
        assert code == 202, (code, body)
        return Job(body["id"], body)

    def restart(self, *, crash: bool) -> None:
        if crash:
            self.devhost.kill()
        else:
            self.devhost.stop()
        self.devhost.start(self.env, self.args)

    def running_workers(self) -> list[str]:
        return stack.running_workers(self.state_dir)

    def worker_pids(self, group: str) -> list[int]:
        """The worker processes inside a local group (its leader is the runner, playing the container)."""
        from videojob.adapters.containers.local import group_members

        record = json.loads((self.state_dir / "containers" / group / "record.json").read_text())
        return [pid for pid in group_members(record["pid"]) if pid != record["pid"]]

    def worker_token(self, job_id: str, custom_status: Body) -> str:
        """The callback token the worker of the attempt `custom_status` shows held: the one the
        container spec builder gives it, from the run and attempt in the status (attempt 1 when a
        finished status names none) and the deadline tag of its group."""
        from videojob.contract import container_env
        from videojob.contract.wire import DownloadRequest
        from videojob.domain.activity_wire import parse_utc
        from videojob.domain.container_spec import build_container_spec
        from videojob.domain.settings import load_settings

        group_dir = self.state_dir / "containers" / custom_status["containerGroup"]
        record = json.loads((group_dir / "record.json").read_text())
        settings = load_settings(environ={**self.env, "CALLBACK_BASE_URL": self.devhost.base_url})
        deadline = parse_utc(record["tags"]["deadline"])
        spec = build_container_spec(DownloadRequest(url="http://127.0.0.1/x"), settings, job_id, deadline, deadline,
                                    custom_status.get("attempt", 1), run=custom_status.get("run"))
        return dict(spec.secure_env)[container_env.CALLBACK_TOKEN]

    def kill_worker(self, group: str) -> None:
        pids = self.worker_pids(group)
        assert pids, f"no worker process in {group}"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

    def blob_bytes(self, blob: Body) -> bytes:
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        return service.get_blob_client(blob["container"], blob["name"]).download_blob().readall()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def error_code(body: Body) -> str | None:
    return ((body.get("customStatus") or {}).get("error") or {}).get("code")
