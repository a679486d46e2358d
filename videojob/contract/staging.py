"""Where a worker may write, and with what: the staging names the orchestration chooses and the
credential that reaches them (issue 19). Pure (no SDK): the function app and the worker both use it.

A worker handles hostile content, so its storage access is its own attempt's and nothing more:
- It writes only into `STAGING_CONTAINER`, under `<job id>/<run>/a<attempt>/` (`staging_prefix`):
  `media` (the file, download mode only) and `record.json` (its result record). The names are
  derived here from the job, the orchestration run and the attempt, never from anything a worker
  sends, so a worker of another job, run or attempt never gets a credential for them.
- Each name gets its own SAS (`sr=b`), permission `w` only (`WORKER_BLOB_PERMISSION`), expiring
  at the job's deadline: Put Block and Put Block List need Write under every service version the
  SDK and Azurite speak (Create does only from 2026-04-06: `tests/share_link/data/sas_permissions.json`).
  Without `r`, `d`, `l` it cannot read, delete or list anything, and being a blob SAS it names no
  other blob. It can rewrite its own staging blob until the deadline, which is why the app never
  serves a staging blob: it copies it out and hashes the copy (`activities/publish.py`).
- The worker proposes the final name (`<job id>/<title>.<ext>`, the output blob rule); only the
  app ever writes under it, in `OUTPUT_CONTAINER`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from videojob.contract.output_blob import job_blob_prefix

STAGED_MEDIA = "media"
STAGED_RECORD = "record.json"
WORKER_BLOB_PERMISSION = "w"
"""The one SAS permission a worker gets, per blob: Put Block + Put Block List (and Put Blob)."""


def staging_prefix(job_id: str, run: str | None, attempt: int) -> str:
    """`<job id>/<run>/a<attempt>/` (`<job id>/a<attempt>/` for a run without a token)."""
    if attempt < 1:
        raise ValueError("an attempt is 1-based")
    middle = f"{run}/" if run else ""
    return f"{job_blob_prefix(job_id)}{middle}a{attempt}/"


def staged_media_name(job_id: str, run: str | None, attempt: int) -> str:
    return staging_prefix(job_id, run, attempt) + STAGED_MEDIA


def staged_record_name(job_id: str, run: str | None, attempt: int) -> str:
    return staging_prefix(job_id, run, attempt) + STAGED_RECORD


def result_record_name(job_id: str, attempt: int, run: str | None) -> str:
    """Where the worker of attempt `attempt` of run `run` records its outcome (`videojob.contract.result_record`):
    its staging record, `<job id>/<run>/a<attempt>/record.json` in `STAGING_CONTAINER`
    (this module), the one name its record SAS reaches."""
    return staged_record_name(job_id, run, attempt)


def is_result_record(job_id: str, name: str) -> bool:
    """Whether `name` is one of the job's result records rather than its media."""
    return name.startswith(job_blob_prefix(job_id)) and name.endswith(f"/{STAGED_RECORD}")


@dataclass(frozen=True)
class UploadGrant:
    """The SAS URLs a worker gets (secure env values, never logged): its record's always, its
    media's in download mode."""

    record_url: str = field(repr=False)
    media_url: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"UploadGrant(media={'yes' if self.media_url else 'no'})"
