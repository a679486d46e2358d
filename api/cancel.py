"""`POST /api/downloads/{id}/cancel`: ask a running job to stop (the orchestrator cleans up).

A batch (`download_batch`) stops starting items when it gets the cancel, but an orchestrator
cannot raise events to other instances, so its running children are cancelled from here: the
ones its customStatus names (`videojob.domain.batching.running_children`), read after the batch got
the event. A child that started in the moment between is cancelled by cancelling again.
"""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from videojob.contract.wire import ErrorCode, EventState, is_url_safe_instance_id
from videojob.domain.batching import running_children
from videojob.domain.instances import JobLookupFailed, find_job

from .blueprint import bp
from .caller import app_links, authenticate, entra_mode, may_see_job, route_auth_level
from .events import Delivery, deliver_event
from .responses import DurableUnavailable, error_response, json_response, not_found, unavailable_response
from .starters import BATCH_ORCHESTRATOR_NAME

log = logging.getLogger(__name__)

CANCEL_EVENT = {"state": EventState.CANCELLED}


@bp.route(route="downloads/{id}/cancel", methods=["POST"], auth_level=route_auth_level())
@bp.durable_client_input(client_name="client")
async def cancel_download(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    caller = authenticate(req)
    if isinstance(caller, func.HttpResponse):
        return caller
    instance_id = req.route_params.get("id")
    if not is_url_safe_instance_id(instance_id):
        return not_found()
    try:
        if not await may_see_job(client, caller, instance_id):
            return not_found(instance_id)
        delivery = await deliver_event(client, instance_id, CANCEL_EVENT)
        if delivery is Delivery.NOT_FOUND:
            return not_found(instance_id)
        if delivery is Delivery.FINISHED:
            return error_response(409, ErrorCode.ALREADY_FINISHED, f"job {instance_id} has already finished")
        children = await cancel_running_children(client, instance_id)
    except DurableUnavailable:
        return unavailable_response()
    log.info("cancel requested for job %s (%d running children)", instance_id, len(children or ()))
    links = app_links(req, instance_id) if entra_mode() else client.get_client_response_links(req, instance_id)
    body: dict[str, object] = {
        "id": instance_id, "state": EventState.CANCELLED, "statusQueryGetUri": links["statusQueryGetUri"]
    }
    if children is not None:
        body["cancelledChildren"] = children
    return json_response(202, body, {"Location": links["statusQueryGetUri"]})


async def cancel_running_children(client: df.DurableOrchestrationClient, instance_id: str) -> list[str] | None:
    """None for a single job; for a batch, the children the cancel reached (finished or purged
    ones are skipped). Raises `DurableUnavailable` if any could not be reached (a retry of the
    whole cancel is harmless)."""
    try:
        job = await find_job(client, instance_id)
    except JobLookupFailed as e:
        raise DurableUnavailable("get_status") from e
    if job is None or job.name != BATCH_ORCHESTRATOR_NAME:
        return None
    targets = running_children(instance_id, job.custom_status)
    outcomes = await asyncio.gather(
        *(deliver_event(client, child, CANCEL_EVENT) for child in targets), return_exceptions=True
    )
    for outcome in outcomes:
        if isinstance(outcome, DurableUnavailable):
            raise outcome
        if isinstance(outcome, BaseException):
            raise DurableUnavailable("raise_event") from outcome
    return [child for child, outcome in zip(targets, outcomes, strict=True) if outcome is Delivery.RAISED]
