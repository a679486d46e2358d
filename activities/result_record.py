"""The `read_result_record` activity: the outcome a worker recorded before its terminal report.

Input `{"jobId", "attempt", "run", "deadline"}`; the blob name is derived here (`result_record_name`: the
attempt's staging record), never taken from the input, in `STAGING_CONTAINER`, where only that
attempt's worker could write it (its own SAS). The record is checked against the callback token
that worker held (`worker_callback_token`: job, run, attempt and the deadline) and the asked
attempt and run (`parse_record`).
Errors are classified like `check_output_blob`'s (403 not retryable; 5xx, 429, unreachable retryable).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from videojob.contract.result_record import MAX_RECORD_BYTES, RecordRefused, parse_record
from videojob.contract.staging import result_record_name
from videojob.domain.activity_wire import INVALID_INPUT, RecordResult, parse_record_input
from videojob.domain.container_spec import worker_callback_token
from videojob.domain.settings import Settings

from .share_link import default_credential, output_service
from .storage_failures import failure_answer, storage_failure_answer

logger = logging.getLogger(__name__)

READ_FAILED = "record_read_failed"


def read_result_record_activity(
    payload: Any,
    settings: Callable[[], Settings],
    *,
    credential_factory: Callable[[], Any] = default_credential,
    **client_options: Any,
) -> dict[str, Any]:
    try:
        job_id, attempt, run, deadline = parse_record_input(payload)
        name = result_record_name(job_id, attempt, run)
    except ValueError as e:
        return failure_answer(INVALID_INPUT, str(e), False)
    try:
        current = settings()
        service = output_service(current, credential_factory, **client_options)
        blob = service.get_blob_client(current.staging_container, name)
        try:
            size = blob.get_blob_properties().size
            if size > MAX_RECORD_BYTES:
                return RecordResult(True, refused=f"the record is {size} bytes, over {MAX_RECORD_BYTES}").to_wire()
            data = blob.download_blob(offset=0, length=MAX_RECORD_BYTES + 1).readall()
        except ResourceNotFoundError:
            return RecordResult(True).to_wire()
        key = worker_callback_token(current, job_id, run, attempt, deadline)  # what the worker held
        try:
            event = parse_record(data, job_id=job_id, attempt=attempt, run=run, mac_key=key)
        except RecordRefused as e:
            logger.warning("result record %s refused: %s", name, e)
            return RecordResult(True, refused=str(e)).to_wire()
    except Exception as e:  # noqa: BLE001 - answered, not raised (see activity_wire)
        return storage_failure_answer(
            e, activity="read_result_record", failed_code=READ_FAILED,
            identity_use="read the output with", refused="record read",
        )
    return RecordResult(True, event=event).to_wire()
