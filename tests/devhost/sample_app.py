"""A tiny Durable app for testing the devhost engine (loaded with `--app tests.devhost.sample_app`)."""

import json
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["name"], None, json.loads(body) if body else None)
    return client.create_check_status_response(req, instance_id)


@app.route(route="ping/{id}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def ping(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = req.route_params["id"]
    status = await client.get_status(instance_id)
    if not status or not status.runtime_status:
        return func.HttpResponse(status_code=404)
    await client.raise_event(instance_id, "Ping", req.get_json())
    return func.HttpResponse(status_code=202)


@app.orchestration_trigger(context_name="context")
def pipeline(context: df.DurableOrchestrationContext):
    """Activities in sequence, a durable timer, then an event raced against a timeout."""
    args = context.get_input() or {}
    first = yield context.call_activity("echo", {"step": 1})
    second = yield context.call_activity("echo", {"step": 2, "previous": first})
    context.set_custom_status({"stage": "sleeping"})
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=args.get("sleep", 1)))
    context.set_custom_status({"stage": "waiting"})
    waiter = context.wait_for_external_event("Ping")
    timeout = context.create_timer(context.current_utc_datetime + timedelta(seconds=args.get("wait", 30)))
    winner = yield context.task_any([waiter, timeout])
    if winner == waiter:
        timeout.cancel()
        ping = winner.result
    else:
        ping = None
    pair = [context.call_activity("echo", {"step": 3}), context.call_activity("echo", {"step": 4})]
    both = yield context.task_all(pair)
    return {"first": first, "second": second, "ping": ping, "both": both}


@app.orchestration_trigger(context_name="context")
def retrying(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=200, max_number_of_attempts=3)
    result = yield context.call_activity_with_retry("flaky", options, context.get_input())
    return result


@app.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext):
    yield context.call_activity("echo", {"step": 1})
    context.set_custom_status({"phase": "failed"})
    raise RuntimeError("deadline_exceeded: the job took too long")


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    """Starts every child of `children` at once (each `{"id"?, "sleep", "fail"?}`) and reports each
    one's output or failure, in order."""
    specs = (context.get_input() or {}).get("children", [])
    tasks = [context.call_sub_orchestrator("child", spec, spec.get("id")) for spec in specs]
    pending = list(tasks)
    while pending:
        yield context.task_any(pending)
        pending = [t for t in pending if not t.is_completed]
    return [{"error": str(t.result)} if isinstance(t.result, Exception) else {"ok": t.result} for t in tasks]


@app.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    args = context.get_input() or {}
    context.set_custom_status({"child": "sleeping"})
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=args.get("sleep", 0)))
    if args.get("fail"):
        raise RuntimeError(args["fail"])
    return {"me": context.instance_id, "parent": context.parent_instance_id, "echo": args.get("echo")}


@app.orchestration_trigger(context_name="context")
def retrying_parent(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=200, max_number_of_attempts=3)
    result = yield context.call_sub_orchestrator_with_retry("flaky_child", options, context.get_input())
    return result


@app.orchestration_trigger(context_name="context")
def flaky_child(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("flaky", context.get_input())
    return result


@app.orchestration_trigger(context_name="context")
def generations(context: df.DurableOrchestrationContext):
    """Generation 1 sets a custom status, waits for Go and continues as new; generation 2 waits
    for Later and returns both payloads."""
    args = context.get_input()
    if args["generation"] == 1:
        context.set_custom_status({"set_by": 1})
        go = yield context.wait_for_external_event("Go")
        context.continue_as_new({"generation": 2, "go": go})
        return None
    later = yield context.wait_for_external_event("Later")
    return {"go": args["go"], "later": later}


@app.orchestration_trigger(context_name="context")
def gated_generations(context: df.DurableOrchestrationContext):
    """`generations`, but the episode that continues as new holds until the test lets it go: it
    writes `<gate>.held` once Go is in, then waits for `<gate>.open` (first run only, not in replay)."""
    args = context.get_input()
    if args["generation"] == 1:
        go = yield context.wait_for_external_event("Go")
        if not context.is_replaying:
            gate = Path(args["gate"])
            gate.with_suffix(".held").touch()
            for _ in range(600):
                if gate.with_suffix(".open").exists():
                    break
                time.sleep(0.1)
        context.continue_as_new({"generation": 2, "go": go})
        return None
    later = yield context.wait_for_external_event("Later")
    return {"go": args["go"], "later": later}


@app.orchestration_trigger(context_name="context")
def handing_over(context: df.DurableOrchestrationContext):
    """Generation 1 waits for Go, then, in the same episode (Also was raised before Go), schedules an
    activity that touches `touch`, a child `<id>-child` and a day-long timer, and continues as new
    at once; generation 2 returns."""
    args = context.get_input()
    if args["generation"] == 1:
        yield context.wait_for_external_event("Go")
        work = [context.call_activity("touch", args["touch"]),
                context.call_sub_orchestrator("child", {"echo": "orphan"}, f"{context.instance_id}-child"),
                context.create_timer(context.current_utc_datetime + timedelta(days=1)),
                context.wait_for_external_event("Also")]
        yield context.task_any(work)
        context.continue_as_new({"generation": 2, "touch": args["touch"]})
        return None
    return {"generation": 2}


@app.activity_trigger(input_name="path")
def touch(path: str) -> str:
    Path(path).write_text("touched")
    return path


@app.orchestration_trigger(context_name="context")
def renewing_child(context: df.DurableOrchestrationContext):
    """Sleeps a moment and continues as new until `left` reaches 0, then returns its last input."""
    args = context.get_input() or {}
    yield context.create_timer(context.current_utc_datetime + timedelta(milliseconds=100))
    if args.get("left", 0) > 0:
        context.continue_as_new({"left": args["left"] - 1, "generation": args.get("generation", 1) + 1})
        return None
    return {"me": context.instance_id, "parent": context.parent_instance_id, "generation": args.get("generation", 1)}


@app.orchestration_trigger(context_name="context")
def renewing_parent(context: df.DurableOrchestrationContext):
    result = yield context.call_sub_orchestrator("renewing_child", context.get_input())
    return {"child": result}


@app.orchestration_trigger(context_name="context")
def drifting(context: df.DurableOrchestrationContext):
    """Wrong on purpose: the activity's input differs in every replay."""
    first = yield context.call_activity("echo", {"nonce": uuid.uuid4().hex})
    second = yield context.call_activity("echo", first)
    return second


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context: df.DurableEntityContext) -> None:
    """`add` (answers the new value), `get`, `boom` (raises), `reset`."""
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += context.get_input()
        context.set_result(value)
    elif operation == "get":
        context.set_result(value)
    elif operation == "boom":
        context.set_result(None)
        raise ValueError("counter refused: boom")
    elif operation == "reset":
        value = 0
        context.set_result(None)
    context.set_state(value)


@app.entity_trigger(context_name="context", entity_name="Recorder")
def recorder(context: df.DurableEntityContext) -> None:
    """Keeps what each operation received: its name, its input (or why `get_input` failed) and the
    input's Python type."""
    seen = context.get_state(lambda: [])
    try:
        value = context.get_input()
        seen.append({"op": context.operation_name, "input": value, "type": type(value).__name__})
    except Exception as e:
        seen.append({"op": context.operation_name, "error": type(e).__name__})
    context.set_state(seen)


@app.route(route="signal/{name}/{key}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def signal(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The Python client's `signal_entity` with the request's JSON body as the input."""
    entity = df.EntityId(req.route_params["name"], req.route_params["key"])
    await client.signal_entity(entity, req.params.get("op", "record"), req.get_json())
    return func.HttpResponse(status_code=202)


@app.orchestration_trigger(context_name="context")
def recording(context: df.DurableOrchestrationContext):
    """Signals the recorder named by `key` with `value` (an orchestration's `signal_entity`)."""
    args = context.get_input()
    context.signal_entity(df.EntityId("recorder", args["key"]), "record", args["value"])
    yield context.call_activity("echo", {"signalled": args["key"]})


@app.orchestration_trigger(context_name="context")
def counting(context: df.DurableOrchestrationContext):
    """Signals `add` (fire and forget), then calls `add` and `get` on the counter named by `key`;
    `boom` calls the failing operation and reports the error."""
    args = context.get_input() or {}
    entity = df.EntityId("counter", args.get("key", "main"))
    if args.get("boom"):
        try:
            yield context.call_entity(entity, "boom")
        except Exception as e:
            return {"error": str(e)}
    if args.get("signal"):
        context.signal_entity(entity, "add", args["signal"])
    added = yield context.call_entity(entity, "add", args.get("add", 1))
    seen = yield context.call_entity(entity, "get")
    return {"added": added, "seen": seen}


@app.orchestration_trigger(context_name="context")
def signal_then_fail(context: df.DurableOrchestrationContext):
    """Sends a signal and fails in the same episode: the signal still goes out."""
    args = context.get_input() or {}
    yield context.call_activity("echo", {"step": 1})
    context.signal_entity(df.EntityId("counter", args["key"]), "add", 5)
    raise RuntimeError("failing after the signal")


@app.activity_trigger(input_name="payload")
def echo(payload: dict) -> dict:
    return {"echo": payload, "pid": os.getpid()}


@app.activity_trigger(input_name="payload")
def flaky(payload: dict) -> str:
    """Fails until it has been called `failures + 1` times (counted in a file)."""
    counter = Path(payload["counter"])
    calls = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(calls))
    if calls <= payload["failures"]:
        raise ValueError(f"attempt {calls} failed")
    return f"ok after {calls}"


@app.timer_trigger(arg_name="timer", schedule="%SAMPLE_SCHEDULE%", run_on_startup=False, use_monitor=False)
def tick(timer: func.TimerRequest) -> None:
    target = Path(os.environ["SAMPLE_TICKS_FILE"])
    with target.open("a") as f:
        f.write("tick\n")
