"""How fast the worker image starts: `python -m bench.image_start IMAGE` (run by `make image`).

A container of IMAGE is created as the podman backend creates a job's (`create_arguments`: ACI's
memory and CPU limits, the env by name), reporting to a loopback callback receiver; then the time
from `podman start` to the arrival of the worker's first `started` report is measured: runc's
container start, the interpreter, the imports, the config, the first callback. The job's URL
answers 404, so the job then fails at once and the container exits. Median of `--runs` runs
(each a new container). Prints `start_s=<s>`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from videojob.adapters.containers.podman import (
    container_environment,
    create_arguments,
    podman_environment,
    secret_name,
    secure_env_document,
)
from videojob.contract import container_env as E
from videojob.domain.container_spec import ContainerSpec, group_name

PODMAN = ("podman", "--runtime", "runc")
RUN_ARGS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")


class StartedReports:
    """The loopback callback endpoint: records when each job's first `started` report arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.changed = threading.Condition()
        reports = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                at = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    state = json.loads(body).get("state")
                except (ValueError, AttributeError):
                    state = None
                job = self.path.split("/")[-2] if self.path.count("/") >= 2 else ""
                if state == "started":
                    with reports.changed:
                        reports.arrived.setdefault(job, at)
                        reports.changed.notify_all()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, job_id: str, timeout: float) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: job_id in self.arrived, timeout=timeout)
            return self.arrived.get(job_id)


def job_spec(image: str, port: int) -> ContainerSpec:
    job_id = uuid.uuid4().hex
    env = {
        E.JOB_ID: job_id,
        E.JOB_URL: f"http://127.0.0.1:{port}/missing.mp4",
        E.OUTPUT_CONTAINER: "downloads",
        E.CALLBACK_URL: f"http://127.0.0.1:{port}/api/jobs/{job_id}/status",
        E.ALLOWED_HOSTS: "127.0.0.1",
        E.ALLOW_PRIVATE_ADDRESSES: "true",
    }
    staging = f"http://127.0.0.1:9/devstoreaccount1/staging/{job_id}/a1"  # nothing listens: the job fails first
    secure = {
        E.STAGING_MEDIA_URL: f"{staging}/media?sp=w&sig=image-start",
        E.STAGING_RECORD_URL: f"{staging}/record.json?sp=w&sig=image-start",
        E.CALLBACK_TOKEN: uuid.uuid4().hex,
    }
    return ContainerSpec(
        name=group_name(job_id),
        image=image,
        location=None,
        cpu=1.0,
        memory_gb=1.5,
        env=tuple(sorted(env.items())),
        secure_env=tuple(sorted(secure.items())),
        tags=(("managedBy", "image-start"), ("jobId", job_id)),
        identity_resource_id=None,
        registry=None,
    )


def podman(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> None:
    subprocess.run([*PODMAN, *args], env=env, check=True, capture_output=True, timeout=timeout)


def start_seconds(image: str, reports: StartedReports, timeout: float) -> float:
    spec = job_spec(image, reports.port)
    job_id = dict(spec.env)[E.JOB_ID]
    scope = "image-start"
    secret = secret_name(scope, spec.name)
    # The secure values as the podman backend passes them: a podman secret mounted as a file.
    subprocess.run([*PODMAN, "secret", "rm", secret], capture_output=True, timeout=120, check=False)
    subprocess.run([*PODMAN, "secret", "create", secret, "-"], input=secure_env_document(spec),
                   check=True, capture_output=True, timeout=120)
    try:
        args = create_arguments(spec, scope=scope, run_args=RUN_ARGS)
        podman(*args, env=podman_environment(container_environment(spec), os.environ))
    finally:
        subprocess.run([*PODMAN, "secret", "rm", secret], capture_output=True, timeout=120, check=False)
    try:
        begin = time.monotonic()
        podman("start", spec.name)
        arrived = reports.wait(job_id, timeout)
        if arrived is None:
            raise SystemExit(f"image_start: no `started` report from {spec.name} within {timeout:g} s")
        podman("wait", spec.name, timeout=timeout)
        return arrived - begin
    finally:
        subprocess.run([*PODMAN, "rm", "-f", spec.name], capture_output=True, timeout=120, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    reports = StartedReports()
    times = [start_seconds(args.image, reports, args.timeout) for _ in range(args.runs)]
    print(f"start_s={statistics.median(times):.2f}", flush=True)


if __name__ == "__main__":
    main()
