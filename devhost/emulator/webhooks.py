"""The Durable HTTP API: the public webhooks and the client RPC endpoints the Python SDK calls.

Both are served by the same handlers (as in the extension), under
`/runtime/webhooks/durabletask/` (public) and `/durabletask/` (the binding's `rpcBaseUrl`).
Status codes follow the extension's `HttpApiHandler`.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from azure.durable_functions import OrchestrationRuntimeStatus as S

from devhost.emulator import history as H
from devhost.emulator.engine import Answer, Engine
from devhost.emulator.store import BadContinuationToken, EntityQuery, InstanceQuery

PUBLIC_BASE = "/runtime/webhooks/durabletask"
RPC_BASE = "/durabletask"
INSTANCE_PLACEHOLDER = "INSTANCEID"
ACTIVE = (S.Pending.value, S.Running.value, S.ContinuedAsNew.value)
"""Statuses the status endpoint answers 202 (poll again) rather than 200."""
CONTINUATION_HEADER = "x-ms-continuation-token"
DEFAULT_PAGE_SIZE = 100  # the extension's OrchestrationStatusQueryCondition.PageSize
MAX_PAGE_SIZE = 1000  # ours: a page stays bounded whatever `top` asks
EMPTY_ENTITY_KEY = "$"  # HttpApiHandler.EmptyEntityKeySymbol
ENTITY_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # a DateTime as Newtonsoft.Json writes it (ISO 8601, UTC)
UNSUPPORTED_OPERATIONS = ("rewind", "restart", "suspend", "resume")
"""Operations the extension has and the devhost does not: 501 (any other name is 404)."""


class DurableApi:
    def __init__(self, engine: Engine, hub: str, *, system_key: str | None = None):
        """`system_key`: the `code=` the extension adds to every URL it hands out (the devhost,
        like `func start`, enforces no key and hands out none)."""
        self.engine = engine
        self.hub = hub
        self.system_key = system_key

    # -- the client binding ------------------------------------------------------------------

    def query(self) -> str:
        key = f"&code={self.system_key}" if self.system_key else ""
        return f"taskHub={self.hub}&connection=Storage{key}"

    def management_urls(self, origin: str, instance_id: str) -> dict[str, str]:
        base, q = f"{origin}{PUBLIC_BASE}/instances/{instance_id}", self.query()
        return {
            "id": instance_id,
            "statusQueryGetUri": f"{base}?{q}",
            "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}?{q}",
            "terminatePostUri": f"{base}/terminate?reason={{text}}&{q}",
            "rewindPostUri": f"{base}/rewind?reason={{text}}&{q}",
            "purgeHistoryDeleteUri": f"{base}?{q}",
            "restartPostUri": f"{base}/restart?{q}",
            "suspendPostUri": f"{base}/suspend?reason={{text}}&{q}",
            "resumePostUri": f"{base}/resume?reason={{text}}&{q}",
        }

    def client_binding(self, origin: str) -> str:
        """The durable client binding JSON the host passes to a function (HTTP protocol)."""
        creation = f"{origin}{PUBLIC_BASE}/orchestrators/{{functionName}}[/{{instanceId}}]?{self.query()}"
        return json.dumps({
            "taskHubName": self.hub,
            "creationUrls": {
                "createNewInstancePostUri": creation,
                "createAndWaitOnNewInstancePostUri": creation.replace("?", "?timeout={timeoutInSeconds}&"
                                                                      "pollingInterval={intervalInSeconds}&", 1),
            },
            "managementUrls": self.management_urls(origin, INSTANCE_PLACEHOLDER),
            "baseUrl": f"{origin}{PUBLIC_BASE}",
            "requiredQueryStringParameters": self.query(),
            "rpcBaseUrl": f"{origin}{RPC_BASE}/",
            "httpBaseUrl": "",
        })

    # -- routes -------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        out: list[web.RouteDef] = []
        for base in (PUBLIC_BASE, RPC_BASE):
            out += [
                web.post(f"{base}/orchestrators/{{name}}", self.start),
                web.post(f"{base}/orchestrators/{{name}}/{{id}}", self.start),
                web.get(f"{base}/instances", self.list_instances),
                web.get(f"{base}/instances/", self.list_instances),
                web.delete(f"{base}/instances", self.purge_by_filter),
                web.delete(f"{base}/instances/", self.purge_by_filter),
                web.get(f"{base}/instances/{{id}}", self.status),
                web.delete(f"{base}/instances/{{id}}", self.purge),
                web.post(f"{base}/instances/{{id}}/raiseEvent/{{event}}", self.raise_event),
                web.post(f"{base}/instances/{{id}}/{{operation}}", self.operation),
                web.get(f"{base}/entities", self.list_entities),
                web.get(f"{base}/entities/", self.list_entities),
                web.get(f"{base}/entities/{{name}}", self.list_entities),
                web.get(f"{base}/entities/{{name}}/", self.list_entities),
                web.get(f"{base}/entities/{{name}}/{{key}}", self.entity_state),
                web.post(f"{base}/entities/{{name}}/{{key}}", self.signal_entity),
                web.delete(f"{base}/entities/{{name}}/{{key}}", self.signal_entity),
            ]
        return out

    @staticmethod
    def _origin(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    @staticmethod
    def _answer(answer: Answer) -> web.Response:
        if answer.body is None:
            return web.Response(status=answer.status)
        return web.json_response(answer.body, status=answer.status)

    @staticmethod
    async def _json_body(request: web.Request) -> tuple[bool, Any]:
        text = await request.text()
        if not text.strip():
            return True, None
        try:
            return True, json.loads(text)
        except ValueError:
            return False, None

    async def start(self, request: web.Request) -> web.Response:
        ok, value = await self._json_body(request)
        if not ok:
            return web.json_response({"Message": "Invalid JSON content"}, status=400)
        instance_id = request.match_info.get("id") or uuid.uuid4().hex
        # `version`: what the Python client's start_new(version=) adds to the URL.
        answer = self.engine.start_new(request.match_info["name"], instance_id, value,
                                       request.query.get("version"))
        if answer.status != 202:
            return self._answer(answer)
        payload = self.management_urls(self._origin(request), instance_id)
        headers = {"Location": payload["statusQueryGetUri"], "Retry-After": "10"}
        return web.json_response(payload, status=202, headers=headers)

    async def status(self, request: web.Request) -> web.Response:
        q = request.query
        body = self.engine.status(
            request.match_info["id"],
            show_history=_flag(q.get("showHistory"), False),
            show_history_output=_flag(q.get("showHistoryOutput"), False),
            show_input=_flag(q.get("showInput"), True),
        )
        if body is None:
            return web.Response(status=404)
        if body["runtimeStatus"] in ACTIVE:
            headers = {"Location": str(request.url), "Retry-After": "5"}
            return web.json_response(body, status=202, headers=headers)
        if body["runtimeStatus"] == S.Failed.value and _flag(q.get("returnInternalServerErrorOnFailure"), False):
            return web.json_response(body, status=500)
        return web.json_response(body, status=200)

    async def list_instances(self, request: web.Request) -> web.Response:
        """One page; `x-ms-continuation-token` (response and request header) pages on."""
        q = request.query
        query = InstanceQuery(
            created_from=_time(q.get("createdTimeFrom")),
            created_to=_time(q.get("createdTimeTo")),
            statuses=_statuses(q.getall("runtimeStatus", [])),
            id_prefix=q.get("instanceIdPrefix") or "",
        )
        try:
            page = self.engine.store.query_instances(query, _page_size(q.get("top")),
                                                     request.headers.get(CONTINUATION_HEADER) or None)
        except BadContinuationToken as e:
            return web.json_response({"Message": f"Invalid {CONTINUATION_HEADER}: {e}"}, status=400)
        show_input = _flag(q.get("showInput"), True)
        body = [self.engine.status_payload(inst, show_input=show_input) for inst in page.instances]
        # Sent on every page, empty on the last (HttpApiHandler adds the provider's null token).
        return web.json_response(body, headers={CONTINUATION_HEADER: page.continuation_token or ""})

    async def purge(self, request: web.Request) -> web.Response:
        return self._answer(self.engine.purge(request.match_info["id"]))

    async def purge_by_filter(self, request: web.Request) -> web.Response:
        q = request.query
        created_from = _time(q.get("createdTimeFrom"))
        if created_from is None:
            return web.json_response("Please provide value for 'createdTimeFrom' parameter.", status=400)
        query = InstanceQuery(
            created_from=created_from,
            created_to=_time(q.get("createdTimeTo")) or self.engine.clock(),
            statuses=_statuses(q.getall("runtimeStatus", [])),
        )
        return self._answer(self.engine.purge_matching(query))

    async def terminate(self, request: web.Request) -> web.Response:
        return self._answer(self.engine.terminate(request.match_info["id"], request.query.get("reason")))

    async def raise_event(self, request: web.Request) -> web.Response:
        instance_id = request.match_info["id"]
        inst = self.engine.store.get(instance_id)
        if inst is None:
            return web.Response(status=404)
        if inst.is_terminal:
            return web.Response(status=410)
        if request.content_type != "application/json":
            return web.json_response({"Message": "Only application/json request content is supported"}, status=400)
        ok, value = await self._json_body(request)
        if not ok:
            return web.json_response({"Message": "Invalid JSON content"}, status=400)
        return self._answer(self.engine.raise_event(instance_id, request.match_info["event"], value))

    async def entity_state(self, request: web.Request) -> web.Response:
        """`GET entities/{name}/{key}`: 200 with the state, 404 when the entity does not exist;
        the key `$` stands for the empty key (HttpApiHandler `HandleGetEntityRequestAsync`)."""
        key = request.match_info["key"]
        answer = self.engine.entity_state(request.match_info["name"], "" if key == EMPTY_ENTITY_KEY else key)
        if answer.status != 200:
            return web.Response(status=answer.status)
        return web.json_response(answer.body)

    async def list_entities(self, request: web.Request) -> web.Response:
        """`GET entities[/{name}]`: one page of existing entities with `lastOperationTimeFrom`,
        `lastOperationTimeTo`, `top`, `fetchState` and the continuation header, which is always
        sent (empty on the last page), as `HandleListEntitiesRequestAsync`."""
        q = request.query
        query = EntityQuery(
            last_operation_from=_time(q.get("lastOperationTimeFrom")),
            last_operation_to=_time(q.get("lastOperationTimeTo")),
            fetch_state=_flag(q.get("fetchState"), False),
        )
        try:
            page = self.engine.list_entities(request.match_info.get("name", ""), query, _page_size(q.get("top")),
                                             request.headers.get(CONTINUATION_HEADER) or None)
        except BadContinuationToken as e:
            return web.json_response({"Message": f"Invalid {CONTINUATION_HEADER}: {e}"}, status=400)
        body = [{"entityId": {"name": e.name, "key": e.key},
                 "lastOperationTime": e.last_operation.strftime(ENTITY_TIME_FORMAT),
                 "state": _maybe_json(e.state)} for e in page.entities]
        return web.json_response(body, headers={CONTINUATION_HEADER: page.continuation_token or ""})

    async def signal_entity(self, request: web.Request) -> web.Response:
        """`POST entities/{name}/{key}[?op=...]` (no `op`: the empty operation name) or `DELETE`
        (the operation `delete`), with an optional body: a signal, 202; an entity name the app does
        not define is 400 (HttpApiHandler `HandlePostEntityOperationRequestAsync`)."""
        operation = "delete" if request.method == "DELETE" else request.query.get("op", "")
        text = await request.text()
        request_input = None
        if text:
            try:
                request_input = H.request_input_from_http(text, request.content_type)
            except ValueError as e:
                return web.json_response({"Message": f"Could not parse JSON content: {e}"}, status=400)
        answer = self.engine.signal_entity(request.match_info["name"], request.match_info["key"], operation,
                                           request_input)
        return self._answer(answer)

    async def operation(self, request: web.Request) -> web.Response:
        """`POST instances/{id}/{operation}`: names match case-insensitively; an unknown one is 404."""
        operation = request.match_info["operation"].lower()
        if operation == "terminate":
            return await self.terminate(request)
        if operation not in UNSUPPORTED_OPERATIONS or self.engine.store.get(request.match_info["id"]) is None:
            return web.Response(status=404)
        message = f"'{quote(operation)}' is not supported by the devhost (use the Functions host for it)"
        return web.json_response({"Message": message}, status=501)


def _flag(raw: str | None, default: bool) -> bool:
    """As .NET's bool.TryParse: `true`/`false` in any case; anything else is the default."""
    value = (raw or "").strip().lower()
    return value == "true" if value in ("true", "false") else default


def _page_size(raw: str | None) -> int:
    try:
        size = int((raw or "").strip())
    except ValueError:
        return DEFAULT_PAGE_SIZE
    return min(size, MAX_PAGE_SIZE) if size > 0 else DEFAULT_PAGE_SIZE


def _statuses(raw: list[str]) -> frozenset[str]:
    by_name = {s.value.lower(): s.value for s in S}  # the names the extension parses; others are ignored
    return frozenset(by_name[v.strip().lower()] for value in raw for v in value.split(",")
                     if v.strip().lower() in by_name)


_SHORT_YEAR = re.compile(r"^(\d{1,3})-")


def _time(raw: str | None) -> datetime | None:
    """An ISO 8601 time (UTC when it names no zone); None when absent or unreadable. A year
    before 1000 may come unpadded (Python's strftime on Linux writes `datetime.min` as `1-01-01...`)."""
    if not raw:
        return None
    raw = _SHORT_YEAR.sub(lambda m: f"{int(m.group(1)):04d}-", raw.strip(), count=1)
    try:
        return H.parse_timestamp(raw)
    except ValueError:
        return None


def _maybe_json(text: str | None) -> Any:
    """Entity state as `DurableEntityStatus` shows it: parsed JSON, else the raw string."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
