"""The stand-in answers the SDK's own client the way the extension does (so the API tests mean something)."""

from __future__ import annotations

import json

import azure.durable_functions as df
import pytest

from tests.support.durable_standin import DurableStandIn, run


def test_client_round_trip_start_status_event_terminate_purge(standin: DurableStandIn) -> None:
    async def scenario():
        client = df.DurableOrchestrationClient(standin.binding_json())
        instance_id = await client.start_new("download_job", None, {"request": {"url": "u"}})
        pending = await client.get_status(instance_id)
        await client.raise_event(instance_id, "JobStatus", {"state": "cancelled"})
        await client.terminate(instance_id, "by test")
        terminated = await client.get_status(instance_id)
        with pytest.raises(Exception, match="is gone"):
            await client.raise_event(instance_id, "JobStatus", {"state": "cancelled"})
        purged = await client.purge_instance_history(instance_id)
        missing = await client.get_status(instance_id)
        return instance_id, pending, terminated, purged, missing

    instance_id, pending, terminated, purged, missing = run(scenario())

    assert pending and pending.runtime_status == df.OrchestrationRuntimeStatus.Pending
    # The input comes back as the client sent it: JSON text (the 1.7 client encodes it twice).
    assert json.loads(pending.input_) == {"request": {"url": "u"}}
    assert terminated.runtime_status == df.OrchestrationRuntimeStatus.Terminated
    assert terminated.output == "by test"
    assert purged.instances_deleted == 1
    assert not missing
    assert [e.payload for e in standin.raised_events] == [{"state": "cancelled"}, {"state": "cancelled"}]
    assert [c.kind for c in standin.calls] == [
        "start_new", "get_status", "raise_event", "terminate", "get_status", "raise_event", "purge", "get_status"
    ]


def test_a_second_event_loop_in_the_same_process_still_works(standin: DurableStandIn) -> None:
    # The 1.7 client caches its aiohttp session per process; `run` resets it between loops.
    for _ in range(3):
        assert run(df.DurableOrchestrationClient(standin.binding_json()).start_new("download_job"))
