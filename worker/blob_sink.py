"""The Blob Storage edge: stage a file as blocks, hashing it on the way out; commit it later.

Auth: nothing but the attempt's two SAS URLs (`STAGING_MEDIA_URL`, `STAGING_RECORD_URL`,
`videojob.contract.staging`): write-only, one blob each, in the staging container, expiring at the job's
deadline. The worker holds no account key and no identity with a storage role; it cannot read,
list or delete anything, nor create a container. The name it reports (`<job id>/<title>.<ext>`)
is a proposal: the app copies the staged blob there after checking it (`activities/publish.py`).

Two steps, so the job can verify the file while it is being uploaded:
- `stage` reads the file once, in order, in block-sized reads, hashes each block as it is
  read (the sha256 costs no second read) and puts up to `concurrency` blocks at a time
  (Put Block). Memory stays at about `concurrency x block size` whatever the file size;
  each block is held as bytes until it is stored, so the SDK's retry policy can resend it.
- `commit` (Put Block List) makes the blob, with its content type and metadata, from exactly
  the staged blocks. Until then nothing is visible: staged blocks that are never committed
  (verification failed, job cancelled) are discarded by the service.

`stage_growing` is `stage` for a file yt-dlp is still writing (issue 24): it stages each full
block as soon as the file holds it, hashing what it stages, until it is told the download ended
and which file it produced. Then it stages the rest while it hashes that final file as it is on
disk; only when that hash and size equal the staged ones (the staged blocks are exactly the file that
will be verified) are the blocks kept. Anything else (the file was truncated and rewritten, a
resumed request brought other bytes, a post-processor or fixup wrote another file) means the
final file is staged again from its start, as `stage` does, under the same block ids.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import queue
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

DownloadEnd = tuple[Path, str]
"""The download's final file and the blob name the job proposes for it."""
WaitForEnd = Callable[[float], "DownloadEnd | None"]
"""Waits up to that many seconds for the end of the download; raises to abort the staging."""
TAIL_POLL_SECONDS = 0.05
"""How often a growing file is looked at when it holds less than a block more."""

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

    def begin_growing(self, path: Path, max_bytes: int) -> None:
        """Start staging `path` while it is being written (`stage_growing`); returns at once."""
        ...

    def finish_growing(
        self, final: Path, name: str, on_progress: UploadProgress, checkpoint: Checkpoint
    ) -> StagedBlob:
        """The download ended with `final`: the staged blocks once they are exactly its bytes."""
        ...

    def abandon_growing(self, reason: JobError) -> None:
        """Stop a growing staging (the download failed); its blocks are never committed."""
        ...

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
        self._growing: Any = None

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

    def stage_growing(
        self, path: Path, max_bytes: int, wait_end: WaitForEnd, on_progress: UploadProgress, checkpoint: Checkpoint
    ) -> StagedBlob:
        """Stage `path` while it grows (see the module doc); `wait_end` says when and how it ended."""
        blob = self._media_blob()
        block_bytes = block_size_for(max_bytes, self._block_bytes)
        end: DownloadEnd | None = None

        # The final file is hashed from the moment the download ended, while the last blocks go.
        rehash = ThreadPoolExecutor(1, "rehash")
        final_digest: Future[tuple[int, str] | None] | None = None

        def progress(done: int, total: int) -> None:
            if end is not None:  # while the download runs, its own progress is the job's
                on_progress(done, total)

        def ended(timeout: float) -> DownloadEnd | None:
            nonlocal final_digest
            got = wait_end(timeout)
            if got is not None:
                final_digest = rehash.submit(file_digest, got[0])
            return got

        try:
            file = path.open("rb", buffering=0)
        except OSError:  # already renamed (a download quicker than the sink): staged once it ended
            file = None
        with _classified_errors(), _shut_down_after(rehash):
            blocks = _Blocks(blob, self._concurrency, progress)
            if file is not None:
                with file, blocks:
                    fd = file.fileno()
                    while True:
                        if end is None:
                            end = ended(0)
                        available = os.fstat(fd).st_size - blocks.offset
                        if available < 0:
                            break  # truncated: yt-dlp is writing it again from the start
                        if available >= block_bytes or (end is not None and available > 0):
                            blocks.reserve()
                            data = os.pread(fd, min(block_bytes, available), blocks.offset)
                            if not data:
                                break
                            blocks.put(data)
                            del data  # the next read must not hold a block more in memory
                            continue
                        if end is not None:
                            break
                        end = ended(TAIL_POLL_SECONDS)
            while end is None:
                end = ended(TAIL_POLL_SECONDS)
            final, name = end
            digest = final_digest.result() if final_digest is not None else None
            if blocks.offset and digest == (blocks.offset, blocks.sha256):
                return blocks.staged(name)
        log.warning("the downloaded file is not the bytes staged while it grew: staging it again")
        return self.stage(final, name, on_progress, checkpoint)

    def begin_growing(self, path: Path, max_bytes: int) -> None:
        ends: queue.SimpleQueue[DownloadEnd | JobError] = queue.SimpleQueue()
        progress: list[UploadProgress] = []
        checkpoints: list[Checkpoint] = []

        def wait_end(timeout: float) -> DownloadEnd | None:
            try:
                end = ends.get(timeout=timeout) if timeout else ends.get_nowait()
            except queue.Empty:
                return None
            if isinstance(end, JobError):
                raise JobFailed(end)
            return end

        pool = ThreadPoolExecutor(1, "grow")
        future = pool.submit(
            self.stage_growing, path, max_bytes, wait_end,
            lambda done, total: progress[0](done, total), lambda: checkpoints[0]() if checkpoints else None,
        )  # fmt: skip
        pool.shutdown(wait=False)
        self._growing = (ends, progress, checkpoints, future)

    def finish_growing(
        self, final: Path, name: str, on_progress: UploadProgress, checkpoint: Checkpoint
    ) -> StagedBlob:
        ends, progress, checkpoints, future = self._growing
        progress.append(on_progress)
        checkpoints.append(checkpoint)
        ends.put((final, name))
        return future.result()  # type: ignore[no-any-return]

    def abandon_growing(self, reason: JobError) -> None:
        ends, _, _, future = self._growing
        ends.put(reason)
        wait([future])

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
        block_bytes = block_size_for(expected_bytes, self._block_bytes)
        with _Blocks(self._media_blob(), self._concurrency, on_progress, expected_bytes) as blocks:
            while True:
                checkpoint()
                blocks.reserve()
                data = read(block_bytes)
                if not data:
                    break
                blocks.put(data)
                del data
        return blocks.staged(name)


class _Blocks:
    """Put Block for each block handed in, in order, at most `concurrency` at a time, hashing
    them as they go; leaving the `with` waits for every put (or cancels them on an error)."""

    def __init__(self, blob: Any, concurrency: int, on_progress: UploadProgress, expected_bytes: int = 0):
        self._blob = blob
        self._concurrency = concurrency
        self._on_progress = on_progress
        self._expected = expected_bytes
        self._sha = hashlib.sha256()
        self._in_flight: set[Future[int]] = set()
        self._pool: ThreadPoolExecutor | None = None  # made on entering the `with`
        self.ids: list[str] = []
        self.offset = 0
        self.sent = 0

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def staged(self, name: str) -> StagedBlob:
        return StagedBlob(name=name, block_ids=tuple(self.ids), size_bytes=self.offset, sha256=self.sha256)

    def reserve(self) -> None:
        """Wait until fewer than `concurrency` puts are in flight: called before reading a block,
        so at most `concurrency` blocks are in memory, the one just read included."""
        if len(self._in_flight) >= self._concurrency:
            done, self._in_flight = wait(self._in_flight, return_when=FIRST_COMPLETED)
            self._settle(done)

    def put(self, data: bytes) -> None:
        self.offset += len(data)
        self._sha.update(data)  # hashlib releases the GIL for big buffers: the puts go on meanwhile
        self.ids.append(block_id(len(self.ids)))
        self.reserve()
        if self._pool is None:
            raise RuntimeError("blocks are put inside `with _Blocks(...)` only")
        self._in_flight.add(self._pool.submit(self._put, self.ids[-1], data))

    def _put(self, block: str, data: bytes) -> int:
        self._blob.stage_block(block, data, length=len(data))
        return len(data)

    def _settle(self, futures: set[Future[int]]) -> None:
        for f in futures:
            self.sent += f.result()  # raises the block's error, if any
            self._on_progress(self.sent, max(self._expected, self.offset))

    def __enter__(self) -> _Blocks:
        self._pool = ThreadPoolExecutor(self._concurrency, "stage")
        return self

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        pool, self._pool = self._pool, None
        try:
            if error is None:
                self._settle(wait(self._in_flight).done)
                self._in_flight = set()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


def file_digest(path: Path) -> tuple[int, str] | None:
    """(size, sha256) of the file at `path` as it is on disk; None if it cannot be read."""
    try:
        with path.open("rb") as file:
            return os.fstat(file.fileno()).st_size, hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


@contextlib.contextmanager
def _shut_down_after(pool: ThreadPoolExecutor) -> Iterator[None]:
    try:
        yield
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
