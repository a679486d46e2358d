"""A stand-in for `python -m worker` in the local backend's tests. Options choose its behaviour."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--exit", type=int, default=0)
    p.add_argument("--lines", type=int, default=1)
    p.add_argument("--env-out")
    p.add_argument("--ready")
    p.add_argument("--wait-for", help="sleep until this file exists")
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("--term-exit", type=int, help="exit with this code on SIGTERM")
    p.add_argument("--spawn-child", action="store_true", help="start a long sleep in the same process group")
    a = p.parse_args()

    if a.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if a.term_exit is not None:
        def on_term(signum, frame):
            print("got SIGTERM", flush=True)
            sys.exit(a.term_exit)

        signal.signal(signal.SIGTERM, on_term)
    if a.spawn_child:
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print("fake worker started", flush=True)
    for i in range(a.lines):
        print(f"line {i}")
    sys.stdout.flush()
    if a.env_out:
        doc = {"env": dict(os.environ), "cwd": os.getcwd()}
        tmp = a.env_out + ".tmp"
        Path(tmp).write_text(json.dumps(doc))
        os.replace(tmp, a.env_out)
    if a.ready:
        Path(a.ready).write_text("ready")
    if a.wait_for:
        while not os.path.exists(a.wait_for):
            time.sleep(0.02)
    end = time.monotonic() + a.sleep
    while time.monotonic() < end:
        time.sleep(0.02)
    print("fake worker exiting", flush=True)
    return a.exit


if __name__ == "__main__":
    sys.exit(main())
