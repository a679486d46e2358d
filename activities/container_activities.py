"""What each activity does, with its backend passed in (the triggers in `__init__` pass the
process's own). Thin: decode the payload, make one or two backend calls, answer the wire shape
of `videojob.domain.activity_wire`. Classified failures become `ok: false`, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from videojob.contract.staging import UploadGrant
from videojob.contract.wire import ContractError, JobError
from videojob.domain.activity_wire import (
    CONFIGURATION,
    INVALID_INPUT,
    MAX_LOG_TAIL_CHARS,
    MAX_LOG_TAIL_LINES,
    UNEXPECTED,
    CleanupResult,
    CreateInput,
    CreateResult,
    InspectResult,
)
from videojob.domain.container_port import BackendError, ContainerBackend
from videojob.domain.container_spec import build_container_spec, group_name
from videojob.domain.failure_reason import FailureReason
from videojob.domain.settings import Settings, SettingsError

logger = logging.getLogger(__name__)


def _error(code: str, message: str, retryable: bool, retry_after_seconds: float | None = None) -> JobError:
    return JobError(code, " ".join(str(message).split())[:300], retryable, retry_after_seconds)


def _classified(e: Exception) -> tuple[JobError, FailureReason]:
    """Turn any failure into the wire error and its reason (the adapter's, for a `BackendError`);
    unexpected ones are logged with their traceback."""
    if isinstance(e, BackendError):
        return _error(e.code, e.message, e.retryable, e.retry_after_seconds), e.reason
    if isinstance(e, SettingsError):
        return _error(CONFIGURATION, str(e), False), FailureReason.PERMANENT
    logger.exception("activity failed unexpectedly")
    return _error(UNEXPECTED, f"{type(e).__name__}: {e}", True), FailureReason.TRANSIENT


def _classify(e: Exception) -> JobError:
    return _classified(e)[0]


def _group_of(payload: Any) -> str:
    group = payload.get("group") if isinstance(payload, dict) else None
    if not isinstance(group, str) or not group:
        raise ValueError("the payload needs a 'group'")
    return group


def _group_named_in(payload: Any) -> str:
    """The group an unusable create input was about (for the answer), or ""."""
    if not isinstance(payload, dict):
        return ""
    if isinstance(payload.get("group"), str):
        return payload["group"][:63]
    return group_name(str(payload["jobId"])) if payload.get("jobId") else ""


def create_group(
    payload: Any,
    settings: Callable[[], Settings],
    backend: Callable[[], ContainerBackend],
    upload_grant: Callable[[Settings, CreateInput], UploadGrant] | None = None,
) -> dict:
    """Sign the attempt's staging SAS (`upload_grant`, default `issue_upload_grant`), build the
    spec, create the group."""
    try:
        job = CreateInput.from_wire(payload)
    except (ContractError, KeyError, TypeError, ValueError, AttributeError) as e:
        name = _group_named_in(payload)
        return CreateResult(False, name, error=_error(INVALID_INPUT, f"create input: {e}", False),
                            reason=FailureReason.PERMANENT).to_wire()
    name = job.group
    try:
        current = settings()
        grant = _upload_grant(current, job, upload_grant)
        if isinstance(grant, JobError):
            return CreateResult(False, name, error=grant).to_wire()
        spec = build_container_spec(
            job.request, current, job.job_id, job.created_at, job.deadline, job.attempt,
            run=job.run, mode=job.mode, max_items=job.max_items, upload=grant,
        )
        logger.info("creating container group %s (image %s)", spec.name, spec.image)
        state = backend().create(spec)
    except Exception as e:  # noqa: BLE001 - every failure is answered, not raised (see module doc)
        error, reason = _classified(e)
        return CreateResult(False, name, error=error, reason=reason).to_wire()
    return CreateResult(True, state.name or spec.name, state=state.state).to_wire()


def _upload_grant(
    settings: Settings, job: CreateInput, issue: Callable[[Settings, CreateInput], UploadGrant] | None
) -> UploadGrant | JobError:
    """The worker's SAS URLs, or the classified storage failure (a missing role is not retryable)."""
    from .storage_failures import storage_failure_answer
    from .upload_grant import issue_upload_grant

    try:
        return (issue or issue_upload_grant)(settings, job)
    except Exception as e:  # noqa: BLE001 - answered, not raised (see module doc)
        answer = storage_failure_answer(e, activity="create_container_group", failed_code="upload_grant_failed",
                                        identity_use="sign the worker's upload with", refused="staging SAS")
        return JobError.from_wire(answer["error"])


def inspect_group(payload: Any, backend: Callable[[], ContainerBackend]) -> dict:
    try:
        group = _group_of(payload)
        b = backend()
        found = b.state(group)
    except ValueError as e:
        return InspectResult(False, error=_error(INVALID_INPUT, str(e), False)).to_wire()
    except Exception as e:  # noqa: BLE001
        return InspectResult(False, error=_classify(e)).to_wire()
    tail = ""
    if not found.is_active:
        # The logs are only worth their cost once the worker has stopped: they explain why.
        try:
            tail = b.logs(group, tail=MAX_LOG_TAIL_LINES)[-MAX_LOG_TAIL_CHARS:]
        except Exception as e:  # noqa: BLE001 - a missing log tail must not hide the state
            logger.warning("no log tail for %s: %s", group, _classify(e).code)
    answer = InspectResult(True, found.state, found.exit_code, found.detail, tail, finished_at=found.finished_at,
                           reason=found.reason)
    return answer.to_wire()


def _cleanup(payload: Any, verb: str, backend: Callable[[], ContainerBackend]) -> dict:
    try:
        group = _group_of(payload)
        b = backend()
        getattr(b, verb)(group)
    except ValueError as e:
        return CleanupResult(False, _error(INVALID_INPUT, str(e), False)).to_wire()
    except Exception as e:  # noqa: BLE001
        return CleanupResult(False, _classify(e)).to_wire()
    logger.info("container group %s: %s done", group, verb)
    return CleanupResult(True).to_wire()


def stop_group(payload: Any, backend: Callable[[], ContainerBackend]) -> dict:
    return _cleanup(payload, "stop", backend)


def delete_group(payload: Any, backend: Callable[[], ContainerBackend]) -> dict:
    return _cleanup(payload, "delete", backend)
