"""Where a job's file may be: the one rule the worker names its blob by and the orchestrator checks
a reported result against. Pure (no SDK): the worker imports it too.

The rule (issue 9). A job's blobs are in the operator's `OUTPUT_CONTAINER`, under the prefix
`job_blob_prefix(job_id)` = `<job id>/`:
- Job ids are Durable instance ids, already restricted to `[A-Za-z0-9_-]{1,100}`
  (`videojob.domain.instances`), so the id is the prefix as is. A sanitized form would not do: it is not
  one-to-one (`a__b` and `_a_b` both become `a_b`), so two jobs could share a prefix.
- The prefix ends in `/`, so `job-1/` does not cover `job-10/`. Batch items (`<batch>-NNN`) are
  jobs with their own prefix; the batch itself writes nothing.
- Below the prefix: one or more `/`-separated segments, none empty, `.` or `..` (a browser or
  proxy would resolve them in a URL), no `\\`, no control or format characters; the whole name
  at most 1024 characters (Blob Storage's limit). The worker's names (`<job id>/<sanitized title>.<ext>`)
  always pass.
- The first segment below the prefix may not start with `.` (reserved: result records lived at
  `<job id>/.results/` before they moved to the staging container, `videojob.contract.staging`).

Anything else a worker reports is refused as `invalid_result` before any storage call or link:
a worker processes hostile content and holds a token for its own job only.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from videojob.contract.wire import is_url_safe_instance_id

MAX_BLOB_NAME_CHARS = 1024


def job_blob_prefix(job_id: str) -> str:
    """`<job id>/`: where job `job_id` may write. ValueError for an id outside the instance-id rule."""
    if not is_url_safe_instance_id(job_id):
        raise ValueError("a job id must be 1-100 letters, digits, '-' or '_'")
    return f"{job_id}/"


def _shown(text: str) -> str:
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def blob_name_problem(job_id: str, name: str) -> str | None:
    """Why `name` is not a blob name of job `job_id`; None when it is one."""
    prefix = job_blob_prefix(job_id)
    if not name.startswith(prefix):
        return f"blob name {_shown(name)} is not under the job's prefix {prefix!r}"
    if len(name) > MAX_BLOB_NAME_CHARS:
        return f"blob name is {len(name)} characters, over {MAX_BLOB_NAME_CHARS}"
    if "\\" in name or any(unicodedata.category(c)[0] == "C" for c in name):
        return f"blob name {_shown(name)} holds a backslash or a control character"
    if any(segment in ("", ".", "..") for segment in name[len(prefix):].split("/")):
        return f"blob name {_shown(name)} has an empty, '.' or '..' segment"
    if name[len(prefix):].startswith("."):
        return f"blob name {_shown(name)} is in the job's reserved '.' names"
    return None


def output_blob_problem(
    job_id: str, output_container: str, container: str, name: str, size_bytes: int
) -> str | None:
    """Why a reported blob is not job `job_id`'s own file in `output_container`; None when it is."""
    if container != output_container:
        return f"blob container {_shown(container)} is not the output container {output_container!r}"
    if size_bytes < 0:
        return f"blob size {size_bytes} is negative"
    return blob_name_problem(job_id, name)


def blob_url(endpoint: str, container: str, name: str) -> str:
    """The blob's URL on the operator's endpoint (query, e.g. a SAS in a connection string, dropped)."""
    base = endpoint.split("?", 1)[0].rstrip("/")
    return f"{base}/{quote(container, safe='')}/{quote(name, safe='/')}"


def copy_problem(name: str, reported_size: int, reported_sha256: str, size: int, sha256: str) -> str | None:
    """Why the published copy (`size` bytes hashing to `sha256`, as read back by the app) is not
    what the worker reported; None when it is. The service vouches only for bytes it has hashed."""
    shown = _shown(name)
    if size != reported_size:
        return f"blob {shown} holds {size} bytes, not the {reported_size} reported"
    if sha256 != reported_sha256.lower():
        return f"blob {shown} has sha256 {sha256}, not the {reported_sha256[:64]!r} reported"
    return None
