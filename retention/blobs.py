"""Expired blobs where no lifecycle rule deletes them: Azurite (the devhost), reached by connection
string. In Azure (`OUTPUT_ACCOUNT_URL`), the output account's lifecycle management policy deletes
blobs `JOB_RETENTION_DAYS` after their last modification, and the app deletes none itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from azure.storage.blob import BlobServiceClient

from videojob.domain.retention import is_expired_blob
from videojob.domain.settings import Settings


class ContainerBlobs:
    """`retention.purge.ExpiringBlobs` over containers of one account."""

    def __init__(self, service: BlobServiceClient, containers: tuple[str, ...]):
        self.service = service
        self.containers = containers

    def expired(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for container in self.containers:
            client = self.service.get_container_client(container)
            if not client.exists():
                continue
            for blob in client.list_blobs():
                if is_expired_blob(blob.last_modified, before):
                    found.append((container, blob.name))
                    if len(found) >= limit:
                        return found
        return found

    def delete(self, container: str, name: str) -> None:
        self.service.get_blob_client(container, name).delete_blob(delete_snapshots="include")


def expiring_blobs(settings: Settings, **client_options: Any) -> ContainerBlobs | None:
    if not settings.output_connection_string:
        return None
    service = BlobServiceClient.from_connection_string(settings.output_connection_string, **client_options)
    return ContainerBlobs(service, (settings.output_container,))
