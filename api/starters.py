"""HTTP starters: validate the request, start `download_job`, answer with the check-status JSON."""

from __future__ import annotations

import logging
from collections.abc import Callable

import azure.durable_functions as df
import azure.functions as func

from videojob import bootstrap
from videojob.contract import DownloadRequest, JobPlan
from videojob.request_parsing import (
    RequestLimits,
    RequestRejected,
    parse_download_request,
    parse_seed_request,
)
from videojob.settings import Settings
from videojob.url_policy import UrlPolicy

from .blueprint import bp
from .responses import DurableUnavailable, check_status_response, durable_call, error_response, unavailable_response

log = logging.getLogger(__name__)

ORCHESTRATOR_NAME = "download_job"

Parser = Callable[[bytes, str | None, RequestLimits], DownloadRequest]


def request_limits(settings: Settings) -> RequestLimits:
    # JOB_DEADLINE_SECONDS is both the default and the ceiling: a caller may ask for a shorter
    # deadline, never a longer (costlier) one than the operator allows.
    return RequestLimits(
        policy=UrlPolicy(settings.allowed_hosts, settings.allow_private_addresses),
        max_deadline_seconds=settings.job_deadline_seconds,
    )


def job_plan(request: DownloadRequest, settings: Settings) -> JobPlan:
    return JobPlan(
        request,
        deadline_seconds=request.deadline_seconds or settings.job_deadline_seconds,
        heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
        provision_max_attempts=settings.provision_max_attempts,
        failed_group_policy=settings.failed_group_policy,
    )


async def start_job(req: func.HttpRequest, client: df.DurableOrchestrationClient, parse: Parser) -> func.HttpResponse:
    settings = bootstrap.settings()
    try:
        request = parse(req.get_body(), req.headers.get("Content-Type"), request_limits(settings))
    except RequestRejected as e:
        log.info("download request rejected: %s", e.code)
        return error_response(e.status, e.code, e.message)
    plan = job_plan(request, settings)
    try:
        instance_id = await durable_call("start_new", client.start_new(ORCHESTRATOR_NAME, None, plan.to_wire()))
    except DurableUnavailable:
        return unavailable_response()
    log.info("started job %s (format=%s)", instance_id, request.format)
    return check_status_response(client, req, instance_id)


@bp.route(route="downloads", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def start_download(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """`POST /api/downloads`: JSON `{"url", "format", ...}` or text/plain with just the URL."""
    return await start_job(req, client, parse_download_request)


@bp.route(route="orchestrator_httpstart", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def orchestrator_httpstart(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """`POST /api/orchestrator_httpstart`: the seed-compatible body, just the URL."""
    return await start_job(req, client, parse_seed_request)
