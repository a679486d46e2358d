"""HTTP starters: validate the request, start `download_job` (one URL) or `download_batch` (a
batch or a playlist), answer with the check-status JSON.

Idempotent submits: an `Idempotency-Key` header (or, with `DEDUPLICATE=true`, the request itself)
names a deterministic instance id; a duplicate answers the existing job's check-status payload
with `Idempotent-Replayed: true` and starts nothing (see `api.idempotency`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from videojob import bootstrap
from videojob.contract.url_policy import UrlPolicy
from videojob.domain.idempotency import HEADER, REPLAYED_HEADER, checked_client_key, submission_instance_id
from videojob.domain.instances import BATCH_KIND, JOB_KIND
from videojob.domain.job_index import DEFAULT_OWNER, JobIndexUnavailable
from videojob.domain.planning import plan_submission
from videojob.domain.request_parsing import (
    RequestLimits,
    RequestRejected,
    SingleSubmission,
    Submission,
    parse_seed_submission,
    parse_submission,
)
from videojob.domain.settings import Settings

from .blueprint import bp
from .caller import app_links, authenticate, owner_for_new_jobs, route_auth_level
from .idempotency import start_once
from .quota import QuotaCheck
from .responses import (
    DurableUnavailable,
    TooManyJobs,
    check_status_response,
    json_response,
    too_many_jobs_response,
    unavailable_response,
)

log = logging.getLogger(__name__)

ORCHESTRATOR_NAME = "download_job"
BATCH_ORCHESTRATOR_NAME = "download_batch"

Parser = Callable[[bytes, str | None, RequestLimits], Submission]


def request_limits(settings: Settings) -> RequestLimits:
    # JOB_DEADLINE_SECONDS is both the default and the ceiling: a caller may ask for a shorter
    # deadline, never a longer (costlier) one than the operator allows.
    return RequestLimits(
        policy=UrlPolicy(settings.allowed_hosts, settings.allow_private_addresses),
        max_deadline_seconds=settings.job_deadline_seconds,
        max_batch_urls=settings.max_batch_urls,
        max_playlist_items=settings.max_playlist_items,
        notify_enabled=settings.notify_signing_key is not None,
    )


def _describe(submission: Submission) -> str:
    if isinstance(submission, SingleSubmission):
        return f"job (format={submission.request.format})"
    items = getattr(submission, "requests", None)
    return f"batch of {len(items)}" if items is not None else f"playlist (max {submission.max_items})"


async def start_job(req: func.HttpRequest, client: df.DurableOrchestrationClient, parse: Parser) -> func.HttpResponse:
    settings = bootstrap.settings()
    caller = authenticate(req)
    if isinstance(caller, func.HttpResponse):
        return caller
    owner = owner_for_new_jobs(caller)
    try:
        client_key = checked_client_key(req.headers.get(HEADER))
        submission = parse(req.get_body(), req.headers.get("Content-Type"), request_limits(settings))
    except RequestRejected as e:
        log.info("download request rejected: %s", e.code)
        return json_response(e.status, e.body())
    plan = plan_submission(submission, settings, owner)
    name = ORCHESTRATOR_NAME if isinstance(submission, SingleSubmission) else BATCH_ORCHESTRATOR_NAME
    instance_id = submission_instance_id(submission, client_key, settings.deduplicate, owner)
    admit = QuotaCheck(client, owner, submission, settings.max_active_jobs_per_user) if owner else None
    try:
        started = await start_once(client, name, instance_id, plan.to_wire(), admit)
    except TooManyJobs as e:
        return too_many_jobs_response(e)
    except DurableUnavailable:
        return unavailable_response()
    if owner is None:
        response = check_status_response(client, req, started.instance_id)
    else:
        links = app_links(req, started.instance_id)
        response = json_response(202, links, {"Location": links["statusQueryGetUri"], "Retry-After": "10"})
    if started.replayed:
        log.info("duplicate submit answered with job %s", started.instance_id)
        response.headers[REPLAYED_HEADER] = "true"
    else:
        log.info("started %s %s", _describe(submission), started.instance_id)
        await _index_job(started.instance_id, JOB_KIND if name == ORCHESTRATOR_NAME else BATCH_KIND,
                         owner or DEFAULT_OWNER)
    return response


async def _index_job(instance_id: str, kind: str, owner: str) -> None:
    """The job's row in the job list. The job runs either way: a failed write is logged (the job
    is then missing from the list, nothing else), never an error for a job that started."""
    try:
        index = bootstrap.job_index()
        await asyncio.to_thread(index.record_start, owner, instance_id, kind, datetime.now(UTC))
    except (JobIndexUnavailable, ValueError) as e:
        log.warning("job %s started but is not in the job list: %s", instance_id, e)


@bp.route(route="downloads", methods=["POST"], auth_level=route_auth_level())
@bp.durable_client_input(client_name="client")
async def start_download(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """`POST /api/downloads`: JSON `{"url", ...}`, `{"urls": [...], ...}`, `{"url", "playlist": true,
    ...}`, or text/plain with just the URL."""
    return await start_job(req, client, parse_submission)


@bp.route(route="orchestrator_httpstart", methods=["POST"], auth_level=route_auth_level())
@bp.durable_client_input(client_name="client")
async def orchestrator_httpstart(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """`POST /api/orchestrator_httpstart`: the seed-compatible body, just the URL."""
    return await start_job(req, client, parse_seed_submission)
