"""The Durable extension's client endpoint (`rpcBaseUrl`), for what the 1.x Python client cannot do.

The 1.x client reads only the first page of the instance query and hides the
`x-ms-continuation-token` header, reports a host 500 like a 404 on a status lookup, and cannot ask for
one page of a filtered query. These calls go to the same endpoint the SDK itself calls
(`{rpcBaseUrl}instances/...`, the extension's `HttpApiHandler`), with aiohttp.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from videojob.contract.wire import is_url_safe_instance_id
from videojob.domain.instances import JobLookupFailed

CONTINUATION_HEADER = "x-ms-continuation-token"
QUERY_TIMEOUT_SECONDS = 30
_EXHAUSTED_HOST_TOKENS = frozenset({"", "null", "bnVsbA=="})
"""Older Azure Storage providers answer base64("null") on the last page (durabletask#372)."""


@dataclass(frozen=True)
class InstancePage:
    """One page of the Durable instance query: status payloads in the host's order."""

    statuses: tuple[Mapping[str, Any], ...]
    continuation_token: str | None
    """None on the last page."""


def _host_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DurableHttp:
    def __init__(self, rpc_base_url: str, timeout_seconds: float = QUERY_TIMEOUT_SECONDS):
        self.base = f"{rpc_base_url.rstrip('/')}/instances/"
        self.entities = f"{rpc_base_url.rstrip('/')}/entities/"
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def _call(self, method: str, url: str, params: Mapping[str, str] | None = None,
                    headers: Mapping[str, str] | None = None) -> tuple[int, Any, str | None]:
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session, session.request(
                method, url, params=params, headers=headers
            ) as response:
                status = response.status
                body = await response.json(content_type=None) if status in (200, 202) else None
                return status, body, response.headers.get(CONTINUATION_HEADER)
        except (TimeoutError, aiohttp.ClientError, ValueError) as e:
            raise JobLookupFailed(type(e).__name__) from e

    def _instance_url(self, instance_id: str) -> str:
        if not is_url_safe_instance_id(instance_id):
            raise JobLookupFailed("not a URL-safe instance id")
        return self.base + quote(instance_id, safe="")

    async def status(self, instance_id: str) -> Mapping[str, Any] | None:
        """The instance's status with its input; None when the host does not know it (404)."""
        status, body, _ = await self._call("GET", self._instance_url(instance_id), {"showInput": "true"})
        if status == 404:
            return None
        if status not in (200, 202) or not isinstance(body, dict):
            raise JobLookupFailed(f"the status lookup answered {status}")
        return body

    async def page(self, top: int, continuation_token: str | None = None, *, created_to: datetime | None = None,
                   runtime_statuses: Iterable[str] = ()) -> InstancePage:
        """One page of the instance query (no inputs), filtered as the extension filters."""
        params = {"top": str(top)}
        if created_to is not None:
            params["createdTimeTo"] = _host_time(created_to)
        statuses = ",".join(runtime_statuses)
        if statuses:
            params["runtimeStatus"] = statuses
        headers = {CONTINUATION_HEADER: continuation_token} if continuation_token else {}
        status, body, next_token = await self._call("GET", self.base, params, headers)
        if status != 200 or not isinstance(body, list):
            raise JobLookupFailed(f"the instance query answered {status}")
        if next_token is not None and next_token.strip() in _EXHAUSTED_HOST_TOKENS:
            next_token = None
        return InstancePage(tuple(s for s in body if isinstance(s, dict)), next_token)

    async def entity_state(self, name: str, key: str) -> Any:
        """An entity's state (`GET {rpcBaseUrl}entities/{name}/{key}`, what the SDK's
        `read_entity_state` calls); None when it does not exist (404). A read: no operation."""
        status, body, _ = await self._call("GET", f"{self.entities}{quote(name, safe='')}/{quote(key, safe='')}")
        if status == 404:
            return None
        if status != 200:
            raise JobLookupFailed(f"the entity read answered {status}")
        return body

    async def purge(self, instance_id: str) -> bool:
        """Purge a finished instance's history; False when the host has no such instance."""
        status, _, _ = await self._call("DELETE", self._instance_url(instance_id))
        if status == 404:
            return False
        if status != 200:
            raise JobLookupFailed(f"the purge answered {status}")
        return True
