"""`announce_slot_grants`: tell the jobs a freed slot went to (pushed grants, issue 22).

A Python entity cannot send anything (azure-functions-durable 1.7: `Entity.handle` answers
`EntityState(results, signals=[])`, `DurableEntityContext` has no signal or start), and a Python
orchestration cannot raise an event to another instance (`DurableOrchestrationContext` has
`wait_for_external_event` but no `raise_event`). So whoever frees a slot asks the entity by a call
(`release`/`step_aside` answer `{"granted": [ids]}`), and this activity raises `SlotGranted` to
each through the durable client, as the HTTP routes do. A lost announcement costs the receiver
one fallback re-check (`videojob.domain.job_slots.QUEUE_FALLBACK_SECONDS`), nothing else.
"""

from __future__ import annotations

import logging
from typing import Any

from videojob.domain import job_slots as slots

log = logging.getLogger(__name__)


async def announce_grants(payload: Any, client: Any) -> dict[str, Any]:
    """`{"ids", "by"}` -> `{"ok": true, "told": n}`: `SlotGranted` raised to each id (an instance
    that is gone or refuses is skipped and logged: its own fallback or the sweeper repairs)."""
    ids = slots.valid_ids(payload.get("ids")) if isinstance(payload, dict) else []
    by = payload.get("by") if isinstance(payload, dict) else None
    told = 0
    for job_id in ids:
        try:
            await client.raise_event(job_id, slots.GRANT_EVENT, {"by": by if isinstance(by, str) else None})
            told += 1
        except Exception as e:  # the SDK raises plain Exceptions with the host's message
            log.warning("announce_slot_grants: %s not told: %s", job_id, type(e).__name__)
    return {"ok": True, "told": told}
