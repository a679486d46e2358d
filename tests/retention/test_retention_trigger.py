"""The retention timer as the host invokes it (binding JSON, timer payload), against the devhost's
Durable API (the stand-in) and the job index in Azurite: old finished jobs purged, the rest kept."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter

import retention
from tests.support.durable_standin import DurableStandIn, IndexedFunctions, client_binding_value, run
from tests.support.services import Azurite
from videojob import bootstrap
from videojob.adapters.job_index_table import TableJobIndex
from videojob.domain.job_index import DEFAULT_OWNER, TIME_ROWS_END
from videojob.domain.retention import RETENTION_SCHEDULE
from videojob.domain.settings import load_settings


@pytest.fixture(scope="module")
def functions() -> IndexedFunctions:
    return IndexedFunctions(retention.bp)


@pytest.fixture
def index(azurite: Azurite) -> Iterator[TableJobIndex]:
    idx = TableJobIndex(TableClient.from_connection_string(azurite.connection_string, f"jobs{secrets.token_hex(8)}"))
    bootstrap.override(job_index=idx, settings=load_settings(environ={
        "CONTAINER_BACKEND": "local", "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
        "CALLBACK_SIGNING_KEY": "k" * 48, "OUTPUT_ACCOUNT_URL": "https://account.blob.core.windows.net",
        "JOB_RETENTION_DAYS": "7"}))
    yield idx
    bootstrap.reset()


def test_the_timer_purges_old_finished_jobs_of_this_app_only(functions, index: TableJobIndex):
    now = datetime.now(UTC)
    old, new = now - timedelta(days=8), now - timedelta(days=6)
    with DurableStandIn() as standin:
        seeds = {
            "old_done": ("Completed", "download_job", old), "old_failed_batch": ("Failed", "download_batch", old),
            "old_terminated": ("Terminated", "download_job", old), "old_running": ("Running", "download_job", old),
            "old_suspended": ("Suspended", "download_job", old),
            "old_foreign": ("Completed", "another_apps_flow", old), "new_done": ("Completed", "download_job", new),
        }
        jobs = {key: standin.add_instance(None, status, name=name, created_time=created).instance_id
                for key, (status, name, created) in seeds.items()}
        for key, instance_id in jobs.items():
            index.record_start(DEFAULT_OWNER, instance_id, "job", old if key.startswith("old") else new)
        timer = TimerRequestConverter.decode(meta.Datum(type="json", value=json.dumps({"Schedule": {},
                                                                                         "IsPastDue": False})),
                                             trigger_metadata=None)

        run(functions.user_function("purge_expired_jobs")(
            timer=timer, client=client_binding_value(standin.binding_json())))

        left = set(standin.instances)
        listed = {r.instance_id for r in index.rows(DEFAULT_OWNER, after=None, before=TIME_ROWS_END, limit=100).rows}
    purged = {jobs[k] for k in ("old_done", "old_failed_batch", "old_terminated")}
    assert purged.isdisjoint(left) and purged.isdisjoint(listed)
    kept = set(jobs.values()) - purged
    assert kept <= left and kept <= listed


def test_the_timer_runs_hourly(functions):
    [timer] = [b for b in functions.bindings("purge_expired_jobs") if b["type"] == "timerTrigger"]

    assert timer["schedule"] == RETENTION_SCHEDULE == "0 17 * * * *"
