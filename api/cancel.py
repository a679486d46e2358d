"""`POST /api/downloads/{id}/cancel`: ask a running job to stop (the orchestrator cleans up)."""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from videojob.contract import CANCELLED, ErrorCode
from videojob.instances import is_url_safe_instance_id

from .blueprint import bp
from .events import Delivery, deliver_event
from .responses import DurableUnavailable, error_response, json_response, not_found, unavailable_response

log = logging.getLogger(__name__)


@bp.route(route="downloads/{id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def cancel_download(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = req.route_params.get("id")
    if not is_url_safe_instance_id(instance_id):
        return not_found()
    try:
        delivery = await deliver_event(client, instance_id, {"state": CANCELLED})
    except DurableUnavailable:
        return unavailable_response()
    if delivery is Delivery.NOT_FOUND:
        return not_found(instance_id)
    if delivery is Delivery.FINISHED:
        return error_response(409, ErrorCode.ALREADY_FINISHED, f"job {instance_id} has already finished")
    log.info("cancel requested for job %s", instance_id)
    links = client.get_client_response_links(req, instance_id)
    return json_response(
        202,
        {"id": instance_id, "state": CANCELLED, "statusQueryGetUri": links["statusQueryGetUri"]},
        {"Location": links["statusQueryGetUri"]},
    )
