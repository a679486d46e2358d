"""`make serve`: Azurite and the devhost on this machine until Ctrl-C, for curl and the CLI.

    python -m devhost.serve [--port 7071] [--azurite-port 10000]

State (instances, timers, local containers) persists in `.devhost/`; blobs live in Azurite's
memory and are gone when it stops.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from . import stack

STATE_DIR = Path(".devhost")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devhost.serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=7071)
    p.add_argument("--azurite-port", type=int, default=10000)
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with stack.run_azurite(stack.free_port(args.azurite_port)) as azurite:
            devhost = stack.Devhost(stack.free_port(args.port), STATE_DIR, STATE_DIR / "devhost.log")
            STATE_DIR.mkdir(exist_ok=True)
            try:
                devhost.start(stack.devhost_env(azurite))
                base = devhost.base_url
                print(f"""
devhost  {base}   (log: {devhost.log_path})
Azurite  {azurite.blob_endpoint}

  curl -s -X POST {base}/api/downloads -H 'content-type: application/json' -d '{{"url": "https://youtu.be/<id>"}}'
  python -m videojob.cli --base-url {base} submit <url> --wait

Ctrl-C stops everything.""", flush=True)
                while not stop.wait(0.5):
                    if not devhost.alive():
                        print(f"the devhost exited; see {devhost.log_path}", file=sys.stderr)
                        return 1
            finally:
                devhost.stop()
                stack.stop_local_containers(STATE_DIR)
    except KeyboardInterrupt:
        pass
    except stack.StackError as e:
        print(f"cannot start the local stack: {e}", file=sys.stderr)
        return 1
    print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
