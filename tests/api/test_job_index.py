"""The job index in a real Azurite table service, with the Durable statuses scripted per instance
(the states a devhost job cannot reach quickly, such as Completed, and rows gone stale)."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from videojob.adapters.job_index_table import TableJobIndex, table_endpoint
from videojob.domain.job_index import (
    DEFAULT_OWNER,
    MISSING_GRACE,
    InvalidListQuery,
    ListQuery,
    StatusGroup,
    apply_repairs,
    list_jobs,
    parse_since,
    status_group,
    time_key,
    token_key,
)

KINDS = {"download_job": "job", "download_batch": "batch"}
KEY = token_key("s" * 48)
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class ScriptedStatuses:
    """`StatusSource` answering a fixed status per instance id (None: the task hub has no such instance)."""

    def __init__(self) -> None:
        self.by_id: dict[str, Mapping[str, Any] | None] = {}
        self.lookups: list[str] = []

    def set(self, instance_id: str, runtime_status: str, name: str = "download_job") -> None:
        self.by_id[instance_id] = {"name": name, "instanceId": instance_id, "runtimeStatus": runtime_status,
                                   "createdTime": "2026-11-01T12:00:00Z", "lastUpdatedTime": "2026-11-01T12:00:00Z"}

    async def status(self, instance_id: str) -> Mapping[str, Any] | None:
        self.lookups.append(instance_id)
        return self.by_id.get(instance_id)


def everything(index: TableJobIndex, statuses: ScriptedStatuses, query: ListQuery, top: int,
               now: datetime = T0 + timedelta(days=1)) -> list[list[str]]:
    pages, token = [], None
    while True:
        listed = asyncio.run(list_jobs(index, statuses, KINDS, query, top, token, KEY, now))
        pages.append([j.id for j in listed.jobs])
        token = listed.continuation_token
        if token is None:
            return pages
        assert len(pages) < 100


@pytest.fixture
def jobs(job_index: TableJobIndex) -> dict[str, Any]:
    """30 jobs with random ids a minute apart, in random states; newest first."""
    statuses = ScriptedStatuses()
    rng = random.Random(18)
    states = ["Running", "Pending", "Completed", "Failed", "Terminated", "Suspended"]
    ids = []
    for n in range(30):
        instance_id = secrets.token_hex(16)
        job_index.record_start(DEFAULT_OWNER, instance_id, "job", T0 + timedelta(minutes=n))
        statuses.set(instance_id, rng.choice(states))
        ids.append(instance_id)
    return {"index": job_index, "statuses": statuses, "newest_first": ids[::-1]}


def test_thirty_random_ids_come_newest_first_across_pages(jobs: dict):
    pages = everything(jobs["index"], jobs["statuses"], ListQuery(), 8)

    assert [len(p) for p in pages] == [8, 8, 8, 6]
    assert sum(pages, []) == jobs["newest_first"]


@pytest.mark.parametrize("group", list(StatusGroup))
def test_each_status_filter_lists_exactly_its_runtime_statuses(jobs: dict, group: StatusGroup):
    statuses = jobs["statuses"]
    # Rows still say "running" until someone repairs them; the filter must not depend on that.
    expected = [i for i in jobs["newest_first"] if status_group(statuses.by_id[i]["runtimeStatus"]) == group]

    assert sum(everything(jobs["index"], statuses, ListQuery(status=group), 3), []) == expected


def test_the_groups_cover_the_runtime_statuses_as_documented():
    assert {s: status_group(s) for s in ("Pending", "Running", "ContinuedAsNew", "Suspended")} == dict.fromkeys(
        ("Pending", "Running", "ContinuedAsNew", "Suspended"), StatusGroup.RUNNING)
    assert status_group("Completed") == StatusGroup.COMPLETED
    assert {status_group(s) for s in ("Failed", "Terminated", "Canceled")} == {StatusGroup.FAILED}


def test_since_is_a_bound_on_the_creation_time(jobs: dict):
    since = T0 + timedelta(minutes=20)

    listed = sum(everything(jobs["index"], jobs["statuses"], ListQuery(since=since), 4), [])

    assert listed == jobs["newest_first"][:10]


def test_a_job_added_between_pages_neither_shifts_nor_repeats_them(jobs: dict):
    index, statuses = jobs["index"], jobs["statuses"]
    first = asyncio.run(list_jobs(index, statuses, KINDS, ListQuery(), 10, None, KEY, T0))
    newest = secrets.token_hex(16)
    index.record_start(DEFAULT_OWNER, newest, "job", T0 + timedelta(hours=1))
    statuses.set(newest, "Running")

    rest = sum(everything(index, statuses, ListQuery(), 10), [])
    second = asyncio.run(list_jobs(index, statuses, KINDS, ListQuery(), 10, first.continuation_token, KEY, T0))

    assert [j.id for j in first.jobs] + [j.id for j in second.jobs] == jobs["newest_first"][:20]
    assert rest[0] == newest


def test_a_job_restarted_under_its_id_is_listed_once_at_its_new_time(jobs: dict):
    index, statuses = jobs["index"], jobs["statuses"]
    restarted = jobs["newest_first"][-1]
    index.record_start(DEFAULT_OWNER, restarted, "job", T0 + timedelta(hours=2))

    listed = sum(everything(index, statuses, ListQuery(), 100), [])

    assert listed == [restarted, *jobs["newest_first"][:-1]]


def test_stale_rows_are_repaired_and_missing_instances_dropped_after_the_grace(jobs: dict):
    index, statuses = jobs["index"], jobs["statuses"]
    gone, young = secrets.token_hex(16), secrets.token_hex(16)
    now = T0 + timedelta(days=1)
    index.record_start(DEFAULT_OWNER, gone, "job", now - MISSING_GRACE - timedelta(seconds=1))
    index.record_start(DEFAULT_OWNER, young, "job", now - timedelta(seconds=5))
    repairs: list = []

    listed = asyncio.run(list_jobs(index, statuses, KINDS, ListQuery(), 100, None, KEY, now, repairs))
    apply_repairs(index, DEFAULT_OWNER, repairs)

    assert {gone, young}.isdisjoint(j.id for j in listed.jobs)
    assert [r.row.instance_id for r in repairs if r.forget] == [gone]
    rows = {r.instance_id: r for r in index.rows(DEFAULT_OWNER, after=None, before="u", limit=100).rows}
    assert gone not in rows and young in rows
    finished = {i for i in jobs["newest_first"] if status_group(statuses.by_id[i]["runtimeStatus"]) != "running"}
    assert {i for i, r in rows.items() if r.status != StatusGroup.RUNNING} == finished


def test_a_status_filter_looks_up_no_row_already_known_to_be_in_another_group(jobs: dict):
    index, statuses = jobs["index"], jobs["statuses"]
    repairs: list = []
    asyncio.run(list_jobs(index, statuses, KINDS, ListQuery(), 100, None, KEY, T0, repairs))
    apply_repairs(index, DEFAULT_OWNER, repairs)
    statuses.lookups.clear()

    asyncio.run(list_jobs(index, statuses, KINDS, ListQuery(status=StatusGroup.COMPLETED), 100, None, KEY, T0))

    may_match = {i for i in jobs["newest_first"]
                 if status_group(statuses.by_id[i]["runtimeStatus"]) in (StatusGroup.COMPLETED, StatusGroup.RUNNING)}
    assert set(statuses.lookups) == may_match


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
    ("2026-12-01T08:00:00Z", datetime(2026, 12, 1, 8, tzinfo=UTC)),
    ("2026-12-01T09:00:00+01:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
    ("2026-12-01T08:00:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
])
def test_since_takes_iso_dates_and_times(raw: str, expected: datetime):
    assert parse_since(raw) == expected


@pytest.mark.parametrize("raw", ["yesterday", "2026-12-32", "1969-12-31", "x" * 100, "2026-12-01T08:00:00Zz"])
def test_since_refuses_anything_else(raw: str):
    with pytest.raises(InvalidListQuery, match="since"):
        parse_since(raw)


def test_time_keys_sort_newest_first_and_hold_their_order_across_digit_changes():
    times = [datetime(1999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC),
             datetime(2286, 11, 20, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)]
    keys = [time_key(t, "a" * 32) for t in times]

    assert [times[keys.index(k)] for k in sorted(keys)] == sorted(times, reverse=True)


@pytest.mark.parametrize(("blob", "table"), [
    ("https://videodl123.blob.core.windows.net", "https://videodl123.table.core.windows.net"),
    ("https://videodl123.blob.core.chinacloudapi.cn/", "https://videodl123.table.core.chinacloudapi.cn"),
])
def test_the_index_lives_in_the_output_accounts_table_endpoint(blob: str, table: str):
    assert table_endpoint(blob) == table


@pytest.mark.parametrize("blob", ["http://videodl123.blob.core.windows.net", "https://example.net"])
def test_an_output_url_that_is_not_a_blob_endpoint_is_refused(blob: str):
    with pytest.raises(ValueError, match="OUTPUT_ACCOUNT_URL"):
        table_endpoint(blob)


def test_forgetting_a_job_without_rows_is_no_error(job_index: TableJobIndex):
    # A purged batch item (a sub-orchestration) never had a row.
    assert job_index.forget(DEFAULT_OWNER, f"{'a' * 32}-000") is False


def test_in_azure_the_index_never_asks_for_create_table():
    # The Bicep makes the table and grants the app a role on that one table only; Create Table is
    # authorized on the account's /Tables, so the app must not depend on it (a wire-level check:
    # the SDK's real pipeline runs, only the socket is scripted).
    from tests.api.conftest import TEST_ENV
    from tests.backends.arm_transport import Exchange, FakeCredential, RecordingTransport
    from videojob.adapters.job_index_table import job_index_from_settings
    from videojob.domain.settings import load_settings

    env = {k: v for k, v in TEST_ENV.items() if k != "OUTPUT_CONNECTION_STRING"}
    settings = load_settings(environ={**env, "OUTPUT_ACCOUNT_URL": "https://outacct.blob.core.windows.net"})
    transport = RecordingTransport(Exchange("GET", "/jobindex()", 200, {"value": []}))
    index = job_index_from_settings(settings, FakeCredential, transport=transport)
    page = index.rows("default", after=None, before="u", limit=5)
    assert page.rows == ()
    assert [(r.method, r.path) for r in transport.requests] == [("GET", "/jobindex()")]
    assert transport.requests[0].url.startswith("https://outacct.table.core.windows.net/")
