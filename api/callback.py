"""`POST /api/jobs/{id}/status`: the worker's JobStatus callback, authenticated by a per-job token.

Anonymous at the Functions level (the worker holds no function key); the bearer token is an
HMAC of the job id, checked before anything looks at the instance or the body.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from videojob import bootstrap
from videojob.contract import MAX_EVENT_BYTES, ContractError, ErrorCode, EventState, JobStatus
from videojob.instances import JobInfo, is_url_safe_instance_id
from videojob.orchestration import admit_report, progress_event_limit
from videojob.tokens import bearer_token, verify_job_token

from .blueprint import bp
from .events import Delivery, deliver_event
from .responses import DurableUnavailable, error_response, json_response, not_found, unavailable_response

log = logging.getLogger(__name__)


def _unauthorized() -> func.HttpResponse:
    return error_response(
        401, ErrorCode.UNAUTHORIZED, "a valid job token is required", {"WWW-Authenticate": 'Bearer realm="jobs"'}
    )


def _invalid(message: str) -> func.HttpResponse:
    return error_response(400, ErrorCode.INVALID_EVENT, message)


def parse_event(body: bytes, instance_id: str) -> JobStatus:
    """The event in the body, or `ContractError` with a message safe to return to the worker."""
    event = JobStatus.from_wire(body)  # absurdly nested JSON is a ContractError there too
    if event.state == EventState.CANCELLED:
        raise ContractError("'cancelled' is not a state a worker may report")
    if event.job_id is not None and event.job_id != instance_id:
        raise ContractError("'jobId' does not match the job in the URL")
    return event


@bp.route(route="jobs/{id}/status", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def job_status_callback(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = req.route_params.get("id") or ""
    settings = bootstrap.settings()
    token = bearer_token(req.headers.get("Authorization"))
    if not verify_job_token(settings.callback_signing_key, instance_id, token):
        log.warning("callback rejected: missing or wrong token")
        return _unauthorized()
    if not is_url_safe_instance_id(instance_id):
        return not_found()
    body = req.get_body()
    if len(body) > MAX_EVENT_BYTES:
        return error_response(413, ErrorCode.BODY_TOO_LARGE, f"an event may not exceed {MAX_EVENT_BYTES} bytes")
    try:
        event = parse_event(body, instance_id)
    except ContractError as e:
        return _invalid(str(e))
    limit = progress_event_limit(settings.progress_event_min_seconds, settings.heartbeat_timeout_seconds)

    def admit(job: JobInfo) -> bool:  # PROGRESS_EVENT_MIN_SECONDS, on the status read anyway
        return admit_report(event, job.custom_status, datetime.now(UTC), limit)

    try:
        delivery = await deliver_event(client, instance_id, event.to_wire(), admit)
    except DurableUnavailable:
        return unavailable_response()
    if delivery is Delivery.NOT_FOUND:
        return not_found(instance_id)
    if delivery is Delivery.FINISHED:
        return error_response(410, ErrorCode.ALREADY_FINISHED, f"job {instance_id} has already finished")
    if delivery is Delivery.COALESCED:
        # Accepted (the worker sends a newer one soon); not raised, so the job's history stays small.
        log.debug("job %s: progress seq %s coalesced", instance_id, event.seq)
        return json_response(202, {"id": instance_id, "state": event.state, "seq": event.seq, "coalesced": True})
    log.info("job %s reported %s (seq %s)", instance_id, event.state, event.seq)
    return json_response(202, {"id": instance_id, "state": event.state, "seq": event.seq})
