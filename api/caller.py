"""The caller of an API request and what they may see (policy: `videojob.domain.principal`).

`AUTH_MODE=key`: every caller holds a function key and sees every job (`KEY_CALLER`); nothing is
looked up. `AUTH_MODE=entra`: the caller comes from the platform's principal headers, jobs
belong to their submitter, and someone else's job answers exactly like a job that does not exist
(404), so its existence is not revealed.
"""

from __future__ import annotations

import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from videojob import bootstrap
from videojob.contract.wire import ErrorCode
from videojob.domain.instances import JobLookupFailed, find_job
from videojob.domain.principal import (
    KEY_CALLER,
    AuthMisconfigured,
    Caller,
    Unauthenticated,
    caller_from_headers,
    job_owner,
)
from videojob.domain.settings import auth_mode

from .responses import DurableUnavailable, error_response

log = logging.getLogger(__name__)

ENTRA = "entra"


def route_auth_level() -> func.AuthLevel:
    """Function keys in key mode; in entra mode App Service Authentication is in front and the app
    checks the principal itself, so the host must let requests without a key through."""
    return func.AuthLevel.ANONYMOUS if auth_mode() == ENTRA else func.AuthLevel.FUNCTION


def authenticate(req: func.HttpRequest) -> Caller | func.HttpResponse:
    """The caller, or the 401 / 500 answer to send instead."""
    settings = bootstrap.settings()
    if settings.auth_mode != ENTRA:
        return KEY_CALLER
    try:
        return caller_from_headers(req.headers, platform_auth_enabled=settings.platform_auth_enabled)
    except AuthMisconfigured as e:
        log.error("%s", e)
        return error_response(500, ErrorCode.AUTH_NOT_CONFIGURED, str(e))
    except Unauthenticated as e:
        log.info("request refused: %s", e)
        return error_response(401, ErrorCode.UNAUTHORIZED, f"{e} (sign in at /.auth/login/aad)")


def entra_mode() -> bool:
    return bootstrap.settings().auth_mode == ENTRA


def owner_for_new_jobs(caller: Caller) -> str | None:
    """The owner written into a new job's plan and index row: None in key mode (plans unchanged)."""
    return caller.owner if entra_mode() else None


async def may_see_job(client: df.DurableOrchestrationClient, caller: Caller, instance_id: str) -> bool:
    """True when the job exists and is the caller's (an operator: whenever it exists, unchecked).
    Raises `DurableUnavailable` when the host cannot say."""
    if caller.is_operator:
        return True
    try:
        status = await client.get_status(instance_id, show_input=True)
    except Exception as e:  # the 1.x client raises bare Exception
        raise DurableUnavailable("get_status") from e
    if status:
        return caller.may_see(job_owner(status.input_))
    try:  # a falsy status is a 404, or a host error the 1.x client hides: ask again
        if await find_job(client, instance_id) is None:
            return False
    except JobLookupFailed as e:
        raise DurableUnavailable("get_status") from e
    raise DurableUnavailable("get_status")


def app_links(req: func.HttpRequest, instance_id: str) -> dict[str, Any]:
    """The check-status links of entra mode: the app's own routes, never the Durable webhooks
    (whose `code` is the system key that opens every instance of the task hub)."""
    origin = req.url.split("/api/", 1)[0]
    status_uri = f"{origin}/api/downloads/{instance_id}"
    return {
        "id": instance_id,
        "statusQueryGetUri": status_uri,
        "terminatePostUri": f"{status_uri}/cancel",
        "purgeHistoryDeleteUri": status_uri,
    }
