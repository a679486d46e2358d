"""Durable entities, as a blueprint: `job_slots` (key `global`), the semaphore behind
`MAX_RUNNING_JOBS` (logic: `videojob.job_slots`; callers: `orchestrators/job_queue.py`, the sweeper).

The engine runs one entity's operations one at a time, in order: that is the only lock the
semaphore needs. An entity is not replayed, so it may read the clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from videojob import job_slots as slots

bp = df.Blueprint()


@bp.entity_trigger(context_name="context", entity_name=slots.ENTITY_NAME)
def job_slots(context: df.DurableEntityContext) -> None:
    """Operations: `acquire` {id, arrived, capacity} → Grant; `release` {id}; `evict` {ids, before}; `get`."""
    state = slots.SlotState.from_wire(context.get_state(lambda: None))
    context.set_result(None)  # the SDK keeps the last operation's result otherwise
    state, result = slots.apply(state, context.operation_name, _decoded(context.get_input()), datetime.now(UTC))
    context.set_state(state.to_wire())
    context.set_result(result)


def _decoded(value: Any) -> Any:
    """The Python client's `signal_entity` encodes its input twice (`json.dumps`, then posted as
    JSON), as it does events: a string that holds a JSON object is read once more."""
    if isinstance(value, str) and len(value) <= 1_000_000:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
