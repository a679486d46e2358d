"""The devhost's own Durable HTTP API on a loopback port, scripted for the trigger tests.

- `DurableStandIn`: `devhost.emulator.webhooks.DurableApi` (what `DurableOrchestrationClient` 1.7 talks
  to through `rpcBaseUrl`) over a devhost store, so status codes, payloads and time formats are
  the devhost's: there is no second model of the API here. No orchestrator runs (the engine never
  starts an episode): instances change state only when a test says so (`add_instance`,
  `set_status`, `instances.pop`) or by the API's own start/terminate/purge. On top, for
  scripting: every request is recorded (`calls`), failures can be injected (`fail`) and races
  scripted (`before_next`).
- `IndexedFunctions` / `run`: index blueprints once and call a function the way the Python
  worker does (user function from `.build().get_user_function()`, the client binding passed as
  the JSON string the `durableClient` converter hands over).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import azure.durable_functions as df
import azure.functions as func
from aiohttp import web
from azure.functions import meta
from azure.functions.durable_functions import DurableClientConverter

import entities
import orchestrators
from devhost.emulator.engine import Engine
from devhost.emulator.functions import FunctionIndex, close_sdk_session, entity_from_builder, orchestrator_from_builder
from devhost.emulator.store import Instance, InstanceQuery, Store
from devhost.emulator.webhooks import DurableApi

T = TypeVar("T")

TASK_HUB = "TestHub"
SYSTEM_KEY = "standin-system-key"  # noqa: S105 (a fake key, so tests can see it is passed through)
CALL_KINDS = {"start": "start_new", "status": "get_status", "list_instances": "list", "raise_event": "raise_event",
              "purge": "purge"}
"""The request kinds tests name, by `DurableApi` handler (`operation` is `terminate` or unknown)."""


@dataclass(frozen=True)
class Call:
    """One request the client made. `kind`: start_new, get_status, list, raise_event, terminate,
    purge or unknown. `body` is the request body parsed once as JSON (None when empty)."""

    kind: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    instance_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class StartedJob:
    name: str
    instance_id: str
    input: Any  # fully decoded (the client encodes the input twice)


@dataclass(frozen=True)
class RaisedEvent:
    instance_id: str
    name: str
    data: Any
    """What the orchestrator would receive (the client encodes event data twice: usually a str)."""

    @property
    def payload(self) -> Any:
        return json.loads(self.data) if isinstance(self.data, str) else self.data


@dataclass(frozen=True)
class SeededInstance:
    instance_id: str
    runtime_status: str
    name: str
    input: Any
    custom_status: Any


class _Paused(Engine):
    """The devhost engine with no orchestrator running: a started instance stays Pending."""

    def kick(self, instance_id: str) -> None:
        pass


@cache
def _orchestrators() -> FunctionIndex:
    """The app's orchestrators (so a start names one, as the extension requires; never run) and its
    entities (run: the sweeper reads and signals `job_slots`)."""
    found = (orchestrator_from_builder(b) for b in (orchestrators.download_job, orchestrators.download_batch))
    slots = entity_from_builder(entities.job_slots)
    return FunctionIndex((), (), {}, {o.name: o for o in found}, {slots.name: slots})


@cache
def _loop() -> asyncio.AbstractEventLoop:
    """One event loop thread serves every stand-in of the process (each on its own port)."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="durable-standin", daemon=True).start()
    return loop


def _on_loop(coro: Awaitable[T]) -> T:
    return asyncio.run_coroutine_threadsafe(coro, _loop()).result(timeout=30)  # type: ignore[arg-type]


class _Instances(MutableMapping[str, SeededInstance]):
    """The store's instances as a mapping; deleting one purges it whatever its status."""

    def __init__(self, store: Store):
        self._store = store

    def __getitem__(self, instance_id: str) -> SeededInstance:
        inst = self._store.get(instance_id)
        if inst is None:
            raise KeyError(instance_id)
        return SeededInstance(inst.id, inst.status, inst.name, inst.input, inst.custom_status)

    def __delitem__(self, instance_id: str) -> None:
        if not self._store.purge(instance_id):
            raise KeyError(instance_id)

    def __setitem__(self, instance_id: str, value: SeededInstance) -> None:
        raise TypeError("use DurableStandIn.add_instance")

    def __iter__(self) -> Iterator[str]:
        return iter([inst.id for inst in self._store.query_instances(InstanceQuery(), 10**6).instances])

    def __len__(self) -> int:
        return len(list(self))


class DurableStandIn:
    """The Durable HTTP API on 127.0.0.1:<free port>, scripted. Use as a context manager."""

    def __init__(self, task_hub: str = TASK_HUB):
        self.store = Store(Path(":memory:"))
        self.api = DurableApi(_Paused(self.store, _orchestrators()), task_hub, system_key=SYSTEM_KEY)
        self.instances = _Instances(self.store)
        self.calls: list[Call] = []
        self.failures: dict[str | None, int] = {}
        self._before: dict[str, list[Callable[[], None]]] = {}
        self._lock = threading.RLock()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> DurableStandIn:
        app = web.Application(middlewares=[self._script])
        app.add_routes(self.api.routes())
        self._runner = web.AppRunner(app, access_log=None)

        async def serve() -> int:
            assert self._runner is not None
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self._port = _on_loop(serve())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            _on_loop(self._runner.cleanup())
            self._runner = None

    def __enter__(self) -> DurableStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.store.close()

    @property
    def port(self) -> int:
        """Kept after `stop()`: a client bound to a stopped stand-in meets a closed port (host down)."""
        assert self._port is not None, "the stand-in was never started"
        return self._port

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def rpc_base_url(self) -> str:
        return self.binding()["rpcBaseUrl"]

    # -- the client binding ----------------------------------------------------------------
    def binding(self) -> dict[str, Any]:
        """The durableClient binding data, as the devhost (and the extension) hands it over."""
        return json.loads(self.binding_json())

    def binding_json(self) -> str:
        return self.api.client_binding(self.origin)

    # -- scripting -------------------------------------------------------------------------
    def add_instance(self, instance_id: str | None = None, runtime_status: str = "Running", *,
                     name: str = "download_job", input: Any = None, custom_status: Any = None,  # noqa: A002
                     output: Any = None, created_time: datetime | None = None,
                     last_updated_time: datetime | None = None) -> SeededInstance:
        now = datetime.now(UTC)
        inst = Instance(instance_id or uuid.uuid4().hex, name, runtime_status, input, output, custom_status,
                        created_time or now, last_updated_time or now)
        self.store.put(inst)
        return self.instances[inst.id]

    def set_status(self, instance_id: str, runtime_status: str) -> None:
        inst = self.store.get(instance_id)
        assert inst is not None, f"no instance {instance_id}"
        self.store.put(dataclasses.replace(inst, status=runtime_status, updated=datetime.now(UTC)))

    def fail(self, status: int = 500, kind: str | None = None) -> None:
        """Answer `status` to every request of `kind` (start_new, get_status, ...), or to all."""
        with self._lock:
            self.failures[kind] = status

    def before_next(self, kind: str, action: Callable[[], None]) -> None:
        """Run `action` once, just before answering the next request of `kind` (to script races)."""
        with self._lock:
            self._before.setdefault(kind, []).append(action)

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    # -- what happened ---------------------------------------------------------------------
    def calls_of(self, kind: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.kind == kind]

    @property
    def started(self) -> list[StartedJob]:
        out = []
        for c in self.calls_of("start_new"):
            data = json.loads(c.body) if isinstance(c.body, str) else c.body
            out.append(StartedJob(name=c.name or "", instance_id=c.instance_id or "", input=data))
        return out

    @property
    def raised_events(self) -> list[RaisedEvent]:
        return [
            RaisedEvent(instance_id=c.instance_id or "", name=c.name or "", data=c.body)
            for c in self.calls_of("raise_event")
        ]

    # -- on the server's loop --------------------------------------------------------------
    @web.middleware
    async def _script(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        match = request.match_info
        kind = CALL_KINDS.get(getattr(match.handler, "__name__", ""), "unknown")
        if kind == "unknown" and match.get("operation", "").lower() == "terminate":
            kind = "terminate"
        raw = await request.read()
        call = Call(kind, request.method, request.path, dict(request.query), json.loads(raw) if raw.strip() else None,
                    match.get("id"), match.get("event") or match.get("name"))
        with self._lock:
            self.calls.append(call)
            pending = self._before.get(kind)
            if pending:
                pending.pop(0)()
            failure = self.failures.get(kind, self.failures.get(None))
        if failure is not None:
            return web.json_response({"Message": "stand-in scripted failure"}, status=failure)
        response = await handler(request)
        if kind == "start_new" and call.instance_id is None and isinstance(response, web.Response) \
                and response.status == 202:
            with self._lock:  # the id the API chose (the call was recorded before it existed)
                started = dataclasses.replace(call, instance_id=json.loads(response.text)["id"])
                self.calls[self.calls.index(call)] = started
        return response


# -- invoking functions the way the Python worker does --------------------------------------


class IndexedFunctions:
    """Blueprints indexed once into a fresh app (indexing the same app twice is an error)."""

    def __init__(self, *blueprints: Any):
        app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
        for bp in blueprints:
            app.register_functions(bp)
        self.functions = {f.get_function_name(): f for f in app.get_functions()}

    def user_function(self, name: str) -> Callable[..., Any]:
        return self.functions[name].get_user_function()

    def bindings(self, name: str) -> list[dict[str, Any]]:
        return json.loads(self.functions[name].get_function_json())["bindings"]


def client_binding_value(binding_json: str) -> Any:
    """What the worker passes for a durableClient input: the converter's decoding of the string datum."""
    return DurableClientConverter.decode(meta.Datum(type="string", value=binding_json), trigger_metadata=None)


def run(coro: Awaitable[T]) -> T:
    """Run one invocation in a fresh event loop, closing the SDK's cached session afterwards."""

    async def main() -> T:
        try:
            return await coro
        finally:
            await close_sdk_session()

    return asyncio.run(main())


def http_request(
    method: str,
    url: str,
    *,
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
) -> func.HttpRequest:
    """A request as the worker builds it; `url` must be absolute (the management URLs use its origin)."""
    assert url.startswith(("http://", "https://")), "the worker always passes an absolute URL"
    split = urlsplit(url)
    params = {k: v[-1] for k, v in parse_qs(split.query).items()}
    return func.HttpRequest(
        method=method,
        url=url,
        headers=headers or {},
        params=params,
        route_params=route_params or {},
        body=body.encode("utf-8") if isinstance(body, str) else body,
    )
