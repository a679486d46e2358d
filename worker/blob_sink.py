"""The Blob Storage edge: stage a file as blocks, hashing it on the way out; commit it later.

Auth: nothing but the attempt's two SAS URLs (`STAGING_MEDIA_URL`, `STAGING_RECORD_URL`,
`videojob.contract.staging`): write-only, one blob each, in the staging container, expiring at the job's
deadline. The worker holds no account key and no identity with a storage role; it cannot read,
list or delete anything, nor create a container. The name it reports (`<job id>/<title>.<ext>`)
is a proposal: the app copies the staged blob there after checking it (`activities/publish.py`).

Two steps, so the job can verify the file while it is being uploaded:
- `stage` reads the file once, in order, in block-sized reads, hashes each block as it is
  read (the sha256 costs no second read) and puts up to `concurrency` blocks at a time
  (Put Block). Memory stays at about `(concurrency + 1) x block size` whatever the file size;
  each block is held as bytes until it is stored, so the SDK's retry policy can resend it.
- `commit` (Put Block List) makes the blob, with its content type and metadata, from exactly
  the staged blocks. Until then nothing is visible: staged blocks that are never committed
  (verification failed, job cancelled) are discarded by the service.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from videojob.contract.output_blob import blob_url
from videojob.contract.wire import BlobResult, ErrorCode, JobError

from .failures import JobFailed, clean_message

# The SDK is imported where it is used: importing it takes a few hundred milliseconds, which
# the job spends while the download runs (it builds the sink in the background).

log = logging.getLogger("worker.blob")

UploadProgress = Callable[[int, int], None]
"""(bytes uploaded so far, total bytes)."""
Checkpoint = Callable[[], None]
"""Called between reads; raises to abort the upload (cancellation)."""

MAX_BLOCKS = 50_000
"""A block blob has at most 50,000 blocks: bigger files get bigger blocks."""


@dataclass(frozen=True)
class BlobProperties:
    content_type: str
    metadata: Mapping[str, str]
    content_disposition: str | None = None


@dataclass(frozen=True)
class StagedBlob:
    name: str
    """The final name the job proposes (`<job id>/<title>.<ext>`); the blocks are in the staged media blob."""
    block_ids: tuple[str, ...]
    size_bytes: int
    sha256: str


class BlobSink(Protocol):
    endpoint_url: str

    def stage(self, path: Path, name: str, on_progress: UploadProgress, checkpoint: Checkpoint) -> StagedBlob: ...

    def commit(self, staged: StagedBlob, properties: BlobProperties) -> BlobResult: ...

    def put_record(self, name: str, data: bytes) -> None:
        """Write the job's result record (`videojob.contract.result_record`) at once. `name` must be the
        one its SAS names (`result_record_name`): the sink can write nowhere else."""
        ...


def block_size_for(size: int, preferred: int) -> int:
    """`preferred`, or more when the file would need more than `MAX_BLOCKS` blocks."""
    return max(preferred, -(-size // MAX_BLOCKS))


def block_id(index: int) -> str:
    """Block ids of one blob must all have the same length (the SDK base64-encodes them)."""
    return f"{index:08d}"


def read_block(file: io.RawIOBase, size: int) -> bytes:
    """Up to `size` bytes; fewer only at the end of the file (a raw read may return less)."""
    data = file.read(size) or b""
    if len(data) == size or not data:
        return data
    chunks = [data]
    remaining = size - len(data)
    while remaining > 0:
        chunk = file.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


@dataclass(frozen=True)
class UploadTarget:
    """Where the upload goes: the attempt's SAS URLs (secret: never printed) and the output
    container the reported result names."""

    output_container: str
    record_url: str = field(repr=False)
    media_url: str | None = field(default=None, repr=False)
    block_bytes: int = 8 * 1024 * 1024
    concurrency: int = 4

    def __repr__(self) -> str:  # never print a SAS
        return f"UploadTarget(output_container={self.output_container!r}, media={self.media_url is not None})"


def _service_endpoint(client: Any) -> str:
    """The blob service URL of a blob client (Azurite's includes the account), without the SAS."""
    base = _strip_query(client.url)
    marker = f"/{client.container_name}/"
    return base[: base.index(marker)] if marker in base else base


class AzureBlobSink:
    def __init__(self, target: UploadTarget):
        from azure.storage.blob import BlobClient

        self._target = target
        self._concurrency = target.concurrency
        self._block_bytes = target.block_bytes
        self._media = BlobClient.from_blob_url(target.media_url) if target.media_url else None
        self._record = BlobClient.from_blob_url(target.record_url)
        self.endpoint_url = _service_endpoint(self._record)

    @classmethod
    def from_target(cls, target: UploadTarget) -> AzureBlobSink:
        try:
            return cls(target)
        except ValueError:
            # The SDK's message may quote the URL, SAS included: never pass it on.
            raise JobFailed(JobError(ErrorCode.UPLOAD_FAILED, "the staging SAS URL is malformed")) from None

    def stage(self, path: Path, name: str, on_progress: UploadProgress, checkpoint: Checkpoint) -> StagedBlob:
        """Put every block of the file into the staged media blob; nothing is visible until
        `commit`. `name` is the final name the job proposes (carried, reported, never written)."""
        size = path.stat().st_size
        with _classified_errors(), path.open("rb", buffering=0) as file:
            return self._stage_blocks(name, lambda n: read_block(file, n), on_progress, checkpoint, size)

    def commit(self, staged: StagedBlob, properties: BlobProperties) -> BlobResult:
        """Make the staged media blob from exactly the staged blocks. The result names the final
        blob the job proposes, in the output container; the app publishes it there."""
        from azure.storage.blob import ContentSettings

        settings = ContentSettings(
            content_type=properties.content_type, content_disposition=properties.content_disposition
        )
        with _classified_errors():
            self._media_blob().commit_block_list(
                list(staged.block_ids), content_settings=settings, metadata=dict(properties.metadata)
            )
        return BlobResult(
            url=blob_url(self.endpoint_url, self._target.output_container, staged.name),
            container=self._target.output_container,
            name=staged.name,
            size_bytes=staged.size_bytes,
            sha256=staged.sha256,
            content_type=properties.content_type,
        )

    def put_record(self, name: str, data: bytes) -> None:
        from azure.storage.blob import ContentSettings

        if name != self._record.blob_name:
            raise JobFailed(JobError(ErrorCode.INTERNAL, "the result record's name is not the one its SAS names"))
        # One retry, not the SDK's three with long backoffs: the final report waits for this write,
        # and an unreachable storage would otherwise hold it back for well over a minute.
        with _classified_errors():
            self._record.upload_blob(
                data, overwrite=True, content_settings=ContentSettings("application/json"), retry_total=1
            )

    def _media_blob(self) -> Any:
        if self._media is None:
            raise JobFailed(JobError(ErrorCode.INTERNAL, "no staging SAS for media (a listing uploads none)"))
        return self._media

    def _stage_blocks(
        self,
        name: str,
        read: Callable[[int], bytes],
        on_progress: UploadProgress,
        checkpoint: Checkpoint,
        expected_bytes: int,
    ) -> StagedBlob:
        blob = self._media_blob()
        block_bytes = block_size_for(expected_bytes, self._block_bytes)
        sha = hashlib.sha256()
        ids: list[str] = []
        read_bytes = sent = 0
        in_flight: set[Future[int]] = set()

        def put(block: str, data: bytes) -> int:
            blob.stage_block(block, data, length=len(data))
            return len(data)

        def settle(futures: set[Future[int]]) -> None:
            nonlocal sent
            for f in futures:
                sent += f.result()  # raises the block's error, if any
                on_progress(sent, max(expected_bytes, read_bytes))

        with ThreadPoolExecutor(self._concurrency, "stage") as pool:
            try:
                while True:
                    checkpoint()
                    data = read(block_bytes)
                    if not data:
                        break
                    read_bytes += len(data)
                    sha.update(data)  # hashlib releases the GIL for big buffers: the puts go on meanwhile
                    ids.append(block_id(len(ids)))
                    if len(in_flight) >= self._concurrency:
                        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        settle(done)
                    in_flight.add(pool.submit(put, ids[-1], data))
                    del data
                settle(wait(in_flight).done)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return StagedBlob(name=name, block_ids=tuple(ids), size_bytes=read_bytes, sha256=sha.hexdigest())


@contextlib.contextmanager
def _classified_errors() -> Iterator[None]:
    """SDK failures as `JobFailed(upload_failed)`, with a short message and the right `retryable`."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    try:
        yield
    except JobFailed:
        raise
    except ClientAuthenticationError as e:
        raise JobFailed(
            JobError(ErrorCode.UPLOAD_FAILED, f"blob storage refused the worker's SAS: {_brief(e)}")
        ) from None
    except HttpResponseError as e:
        retryable = e.status_code is None or e.status_code >= 500 or e.status_code == 429
        raise JobFailed(JobError(ErrorCode.UPLOAD_FAILED, f"upload failed: {_brief(e)}", retryable=retryable)) from None
    except (AzureError, OSError) as e:
        raise JobFailed(JobError(ErrorCode.UPLOAD_FAILED, f"upload failed: {_brief(e)}", retryable=True)) from None


def _brief(e: BaseException) -> str:
    """The first line of an SDK error (its full text can be pages of XML and headers)."""
    text = str(getattr(e, "reason", None) or getattr(e, "message", None) or e)
    return clean_message(text.splitlines()[0] if text else type(e).__name__)[:300]
