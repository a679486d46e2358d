"""The devhost's HTTP server and process: `python -m devhost [--port 7071]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import azure.functions as func
from aiohttp import web

from devhost.emulator import config, easyauth
from devhost.emulator.engine import Engine
from devhost.emulator.functions import (
    FunctionIndex,
    HttpFunction,
    close_sdk_session,
    invoke_http,
    invoke_timer,
    load_index,
)
from devhost.emulator.routes import match_route
from devhost.emulator.schedule import parse_schedule, resolve_setting_reference
from devhost.emulator.store import Store
from devhost.emulator.webhooks import DurableApi

log = logging.getLogger("devhost")

DEFAULT_PORT = 7071
DEFAULT_STATE_DIR = ".devhost"
WORKER_COMMAND_ENV = "DEVHOST_WORKER_COMMAND"
"""Test-only: a command (shell words) the local backend runs instead of `python -m worker`."""


class FunctionRoutes:
    """Dispatches requests under the route prefix to the app's HTTP triggers."""

    def __init__(self, index: FunctionIndex, api: DurableApi, sign_in: easyauth.LocalSignIn | None = None):
        self.index = index
        self.api = api
        self.sign_in = sign_in

    def find(self, method: str, path: str) -> tuple[HttpFunction, dict[str, str]] | None | bool:
        seen_path = False
        for f in self.index.http:
            params = match_route(f.route, path)
            if params is None:
                continue
            seen_path = True
            if method in f.methods:
                return f, params
        return seen_path

    async def handle(self, request: web.Request) -> web.StreamResponse:
        found = self.find(request.method, request.path.lstrip("/"))
        if found is True:
            return web.Response(status=405)
        if not found:
            return web.Response(status=404)
        f, params = found  # type: ignore[misc]
        origin = f"{request.scheme}://{request.host}"
        body = await request.read()
        req = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=self.sign_in.request_headers(request) if self.sign_in else dict(request.headers),
            params=dict(request.query),
            route_params=params,
            body=body,
        )
        # Like `func start`, keys are not enforced locally (auth level FUNCTION/ADMIN).
        try:
            resp = await invoke_http(f, req, self.api.client_binding(origin))
        except Exception:
            log.exception("function %s raised", f.name)
            return web.Response(status=500)
        headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-length"}
        if not any(k.lower() == "content-type" for k in headers) and resp.mimetype:
            charset = f"; charset={resp.charset}" if resp.charset else ""
            headers["Content-Type"] = f"{resp.mimetype}{charset}"
        return web.Response(status=resp.status_code, body=resp.get_body(), headers=headers)


async def run_timer_triggers(index: FunctionIndex, api: DurableApi, origin: str) -> None:
    async def loop_one(f) -> None:  # noqa: ANN001
        schedule = parse_schedule(resolve_setting_reference(f.schedule))
        while True:
            now = datetime.now(UTC)
            due = schedule.next_after(now)
            await asyncio.sleep((due - now).total_seconds())
            late = (datetime.now(UTC) - due).total_seconds() > 5
            try:
                await invoke_timer(f, late, api.client_binding(origin))
            except Exception:
                log.exception("timer function %s raised", f.name)

    await asyncio.gather(*(loop_one(f) for f in index.timers))


def install_local_backend(state_dir: Path) -> None:
    """Containers of the `local` and `podman` backends are tracked under the devhost's state dir."""
    backend = (os.environ.get("CONTAINER_BACKEND") or "").strip().lower()
    if backend == "podman":
        from devhost.stack import PODMAN_DIR
        from videojob import bootstrap
        from videojob.adapters.containers.podman import PodmanBackend

        bootstrap.override(backend=PodmanBackend(state_dir / PODMAN_DIR))
        return
    if backend != "local":
        return
    from videojob import bootstrap
    from videojob.adapters.containers.local import LocalBackend

    kwargs: dict = {"state_dir": state_dir / "containers"}
    command = os.environ.get(WORKER_COMMAND_ENV)
    if command:
        import shlex

        kwargs["command"] = tuple(shlex.split(command))
    bootstrap.override(backend=LocalBackend(**kwargs))


def build_app(index: FunctionIndex, engine: Engine, api: DurableApi, port: int) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes(api.routes())
    sign_in = easyauth.LocalSignIn() if easyauth.entra_mode() else None
    if sign_in is not None:
        app.add_routes(sign_in.routes())
    app.router.add_route("*", "/{tail:.*}", FunctionRoutes(index, api, sign_in).handle)
    origin = f"http://127.0.0.1:{port}"
    engine.client_binding = lambda: api.client_binding(origin)

    async def lifecycle(app: web.Application):  # noqa: ANN202
        await engine.start()
        timers = asyncio.get_running_loop().create_task(run_timer_triggers(index, api, origin))
        yield
        timers.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await timers
        await engine.stop()
        with contextlib.suppress(Exception):
            await close_sdk_session()

    app.cleanup_ctx.append(lifecycle)
    return app


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    p.add_argument("--port", type=int, default=int(os.environ.get("DEVHOST_PORT", DEFAULT_PORT)))
    p.add_argument("--state-dir", type=Path, default=Path(os.environ.get("DEVHOST_STATE_DIR", DEFAULT_STATE_DIR)))
    p.add_argument("--app-dir", type=Path, default=None,
                   help="the function app's folder (default: the current one); host.json, local.settings.json "
                        "and the app module are read from it")
    p.add_argument("--app", default="function_app", help="module defining the FunctionApp (default function_app)")
    p.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    p.add_argument("--settings-sample", type=Path, default=Path("local.settings.sample.json"))
    p.add_argument("--log-level", default=os.environ.get("DEVHOST_LOG_LEVEL", "INFO"))
    return p.parse_args(argv)


def app_problem(root: Path, module: str) -> str | None:
    """Why `module` cannot be the app in `root`, or None. The module must be a file inside the
    folder: otherwise Python would import whatever `sys.path` holds under that name (a folder
    without `function_app.py`, run with this project on PYTHONPATH, would serve the project's own
    app), where the Functions host simply finds no functions."""
    if not root.is_dir():
        return f"{root} is not a folder"
    relative = Path(*module.split("."))
    if not ((root / relative).with_suffix(".py").is_file() or (root / relative / "__init__.py").is_file()):
        return (f"{root} has no {relative.with_suffix('.py')}: not a Python function app folder "
                "(run the devhost in your app's folder, or name it with --app-dir)")
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    root = (args.app_dir or Path.cwd()).resolve()
    problem = app_problem(root, args.app)
    if problem:
        print(f"devhost: {problem}", file=sys.stderr)
        return 2
    os.chdir(root)
    if args.settings_sample.exists() and config.ensure_local_settings(args.settings, args.settings_sample):
        log.info("created %s from %s with a new signing key", args.settings, args.settings_sample)
    config.apply_settings(args.settings, args.port)
    os.environ.setdefault("LOCAL_SETTINGS_PATH", str(args.settings))
    if easyauth.play_the_platform():
        log.info("AUTH_MODE=entra: sign in at http://127.0.0.1:%d/.auth/login", args.port)
    host = config.host_json(root)
    index = load_index(args.app, config.route_prefix(host))
    install_local_backend(args.state_dir.resolve())
    store = Store(args.state_dir / "durable.sqlite3")
    engine = Engine(store, index, default_version=config.default_version(host))
    api = DurableApi(engine, config.hub_name(host))
    app = build_app(index, engine, api, args.port)
    log.info("devhost: %d HTTP, %d orchestrator, %d activity, %d timer functions on http://127.0.0.1:%d",
             len(index.http), len(index.orchestrators), len(index.activities), len(index.timers), args.port)
    for f in index.http:
        log.info("  %s: [%s] http://127.0.0.1:%d/%s", f.name, ",".join(f.methods), args.port, f.route)
    try:
        web.run_app(app, host="127.0.0.1", port=args.port, print=None, handle_signals=True,
                    shutdown_timeout=2)
    finally:
        store.close()
    return 0

