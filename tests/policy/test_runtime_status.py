"""The app's runtime statuses are the Durable SDK's, spelled as the status payload spells them."""

from __future__ import annotations

import azure.durable_functions as df

from videojob.domain.instances import ACTIVE_RUNTIME_STATUSES, FINISHED_RUNTIME_STATUSES, RuntimeStatus, is_finished


def test_runtime_statuses_are_the_sdks():
    assert {s.value for s in RuntimeStatus} == {s.value for s in df.OrchestrationRuntimeStatus}


def test_every_status_is_active_or_finished_never_both():
    assert ACTIVE_RUNTIME_STATUSES | FINISHED_RUNTIME_STATUSES == set(RuntimeStatus)
    assert not ACTIVE_RUNTIME_STATUSES & FINISHED_RUNTIME_STATUSES
    assert is_finished("Canceled") and not is_finished("ContinuedAsNew")
