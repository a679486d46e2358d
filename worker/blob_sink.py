"""The Blob Storage edge: upload one file, hashing it on the way out.

Auth: the worker's managed identity (`DefaultAzureCredential`, client id from `AZURE_CLIENT_ID`)
against `OUTPUT_ACCOUNT_URL`, or `OUTPUT_CONNECTION_STRING` for Azurite.

The file is handed to the SDK as a non-seekable stream, so the SDK reads it once, in order,
in block-sized chunks (then stages up to `concurrency` blocks at a time). The reader hashes
what it hands over: the sha256 in the result costs no second read of the file. Memory stays
at about `(concurrency + 1) x block size` whatever the file size, and each block is held as
bytes, so the SDK can still retry a failed block.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from videojob.contract import BlobResult, ErrorCode, JobError

from .errors import JobFailed, clean_message

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

# The SDK is imported where it is used: importing it takes a few hundred milliseconds, which
# the job spends while the download runs (it builds the sink in the background).

log = logging.getLogger("worker.blob")

UploadProgress = Callable[[int, int], None]
"""(bytes uploaded so far, total bytes)."""
Checkpoint = Callable[[], None]
"""Called between reads; raises to abort the upload (cancellation)."""


@dataclass(frozen=True)
class UploadRequest:
    path: Path
    name: str
    content_type: str
    metadata: Mapping[str, str]
    content_disposition: str | None = None


class BlobSink(Protocol):
    endpoint_url: str

    def upload(self, request: UploadRequest, on_progress: UploadProgress, checkpoint: Checkpoint) -> BlobResult: ...


class HashingReader(io.RawIOBase):
    """A forward-only view of a file that hashes and counts what is read from it."""

    def __init__(self, path: Path, checkpoint: Checkpoint):
        super().__init__()
        self._file = path.open("rb", buffering=0)
        self._checkpoint = checkpoint
        self._sha = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        self._checkpoint()
        data = self._file.read() if size is None or size < 0 else self._read_exactly(size)
        self._sha.update(data)
        self.bytes_read += len(data)
        return data

    def _read_exactly(self, size: int) -> bytes:
        chunks, remaining = [], size
        while remaining > 0:
            chunk = self._file.read(remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    def close(self) -> None:
        self._file.close()
        super().close()


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


class AzureBlobSink:
    def __init__(
        self,
        service: BlobServiceClient,
        container: str,
        *,
        block_bytes: int = 8 * 1024 * 1024,
        concurrency: int = 4,
    ):
        self._service = service
        self._container = container
        self._concurrency = concurrency
        self.endpoint_url = _strip_query(service.url)
        self._block_bytes = block_bytes

    @classmethod
    def from_target(
        cls,
        *,
        container: str,
        account_url: str | None,
        connection_string: str | None,
        client_id: str | None,
        block_bytes: int = 8 * 1024 * 1024,
        concurrency: int = 4,
    ) -> AzureBlobSink:
        from azure.storage.blob import BlobServiceClient

        # Blocks above 4 MiB and no single-shot put above one block: memory stays flat.
        sizes = {"max_block_size": block_bytes, "max_single_put_size": block_bytes}
        if connection_string:
            try:
                service = BlobServiceClient.from_connection_string(connection_string, **sizes)
            except ValueError:
                # The SDK's message may quote the string: never pass it on.
                raise JobFailed(JobError(ErrorCode.UPLOAD_FAILED, "OUTPUT_CONNECTION_STRING is malformed")) from None
        elif account_url:
            from azure.identity import DefaultAzureCredential

            credential = (
                DefaultAzureCredential(managed_identity_client_id=client_id) if client_id else DefaultAzureCredential()
            )
            service = BlobServiceClient(account_url, credential=credential, **sizes)
        else:
            raise JobFailed(JobError(ErrorCode.INTERNAL, "no blob target configured"))
        return cls(service, container, block_bytes=block_bytes, concurrency=concurrency)

    def upload(self, request: UploadRequest, on_progress: UploadProgress, checkpoint: Checkpoint) -> BlobResult:
        from azure.core.exceptions import (
            AzureError,
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
        )
        from azure.storage.blob import ContentSettings

        blob = self._service.get_blob_client(self._container, request.name)
        size = request.path.stat().st_size
        settings = ContentSettings(content_type=request.content_type, content_disposition=request.content_disposition)

        def attempt() -> str:
            reader = HashingReader(request.path, checkpoint)
            try:
                blob.upload_blob(
                    reader,
                    length=size,
                    overwrite=True,
                    content_settings=settings,
                    metadata=dict(request.metadata),
                    max_concurrency=self._concurrency,
                    progress_hook=lambda current, total: on_progress(current, size),
                )
            finally:
                reader.close()
            if reader.bytes_read != size:
                raise JobFailed(JobError(ErrorCode.UPLOAD_FAILED, "the file changed while it was uploaded"))
            return reader.hexdigest()

        try:
            try:
                digest = attempt()
            except ResourceNotFoundError as e:
                if getattr(e, "error_code", None) != "ContainerNotFound":
                    raise
                log.info("container %s does not exist: creating it", self._container)
                try:
                    self._service.create_container(self._container)
                except HttpResponseError as ce:
                    if getattr(ce, "error_code", None) != "ContainerAlreadyExists":
                        raise
                digest = attempt()
        except JobFailed:
            raise
        except ClientAuthenticationError as e:
            raise JobFailed(
                JobError(ErrorCode.UPLOAD_FAILED, f"blob storage refused the worker's identity: {_brief(e)}")
            ) from None
        except HttpResponseError as e:
            retryable = e.status_code is None or e.status_code >= 500 or e.status_code == 429
            raise JobFailed(
                JobError(ErrorCode.UPLOAD_FAILED, f"upload failed: {_brief(e)}", retryable=retryable)
            ) from None
        except (AzureError, OSError) as e:
            raise JobFailed(JobError(ErrorCode.UPLOAD_FAILED, f"upload failed: {_brief(e)}", retryable=True)) from None
        return BlobResult(
            url=_strip_query(blob.url),
            container=self._container,
            name=request.name,
            size_bytes=size,
            sha256=digest,
            content_type=request.content_type,
        )


def _brief(e: BaseException) -> str:
    """The first line of an SDK error (its full text can be pages of XML and headers)."""
    text = str(getattr(e, "reason", None) or getattr(e, "message", None) or e)
    return clean_message(text.splitlines()[0] if text else type(e).__name__)[:300]
