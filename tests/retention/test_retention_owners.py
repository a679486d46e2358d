"""Retention in entra mode (issue 21): a purged job's list entry is in its owner's partition of the
job index, not the `default` one, and goes with it. The task hub is the devhost's Durable HTTP API
(the stand-in), the index a real Azurite table."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

from azure.data.tables import TableClient

from retention import APP_ORCHESTRATORS, run_retention
from tests.support.durable_standin import DurableStandIn
from tests.support.services import Azurite
from videojob.adapters.durable_http import DurableHttp
from videojob.adapters.job_index_table import TableJobIndex
from videojob.domain.job_index import DEFAULT_OWNER, TIME_ROWS_END

ALICE = "11111111-1111-4111-8111-111111111111"


def test_a_purged_users_job_leaves_that_users_list(azurite: Azurite):
    index = TableJobIndex(TableClient.from_connection_string(azurite.connection_string, f"jobs{secrets.token_hex(6)}"))
    now = datetime.now(UTC)
    old = now - timedelta(days=40)
    with DurableStandIn() as standin:
        standin.add_instance("old-alice", "Completed", input={"owner": ALICE, "request": {"url": "x"}},
                             created_time=old, last_updated_time=old)
        standin.add_instance("old-keymode", "Completed", input={"request": {"url": "y"}},
                             created_time=old, last_updated_time=old)
        index.record_start(ALICE, "old-alice", "job", old)
        index.record_start(DEFAULT_OWNER, "old-keymode", "job", old)

        summary = asyncio.run(run_retention(DurableHttp(standin.rpc_base_url), index, None, APP_ORCHESTRATORS, 30, now))

    assert sorted(summary.purged) == ["old-alice", "old-keymode"]
    for owner in (ALICE, DEFAULT_OWNER):
        assert index.rows(owner, after=None, before=TIME_ROWS_END, limit=10).rows == (), owner
    assert summary.index_rows_removed == 2
