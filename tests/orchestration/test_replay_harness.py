"""The harness itself: it must catch an orchestrator that does not replay the same way."""

from __future__ import annotations

import itertools
from datetime import timedelta

import azure.durable_functions as df
import pytest
from azure.durable_functions.models.history import HistoryEventType

from tests.orchestration.conftest import T0
from tests.support.replay import ChildOutcome, NonDeterminismError, ReplayHost

bp = df.Blueprint()
_counter = itertools.count()


@bp.orchestration_trigger(context_name="context")
def drifting(context: df.DurableOrchestrationContext):
    # Wrong on purpose: the activity name depends on process state, not on the history.
    first = yield context.call_activity(f"step_{next(_counter)}", None)
    second = yield context.call_activity("finish", first)
    return second


@bp.orchestration_trigger(context_name="context")
def steady(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("step", 1)
    yield context.create_timer(context.current_utc_datetime)
    second = yield context.call_activity("finish", first)
    return second


def echo(name: str, input_json: str) -> str:
    return input_json


def test_a_replay_that_schedules_something_else_is_reported():
    host = ReplayHost(drifting, instance_id="x", input=None, start=T0, activities=echo)
    with pytest.raises(NonDeterminismError, match="step_"):
        host.run()


def test_a_deterministic_orchestrator_replays_cleanly():
    result = ReplayHost(steady, instance_id="x", input=None, start=T0, activities=echo).run()
    assert result.status == "Completed"
    assert result.output == 1
    assert result.activity_names == ["step", "finish"]
    # Activities and timers share one sequence: step 0, timer 1, finish 2.
    assert [c.seq for c in result.activity_calls] == [0, 2]
    assert [t.seq for t in result.timers] == [1]


@bp.orchestration_trigger(context_name="context")
def renaming_children(context: df.DurableOrchestrationContext):
    # Wrong on purpose: the child's instance id depends on process state.
    first = yield context.call_sub_orchestrator("child", None, f"kid-{next(_counter)}")
    return first


def test_a_replay_that_starts_a_child_under_another_id_is_reported():
    host = ReplayHost(renaming_children, instance_id="x", input=None, start=T0, activities=echo,
                      sub_orchestrations=lambda call: ChildOutcome(1, output="done"))
    with pytest.raises(NonDeterminismError, match="kid-"):
        host.run()


@bp.orchestration_trigger(context_name="context")
def racing(context: df.DurableOrchestrationContext):
    timeout = context.create_timer(context.current_utc_datetime + timedelta(seconds=60))
    work = context.call_activity("step", 1)
    winner = yield context.task_any([work, timeout])
    timeout.cancel()
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=120))
    return winner == work


def test_a_cancelled_timer_still_fires_and_the_orchestration_ignores_it():
    """As in Azure: the extension cannot revoke a scheduled timer; its TimerFired costs an episode."""
    result = ReplayHost(racing, instance_id="x", input=None, start=T0, activities=echo).run()

    assert result.status == "Completed" and result.output is True
    cancelled, later = result.timers
    assert cancelled.cancelled and cancelled.fired and not later.cancelled and later.fired
    assert [(e.at - T0).total_seconds() for e in result.episodes] == [0, 2, 60, 122]


@bp.orchestration_trigger(context_name="context")
def generations(context: df.DurableOrchestrationContext):
    generation = context.get_input()
    go = yield context.wait_for_external_event("Go")
    if generation < 3:
        context.continue_as_new(generation + 1)
        return None
    return {"generation": generation, "go": go}


def test_continue_as_new_starts_a_fresh_execution_that_gets_only_later_events():
    host = ReplayHost(generations, instance_id="x", input=1, start=T0, activities=echo)
    host.raise_event(10, "a", name="Go")
    host.raise_event(10, "b", name="Go")  # unprocessed when generation 1 continues: discarded
    host.raise_event(20, "c", name="Go")
    host.raise_event(30, "d", name="Go")

    result = host.run()

    assert result.status == "Completed" and result.output == {"generation": 3, "go": "d"}
    started = [e for e in result.history if e["EventType"] == HistoryEventType.EXECUTION_STARTED]
    assert [e["Input"] for e in started] == ["3"]
    assert [(e.at - T0).total_seconds() for e in result.episodes] == [0, 10, 10, 20, 20, 30]
