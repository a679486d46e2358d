"""A recording azure-core transport with canned ARM answers, and ARM JSON builders.

The SDK's real pipeline runs on top of it (bearer policy, serialization, LRO polling, error
mapping); only the socket is replaced. Each test scripts the exchanges it expects, in order.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import HttpRequest, HttpResponse, HttpTransport
from azure.core.utils import case_insensitive_dict

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
RESOURCE_GROUP = "rg-test"
ARM = "https://management.azure.com"
GROUPS_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.ContainerInstance/containerGroups"
)
TOKEN = "fake-arm-token"


def group_path(name: str) -> str:
    return f"{GROUPS_PATH}/{name}"


class FakeCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)


class CannedResponse(HttpResponse):
    def __init__(self, request: HttpRequest, status: int, body: Any = None, headers: dict[str, str] | None = None):
        super().__init__(request, None)
        self.status_code = status
        self.reason = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content"}.get(status, "Error")
        self._body = b"" if body is None else json.dumps(body).encode("utf-8")
        self.headers = case_insensitive_dict(headers or {})
        if body is not None:
            self.headers.setdefault("Content-Type", "application/json; charset=utf-8")
        self.content_type = self.headers.get("Content-Type")

    def body(self) -> bytes:
        return self._body


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)

    def json(self) -> Any:
        return json.loads(self.body)


class RecordingTransport(HttpTransport):
    """Answers requests from a script of exchanges, in order, and records what was sent."""

    def __init__(self, *exchanges: Exchange):
        self.script = list(exchanges)
        self.requests: list[Recorded] = []

    def add(self, *exchanges: Exchange) -> None:
        self.script.extend(exchanges)

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        body = request.body if request.body is not None else b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        rec = Recorded(request.method, request.url, dict(request.headers), body)
        self.requests.append(rec)
        if not self.script:
            raise AssertionError(f"unexpected request {rec.method} {rec.url}")
        ex = self.script.pop(0)
        expected = (ex.method, ex.path)
        assert (rec.method, rec.path) == expected, f"expected {expected}, got {rec.method} {rec.path}"
        return CannedResponse(request, ex.status, ex.body, ex.headers)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> RecordingTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        pass


# ---- ARM JSON --------------------------------------------------------------------------------


def arm_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def group_json(
    name: str,
    *,
    provisioning: str = "Succeeded",
    group_state: str | None = "Running",
    container_state: str | None = "Running",
    exit_code: int | None = None,
    detail: str | None = None,
    tags: dict[str, str] | None = None,
    events: list[str] | None = None,
    instance_view: bool = True,
) -> dict[str, Any]:
    """A container group as ARM returns it (secure values are never echoed back)."""
    container: dict[str, Any] = {
        "name": "worker",
        "properties": {
            "image": "registry.example/worker:1",
            "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.5}},
            "environmentVariables": [{"name": "JOB_ID", "value": "j"}, {"name": "CALLBACK_TOKEN"}],
        },
    }
    if instance_view and container_state is not None:
        current: dict[str, Any] = {"state": container_state}
        if exit_code is not None:
            current["exitCode"] = exit_code
        if detail is not None:
            current["detailStatus"] = detail
        container["properties"]["instanceView"] = {
            "restartCount": 0,
            "currentState": current,
            "events": [{"count": 1, "message": m, "type": "Normal"} for m in (events or [])],
        }
    props: dict[str, Any] = {
        "provisioningState": provisioning,
        "containers": [container],
        "restartPolicy": "Never",
        "osType": "Linux",
    }
    if instance_view and group_state is not None:
        props["instanceView"] = {"state": group_state, "events": []}
    return {
        "id": group_path(name),
        "name": name,
        "type": "Microsoft.ContainerInstance/containerGroups",
        "location": "westeurope",
        "tags": tags or {},
        "properties": props,
    }


def operation_json(status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "/op/1", "status": status}
    if error is not None:
        body["error"] = error["error"]
    return body
