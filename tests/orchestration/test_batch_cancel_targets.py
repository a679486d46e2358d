"""Which children a batch cancel must reach, read from the batch's own customStatus."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.orchestration.test_batching import items
from videojob.contract.wire import PHASE_LISTING, PHASE_RUNNING
from videojob.domain.batching import (
    ItemResult,
    finish,
    open_window,
    progress_status,
    running_children,
    start_next,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_running_items_of_the_orchestrators_own_status_are_the_children_it_started():
    batch = items(5)  # instance ids "b-000" ... "b-004", as the orchestrator names its children
    window, _ = start_next(open_window(batch, 3))
    window, _ = start_next(finish(window, 1, ItemResult(True)))  # 0, 2, 3 run; 1 is done

    status = progress_status(PHASE_RUNNING, window, NOW)

    assert running_children("b", status) == ("b-000", "b-002", "b-003")
    assert running_children("b", json.dumps(status)) == ("b-000", "b-002", "b-003")  # as JSON text


def test_ids_are_padded_for_the_batch_size():
    status = {"phase": "running", "counts": {"total": 1500}, "runningItems": [7, 1499]}

    assert running_children("b", status) == ("b-0007", "b-1499")


def test_while_listing_the_listing_child_is_the_one_running():
    assert running_children("b", progress_status(PHASE_LISTING, None, NOW)) == ("b-list",)


@pytest.mark.parametrize(
    "status",
    [
        None,
        "not json",
        ["running"],
        {"phase": "running", "counts": {"total": 3}},  # nothing running (all done or waiting)
        {"phase": "partial", "counts": {"total": 3, "running": 0}},
        {"phase": "running", "runningItems": [0, 1]},  # no total: the ids cannot be known
        {"phase": "running", "counts": {"total": "3"}, "runningItems": [0]},
    ],
)
def test_a_status_without_running_children_names_none(status: object):
    assert running_children("b", status) == ()


def test_malformed_indexes_are_skipped_not_guessed():
    status = {"phase": "running", "counts": {"total": 3}, "runningItems": [2, -1, 3, True, "1", 1.0, 0, 2]}

    assert running_children("b", status) == ("b-000", "b-002")
