"""The project's `job_slots` entity with a stand-in job around it, for the devhost's entity
webhook tests (loaded with `--app tests.devhost.slots_app`).

`hold_slot` asks for a slot as a job does (its id and the token of the entity's first answer),
shows `{"granted": true}` once it holds one, and gives it back on a `Release` event. It also sends
`arrived` and `capacity`, which the entity before issue 19.5 read (and now ignores), so the same
test shows the holes on the old entity.
"""

from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

import entities
from videojob.domain import job_slots as slots

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(entities.bp)
SLOTS = df.EntityId(slots.ENTITY_NAME, slots.ENTITY_KEY)


@app.route(route="hold/{id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def hold(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    job_id = req.route_params["id"]
    instance_id = await client.start_new("hold_slot", job_id, {"id": job_id, "capacity": int(req.params["capacity"])})
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def hold_slot(context: df.DurableOrchestrationContext):
    args = context.get_input()
    arrived = slots.format_utc(context.current_utc_datetime)
    token = None
    while True:
        # Written out (not `slots.acquire_request`): the same app runs against the entity before 19.5.
        request = {"id": args["id"], "token": token, "arrived": arrived, "capacity": args["capacity"]}
        answer = yield context.call_entity(SLOTS, slots.ACQUIRE, request)
        token = answer.get("token") or token
        if answer["granted"]:
            break
        context.set_custom_status({"granted": False, "position": answer["position"]})
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=1))
    context.set_custom_status({"granted": True})
    yield context.wait_for_external_event("Release")
    context.signal_entity(SLOTS, slots.RELEASE, {"id": args["id"], "token": token})
    return {"released": True}
