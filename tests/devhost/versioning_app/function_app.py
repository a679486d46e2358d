"""A Durable app that exercises orchestration versioning through the same SDK calls as the Durable
Python SDK's sample `samples-v2/orchestration_versioning` (Azure/azure-functions-durable-python@
20ceeaaff337bbe8d45337d790ea96148c711f05, function_app.py and README.md): `start_new(..., version=)`,
`context.version` choosing a code path, `call_sub_orchestrator(..., version=)` and without one, and
`defaultVersion` in host.json. Served by the devhost with `--app-dir` (tests/devhost/test_versioning.py)."""

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    version = req.params.get("version")
    if version:
        instance_id = await client.start_new(req.route_params["name"], version=version)
    else:
        instance_id = await client.start_new(req.route_params["name"])
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def versioned(context: df.DurableOrchestrationContext):
    """Takes the legacy path under version 1.0, then waits for Proceed (time to redeploy), then asks
    two children for their versions: one started with 0.9, one with the host's default."""
    greeting = yield context.call_activity("legacy_step" if context.version == "1.0" else "current_step", None)
    context.set_custom_status("waiting for Proceed")
    yield context.wait_for_external_event("Proceed")
    pinned = yield context.call_sub_orchestrator("report_version", version="0.9")
    defaulted = yield context.call_sub_orchestrator("report_version")
    return {"version": context.version, "pinned_child": pinned, "default_child": defaulted, "step": greeting}


@app.orchestration_trigger(context_name="context")
def report_version(context: df.DurableOrchestrationContext):
    return context.version


@app.activity_trigger(input_name="ignored")
def legacy_step(ignored: None) -> str:
    return "legacy"


@app.activity_trigger(input_name="ignored")
def current_step(ignored: None) -> str:
    return "current"
