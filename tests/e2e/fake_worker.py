"""Test-only stand-in for the worker command (the devhost runs it via DEVHOST_WORKER_COMMAND).

For a job URL under `/hang/` it behaves like a stuck worker: it never calls back and never
exits (until stopped). Any other job runs the real worker in this same process.
"""

import os
import sys
import time

if "/hang/" in os.environ.get("JOB_URL", ""):
    while True:
        time.sleep(3600)
os.execv(sys.executable, [sys.executable, "-m", "worker"])  # noqa: S606 (a fixed program)
