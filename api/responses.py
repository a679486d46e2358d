"""HTTP responses of the API: JSON bodies, the `{"error": {"code", "message"}}` shape."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import azure.durable_functions as df
import azure.functions as func

from videojob.contract.wire import ErrorCode, error_body

log = logging.getLogger(__name__)

JSON = "application/json"
T = TypeVar("T")


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body), status_code=status, headers=dict(headers or {}), mimetype=JSON, charset="utf-8"
    )


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    return json_response(status, error_body(code, message), headers)


def not_found(instance_id: str | None = None) -> func.HttpResponse:
    # The id is echoed only when it is URL-safe (callers check): never reflect arbitrary input.
    what = f"job {instance_id}" if instance_id else "the job"
    return error_response(404, ErrorCode.NOT_FOUND, f"{what} does not exist")


def check_status_response(
    client: df.DurableOrchestrationClient, req: func.HttpRequest, instance_id: str
) -> func.HttpResponse:
    """202 + the Durable check-status JSON (`id`, `statusQueryGetUri`, ...) and `Location`.

    The SDK sets the JSON content type as a header but leaves the response's mimetype at
    text/plain; rebuilding it keeps both in agreement whichever one the worker honours.
    """
    sdk_response = client.create_check_status_response(req, instance_id)
    headers = {k: v for k, v in sdk_response.headers.items() if k.lower() != "content-type"}
    return func.HttpResponse(
        sdk_response.get_body(),
        status_code=sdk_response.status_code,
        headers=headers,
        mimetype=JSON,
        charset="utf-8",
    )


class DurableUnavailable(Exception):
    """The Durable host could not be reached or answered unexpectedly."""


async def durable_call(operation: str, call: Awaitable[T]) -> T:
    """Await a Durable client call; any failure becomes `DurableUnavailable` (logged without data)."""
    try:
        return await call
    except Exception as e:  # the 1.x client raises bare Exception for every unexpected answer
        log.warning("durable client %s failed: %s", operation, type(e).__name__)
        raise DurableUnavailable(operation) from e


def unavailable_response() -> func.HttpResponse:
    return error_response(
        503,
        ErrorCode.SERVICE_UNAVAILABLE,
        "the job service is not reachable right now; try again",
        {"Retry-After": "5"},
    )


class TooManyJobs(Exception):
    """The caller already has `active` queued or running downloads; `requested` more would exceed `limit`."""

    def __init__(self, active: int, requested: int, limit: int, retry_after_seconds: int):
        super().__init__(f"{active} active, {requested} requested, limit {limit}")
        self.active, self.requested, self.limit = active, requested, limit
        self.retry_after_seconds = retry_after_seconds


def too_many_jobs_response(e: TooManyJobs) -> func.HttpResponse:
    return error_response(
        429,
        ErrorCode.TOO_MANY_JOBS,
        f"you have {e.active} downloads queued or running and this asks for {e.requested} more; "
        f"at most {e.limit} at a time (MAX_ACTIVE_JOBS_PER_USER): try again when some have finished",
        {"Retry-After": str(e.retry_after_seconds)},
    )
