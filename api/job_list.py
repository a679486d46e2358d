"""`GET /api/downloads`: this app's jobs, newest first, a page at a time, with `status` and `since`
filters (policy: `videojob.domain.job_index`, rows: `videojob.domain.instances.summarize`).

Which jobs and in which order come from the job index (a table the starters write), not from the
Durable instance query: the Azure Storage provider lists instances by instance id. What each row
shows is the job's live Durable status, read through the extension's client endpoint (`rpcBaseUrl`
from the binding JSON, parsed with the SDK's own `DurableOrchestrationBindings`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationBindings import DurableOrchestrationBindings

from videojob import bootstrap
from videojob.adapters.durable_http import DurableHttp
from videojob.contract.wire import ErrorCode
from videojob.domain.instances import BATCH_KIND, DEFAULT_LIST_TOP, JOB_KIND, MAX_LIST_TOP, JobLookupFailed
from videojob.domain.job_index import (
    DEFAULT_OWNER,
    InvalidContinuationToken,
    InvalidListQuery,
    JobIndexUnavailable,
    ListQuery,
    Repair,
    apply_repairs,
    list_jobs,
    parse_since,
    parse_status_filter,
    token_key,
)
from videojob.domain.principal import Caller, parse_owner

from .blueprint import bp
from .caller import app_links, authenticate, entra_mode, route_auth_level
from .responses import error_response, json_response, unavailable_response
from .starters import BATCH_ORCHESTRATOR_NAME, ORCHESTRATOR_NAME

log = logging.getLogger(__name__)

APP_ORCHESTRATORS = {ORCHESTRATOR_NAME: JOB_KIND, BATCH_ORCHESTRATOR_NAME: BATCH_KIND}


def parse_top(raw: str | None) -> int | None:
    """`?top=`: 1–100 (default 20); None when malformed."""
    if raw is None or raw == "":
        return DEFAULT_LIST_TOP
    if not raw.isascii() or not raw.isdigit() or len(raw) > 3:
        return None
    top = int(raw)
    return top if 1 <= top <= MAX_LIST_TOP else None


def list_owner(caller: Caller, requested: str | None) -> str | None:
    """Whose partition an entra-mode list reads: the caller's, or (operators only) the one named;
    None when the request may not have it."""
    if requested is None or requested == "":
        return caller.owner
    named = parse_owner(requested)
    if named is None or (named != caller.owner and not caller.is_operator):
        return None
    return named


@bp.route(route="downloads", methods=["GET"], auth_level=route_auth_level())
@bp.generic_input_binding(arg_name="client", type="durableClient")
async def list_downloads(req: func.HttpRequest, client: str) -> func.HttpResponse:
    """`GET /api/downloads[?top=N][&status=S][&since=T][&continuationToken=C]`:
    `{"jobs": [...], "continuationToken"?}`. In entra mode the caller's own jobs; an operator
    may name another owner (`&owner=<object id>`)."""
    caller = authenticate(req)
    if isinstance(caller, func.HttpResponse):
        return caller
    owner = list_owner(caller, req.params.get("owner")) if entra_mode() else DEFAULT_OWNER
    if owner is None:
        return error_response(400, ErrorCode.INVALID_OPTION,
                              "owner must be a user's object id, and only operators may name another user")
    top = parse_top(req.params.get("top"))
    if top is None:
        return error_response(400, ErrorCode.INVALID_OPTION, f"top must be an integer from 1 to {MAX_LIST_TOP}")
    try:
        query = ListQuery(owner, parse_status_filter(req.params.get("status")),
                          parse_since(req.params.get("since")))
    except InvalidListQuery as e:
        return error_response(400, ErrorCode.INVALID_OPTION, str(e))
    rpc_base_url = DurableOrchestrationBindings.from_json(client).rpc_base_url
    if not rpc_base_url:
        log.warning("the durable client binding has no rpcBaseUrl")
        return unavailable_response()
    settings = bootstrap.settings()
    try:
        index = bootstrap.job_index()
    except ValueError as e:
        log.warning("job list: no job index: %s", e)
        return unavailable_response()
    repairs: list[Repair] = []
    try:
        listed = await list_jobs(index, DurableHttp(rpc_base_url), APP_ORCHESTRATORS, query, top,
                                 req.params.get("continuationToken"), token_key(settings.callback_signing_key),
                                 datetime.now(UTC), repairs)
    except InvalidContinuationToken:
        return error_response(400, ErrorCode.INVALID_OPTION,
                              "continuationToken is not one this API issued for this query (start again without it)")
    except (JobLookupFailed, JobIndexUnavailable) as e:
        log.warning("job list failed: %s", e)
        return unavailable_response()
    if repairs:
        repaired = await asyncio.to_thread(apply_repairs, index, query.owner, repairs)
        log.info("job list: %d of %d stale index rows repaired", repaired, len(repairs))
    links = df.DurableOrchestrationClient(client)
    body: dict[str, Any] = listed.to_wire()
    own_links = entra_mode()
    for job in body["jobs"]:
        job["statusQueryGetUri"] = (app_links(req, job["id"]) if own_links
                                    else links.get_client_response_links(req, job["id"]))["statusQueryGetUri"]
    return json_response(200, body, {"Cache-Control": "no-store"})
