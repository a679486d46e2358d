"""Loading the function app and invoking its functions the way the Python worker does.

The app is indexed once (`get_functions()` is not idempotent). Triggers are decoded and
results encoded with the converters `azure.functions` registers for the Durable bindings, so
the SDK code between them (client middleware, orchestrator handle) is what runs in Azure.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.durable_functions.constants import ACTIVITY_TRIGGER, ENTITY_TRIGGER, ORCHESTRATION_TRIGGER
from azure.durable_functions.models.utils import http_utils
from azure.functions import meta
from azure.functions.durable_functions import (
    ActivityTriggerConverter,
    EnitityTriggerConverter,
    OrchestrationTriggerConverter,
)
from azure.functions.timer import TimerRequest

OUT_OF_PROC_MARKER = "$OutOfProcData$:"


@dataclass(frozen=True)
class HttpFunction:
    name: str
    route: str
    methods: tuple[str, ...]
    auth_level: str
    trigger_name: str
    client_name: str | None
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class TimerFunction:
    name: str
    schedule: str
    trigger_name: str
    client_name: str | None
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class Activity:
    name: str
    trigger_name: str
    user_function: Callable[..., Any]
    client_name: str | None = None
    """A durable client input binding (an activity may start or signal instances, as in the worker)."""


@dataclass(frozen=True)
class Orchestrator:
    name: str
    trigger_name: str
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class EntityFunction:
    name: str
    """Lowercase, as the SDK writes it in entity ids (`@name@key`)."""
    trigger_name: str
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class FunctionIndex:
    http: tuple[HttpFunction, ...]
    timers: tuple[TimerFunction, ...]
    activities: dict[str, Activity]
    orchestrators: dict[str, Orchestrator]
    entities: dict[str, EntityFunction] = field(default_factory=dict)


@dataclass(frozen=True)
class InvocationContext:
    """The parts of `func.Context` a function may read."""

    invocation_id: str
    function_name: str
    function_directory: str
    trace_context: Any = None
    retry_context: Any = None
    thread_local_storage: Any = None


def find_app(module: Any) -> func.FunctionRegister:
    for value in vars(module).values():
        if isinstance(value, func.FunctionRegister):
            return value
    raise LookupError(f"{module.__name__} defines no FunctionApp")


def load_index(module_name: str = "function_app", route_prefix: str = "api") -> FunctionIndex:
    """Index the app defined by `module_name`, imported from the current folder first (ahead of
    anything else on `sys.path` under the same name)."""
    cwd = str(Path.cwd())
    if cwd in sys.path:
        sys.path.remove(cwd)
    sys.path.insert(0, cwd)
    app = find_app(importlib.import_module(module_name))
    http: list[HttpFunction] = []
    timers: list[TimerFunction] = []
    activities: dict[str, Activity] = {}
    orchestrators: dict[str, Orchestrator] = {}
    entities: dict[str, EntityFunction] = {}
    for fn in app.get_functions():  # once: a second call raises "does not have a unique function name"
        name = fn.get_function_name()
        bindings = [json.loads(b) for b in fn.get_raw_bindings()]
        trigger = next(b for b in bindings if b["type"].lower().endswith("trigger"))
        client = next((b["name"] for b in bindings if b["type"] == "durableClient"), None)
        user = fn.get_user_function()
        kind = trigger["type"]
        if kind == "httpTrigger":
            route = (trigger.get("route") or name).strip("/")
            full = f"{route_prefix.strip('/')}/{route}".strip("/") if route_prefix else route
            methods = tuple(m.upper() for m in trigger.get("methods") or ("GET", "POST"))
            level = str(trigger.get("authLevel") or "FUNCTION").upper()
            http.append(HttpFunction(name, full, methods, level, trigger["name"], client, user))
        elif kind == "timerTrigger":
            timers.append(TimerFunction(name, trigger["schedule"], trigger["name"], client, user))
        elif kind == ACTIVITY_TRIGGER:
            activities[name] = Activity(name, trigger["name"], user, client)
        elif kind == ORCHESTRATION_TRIGGER:
            orchestrators[name] = Orchestrator(name, trigger["name"], user)
        elif kind == ENTITY_TRIGGER:
            entity_name = (trigger.get("entityName") or name).lower()
            entities[entity_name] = EntityFunction(entity_name, trigger["name"], user)
    return FunctionIndex(tuple(http), tuple(timers), activities, orchestrators, entities)


def _context_kwargs(fn: Callable[..., Any], name: str, bound: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(fn).parameters
    if "context" in params and "context" not in bound:
        return {"context": InvocationContext(str(uuid.uuid4()), name, str(Path.cwd()))}
    return {}


async def _call(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Async functions run on the host's loop (as the worker does); sync ones in a thread."""
    if inspect.iscoroutinefunction(fn):
        return await fn(**kwargs)
    return await asyncio.to_thread(fn, **kwargs)


async def invoke_http(f: HttpFunction, request: func.HttpRequest, client_binding: str) -> func.HttpResponse:
    kwargs: dict[str, Any] = {f.trigger_name: request}
    if f.client_name:
        kwargs[f.client_name] = client_binding
    kwargs |= _context_kwargs(f.user_function, f.name, kwargs)
    result = await _call(f.user_function, kwargs)
    if isinstance(result, func.HttpResponse):
        return result
    if isinstance(result, (str, bytes)):
        return func.HttpResponse(result)
    return func.HttpResponse(status_code=204 if result is None else 200, body=None if result is None else str(result))


async def invoke_timer(f: TimerFunction, past_due: bool, client_binding: str) -> None:
    kwargs: dict[str, Any] = {f.trigger_name: TimerRequest(past_due=past_due)}
    if f.client_name:
        kwargs[f.client_name] = client_binding
    kwargs |= _context_kwargs(f.user_function, f.name, kwargs)
    await _call(f.user_function, kwargs)


def _trigger_name(function: Any, trigger_type: str) -> str:
    return next(b.name for b in function.get_bindings() if b.type == trigger_type)


def orchestrator_from_builder(builder: Any) -> Orchestrator:
    """An orchestrator declared with a decorator (`FunctionBuilder`), outside an indexed app."""
    function = builder.build()
    return Orchestrator(function.get_function_name(), _trigger_name(function, ORCHESTRATION_TRIGGER),
                        function.get_user_function())


def activity_from_builder(builder: Any) -> Activity:
    """An activity declared with a decorator (`FunctionBuilder`), outside an indexed app."""
    function = builder.build()
    return Activity(function.get_function_name(), _trigger_name(function, ACTIVITY_TRIGGER),
                    function.get_user_function())


def entity_from_builder(builder: Any) -> EntityFunction:
    """An entity declared with a decorator (`FunctionBuilder`), outside an indexed app."""
    function = builder.build()
    trigger = next(b for b in function.get_bindings() if b.type == ENTITY_TRIGGER)
    name = (getattr(trigger, "entity_name", None) or function.get_function_name()).lower()
    return EntityFunction(name, trigger.name, function.get_user_function())


def entity_batch_json(name: str, key: str, exists: bool, state: str | None,
                      operations: list[tuple[str, str | None, bool]]) -> str:
    """The entity trigger's payload (the extension's `EntityContextToString`,
    Bindings/EntityTriggerAttributeBindingProvider.cs): exactly these four keys (the SDK builds its
    context from them). An operation's `input` is its `RequestMessage.Input` as is (`null` when it
    has none); the SDK's `get_input` decodes it twice, so what an orchestration or the Python client
    sent (JSON text, serialized once more) arrives as the value it was."""
    batch = [{"name": op, "input": value, "isSignal": signal} for op, value, signal in operations]
    return json.dumps({"self": {"name": name, "key": key}, "exists": exists, "state": state, "batch": batch})


@dataclass(frozen=True)
class EntityOutcome:
    exists: bool = False
    state: str | None = None
    """JSON text."""
    results: tuple[dict[str, Any], ...] = ()
    """One per operation, in order: `isError`, `result` (JSON text)."""
    error: str | None = None
    """The whole batch failed (the function raised outside an operation)."""


def run_entity(e: EntityFunction, batch_json: str) -> EntityOutcome:
    """One batch through the SDK's entity handle (blocking: call it from a worker thread)."""
    context = EnitityTriggerConverter.decode(meta.Datum(type="string", value=batch_json), trigger_metadata=None)
    try:
        encoded = EnitityTriggerConverter.encode(e.user_function(**{e.trigger_name: context}), expected_type=None)
        answer = json.loads(encoded.value)
        return EntityOutcome(bool(answer.get("entityExists")), answer.get("entityState"),
                             tuple(answer.get("results") or ()))
    except Exception as exc:
        return EntityOutcome(error=f"{type(exc).__name__}: {exc}"[:2000])


@dataclass(frozen=True)
class OrchestratorOutcome:
    state: dict[str, Any]
    """The SDK's answer; without `schemaVersion` when the SDK gave none (see `exception`)."""
    error: str | None
    exception: Exception | None = None
    """What the handle raised outside the SDK's failure protocol (a bug below the orchestrator)."""

    @property
    def answered(self) -> bool:
        return "schemaVersion" in self.state


def run_orchestrator(o: Orchestrator, context_json: str) -> OrchestratorOutcome:
    """One episode through the SDK's handle; a failed orchestration raises with its state attached."""
    context = OrchestrationTriggerConverter.decode(meta.Datum(type="string", value=context_json), trigger_metadata=None)
    try:
        encoded = OrchestrationTriggerConverter.encode(o.user_function(**{o.trigger_name: context}), expected_type=None)
    except Exception as e:  # the SDK's failure protocol: message + marker + state JSON
        message = str(e)
        head, marker, tail = message.partition(OUT_OF_PROC_MARKER)
        if not marker:
            return OrchestratorOutcome({"isDone": False, "actions": []}, f"{type(e).__name__}: {message}", e)
        state = json.loads(tail)
        return OrchestratorOutcome(state, state.get("error") or head.strip())
    return OrchestratorOutcome(json.loads(encoded.value), None)


@dataclass(frozen=True)
class ActivityOutcome:
    result: str | None = None
    reason: str | None = None
    details: str | None = None

    @property
    def failed(self) -> bool:
        return self.reason is not None


def _activity_kwargs(a: Activity, input_text: str | None, client_binding: str | None) -> dict[str, Any]:
    datum = meta.Datum(type="json", value=input_text or "null")
    value = ActivityTriggerConverter.decode(datum, trigger_metadata=None)
    kwargs: dict[str, Any] = {a.trigger_name: value}
    if a.client_name:
        kwargs[a.client_name] = client_binding
    return kwargs | _context_kwargs(a.user_function, a.name, kwargs)


def is_async_activity(a: Activity) -> bool:
    """Run on the host's loop, as the worker runs `async def` functions on its own (the SDK's
    client keeps one aiohttp session per process, bound to the loop that made it)."""
    return inspect.iscoroutinefunction(a.user_function)


async def run_async_activity(a: Activity, input_text: str | None, client_binding: str | None) -> ActivityOutcome:
    try:
        result = await a.user_function(**_activity_kwargs(a, input_text, client_binding))
        return ActivityOutcome(result=ActivityTriggerConverter.encode(result, expected_type=None).value)
    except Exception as e:
        reason, details = activity_failure(a.name, e)
        return ActivityOutcome(reason=reason, details=details)


def call_activity(a: Activity, input_text: str | None) -> str | None:
    """Run an activity as the worker does (input decoded, result encoded by the library's
    converters); raises what the activity raises. Blocking: call it from a worker thread."""
    result = a.user_function(**_activity_kwargs(a, input_text, None))
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return ActivityTriggerConverter.encode(result, expected_type=None).value


def activity_failure(name: str, exc: BaseException) -> tuple[str, str]:
    """`TaskFailed`'s Reason and Details for an activity that raised (the SDK hands the
    orchestrator `Exception(f"{Reason} \\n {Details}")`)."""
    message = str(exc)[:2000]
    details = json.dumps({"type": type(exc).__name__, "message": message})
    return f"Activity function '{name}' failed: {message}", details


def run_activity(a: Activity, input_text: str | None) -> ActivityOutcome:
    """Run an activity (blocking; call it from a worker thread) and encode its result or failure."""
    try:
        return ActivityOutcome(result=call_activity(a, input_text))
    except Exception as e:
        reason, details = activity_failure(a.name, e)
        return ActivityOutcome(reason=reason, details=details)


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def close_sdk_session() -> None:
    """The 1.7 client caches one aiohttp session (and an asyncio lock) per process; both belong to
    the loop that created them. Close and reset them before that loop ends."""
    await http_utils._close_session()
    http_utils._session_lock = asyncio.Lock()
