"""`make serve`: Azurite and the devhost on this machine until Ctrl-C or SIGTERM, for curl and the CLI.

    python -m devhost.serve [--port 7071] [--azurite-port 10000] [--state-dir .devhost]
                            [--settings local.settings.json]

State (instances, timers, local containers) persists in the state dir; blobs live in Azurite's
memory and are gone when it stops. Ctrl-C, SIGTERM (a service manager's stop, or `make` passing
one on) and SIGHUP stop the devhost, the workers it started and Azurite, in that order.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from devhost import stack

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop_requested(signum: int, frame: object) -> None:
    """Leave the wait loop at once; the `finally` blocks stop what was started.

    A signal handler must not touch locks the interrupted code may hold (`Event.set()` here
    used to deadlock with the main thread's `Event.wait()`), so it only raises. Signals that
    follow (`make` passes SIGTERM on to its child after the whole group got one; a second
    Ctrl-C) are ignored, so they cannot cut the cleanup short.
    """
    _ignore_stop_signals()
    raise KeyboardInterrupt


def _ignore_stop_signals() -> None:
    # A no-op handler rather than SIG_IGN: an ignored disposition would pass on to processes
    # started later, a handler is reset by exec.
    for s in STOP_SIGNALS:
        signal.signal(s, lambda *_: None)


def main(argv: list[str] | None = None) -> int:
    try:
        return _serve(argv)
    finally:
        # Everything is stopped: a stop signal still arriving (make passing one on) must not
        # turn the clean exit into death by signal once the interpreter restores the defaults.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _serve(argv: list[str] | None) -> int:
    p = argparse.ArgumentParser(prog="python -m devhost.serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=7071)
    p.add_argument("--azurite-port", type=int, default=10000)
    p.add_argument("--state-dir", type=Path, default=Path(".devhost"))
    p.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    args = p.parse_args(argv)
    # The devhost runs in the repository: paths given here are relative to where we were started.
    state_dir, settings = args.state_dir.resolve(), args.settings.resolve()
    for s in STOP_SIGNALS:
        signal.signal(s, _stop_requested)
    try:
        with stack.run_azurite(stack.free_port(args.azurite_port), stack.free_port(args.azurite_port + 2)) as azurite:
            devhost = stack.Devhost(stack.free_port(args.port), state_dir, state_dir / "devhost.log")
            state_dir.mkdir(parents=True, exist_ok=True)
            try:
                devhost.start(stack.devhost_env(azurite), ("--settings", str(settings)))
                base = devhost.base_url
                print(f"""
devhost  {base}   (log: {devhost.log_path})
Azurite  {azurite.blob_endpoint}  (tables: {azurite.table_endpoint})
web page {base}/api/app

  curl -s -X POST {base}/api/downloads -H 'content-type: application/json' -d '{{"url": "https://youtu.be/<id>"}}'
  python -m videojob.client.cli --base-url {base} submit <url> --wait

Ctrl-C stops everything.""", flush=True)
                while devhost.alive():
                    time.sleep(0.5)
                print(f"the devhost exited; see {devhost.log_path}", file=sys.stderr)
                return 1
            finally:
                _ignore_stop_signals()  # nothing may cut the cleanup short
                devhost.stop()
                stack.stop_local_containers(state_dir)
    except KeyboardInterrupt:
        pass
    except stack.StackError as e:
        print(f"cannot start the local stack: {e}", file=sys.stderr)
        return 1
    print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
