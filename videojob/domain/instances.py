"""Durable instance facts shared by the HTTP API and the sweeper: id shape, runtime states, lookup,
and the job list.

No SDK import: `find_job` takes anything shaped like the Durable client.

The Durable client puts instance ids into URL paths without quoting them, so an id that is
not URL-safe must never reach it (it could address another instance or endpoint).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from videojob.contract.url_policy import MAX_URL_LENGTH
from videojob.contract.wire import is_url_safe_instance_id
from videojob.domain.batching import LISTING_SUFFIX


class RuntimeStatus(StrEnum):
    """A Durable instance's `runtimeStatus`: the values of the SDK's `OrchestrationRuntimeStatus`
    (a plain Enum, so never equal to the payload's strings; this module imports no SDK). Not a
    container group's state (`backends.base.ContainerState`) nor an event's (`contract.EventState`)."""

    PENDING = "Pending"
    RUNNING = "Running"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    SUSPENDED = "Suspended"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TERMINATED = "Terminated"
    CANCELED = "Canceled"


FINISHED_RUNTIME_STATUSES: frozenset[str] = frozenset(
    {RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.TERMINATED, RuntimeStatus.CANCELED}
)
"""An instance in one of these states runs no more code and accepts no events."""
ACTIVE_RUNTIME_STATUSES: frozenset[str] = frozenset(set(RuntimeStatus) - FINISHED_RUNTIME_STATUSES)


def is_finished(runtime_status: str | None) -> bool:
    return runtime_status in FINISHED_RUNTIME_STATUSES


@dataclass(frozen=True)
class JobInfo:
    """The parts of a Durable status the API and the sweeper use."""

    instance_id: str
    runtime_status: str | None
    last_updated: datetime | None = None
    custom_status: Any = None
    name: str | None = None
    """The orchestrator function's name (`download_job`, `download_batch`)."""

    @property
    def is_finished(self) -> bool:
        return is_finished(self.runtime_status)


class JobLookupFailed(Exception):
    """The job's status could not be read (host down, unexpected answer, unsafe id)."""


def _info(status: Any) -> JobInfo:
    runtime = getattr(status, "runtime_status", None)
    return JobInfo(
        instance_id=status.instance_id,
        runtime_status=getattr(runtime, "value", runtime),
        last_updated=getattr(status, "last_updated_time", None),
        custom_status=getattr(status, "custom_status", None),
        name=getattr(status, "name", None),
    )


async def find_job(client: Any, instance_id: str) -> JobInfo | None:
    """The job's status through a `DurableOrchestrationClient`, or None when there is no such job.

    The 1.x client answers a falsy status for a 404 but also for a 400 or 500 from the host, so
    "missing" is confirmed with the list endpoint (which raises on anything but 200): a host
    error must never read as "no such job" (the sweeper would delete a live job's container).
    """
    if not is_url_safe_instance_id(instance_id):
        raise JobLookupFailed("not a URL-safe instance id")
    try:
        status = await client.get_status(instance_id)
        if status:
            return _info(status)
        matches = await client.get_status_by(instance_id_prefix=instance_id)
    except Exception as e:  # the 1.x client raises bare Exception (and aiohttp errors)
        raise JobLookupFailed(type(e).__name__) from e
    for candidate in matches:
        if candidate and candidate.instance_id == instance_id:
            return _info(candidate)
    return None


# --- the job list's rows (`GET /api/downloads`) ----------------------------------------------------
#
# Which jobs and in which order come from the job index (`videojob.domain.job_index`); what a row shows
# comes from the job's live Durable status, summarized here.

JOB_KIND, BATCH_KIND = "job", "batch"
DEFAULT_LIST_TOP, MAX_LIST_TOP = 20, 100
MAX_LISTED_TITLE, MAX_LISTED_ERROR_MESSAGE = 200, 300
_BATCH_ITEM_ID = re.compile(rf"[A-Za-z0-9_-]{{32,}}-(?:[0-9]{{3,}}|{LISTING_SUFFIX})")
"""`<batch id>-<index>` / `<batch id>-list` (`videojob.domain.batching`); a batch id is 32 hex digits or
`k-` + 32 (never shorter), so no top-level job id has this shape."""
_PHASE = re.compile(r"[a-z][a-z_]{0,31}")
_COUNT_KEYS = ("total", "running", "succeeded", "failed", "pending")


@dataclass(frozen=True)
class JobSummary:
    """One row of the job list."""

    id: str
    kind: str
    runtime_status: str
    phase: str
    percent: float | None
    created_time: str | None
    last_updated_time: str | None
    url: str | None = None
    title: str | None = None
    counts: Mapping[str, int] | None = None
    error: Mapping[str, str] | None = None

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "id": self.id, "kind": self.kind, "runtimeStatus": self.runtime_status, "phase": self.phase,
            "percent": self.percent, "title": self.title, "url": self.url, "createdTime": self.created_time,
            "lastUpdatedTime": self.last_updated_time,
            "counts": dict(self.counts) if self.counts is not None else None,
            "error": dict(self.error) if self.error is not None else None,
        }
        # `percent` stays even when unknown (null), like the progress numbers of customStatus.
        return {k: v for k, v in wire.items() if v is not None or k == "percent"}


@dataclass(frozen=True)
class JobList:
    jobs: tuple[JobSummary, ...]
    continuation_token: str | None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"jobs": [j.to_wire() for j in self.jobs]}
        if self.continuation_token is not None:
            wire["continuationToken"] = self.continuation_token
        return wire


def is_batch_item_id(instance_id: str) -> bool:
    return _BATCH_ITEM_ID.fullmatch(instance_id) is not None


def json_mapping(value: Any) -> Mapping[str, Any]:
    """The host gives JSON values parsed, or (for some fields and backends) as JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
        return None
    return round(min(max(float(value), 0.0), 100.0), 1)


def _counts(custom: Mapping[str, Any], output: Mapping[str, Any]) -> dict[str, int] | None:
    raw = json_mapping(output.get("counts")) or json_mapping(custom.get("counts"))
    counts = {k: raw[k] for k in _COUNT_KEYS if isinstance(raw.get(k), int) and not isinstance(raw[k], bool)
              and 0 <= raw[k] <= 10**6}
    return counts or None


def _batch_percent(counts: Mapping[str, int] | None) -> float | None:
    if not counts or not counts.get("total"):
        return None
    done = counts.get("succeeded", 0) + counts.get("failed", 0)
    return _number(100 * done / counts["total"])


def _request_url(plan: Mapping[str, Any]) -> str | None:
    return _text(json_mapping(plan.get("request")).get("url"), MAX_URL_LENGTH)


def _error(custom: Mapping[str, Any]) -> dict[str, str] | None:
    error = json_mapping(custom.get("error"))
    code = _text(error.get("code"), 64)
    if code is None:
        return None
    return {"code": code, "message": _text(error.get("message"), MAX_LISTED_ERROR_MESSAGE) or ""}


def summarize(status: Mapping[str, Any], kinds: Mapping[str, str]) -> JobSummary | None:
    """A list row for one status payload, or None when it is not a job of this app: another
    orchestration (`kinds` maps this app's orchestrator names to `job`/`batch`), a batch item (its
    batch is the row), or an id no route of ours could address."""
    kind = kinds.get(status.get("name"))  # type: ignore[arg-type]
    instance_id = status.get("instanceId")
    if kind is None or not is_url_safe_instance_id(instance_id):
        return None
    if kind == JOB_KIND and is_batch_item_id(instance_id):
        return None
    runtime = _text(status.get("runtimeStatus"), 32) or RuntimeStatus.PENDING.value
    custom, output = json_mapping(status.get("customStatus")), json_mapping(status.get("output"))
    plan = json_mapping(status.get("input"))
    phase = custom.get("phase")
    phase = phase if isinstance(phase, str) and _PHASE.fullmatch(phase) else runtime.lower()
    if kind == BATCH_KIND:
        counts = _counts(custom, output)
        percent = _batch_percent(counts)
        items = plan.get("items")
        first_item = json_mapping(items[0]) if isinstance(items, list) and items else {}
        url = _request_url(json_mapping(plan.get("playlist"))) or _request_url(first_item)
        title = _text(json_mapping(output.get("playlist")).get("title"), MAX_LISTED_TITLE)
    else:
        counts = None
        percent = 100.0 if runtime == RuntimeStatus.COMPLETED else _number(custom.get("percent"))
        url = _request_url(plan) or _text(output.get("url"), MAX_URL_LENGTH)
        title = _text(json_mapping(output.get("media")).get("title"), MAX_LISTED_TITLE)
    return JobSummary(
        id=instance_id, kind=kind, runtime_status=runtime, phase=phase, percent=percent,
        created_time=_text(status.get("createdTime"), 64), last_updated_time=_text(status.get("lastUpdatedTime"), 64),
        url=url, title=title, counts=counts, error=_error(custom) if runtime == RuntimeStatus.FAILED else None,
    )
