"""Durable entities, as a blueprint: `job_slots` (key `global`), the semaphore behind
`MAX_RUNNING_JOBS` (logic: `videojob.domain.job_slots`; callers: `orchestrators/job_queue.py`, the sweeper).

The engine runs one entity's operations one at a time, in order: that is the only lock the
semaphore needs. An entity is not replayed: the replay restrictions (clock, random numbers,
environment variables) "apply only to orchestrator functions. Other function types don't have
such restrictions" (MicrosoftDocs/azure-docs, articles/azure-functions/durable/
durable-functions-code-constraints.md at f43177981c8e7ddc732338e44802b1174c3cc5e3). So the entity
reads the clock (arrivals), a CSPRNG (holder tokens) and the settings (`MAX_RUNNING_JOBS`, the
signing key that checks the sweeper's `evict`) itself, and trusts no number a caller sends: any
holder of the webhook's key can signal it (issue 19.5).
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from videojob import bootstrap
from videojob.domain import job_slots as slots

bp = df.Blueprint()
log = logging.getLogger(__name__)
TOKEN_BYTES = 32


@bp.entity_trigger(context_name="context", entity_name=slots.ENTITY_NAME)
def job_slots(context: df.DurableEntityContext) -> None:
    """Operations: `acquire` {id, token} → Grant (with a token on the first ask); `release` and
    `step_aside` {id, token}; `evict` {ids, before, mac}; `get`. Refused operations change nothing
    and are logged (never with a token or a MAC); malformed ones fail."""
    state = slots.SlotState.from_wire(context.get_state(lambda: None))
    context.set_result(None)  # the SDK keeps the last operation's result otherwise
    settings = bootstrap.settings()
    operation = context.operation_name
    try:
        state, result, refused = slots.apply(
            state, operation, _decoded(context.get_input()), datetime.now(UTC),
            capacity=settings.max_running_jobs, new_token=lambda: secrets.token_urlsafe(TOKEN_BYTES),
            signing_key=settings.callback_signing_key, per_owner=settings.max_running_jobs_per_user)
    except slots.SlotError as e:
        log.warning("job_slots: malformed %r refused: %s", str(operation)[:40], e)
        raise
    if refused is not None:
        log.warning("job_slots: %s of %r refused: %s", refused.operation, (refused.job_id or "")[:200], refused.reason)
    context.set_state(state.to_wire())
    context.set_result(result)


def _decoded(value: Any) -> Any:
    """An operation's input as a mapping, however it was encoded: the Python client's
    `signal_entity` encodes it twice (`json.dumps`, then posted as JSON), and a devhost may or may
    not decode it once more than the extension does, so a string that holds a JSON object is read
    once more (a dict and JSON text are both accepted)."""
    if isinstance(value, str) and len(value) <= 1_000_000:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
