"""The platform facts the job index rests on, checked against extracts of their primary sources
(tests/api/data, each with its repository and commit), and the consequence checked on our keys."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from videojob.domain.job_index import time_key

DATA = Path(__file__).parent / "data"


def _blocks(name: str) -> dict[str, str]:
    text = (DATA / name).read_text(encoding="utf-8")
    assert re.search(r"^# source: https://github\.com/\S+ commit [0-9a-f]{40}$", text, re.M), "provenance"
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_the_azure_storage_provider_keys_each_instance_row_by_its_instance_id():
    blocks = _blocks("durabletask_instances_order.txt")
    new_execution = next(b for k, b in blocks.items() if "AzureTableTrackingStore.cs:780" in k)

    assert "sanitizedInstanceId = KeySanitation.EscapePartitionKey(" in new_execution
    assert "EscapePartitionKey(executionStartedEvent.OrchestrationInstance.InstanceId)" in new_execution
    assert 'new TableEntity(sanitizedInstanceId, "")' in new_execution  # PartitionKey = id, RowKey = ""


def test_the_instance_query_is_a_plain_table_query_paged_as_the_table_answers():
    blocks = _blocks("durabletask_instances_order.txt")
    query = next(b for k, b in blocks.items() if "AzureTableTrackingStore.cs:547" in k)
    paging = next(b for k, b in blocks.items() if "AzureStorageOrchestrationService.cs" in k)

    assert ".ExecuteQueryAsync<OrchestrationInstanceStatus>(filter" in query
    assert not re.search(r"OrderBy|Sort", query + paging)  # no ordering of its own
    assert ".AsPages(continuationToken, top)" in paging


def test_table_storage_sorts_by_partition_key_then_row_key_ascending():
    (doc,) = _blocks("table_storage_sort_order.txt").values()

    assert "sorted in ascending order based on **PartitionKey** and then by **RowKey**" in doc
    assert "sorts in reverse date and time order" in doc


def test_so_instance_id_order_is_not_time_order_but_our_row_keys_are():
    created = [datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=n) for n in range(30)]
    ids = [secrets.token_hex(16) for _ in created]  # what the extension generates: random
    by_partition_key = sorted(ids)  # the provider's order, per the extract
    by_row_key = [ids[i] for i in sorted(range(30), key=lambda i: time_key(created[i], ids[i]))]

    assert by_partition_key != ids[::-1]
    assert by_row_key == ids[::-1]  # ascending RowKey = newest first
