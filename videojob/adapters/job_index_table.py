"""`JobIndex` on Azure Table Storage (`azure-data-tables`): the table `jobindex` of the output account.

Locally the same table lives in Azurite's table service (`OUTPUT_CONNECTION_STRING` names its
`TableEndpoint`); in Azure it is the output account's table endpoint, reached with the app's identity
(Storage Table Data Contributor on that table, infra/modules/access.bicep).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from videojob.domain.job_index import (
    TIME_ROW_PREFIX,
    IndexPage,
    IndexRow,
    JobIndexUnavailable,
    StatusGroup,
    is_time_key,
    pointer_key,
    time_key,
)
from videojob.domain.settings import Settings

JOB_INDEX_TABLE = "jobindex"


def table_endpoint(blob_account_url: str) -> str:
    """The table endpoint of the account whose blob endpoint is `blob_account_url`
    (`https://<account>.blob.<suffix>` → `https://<account>.table.<suffix>`)."""
    parts = urlsplit(blob_account_url)
    labels = (parts.hostname or "").split(".")
    if parts.scheme != "https" or len(labels) < 3 or labels[1] != "blob":
        raise ValueError("OUTPUT_ACCOUNT_URL is not an https://<account>.blob.<suffix> endpoint")
    labels[1] = "table"
    return urlunsplit(("https", ".".join(labels), "", "", ""))


def _row(entity: Any) -> IndexRow | None:
    key, instance_id = entity.get("RowKey"), entity.get("InstanceId")
    created = entity.get("CreatedTime")
    if not is_time_key(key) or not isinstance(instance_id, str) or not isinstance(created, datetime):
        return None
    try:
        status = StatusGroup(entity.get("Status"))
    except ValueError:
        status = StatusGroup.RUNNING
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    return IndexRow(key, instance_id, str(entity.get("Kind") or ""), status, created)


class TableJobIndex:
    """One `TableClient`. With `create=True` (a connection string: Azurite, where no template runs)
    the table is created on first use; in Azure the Bicep creates it, and the app's role is scoped to
    that one table, so the app never asks for Create Table (its authorization scope is not the
    table's own in every documented case)."""

    def __init__(self, client: TableClient, *, create: bool = True):
        self.client = client
        self._ready = not create
        self._lock = threading.Lock()

    def _table(self) -> TableClient:
        with self._lock:
            if not self._ready:
                try:
                    self.client.create_table()
                except ResourceExistsError:
                    pass
                except AzureError as e:
                    raise JobIndexUnavailable(f"creating the table failed: {type(e).__name__}") from e
                self._ready = True
        return self.client

    def record_start(self, owner: str, instance_id: str, kind: str, created: datetime) -> IndexRow:
        row = IndexRow(time_key(created, instance_id), instance_id, kind, StatusGroup.RUNNING, created)
        table = self._table()
        try:
            earlier = self._pointed(table, owner, instance_id)
            operations: list[Any] = []
            if earlier is not None and earlier != row.key:
                operations.append(("delete", {"PartitionKey": owner, "RowKey": earlier}))
            operations.append(("upsert", {
                "PartitionKey": owner, "RowKey": row.key, "InstanceId": instance_id, "Kind": kind,
                "Status": row.status.value, "CreatedTime": created,
            }, {"mode": UpdateMode.REPLACE}))
            operations.append(("upsert", {"PartitionKey": owner, "RowKey": pointer_key(instance_id),
                                          "TimeKey": row.key}, {"mode": UpdateMode.REPLACE}))
            table.submit_transaction(operations)
        except AzureError as e:
            raise JobIndexUnavailable(f"writing the row failed: {type(e).__name__}") from e
        return row

    @staticmethod
    def _pointed(table: TableClient, owner: str, instance_id: str) -> str | None:
        try:
            pointer = table.get_entity(owner, pointer_key(instance_id))
        except ResourceNotFoundError:
            return None
        key = pointer.get("TimeKey")
        return key if is_time_key(key) else None

    def rows(self, owner: str, *, after: str | None, before: str, limit: int) -> IndexPage:
        table = self._table()
        try:
            pages = table.query_entities(
                "PartitionKey eq @owner and RowKey gt @after and RowKey lt @before",
                parameters={"owner": owner, "after": after or TIME_ROW_PREFIX, "before": before},
                results_per_page=limit,
            ).by_page()
            entities = list(next(pages, []))
            more = pages.continuation_token is not None
        except AzureError as e:
            raise JobIndexUnavailable(f"reading the index failed: {type(e).__name__}") from e
        rows = tuple(r for e in entities if (r := _row(e)) is not None)
        return IndexPage(rows, more)

    def set_status(self, owner: str, row: IndexRow, status: StatusGroup) -> None:
        try:
            self._table().update_entity({"PartitionKey": owner, "RowKey": row.key, "Status": status.value},
                                        mode=UpdateMode.MERGE)
        except ResourceNotFoundError:
            return
        except AzureError as e:
            raise JobIndexUnavailable(f"updating the row failed: {type(e).__name__}") from e

    def forget(self, owner: str, instance_id: str) -> bool:
        table = self._table()
        try:
            key = self._pointed(table, owner, instance_id)
            if key is not None:
                table.delete_entity(owner, key)
            table.delete_entity(owner, pointer_key(instance_id))
        except AzureError as e:
            raise JobIndexUnavailable(f"deleting the rows failed: {type(e).__name__}") from e
        return key is not None

    def forget_row(self, owner: str, row: IndexRow) -> None:
        table = self._table()
        try:
            table.delete_entity(owner, row.key)
            if self._pointed(table, owner, row.instance_id) == row.key:
                table.delete_entity(owner, pointer_key(row.instance_id))
        except AzureError as e:
            raise JobIndexUnavailable(f"deleting the row failed: {type(e).__name__}") from e


def job_index_from_settings(settings: Settings, credential_factory: Callable[[], Any],
                            table_name: str = JOB_INDEX_TABLE, **client_options: Any) -> TableJobIndex:
    """The index in the output account: Azurite's table service by connection string, else the
    account's table endpoint with the app's identity."""
    if settings.output_connection_string:
        if "blobendpoint=" in settings.output_connection_string.lower() and \
                "tableendpoint=" not in settings.output_connection_string.lower():
            # Else the SDK would address <account>.table.core.windows.net, not the emulator.
            raise ValueError("OUTPUT_CONNECTION_STRING names a BlobEndpoint but no TableEndpoint for the job index")
        client = TableClient.from_connection_string(settings.output_connection_string, table_name, **client_options)
    elif settings.output_account_url:
        client = TableClient(table_endpoint(settings.output_account_url), table_name,
                             credential=credential_factory(), **client_options)
        return TableJobIndex(client, create=False)
    else:
        raise ValueError("the job index needs OUTPUT_ACCOUNT_URL or OUTPUT_CONNECTION_STRING")
    return TableJobIndex(client)
