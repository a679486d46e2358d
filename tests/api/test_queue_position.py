"""A queued job's place is read from `job_slots` when its status is asked for (issue 22): grants
are pushed, so a waiting job re-checks (and rewrites its own customStatus) only once a fallback
period; the status route must not show a place that old."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from devhost.emulator.store import entity_id
from tests.api.test_users import ALICE_H, VIDEO, Users, functions, users  # noqa: F401, F811 (fixtures)
from videojob.domain import job_slots as slots


def test_a_queued_jobs_status_shows_its_place_as_the_entity_has_it_now(users: Users):  # noqa: F811
    job = users.submit(ALICE_H, {"url": VIDEO}).json["id"]
    inst = users.standin.store.get(job)
    shown = {"phase": "queued", "queuePosition": 5, "running": 2, "capacity": 2, "queuedSince": "x"}
    users.standin.store.put(dataclasses.replace(inst, custom_status=shown))
    now = datetime.now(UTC)
    state = slots.SlotState()
    for other in ["a-job", "b-job", "c-job", job]:  # two hold, c-job and the job queue
        state, _ = slots.acquire(state, other, now, 2, new_token=lambda: "t")
    state = slots.release(state, "a-job", now, token="t")  # c-job promoted: the job is first now
    users.standin.store.commit_entity_batch(entity_id(slots.ENTITY_NAME, slots.ENTITY_KEY), [], True,
                                            json.dumps(state.to_wire()), [], now)

    answer = users.status(ALICE_H, job)

    assert answer.status == 202
    assert answer.json["customStatus"]["queuePosition"] == 1  # not the 5 it last wrote itself
    assert answer.json["customStatus"]["running"] == 2 and answer.json["customStatus"]["queuedSince"] == "x"


def test_without_the_entity_the_status_shows_what_the_job_wrote(users: Users):  # noqa: F811
    job = users.submit(ALICE_H, {"url": VIDEO}).json["id"]
    inst = users.standin.store.get(job)
    shown = {"phase": "queued", "queuePosition": 5}
    users.standin.store.put(dataclasses.replace(inst, custom_status=shown))

    assert users.status(ALICE_H, job).json["customStatus"] == shown
