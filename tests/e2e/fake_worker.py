"""Test-only stand-in for the worker command (the devhost runs it via DEVHOST_WORKER_COMMAND).

- A job URL under `/hang/`: a stuck worker. It never calls back and never exits (until stopped).
- A job URL under `/lost-final/`: the real worker whose terminal report never arrives. Its
  callback goes through a loopback proxy in this process that forwards every other report and
  answers 503 to `succeeded`/`failed` (the function app down), and it gives that report up after
  a few seconds instead of two minutes (`Tuning.callback_final_give_up_seconds`).
- Any other job: the real worker (`python -m worker`).
"""

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TERMINAL_STATES = ("succeeded", "failed")
LOST_FINAL_GIVE_UP_SECONDS = 2.0


def dropping_terminal_reports(target: str) -> str:
    """A loopback URL that forwards reports to `target`, except terminal ones (503, not forwarded)."""

    class Proxy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                state = json.loads(body).get("state")
            except (ValueError, AttributeError):
                state = None
            if state in TERMINAL_STATES:
                status, answer = 503, b""
            else:
                request = urllib.request.Request(target, data=body, method="POST", headers={
                    "Content-Type": "application/json", "Authorization": self.headers.get("Authorization", "")})
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback devhost)
                        status, answer = response.status, response.read()
                except urllib.error.HTTPError as e:
                    status, answer = e.code, e.read()
                except OSError:
                    status, answer = 502, b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, name="callback-proxy", daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/report"


def run_worker_losing_its_final_report() -> int:
    # As `python -m worker` does: the upload process is forked while this one has a single thread.
    from worker.blob_process import BlobProcess

    blob_process = BlobProcess.start("fork")
    from videojob.contract.container_env import CALLBACK_URL
    from worker.config import Tuning
    from worker.runner import main

    os.environ[CALLBACK_URL] = dropping_terminal_reports(os.environ[CALLBACK_URL])
    try:
        return main(blob_process=blob_process, tuning=Tuning(
            callback_max_attempts=2, callback_backoff_seconds=0.2, callback_backoff_max_seconds=0.5,
            callback_final_give_up_seconds=LOST_FINAL_GIVE_UP_SECONDS))
    finally:
        blob_process.close()


job_url = os.environ.get("JOB_URL", "")
if "/hang/" in job_url:
    while True:
        time.sleep(3600)
if "/lost-final/" in job_url:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    code = run_worker_losing_its_final_report()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
os.execv(sys.executable, [sys.executable, "-m", "worker"])  # noqa: S606 (a fixed program)
