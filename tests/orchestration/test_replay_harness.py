"""The harness itself: it must catch an orchestrator that does not replay the same way."""

from __future__ import annotations

import itertools

import azure.durable_functions as df
import pytest

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
