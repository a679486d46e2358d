"""A loopback stand-in for what the Functions host and the Durable extension give a Python function.

- `DurableStandIn`: the extension's HTTP API that `DurableOrchestrationClient` (1.7) talks to
  through `rpcBaseUrl` (start, status, raise event, terminate, purge). It keeps scripted
  instances, answers with the extension's status codes and records every call, so the SDK's
  own client code runs unchanged against it.
- `IndexedFunctions` / `invoke`: index blueprints once and call a function the way the Python
  worker does (user function from `.build().get_user_function()`, the client binding passed as
  the JSON string the `durableClient` converter hands over).

No orchestrator code runs here: instances change state only when a test says so (or on
terminate/purge), which is all the HTTP API and the sweeper need.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.utils import http_utils
from azure.functions import meta
from azure.functions.durable_functions import DurableClientConverter

T = TypeVar("T")

RPC_PREFIX = "/durabletask/"
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask"
TASK_HUB = "TestHub"
SYSTEM_KEY = "standin-system-key"  # noqa: S105 (a fake key, so tests can see it is passed through)
INSTANCE_PLACEHOLDER = "INSTANCEID"

RUNNING_STATUSES = ("Pending", "Running", "ContinuedAsNew", "Suspended")
FINISHED_STATUSES = ("Completed", "Failed", "Terminated", "Canceled")


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Instance:
    instance_id: str
    name: str = "download_job"
    input: Any = None
    runtime_status: str = "Running"
    custom_status: Any = None
    output: Any = None
    created_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_updated_time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def status_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "instanceId": self.instance_id,
            "runtimeStatus": self.runtime_status,
            "input": self.input,
            "customStatus": self.custom_status,
            "output": self.output,
            "createdTime": format_time(self.created_time),
            "lastUpdatedTime": format_time(self.last_updated_time),
        }


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


class DurableStandIn:
    """The extension's client HTTP API on 127.0.0.1:<free port>. Use as a context manager."""

    def __init__(self, task_hub: str = TASK_HUB):
        self.task_hub = task_hub
        self.instances: dict[str, Instance] = {}
        self.calls: list[Call] = []
        self.failures: dict[str | None, int] = {}
        self._before: dict[str, list[Callable[[], None]]] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> DurableStandIn:
        standin = self

        class Handler(_Handler):
            owner = standin

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._port = self._server.server_address[1]
        self._server.daemon_threads = True
        # A short poll interval keeps `stop()` (which waits for the serving loop) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="durable-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DurableStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
        return f"{self.origin}{RPC_PREFIX}"

    # -- the client binding ----------------------------------------------------------------
    def binding(self) -> dict[str, Any]:
        """The durableClient binding data, shaped like the extension's (HTTP protocol)."""
        return client_binding(self.origin, self.task_hub)

    def binding_json(self) -> str:
        return json.dumps(self.binding())

    # -- scripting -------------------------------------------------------------------------
    def add_instance(self, instance_id: str | None = None, runtime_status: str = "Running", **fields: Any) -> Instance:
        inst = Instance(instance_id=instance_id or uuid.uuid4().hex, runtime_status=runtime_status, **fields)
        with self._lock:
            self.instances[inst.instance_id] = inst
        return inst

    def set_status(self, instance_id: str, runtime_status: str) -> None:
        with self._lock:
            inst = self.instances[instance_id]
            inst.runtime_status = runtime_status
            inst.last_updated_time = datetime.now(UTC)

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
            data = c.body
            if isinstance(data, str):
                data = json.loads(data)
            out.append(StartedJob(name=c.name or "", instance_id=c.instance_id or "", input=data))
        return out

    @property
    def raised_events(self) -> list[RaisedEvent]:
        return [
            RaisedEvent(instance_id=c.instance_id or "", name=c.name or "", data=c.body)
            for c in self.calls_of("raise_event")
        ]

    # -- request handling (runs on the server's threads) -----------------------------------
    def handle(self, method: str, raw_path: str, body: bytes) -> tuple[int, Any]:
        split = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        parsed_body = json.loads(body) if body.strip() else None
        path = split.path
        rel = path[len(RPC_PREFIX):] if path.startswith(RPC_PREFIX) else None
        parts = rel.split("/") if rel is not None else []
        kind, instance_id, name = "unknown", None, None
        if method == "POST" and parts[:1] == ["orchestrators"] and len(parts) in (2, 3):
            kind, name = "start_new", parts[1]
            instance_id = parts[2] if len(parts) == 3 else None
        elif parts[:1] == ["instances"] and len(parts) == 2 and parts[1] == "" and method == "GET":
            kind = "list"
        elif parts[:1] == ["instances"] and len(parts) == 2 and method == "GET":
            kind, instance_id = "get_status", parts[1]
        elif parts[:1] == ["instances"] and len(parts) == 2 and method == "DELETE":
            kind, instance_id = "purge", parts[1]
        elif parts[:1] == ["instances"] and len(parts) == 4 and parts[2] == "raiseEvent" and method == "POST":
            kind, instance_id, name = "raise_event", parts[1], parts[3]
        elif parts[:1] == ["instances"] and len(parts) == 3 and parts[2] == "terminate" and method == "POST":
            kind, instance_id = "terminate", parts[1]

        with self._lock:
            if kind == "start_new" and instance_id is None:
                instance_id = uuid.uuid4().hex
            self.calls.append(Call(kind, method, path, query, parsed_body, instance_id, name))
            pending = self._before.get(kind)
            if pending:
                pending.pop(0)()
            failure = self.failures.get(kind, self.failures.get(None))
            if failure is not None:
                return failure, {"Message": "stand-in scripted failure"}
            return self._answer(kind, instance_id, name, query, parsed_body)

    def _answer(self, kind: str, instance_id: str | None, name: str | None, query: dict[str, str], body: Any):
        inst = self.instances.get(instance_id) if instance_id else None
        now = datetime.now(UTC)
        if kind == "start_new":
            assert instance_id is not None and name is not None
            if inst is not None and inst.runtime_status in RUNNING_STATUSES:
                return 409, {"Message": f"An instance with ID '{instance_id}' already exists."}
            data = json.loads(body) if isinstance(body, str) else body
            self.instances[instance_id] = Instance(instance_id, name=name, input=data, runtime_status="Pending")
            return 202, management_urls(self.origin, self.task_hub, instance_id)
        if kind == "list":
            prefix = query.get("instanceIdPrefix", "")
            return 200, [i.status_json() for i in self.instances.values() if i.instance_id.startswith(prefix)]
        if kind in ("get_status", "raise_event", "terminate", "purge") and inst is None:
            return 404, None
        assert inst is not None
        if kind == "get_status":
            return (202 if inst.runtime_status in RUNNING_STATUSES else 200), inst.status_json()
        if kind == "raise_event":
            if inst.runtime_status in FINISHED_STATUSES:
                return 410, None
            return 202, None
        if kind == "terminate":
            if inst.runtime_status in FINISHED_STATUSES:
                return 410, None
            inst.runtime_status, inst.output, inst.last_updated_time = "Terminated", query.get("reason"), now
            return 202, None
        if kind == "purge":
            if inst.runtime_status not in FINISHED_STATUSES:
                return 400, {"Message": "only finished instances can be purged"}
            del self.instances[inst.instance_id]
            return 200, {"instancesDeleted": 1}
        return 404, None


class _Handler(BaseHTTPRequestHandler):
    owner: DurableStandIn

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload = self.owner.handle(self.command, self.path, body)
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve  # noqa: N815 (BaseHTTPRequestHandler's naming)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def management_urls(origin: str, task_hub: str, instance_id: str) -> dict[str, str]:
    """The extension's HttpManagementPayload for one instance, rooted at `origin`."""
    base = f"{origin}{WEBHOOK_PREFIX}/instances/{instance_id}"
    qs = f"taskHub={task_hub}&connection=Storage&code={SYSTEM_KEY}"
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{base}?{qs}",
        "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}?{qs}",
        "terminatePostUri": f"{base}/terminate?reason={{text}}&{qs}",
        "rewindPostUri": f"{base}/rewind?reason={{text}}&{qs}",
        "purgeHistoryDeleteUri": f"{base}?{qs}",
        "restartPostUri": f"{base}/restart?{qs}",
        "suspendPostUri": f"{base}/suspend?reason={{text}}&{qs}",
        "resumePostUri": f"{base}/resume?reason={{text}}&{qs}",
    }


def client_binding(origin: str, task_hub: str = TASK_HUB) -> dict[str, Any]:
    """durableClient binding data as the extension sends it; `rpcBaseUrl` is what the 1.x SDK calls."""
    qs = f"taskHub={task_hub}&connection=Storage&code={SYSTEM_KEY}"
    create = f"{origin}{WEBHOOK_PREFIX}/orchestrators/{{functionName}}[/{{instanceId}}]"
    return {
        "taskHubName": task_hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{create}?{qs}",
            "createAndWaitOnNewInstancePostUri": (
                f"{create}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{qs}"
            ),
        },
        "managementUrls": management_urls(origin, task_hub, INSTANCE_PLACEHOLDER),
        "baseUrl": f"{origin}{WEBHOOK_PREFIX}",
        "requiredQueryStringParameters": qs,
        "rpcBaseUrl": f"{origin}{RPC_PREFIX}",
        "httpBaseUrl": "",
    }


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


async def close_sdk_session() -> None:
    """The 1.7 client caches one aiohttp session (and an asyncio lock) per process; both belong to
    the loop that created them. Close and reset them before that loop ends."""
    await http_utils._close_session()
    http_utils._session_lock = asyncio.Lock()


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

