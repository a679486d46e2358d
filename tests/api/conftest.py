"""Fixtures: the API blueprint indexed once, a Durable stand-in per test, test settings."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.data.tables import TableClient

import api
from tests.support.durable_standin import (
    DurableStandIn,
    IndexedFunctions,
    client_binding_value,
    http_request,
    run,
)
from tests.support.services import Azurite
from videojob import bootstrap
from videojob.adapters.job_index_table import TableJobIndex
from videojob.contract import container_env as E
from videojob.contract.wire import DownloadRequest
from videojob.domain.container_spec import build_container_spec
from videojob.domain.settings import Settings, load_settings

SIGNING_KEY = "test-signing-key-0123456789-abcdefghijklmnop"
NOTIFY_KEY = "test-notify-key-0123456789-abcdefghijklmnopq"
APP_ORIGIN = "https://videodl.example.net"
VALID_TOKEN = object()
RUN = "0a1b2c3d"
"""The run every seeded job runs (`watching_status`) and the default token is issued for."""


def watching_status(run: str = RUN, attempt: int = 1, phase: str = "running", **extra: Any) -> dict[str, Any]:
    """customStatus of a `download_job` watching `attempt` of `run` (as `progress_status` writes it)."""
    return {"phase": phase, "percent": None, "containerGroup": "dl-x", "attempt": attempt, "run": run,
            "updatedAt": "2026-01-01T00:00:00Z", **extra}


def issued_token(settings: Settings, job_id: str, run: str = RUN, attempt: int = 1,
                 deadline: datetime | None = None) -> str:
    """The token the worker of this run and attempt holds: the one the container spec gives it."""
    deadline = deadline or datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    spec = build_container_spec(DownloadRequest(url="https://www.youtube.com/watch?v=x"), settings, job_id,
                                datetime(2026, 1, 1, tzinfo=UTC), deadline, attempt, run=run)
    return dict(spec.secure_env)[E.CALLBACK_TOKEN]

TEST_ENV = {
    "CONTAINER_BACKEND": "local",
    "CALLBACK_BASE_URL": APP_ORIGIN,
    "CALLBACK_SIGNING_KEY": SIGNING_KEY,
    "OUTPUT_ACCOUNT_URL": "https://account.blob.core.windows.net",
    "JOB_DEADLINE_SECONDS": "3600",
    "HEARTBEAT_TIMEOUT_SECONDS": "300",
    "PROVISION_MAX_ATTEMPTS": "3",
    "FAILED_GROUP_POLICY": "delete",
    "JOB_MAX_ATTEMPTS": "2",
    "WORKER_CPU": "2",
    "WORKER_MEMORY_GB": "3",
    "SHARE_LINK_HOURS": "12",
    "ACI_PRICE_PER_VCPU_SECOND": "0.00002",
    "ACI_PRICE_PER_GB_SECOND": "0.000003",
    "COST_CURRENCY": "EUR",
    "MAX_PARALLEL_JOBS": "2",
    "MAX_BATCH_URLS": "4",
    "MAX_PLAYLIST_ITEMS": "10",
    "NOTIFY_SIGNING_KEY": NOTIFY_KEY,
}


@pytest.fixture(scope="session")
def functions() -> IndexedFunctions:
    return IndexedFunctions(api.bp)


@pytest.fixture
def job_index(azurite: Azurite) -> TableJobIndex:
    """The job index in a table of its own (in the session's Azurite) for one test."""
    table = TableClient.from_connection_string(azurite.connection_string, f"jobs{secrets.token_hex(8)}")
    return TableJobIndex(table)


@pytest.fixture
def settings(job_index: TableJobIndex) -> Iterator[Settings]:
    s = load_settings(environ=TEST_ENV)
    bootstrap.override(settings=s, job_index=job_index)
    yield s
    bootstrap.reset()


@pytest.fixture
def standin() -> Iterator[DurableStandIn]:
    with DurableStandIn() as s:
        yield s


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    mimetype: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        # What the worker sends: the explicit header if any, else the mimetype.
        return self.headers.get("content-type") or self.mimetype

    @property
    def error_code(self) -> str:
        return self.json["error"]["code"]


@dataclass
class Api:
    """Calls the API's functions as the worker would: real HttpRequest, client binding JSON."""

    functions: IndexedFunctions
    standin: DurableStandIn
    binding_json: str

    def call(
        self,
        function_name: str,
        path: str,
        *,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        route_params: dict[str, str] | None = None,
    ) -> Answer:
        req = http_request("POST", f"{APP_ORIGIN}/api/{path}", body=body, headers=headers, route_params=route_params)
        user_function = self.functions.user_function(function_name)
        resp: func.HttpResponse = run(user_function(req=req, client=client_binding_value(self.binding_json)))
        return Answer(
            status=resp.status_code,
            headers={k.lower(): v for k, v in resp.headers.items()},
            body=resp.get_body(),
            mimetype=resp.mimetype,
        )

    def download(self, body: bytes | str | dict[str, Any], content_type: str | None = "application/json") -> Answer:
        if isinstance(body, dict):
            body = json.dumps(body)
        headers = {"Content-Type": content_type} if content_type else {}
        return self.call("start_download", "downloads", body=body, headers=headers)

    def seed_start(self, body: bytes | str, content_type: str | None = "application/x-www-form-urlencoded") -> Answer:
        headers = {"Content-Type": content_type} if content_type else {}
        return self.call("orchestrator_httpstart", "orchestrator_httpstart", body=body, headers=headers)

    def cancel(self, instance_id: str) -> Answer:
        return self.call("cancel_download", f"downloads/{instance_id}/cancel", route_params={"id": instance_id})

    def report(self, instance_id: str, event: Any, token: Any = VALID_TOKEN) -> Answer:
        """Post an event; by default with the token of attempt 1 of `RUN`, `token=None` sends no header."""
        headers = {"Content-Type": "application/json"}
        if token is VALID_TOKEN:
            token = issued_token(bootstrap.settings(), instance_id)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = event if isinstance(event, (bytes, str)) else json.dumps(event)
        path = f"jobs/{instance_id}/status"
        return self.call("job_status_callback", path, body=body, headers=headers, route_params={"id": instance_id})


@pytest.fixture
def client_api(functions: IndexedFunctions, standin: DurableStandIn, settings: Settings) -> Api:
    return Api(functions, standin, standin.binding_json())
