"""What the retention run relies on in the extension's HTTP API, checked against an extract of its
source (tests/retention/data, with repository and commit), and our side of each fact."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.durable_standin import DurableStandIn
from videojob.adapters.durable_http import DurableHttp
from videojob.domain.instances import ACTIVE_RUNTIME_STATUSES, FINISHED_RUNTIME_STATUSES, RuntimeStatus
from videojob.domain.retention import PURGED_RUNTIME_STATUSES, is_purgeable

EXTRACT = (Path(__file__).parent / "data" / "durable_http_api_purge_and_query.txt").read_text(encoding="utf-8")
CUTOFF = datetime(2026, 11, 1, tzinfo=UTC)


def _block(title: str) -> str:
    assert re.search(r"^# source: https://github\.com/\S+ commit [0-9a-f]{40}$", EXTRACT, re.M)
    return EXTRACT.split(f": {title}\n", 1)[1].split("\n## ", 1)[0]


def status(runtime: str, created: datetime = CUTOFF - timedelta(days=1), name: str = "download_job") -> dict:
    return {"name": name, "instanceId": "a" * 32, "runtimeStatus": runtime,
            "createdTime": created.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_the_purge_by_id_checks_no_runtime_status_so_we_must():
    handler = _block("HandleDeleteHistoryByIdRequestAsync")

    assert "PurgeInstanceHistoryAsync(instanceId)" in handler and "RuntimeStatus" not in handler


@pytest.mark.parametrize("runtime", sorted(ACTIVE_RUNTIME_STATUSES))
def test_an_active_instance_is_never_purgeable_whatever_its_age(runtime: str):
    assert not is_purgeable(status(runtime, CUTOFF - timedelta(days=3650)), frozenset({"download_job"}), CUTOFF)


@pytest.mark.parametrize("runtime", sorted(FINISHED_RUNTIME_STATUSES))
def test_a_finished_instance_is_purgeable_only_before_the_cutoff_and_only_ours(runtime: str):
    ours = frozenset({"download_job"})

    assert is_purgeable(status(runtime), ours, CUTOFF)
    assert not is_purgeable(status(runtime, CUTOFF), ours, CUTOFF)
    assert not is_purgeable(status(runtime, name="another_apps_flow"), ours, CUTOFF)


def test_created_time_comes_in_whole_seconds_with_z_and_is_read():
    convert = _block("ConvertFrom")

    assert 'CreatedTime = status.CreatedTime.ToString("s") + "Z"' in convert
    assert is_purgeable(status("Completed", CUTOFF - timedelta(seconds=1)), frozenset({"download_job"}), CUTOFF)


def test_the_status_filter_is_sent_comma_separated_as_the_handler_splits_it():
    assert "x.Split(',')" in _block("TryGetIEnumerableQueryParameterValue")
    with DurableStandIn() as standin:
        asyncio.run(DurableHttp(standin.rpc_base_url).page(10, created_to=CUTOFF,
                                                          runtime_statuses=PURGED_RUNTIME_STATUSES))
        [call] = standin.calls_of("list")

    assert call.query["runtimeStatus"].split(",") == [RuntimeStatus.COMPLETED, RuntimeStatus.FAILED,
                                                     RuntimeStatus.TERMINATED]
    assert datetime.fromisoformat(call.query["createdTimeTo"]) == CUTOFF
