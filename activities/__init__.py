"""Activities: the container-group operations the orchestrators call, plus the share link and
the completion webhook.

Payloads (the one definition is `videojob.domain.activity_wire`, which the orchestrator uses as well):

- `create_container_group`: `{"jobId", "request": {...}, "createdAt", "deadline", "attempt", "run", "group"}`
  (`group` is attempt `attempt`'s own in run `run`: `attempt_group_name(jobId, attempt, run)`)
  -> `{"ok": true, "group", "state"}` or `{"ok": false, "group", "error"}`
- `inspect_container_group`: `{"group"}`
  -> `{"ok": true, "state", "exitCode", "detail", "logTail"}` or `{"ok": false, "error"}`
- `stop_container_group`, `delete_container_group`: `{"group"}` -> `{"ok": true}` or `{"ok": false, "error"}`
- `check_output_blob`: `{"jobId", "container", "name"}` -> `{"ok": true, "exists", "sizeBytes", "url"}`
  or `{"ok": false, "error"}` (`output_blob.py`; kept for orchestrations scheduled before publishing)
- `publish_output_blob`: `{"jobId", "run", "attempt", "container", "name", "sizeBytes", "sha256"}` ->
  `{"ok": true, "exists", "sizeBytes", "sha256", "url"}` or `{"ok": false, "error"}` (`publish.py`):
  the attempt's staging blob copied to the reported name in `OUTPUT_CONTAINER`, the copy hashed
- `create_share_link`: `{"jobId", "container", "name", "hours"}` -> `{"ok": true, "url", "expiresAt"}`
  or `{"ok": false, "error"}` (`share_link.py`); both refuse a blob outside `OUTPUT_CONTAINER` or the
  job's prefix (`invalid_result`)
- `notify_completion`: `{"url", "payload"}` -> `{"ok": true, "status"}` or
  `{"ok": false, "status"?, "error"}` (`notify.py`)
- `announce_slot_grants`: `{"ids", "by"}` -> `{"ok": true, "told"}` (`videojob/domain/slot_announce.py`): `SlotGranted`
  raised to the jobs a freed `MAX_RUNNING_JOBS` slot went to (an async activity with a durable client)
- `read_result_record`: `{"jobId", "attempt", "run"}` -> `{"ok": true, "found", "event"?, "refused"?}`
  or `{"ok": false, "error"}` (`result_record.py`): the worker's recorded outcome

`error` is `{"code", "message", "retryable"}` (a backend's own code, e.g. the ARM
`InaccessibleImage`, or `invalid_input` / `configuration` / `unexpected_error`). `logTail` is
only filled once the group is no longer active. Stopping or deleting a missing group is `ok`.
Activities are synchronous `def`s (the host runs them on its thread pool) and never log secrets:
a `ContainerSpec`'s repr hides its secure environment.

Function names are the activity names: the orchestrator calls them by these strings.
"""

import azure.durable_functions as df

from videojob import bootstrap
from videojob.domain.slot_announce import announce_grants

from .container_activities import create_group, delete_group, inspect_group, stop_group
from .notify import notify_completion_activity
from .output_blob import check_output_blob_activity
from .publish import publish_output_blob_activity
from .result_record import read_result_record_activity
from .share_link import share_link_activity

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def create_container_group(payload: dict) -> dict:
    return create_group(payload, bootstrap.settings, bootstrap.backend)


@bp.activity_trigger(input_name="payload")
def inspect_container_group(payload: dict) -> dict:
    return inspect_group(payload, bootstrap.backend)


@bp.activity_trigger(input_name="payload")
def stop_container_group(payload: dict) -> dict:
    return stop_group(payload, bootstrap.backend)


@bp.activity_trigger(input_name="payload")
def delete_container_group(payload: dict) -> dict:
    return delete_group(payload, bootstrap.backend)


@bp.activity_trigger(input_name="payload")
def check_output_blob(payload: dict) -> dict:
    """`{"jobId", "container", "name"}` -> `{"ok", "exists", "sizeBytes", "url"}` (URL from the settings)."""
    return check_output_blob_activity(payload, bootstrap.settings)


@bp.activity_trigger(input_name="payload")
def publish_output_blob(payload: dict) -> dict:
    """`{"jobId", "run", "attempt", "container", "name", "sizeBytes", "sha256"}` -> `{"ok", "exists",
    "sizeBytes", "sha256", "url"}`: the attempt's staging blob copied to the reported name, read back."""
    return publish_output_blob_activity(payload, bootstrap.settings)


@bp.activity_trigger(input_name="payload")
def create_share_link(payload: dict) -> dict:
    """`{"jobId", "container", "name", "hours"}` -> `{"ok", "url", "expiresAt"}` (read-only SAS URL)."""
    return share_link_activity(payload, bootstrap.settings)


@bp.activity_trigger(input_name="payload")
def notify_completion(payload: dict) -> dict:
    """`{"url", "payload"}` -> `{"ok", "status"}`: one signed POST of a job's output."""
    return notify_completion_activity(payload, bootstrap.settings)


@bp.activity_trigger(input_name="payload")
def read_result_record(payload: dict) -> dict:
    """`{"jobId", "attempt", "run"}` -> `{"ok", "found", "event"?}`: the worker's recorded outcome."""
    return read_result_record_activity(payload, bootstrap.settings)


@bp.activity_trigger(input_name="payload")
@bp.durable_client_input(client_name="client")
async def announce_slot_grants(payload: dict, client: df.DurableOrchestrationClient) -> dict:
    """`{"ids", "by"}` -> `{"ok", "told"}`: `SlotGranted` raised to each job granted a slot."""
    return await announce_grants(payload, client)
