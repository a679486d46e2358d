"""The routes issue 21 adds: `GET /api/downloads/{id}` (a job's status, in the Durable status
shape), `DELETE /api/downloads/{id}` (remove a finished job: history and blobs) and `GET /api/me`
(who the caller is: what the page shows).

In entra mode these are what a submit answer's `statusQueryGetUri` and `purgeHistoryDeleteUri`
name instead of the Durable webhooks, so a client that polls the check-status links works
unchanged while nobody but the host holds the system key. Someone else's job is 404 here as on
every route. The routes exist in key mode too (function keys, every job visible).

Their own blueprint: `api.bp`'s route inventory stays as it was (tests/api/test_routes.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationBindings import DurableOrchestrationBindings
from azure.storage.blob import BlobServiceClient

from activities.share_link import default_credential, output_service
from videojob import bootstrap
from videojob.adapters.durable_http import DurableHttp
from videojob.contract.wire import PHASE_QUEUED, ErrorCode, is_url_safe_instance_id
from videojob.domain import job_slots as slots
from videojob.domain.instances import ACTIVE_RUNTIME_STATUSES, JobLookupFailed
from videojob.domain.job_index import DEFAULT_OWNER, JobIndexUnavailable
from videojob.domain.job_removal import JobBlobs, blob_prefixes, is_removable, removal_targets
from videojob.domain.principal import Caller, job_owner

from .caller import app_links, authenticate, entra_mode, route_auth_level
from .responses import error_response, json_response, not_found, unavailable_response
from .starters import BATCH_ORCHESTRATOR_NAME

log = logging.getLogger(__name__)

bp = df.Blueprint()

STATUS_FIELDS = ("name", "instanceId", "runtimeStatus", "customStatus", "output", "createdTime", "lastUpdatedTime")
"""What the status route answers: the Durable status payload without the input (the plan)."""
POLL_AFTER_SECONDS = "5"


class ContainerJobBlobs:
    """`JobBlobs` over the output account's output and staging containers."""

    def __init__(self, service: BlobServiceClient, containers: tuple[str, ...]):
        self.service, self.containers = service, containers

    def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        for name in self.containers:
            container = self.service.get_container_client(name)
            if not container.exists():
                continue
            for blob in container.list_blobs(name_starts_with=prefix):
                container.delete_blob(blob.name, delete_snapshots="include")
                deleted += 1
        return deleted


def job_blobs() -> JobBlobs:
    settings = bootstrap.settings()
    return ContainerJobBlobs(output_service(settings, default_credential),
                             (settings.output_container, settings.staging_container))


async def _callers_job(req: func.HttpRequest, client: str
                       ) -> tuple[DurableHttp, str, Mapping[str, Any]] | func.HttpResponse:
    """The signed-in caller's job named by the route, with the hub that holds it; else the answer:
    401 without a caller, 404 for no such job or someone else's (existence is not revealed)."""
    caller = authenticate(req)
    if isinstance(caller, func.HttpResponse):
        return caller
    instance_id = req.route_params.get("id")
    found = await _visible_status(client, caller, instance_id)
    if isinstance(found, func.HttpResponse):
        return found
    hub, status = found
    if status is None:
        return not_found(instance_id)
    return hub, instance_id, status


async def _visible_status(client: str, caller: Caller, instance_id: str | None
                          ) -> tuple[DurableHttp, Mapping[str, Any] | None] | func.HttpResponse:
    if not is_url_safe_instance_id(instance_id):
        return not_found()
    rpc_base_url = DurableOrchestrationBindings.from_json(client).rpc_base_url
    if not rpc_base_url:
        log.warning("the durable client binding has no rpcBaseUrl")
        return unavailable_response()
    hub = DurableHttp(rpc_base_url)
    try:
        status = await hub.status(instance_id)
    except JobLookupFailed as e:
        log.warning("job status lookup failed: %s", e)
        return unavailable_response()
    if status is None or not caller.may_see(job_owner(status.get("input"))):
        return hub, None
    return hub, status


async def _current_place(hub: DurableHttp, instance_id: str, custom_status: Any) -> Any:
    """A queued job's place read from `job_slots` now (issue 22: computed on read, not pushed to
    every waiting job); when the read fails, the place the job last showed."""
    if not isinstance(custom_status, Mapping) or custom_status.get("phase") != PHASE_QUEUED:
        return custom_status
    try:
        state = slots.SlotState.from_wire(await hub.entity_state(slots.ENTITY_NAME, slots.ENTITY_KEY))
    except (JobLookupFailed, slots.SlotError) as e:
        log.warning("job_slots read for a queue position failed: %s", type(e).__name__)
        return custom_status
    return slots.with_current_place(custom_status, state, instance_id)


@bp.route(route="downloads/{id}", methods=["GET"], auth_level=route_auth_level())
@bp.generic_input_binding(arg_name="client", type="durableClient")
async def job_status(req: func.HttpRequest, client: str) -> func.HttpResponse:
    """200 with the status of a finished job; 202 with `Location` and `Retry-After` while it runs."""
    found = await _callers_job(req, client)
    if isinstance(found, func.HttpResponse):
        return found
    hub, instance_id, status = found
    body = {k: status.get(k) for k in STATUS_FIELDS}
    body["customStatus"] = await _current_place(hub, instance_id, body["customStatus"])
    headers = {"Cache-Control": "no-store"}
    if status.get("runtimeStatus") in ACTIVE_RUNTIME_STATUSES:
        location = app_links(req, instance_id)["statusQueryGetUri"] if entra_mode() else req.url
        return json_response(202, body, {**headers, "Location": location, "Retry-After": POLL_AFTER_SECONDS})
    return json_response(200, body, headers)


@bp.route(route="downloads/{id}", methods=["DELETE"], auth_level=route_auth_level())
@bp.generic_input_binding(arg_name="client", type="durableClient")
async def delete_job(req: func.HttpRequest, client: str) -> func.HttpResponse:
    """Remove a finished job (a batch with its items): blobs first, then history, then its list
    row, so a removal that fails half-way can simply be asked again. 409 while it runs."""
    found = await _callers_job(req, client)
    if isinstance(found, func.HttpResponse):
        return found
    hub, instance_id, status = found
    if not is_removable(status):
        return error_response(409, ErrorCode.JOB_RUNNING,
                              f"job {instance_id} is still running: cancel it, then delete it once it has stopped")
    targets = removal_targets(instance_id, status, BATCH_ORCHESTRATOR_NAME)
    try:
        blobs = job_blobs()
        blobs_deleted = 0
        for prefix in blob_prefixes(targets):
            blobs_deleted += await asyncio.to_thread(blobs.delete_prefix, prefix)
        purged = [t for t, done in zip(targets, await asyncio.gather(*(hub.purge(t) for t in targets)), strict=True)
                  if done]
        await asyncio.to_thread(bootstrap.job_index().forget, job_owner(status.get("input")) or DEFAULT_OWNER,
                                instance_id)
    except (JobLookupFailed, JobIndexUnavailable, ValueError) as e:
        log.warning("removing job %s failed: %s", instance_id, e)
        return unavailable_response()
    except Exception as e:  # the blob SDK's errors: storage unreachable or refusing
        log.warning("removing job %s failed at the blobs: %s", instance_id, type(e).__name__)
        return unavailable_response()
    log.info("job %s removed (%d instances, %d blobs)", instance_id, len(purged), blobs_deleted)
    return json_response(200, {"instancesDeleted": len(purged), "blobsDeleted": blobs_deleted})


@bp.route(route="me", methods=["GET"], auth_level=route_auth_level())
def who_am_i(req: func.HttpRequest) -> func.HttpResponse:
    """`{"authMode": "key"}`, or in entra mode `{"authMode": "entra", "id", "name", "operator"}`; 401
    without a signed-in caller."""
    caller = authenticate(req)
    if isinstance(caller, func.HttpResponse):
        return caller
    if not entra_mode():
        return json_response(200, {"authMode": "key"}, {"Cache-Control": "no-store"})
    return json_response(200, {"authMode": "entra", "id": caller.owner, "name": caller.name,
                               "operator": caller.is_operator}, {"Cache-Control": "no-store"})
