"""The job index: one row per submitted job, newest first, in a table of the output account.

Why an index at all: the Durable instance query lists in the task hub's order, and the Azure Storage
provider's is the Instances table's (PartitionKey = instance id, DurableTask.AzureStorage
`AzureTableTrackingStore`), so a page of it is an arbitrary slice of every job ever run. Table storage
returns a partition sorted by RowKey ascending ("log tail" pattern of the Table design guide), so a
RowKey made of an inverted creation time lists newest first, and "after this RowKey" is a cursor that
stays put while jobs are added (new rows sort before it). See docs/design.md, "Job list".

Rows of one partition (PartitionKey = the owner; `DEFAULT_OWNER` until jobs get owners):
- a time row `t<inverted ms>-<instance id>`: `InstanceId`, `Kind`, `Status` (a `StatusGroup`),
  `CreatedTime`;
- a pointer row `i<instance id>` naming the time row (`TimeKey`), so a job restarted under the same id
  (an idempotency key after a failure) replaces its row instead of being listed twice, and a purge
  finds the row of an id. Both are written in one entity-group transaction.

Only starters write time rows, so batch items (sub-orchestrations) never have one: they stay folded
under their batch. The live Durable status is what the list shows; the row's `Status` is a filter
hint that only moves from `running` to a finished group (repaired by the list and the retention run).

Pure policy and the `JobIndex` interface; the Table Storage adapter is `videojob.adapters.job_index_table`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol

from videojob.contract.wire import is_url_safe_instance_id
from videojob.domain.instances import JobList, JobSummary, RuntimeStatus, summarize

DEFAULT_OWNER = "default"
"""The partition of every job while jobs have no owner (issue 21 partitions per user)."""

TIME_ROW_PREFIX, POINTER_ROW_PREFIX = "t", "i"
_MAX_MILLIS = 10**13 - 1
"""Epoch milliseconds stay below 10^13 until the year 2286: 13 digits, fixed width, so text order is time order."""
_TIME_KEY = re.compile(r"t([0-9]{13})-([A-Za-z0-9_-]{1,100})")


class StatusGroup(StrEnum):
    """The `status` filter of the list, and the `Status` of an index row."""

    RUNNING = "running"
    """Pending, Running, ContinuedAsNew, Suspended: the job may still change."""
    COMPLETED = "completed"
    """Completed: the job ran to its end (a download that succeeded; a batch whose items all ended)."""
    FAILED = "failed"
    """Failed, Terminated, Canceled: the job ended without its result (errors, cancels, terminate)."""


_FAILED_RUNTIME = frozenset({RuntimeStatus.FAILED, RuntimeStatus.TERMINATED, RuntimeStatus.CANCELED})


def status_group(runtime_status: str | None) -> StatusGroup:
    """The group of a Durable `runtimeStatus`; an unknown value counts as running (it may change)."""
    if runtime_status == RuntimeStatus.COMPLETED:
        return StatusGroup.COMPLETED
    if runtime_status in _FAILED_RUNTIME:
        return StatusGroup.FAILED
    return StatusGroup.RUNNING


def _millis(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("a time in the index must carry its time zone")
    return min(max(int(t.timestamp() * 1000), 0), _MAX_MILLIS)


def time_key(created: datetime, instance_id: str) -> str:
    """The time row's RowKey: ascending order is newest first; ties (same millisecond) by id."""
    if not is_url_safe_instance_id(instance_id):
        raise ValueError("not a URL-safe instance id")
    return f"{TIME_ROW_PREFIX}{_MAX_MILLIS - _millis(created):013d}-{instance_id}"


def pointer_key(instance_id: str) -> str:
    if not is_url_safe_instance_id(instance_id):
        raise ValueError("not a URL-safe instance id")
    return f"{POINTER_ROW_PREFIX}{instance_id}"


def is_time_key(key: object) -> bool:
    return isinstance(key, str) and _TIME_KEY.fullmatch(key) is not None


def newer_than_bound(since: datetime) -> str:
    """An exclusive upper RowKey bound: time rows below it were created at or after `since`."""
    # Every key of millisecond m starts `t<inverted m>-`; '.' sorts right after '-'.
    return f"{TIME_ROW_PREFIX}{_MAX_MILLIS - _millis(since):013d}."


def older_than_bound(cutoff: datetime) -> str:
    """An exclusive lower RowKey bound: time rows above it were created before `cutoff`."""
    return f"{TIME_ROW_PREFIX}{_MAX_MILLIS - _millis(cutoff):013d}."


TIME_ROWS_END = chr(ord(TIME_ROW_PREFIX) + 1)
"""Exclusive upper bound of all time rows."""


@dataclass(frozen=True)
class IndexRow:
    """One time row."""

    key: str
    instance_id: str
    kind: str
    status: StatusGroup
    created: datetime


@dataclass(frozen=True)
class IndexPage:
    rows: tuple[IndexRow, ...]
    more: bool
    """The table holds more matching rows after the last one."""


class JobIndexUnavailable(Exception):
    """The index could not be read or written (the table service failed or refused)."""


class JobIndex(Protocol):
    """The index of one storage account (SDK calls behind it raise `JobIndexUnavailable`)."""

    def record_start(self, owner: str, instance_id: str, kind: str, created: datetime) -> IndexRow:
        """Write the job's row (replacing the row of an earlier run under the same id)."""
        ...

    def rows(self, owner: str, *, after: str | None, before: str, limit: int) -> IndexPage:
        """Time rows with `after < RowKey < before` (None: from the newest) in key order, at most
        `limit`: a key-range query only, so the next read can start after any row."""
        ...

    def set_status(self, owner: str, row: IndexRow, status: StatusGroup) -> None: ...

    def forget(self, owner: str, instance_id: str) -> bool:
        """Remove the job's rows; False when it had none."""
        ...

    def forget_row(self, owner: str, row: IndexRow) -> None:
        """Remove one time row (and its pointer when it names this row)."""
        ...


# --- the list's query and continuation token -------------------------------------------------------

MAX_CONTINUATION_TOKEN_LENGTH = 4096
_TOKEN_VERSION = 2
_TOKEN_PURPOSE = b"job-list-continuation-token\n"
_TOKEN_MAC_BYTES = 16
_TOKEN_SHAPE = re.compile(r"([A-Za-z0-9_-]{1,4000})\.([A-Za-z0-9_-]{22})")


class InvalidContinuationToken(ValueError):
    """A continuation token this API did not issue, or one issued for another query."""


class InvalidListQuery(ValueError):
    """A `status` or `since` the list does not take (the message says which, for the caller)."""


@dataclass(frozen=True)
class ListQuery:
    owner: str = DEFAULT_OWNER
    status: StatusGroup | None = None
    since: datetime | None = None

    @property
    def before(self) -> str:
        return newer_than_bound(self.since) if self.since is not None else TIME_ROWS_END

    @property
    def groups(self) -> tuple[StatusGroup, ...]:
        # A row's Status only moves from running to a finished group, and is repaired late (a
        # terminated job runs no code): a row still marked running may have become any group.
        if self.status is None:
            return ()
        return (self.status,) if self.status == StatusGroup.RUNNING else (self.status, StatusGroup.RUNNING)

    def matches(self, runtime_status: str | None) -> bool:
        return self.status is None or status_group(runtime_status) == self.status

    def fingerprint(self) -> str:
        since = self.since.astimezone(UTC).isoformat() if self.since is not None else ""
        return f"{self.owner}\n{self.status or ''}\n{since}"


def parse_status_filter(raw: str | None) -> StatusGroup | None:
    if raw is None or raw == "":
        return None
    try:
        return StatusGroup(raw)
    except ValueError:
        raise InvalidListQuery("status must be one of running, completed, failed") from None


def parse_since(raw: str | None) -> datetime | None:
    """`since`: an ISO 8601 date or time (`2026-12-01`, `2026-12-01T08:00:00Z`, with an offset);
    without a zone it is UTC."""
    if raw is None or raw == "":
        return None
    message = "since must be an ISO 8601 date or time, e.g. 2026-12-01 or 2026-12-01T08:00:00Z"
    if len(raw) > 64 or not raw.isascii():
        raise InvalidListQuery(message)
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(raw), time())
        except ValueError:
            raise InvalidListQuery(message) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.year < 1970:
        raise InvalidListQuery(message)
    return parsed.astimezone(UTC)


def token_key(signing_key: str) -> bytes:
    """The list token's MAC key, derived from the app's signing key for this one purpose."""
    return hmac.new(signing_key.encode(), _TOKEN_PURPOSE, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    """Canonical unpadded base64url only: a text whose spare bits are set decodes to the same bytes
    as another text, so a token would have several spellings (ValueError)."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != text:
        raise ValueError("not canonical base64url")
    return raw


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _TOKEN_PURPOSE + payload, hashlib.sha256).digest()[:_TOKEN_MAC_BYTES]


def encode_list_token(key: bytes, query: ListQuery, after: str) -> str:
    """`<base64url payload>.<base64url MAC>`: the query it continues and the last row key read."""
    payload = json.dumps({"v": _TOKEN_VERSION, "q": query.fingerprint(), "after": after},
                         separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_mac(key, payload))}"


def decode_list_token(key: bytes, query: ListQuery, token: str) -> str:
    """The row key to continue after; `InvalidContinuationToken` for anything this API did not issue
    for this very query (any other shape, a MAC that does not match, other filters)."""
    invalid = InvalidContinuationToken("not a continuation token this API issued for this query")
    shape = _TOKEN_SHAPE.fullmatch(token) if len(token) <= MAX_CONTINUATION_TOKEN_LENGTH else None
    if shape is None:
        raise invalid
    try:
        payload, mac = _unb64(shape[1]), _unb64(shape[2])
    except ValueError:
        raise invalid from None
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise invalid
    try:
        wire = json.loads(payload)
    except ValueError:
        raise invalid from None
    if not isinstance(wire, dict) or wire.get("v") != _TOKEN_VERSION or wire.get("q") != query.fingerprint():
        raise invalid
    after = wire.get("after")
    if not is_time_key(after):
        raise invalid
    return after


# --- the list ----------------------------------------------------------------------------------------

INDEX_READ_SIZE = 100
"""Rows read from the index at a time (key order)."""
MAX_INDEX_READS_PER_LIST = 5
"""Index reads for one answer at most: a filter that matches few rows yields a short page with a
token, not a long scan (at most 500 rows and as many status lookups per answer)."""
STATUS_LOOKUP_CONCURRENCY = 8
MISSING_GRACE = timedelta(minutes=10)
"""A row whose instance the task hub does not know is dropped from the index after this long
(younger: the start may still be on its way, e.g. a starter that wrote the row and then failed)."""


class StatusSource(Protocol):
    async def status(self, instance_id: str) -> Mapping[str, Any] | None:
        """The Durable status payload (input included), None when there is no such instance;
        raises `JobLookupFailed` on any other failure."""
        ...


@dataclass(frozen=True)
class Repair:
    """What the list learned about a stale row: a new status, or that the row is to go."""

    row: IndexRow
    status: StatusGroup | None = None
    forget: bool = False


def row_verdict(row: IndexRow, status: Mapping[str, Any] | None, query: ListQuery, now: datetime,
                kinds: Mapping[str, str]) -> tuple[JobSummary | None, Repair | None]:
    """The list row for one index row and its live status, and the repair the index needs."""
    if status is None:
        return None, (Repair(row, forget=True) if now - row.created > MISSING_GRACE else None)
    runtime = status.get("runtimeStatus")
    live = status_group(runtime if isinstance(runtime, str) else None)
    repair = Repair(row, status=live) if live != row.status else None
    if status.get("instanceId") != row.instance_id or not query.matches(runtime if isinstance(runtime, str) else None):
        return None, repair
    return summarize(status, kinds), repair


async def _lookup_all(statuses: StatusSource, rows: Sequence[IndexRow]) -> list[Mapping[str, Any] | None]:
    gate = asyncio.Semaphore(STATUS_LOOKUP_CONCURRENCY)

    async def one(row: IndexRow) -> Mapping[str, Any] | None:
        async with gate:
            return await statuses.status(row.instance_id)

    return list(await asyncio.gather(*(one(r) for r in rows)))


async def list_jobs(index: JobIndex, statuses: StatusSource, kinds: Mapping[str, str], query: ListQuery,
                    top: int, continuation_token: str | None, key: bytes, now: datetime,
                    repairs: list[Repair] | None = None) -> JobList:
    """At most `top` jobs, newest first, matching `query`, and a token when more may follow.

    Rows are consumed in key order; only rows whose `Status` may match are looked up, at most as
    many at a time as the answer still has room for, so an answer never exceeds `top` and the token
    (the last row consumed) resumes exactly after it. Raises `InvalidContinuationToken`,
    `JobIndexUnavailable` and `JobLookupFailed`. Stale rows met on the way are added to `repairs`.
    """
    after = decode_list_token(key, query, continuation_token) if continuation_token is not None else None
    wanted = set(query.groups)
    jobs: list[JobSummary] = []
    for _ in range(MAX_INDEX_READS_PER_LIST):
        page = await asyncio.to_thread(index.rows, query.owner, after=after, before=query.before,
                                       limit=INDEX_READ_SIZE)
        pending = list(page.rows)
        while pending and len(jobs) < top:
            batch: list[IndexRow] = []
            while pending and len(batch) < top - len(jobs):
                row = pending.pop(0)
                if wanted and row.status not in wanted:
                    after = row.key  # cannot match: a finished row never changes group
                    continue
                batch.append(row)
            for row, status in zip(batch, await _lookup_all(statuses, batch), strict=True):
                summary, repair = row_verdict(row, status, query, now, kinds)
                if summary is not None:
                    jobs.append(summary)
                if repair is not None and repairs is not None:
                    repairs.append(repair)
                after = row.key
        if len(jobs) >= top:
            more = bool(pending) or page.more
            return JobList(tuple(jobs), encode_list_token(key, query, after) if more and after else None)
        if not page.more:
            return JobList(tuple(jobs), None)
    return JobList(tuple(jobs), encode_list_token(key, query, after) if after else None)


def apply_repairs(index: JobIndex, owner: str, repairs: Sequence[Repair]) -> int:
    """Bring stale rows in line (best effort: a failure leaves the row for the next reader)."""
    done = 0
    for repair in repairs:
        try:
            if repair.forget:
                index.forget_row(owner, repair.row)
            elif repair.status is not None:
                index.set_status(owner, repair.row, repair.status)
            done += 1
        except JobIndexUnavailable:
            continue
    return done
