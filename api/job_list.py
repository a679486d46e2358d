"""`GET /api/downloads`: this app's recent jobs, a page at a time (policy: `videojob.instances`).

The 1.x Python client reads only the first page of the instance query and hides the
`x-ms-continuation-token` header, so this route asks the extension's client endpoint
(`rpcBaseUrl` + `instances/`, what the SDK itself calls) with the header. The binding is taken as
the JSON text the host passes and parsed with the SDK's own `DurableOrchestrationBindings`.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationBindings import DurableOrchestrationBindings

from videojob.contract import ErrorCode
from videojob.instances import (
    BATCH_KIND,
    DEFAULT_LIST_TOP,
    JOB_KIND,
    MAX_LIST_TOP,
    InstancePage,
    InvalidContinuationToken,
    JobLookupFailed,
    list_jobs,
)

from .blueprint import bp
from .responses import error_response, json_response, unavailable_response
from .starters import BATCH_ORCHESTRATOR_NAME, ORCHESTRATOR_NAME

log = logging.getLogger(__name__)

CONTINUATION_HEADER = "x-ms-continuation-token"
APP_ORCHESTRATORS = {ORCHESTRATOR_NAME: JOB_KIND, BATCH_ORCHESTRATOR_NAME: BATCH_KIND}
QUERY_TIMEOUT_SECONDS = 30


class RpcInstancePages:
    """`InstancePages` over the extension's client endpoint (`GET {rpcBaseUrl}instances/`)."""

    def __init__(self, rpc_base_url: str, timeout_seconds: float = QUERY_TIMEOUT_SECONDS):
        self.url = f"{rpc_base_url.rstrip('/')}/instances/"
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def page(self, top: int, continuation_token: str | None) -> InstancePage:
        headers = {CONTINUATION_HEADER: continuation_token} if continuation_token else {}
        params = {"top": str(top), "showInput": "true"}
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session, session.get(
                self.url, params=params, headers=headers
            ) as response:
                status = response.status
                body = await response.json(content_type=None) if status == 200 else None
                next_token = response.headers.get(CONTINUATION_HEADER)
        except (TimeoutError, aiohttp.ClientError, ValueError) as e:
            raise JobLookupFailed(type(e).__name__) from e
        if status == 400 and continuation_token:
            raise InvalidContinuationToken("the task hub refused the continuation token")
        if status != 200:
            raise JobLookupFailed(f"the instance query answered {status}")
        if not isinstance(body, list):
            raise JobLookupFailed("the instance query did not answer a list")
        return InstancePage(tuple(s for s in body if isinstance(s, dict)), next_token or None)


def parse_top(raw: str | None) -> int | None:
    """`?top=`: 1–100 (default 20); None when malformed."""
    if raw is None or raw == "":
        return DEFAULT_LIST_TOP
    if not raw.isascii() or not raw.isdigit() or len(raw) > 3:
        return None
    top = int(raw)
    return top if 1 <= top <= MAX_LIST_TOP else None


@bp.route(route="downloads", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.generic_input_binding(arg_name="client", type="durableClient")
async def list_downloads(req: func.HttpRequest, client: str) -> func.HttpResponse:
    """`GET /api/downloads[?top=N][&continuationToken=T]`: `{"jobs": [...], "continuationToken"?}`."""
    top = parse_top(req.params.get("top"))
    if top is None:
        return error_response(400, ErrorCode.INVALID_OPTION, f"top must be an integer from 1 to {MAX_LIST_TOP}")
    rpc_base_url = DurableOrchestrationBindings.from_json(client).rpc_base_url
    if not rpc_base_url:
        log.warning("the durable client binding has no rpcBaseUrl")
        return unavailable_response()
    try:
        listed = await list_jobs(RpcInstancePages(rpc_base_url), APP_ORCHESTRATORS, top,
                                 req.params.get("continuationToken"))
    except InvalidContinuationToken:
        return error_response(400, ErrorCode.INVALID_OPTION,
                              "continuationToken is not one this API issued (start again without it)")
    except JobLookupFailed as e:
        log.warning("job list failed: %s", e)
        return unavailable_response()
    links = df.DurableOrchestrationClient(client)
    body: dict[str, Any] = listed.to_wire()
    for job in body["jobs"]:
        job["statusQueryGetUri"] = links.get_client_response_links(req, job["id"])["statusQueryGetUri"]
    return json_response(200, body, {"Cache-Control": "no-store"})
