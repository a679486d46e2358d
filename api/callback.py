"""`POST /api/jobs/{id}/status`: the worker's JobStatus callback, authenticated by a per-attempt token.

Anonymous at the Functions level (the worker holds no function key). In order, before anything
is raised: the token's MAC and expiry (`videojob.domain.tokens`, before anything looks at the instance
or the body), the event's attempt against the token's, the token's run and attempt against the
job's customStatus, then this process's ledger and the customStatus spacing
(`videojob.domain.report_gate`, `orchestration.admit_report`).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from videojob import bootstrap
from videojob.contract.wire import (
    MAX_EVENT_BYTES,
    ContractError,
    ErrorCode,
    EventState,
    JobStatus,
    is_url_safe_instance_id,
)
from videojob.domain.orchestration import admit_report, progress_event_limit
from videojob.domain.report_gate import (
    ReportLedgers,
    attempt_check,
    report_spacing,
    started_already_taken,
    terminal_already_taken,
)
from videojob.domain.tokens import TokenClaims, bearer_token, verified_claims

from .blueprint import bp
from .events import Delivery, job_state, raise_to_job
from .responses import DurableUnavailable, error_response, json_response, not_found, unavailable_response

log = logging.getLogger(__name__)

LEDGERS = ReportLedgers()
"""What this app process raised per job (`report_gate`): one per process, shared by its requests."""


def _unauthorized() -> func.HttpResponse:
    return error_response(
        401, ErrorCode.UNAUTHORIZED, "a valid job token is required", {"WWW-Authenticate": 'Bearer realm="jobs"'}
    )


def _invalid(message: str) -> func.HttpResponse:
    return error_response(400, ErrorCode.INVALID_EVENT, message)


def parse_event(body: bytes, instance_id: str, claims: TokenClaims | None = None) -> JobStatus:
    """The event in the body, or `ContractError` with a message safe to return to the worker."""
    event = JobStatus.from_wire(body)  # absurdly nested JSON is a ContractError there too
    if event.state == EventState.CANCELLED:
        raise ContractError("'cancelled' is not a state a worker may report")
    if event.job_id is not None and event.job_id != instance_id:
        raise ContractError("'jobId' does not match the job in the URL")
    if claims is not None and (event.attempt or 1) != claims.attempt:
        raise ContractError("'attempt' is not the attempt this token was issued for")
    return event


def _attempt_ended(instance_id: str, attempt: int) -> func.HttpResponse:
    return error_response(410, ErrorCode.ALREADY_FINISHED, f"attempt {attempt} of job {instance_id} has ended")


def _accepted(instance_id: str, event: JobStatus, marker: str | None = None) -> func.HttpResponse:
    """202: raised, or (with `marker`) taken and not raised: `coalesced` (a progress within the
    spacing: a newer one follows) or `duplicate` (a repeat of a `started` or terminal report)."""
    body = {"id": instance_id, "state": event.state, "seq": event.seq}
    return json_response(202, body | ({marker: True} if marker else {}))


@bp.route(route="jobs/{id}/status", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def job_status_callback(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = req.route_params.get("id") or ""
    settings = bootstrap.settings()
    claims = verified_claims(settings.callback_signing_key, instance_id, bearer_token(req.headers.get("Authorization")))
    if claims is None or claims.expired(datetime.now(UTC)):
        log.warning("callback rejected: missing, wrong or expired token")
        return _unauthorized()
    if not is_url_safe_instance_id(instance_id):
        return not_found()
    body = req.get_body()
    if len(body) > MAX_EVENT_BYTES:
        return error_response(413, ErrorCode.BODY_TOO_LARGE, f"an event may not exceed {MAX_EVENT_BYTES} bytes")
    try:
        event = parse_event(body, instance_id, claims)
    except ContractError as e:
        return _invalid(str(e))

    try:
        state = await job_state(client, instance_id)
    except DurableUnavailable:
        return unavailable_response()
    if state is Delivery.NOT_FOUND:
        return not_found(instance_id)
    if state is Delivery.FINISHED:
        return error_response(410, ErrorCode.ALREADY_FINISHED, f"job {instance_id} has already finished")
    assert not isinstance(state, Delivery)
    status = state.custom_status
    check = attempt_check(claims, status)
    if check == "other_run":
        log.warning("job %s: callback with a token of another run or attempt refused", instance_id)
        return _unauthorized()
    if check == "ended":
        if terminal_already_taken(claims, event, status):
            return _accepted(instance_id, event, "duplicate")
        return _attempt_ended(instance_id, claims.attempt)
    if check == "unknown":
        # No proof either way (the status names no run yet): the worker retries, nothing is raised.
        return unavailable_response()

    if started_already_taken(event, status):
        return _accepted(instance_id, event, "duplicate")
    limit = progress_event_limit(settings.progress_event_min_seconds, settings.heartbeat_timeout_seconds)
    if not admit_report(event, status, datetime.now(UTC), limit):
        return _accepted(instance_id, event, "coalesced")
    spacing = report_spacing(settings.progress_event_min_seconds, settings.heartbeat_timeout_seconds)
    decision, before = LEDGERS.decide(instance_id, claims, event, time.monotonic(), spacing)
    if decision == "ended":
        return _attempt_ended(instance_id, claims.attempt)
    if decision != "raise":
        log.debug("job %s: %s seq %s %s", instance_id, event.state, event.seq, decision)
        return _accepted(instance_id, event, decision)

    try:
        delivery = await raise_to_job(client, instance_id, event.to_wire())
    except DurableUnavailable:
        LEDGERS.undo(instance_id, before)  # not raised: the worker's retry must pass
        return unavailable_response()
    if delivery is Delivery.NOT_FOUND:
        return not_found(instance_id)
    if delivery is Delivery.FINISHED:
        return error_response(410, ErrorCode.ALREADY_FINISHED, f"job {instance_id} has already finished")
    log.info("job %s reported %s (seq %s)", instance_id, event.state, event.seq)
    return _accepted(instance_id, event)
