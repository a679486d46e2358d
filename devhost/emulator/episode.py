"""One orchestrator episode as the Durable extension plays it: the pure core both shells drive.

`decide` turns (the stored history, the new events) into (the events to append, the new work,
the runtime status). It reads no clock and does no I/O except calling `invoke`, the SDK's
orchestrator handle. The devhost engine drives it on the real clock over SQLite; the replay test
harness (tests/support/replay.py) on a simulated clock over lists.

ContinueAsNew, as DTFx's TaskOrchestrationDispatcher does it (Azure/durabletask,
src/DurableTask.Core/TaskOrchestrationDispatcher.cs, `OnProcessWorkItemAsync` and
`ProcessWorkflowCompletedTaskDecision`): the execution ends with a `ContinueAsNewEvent`; a new
execution of the same instance starts with `OrchestratorStarted` + an `ExecutionStarted` that
carries the new input and the old `ParentInstance`; the custom status carries over
(`runtimeState.Status = ... ?? carryOverStatus`); the activities, timers, sub-orchestrations and
entity messages the last episode scheduled are sent all the same (they are gathered across the
`do ... while (continuedAsNew)` loop and passed to `CompleteTaskOrchestrationWorkItemAsync`;
only the completion message is held back as `continuedAsNewMessage`), and their answers name the
old execution. Events the old execution
received but did not consume are carried over only with `preserveUnprocessedEvents`, which the
out-of-process shim never sets (azure-functions-durable-extension,
src/WebJobs.Extensions.DurableTask/Listener/OutOfProcOrchestrationShim.cs:
`this.context.ContinueAsNew(action.Input)`, whose parameter defaults to false in
IDurableOrchestrationContext: "any unprocessed external events will be discarded"). So they are
lost with the old history; events raised after the new execution started reach it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.durable_functions import OrchestrationRuntimeStatus as S
from azure.durable_functions.models.history import HistoryEventType as E
from azure.durable_functions.models.ReplaySchema import ReplaySchema

from devhost.emulator import history as H
from devhost.emulator.actions import (
    NewActivity,
    NewEntityMessage,
    NewSubOrchestration,
    NewTimer,
    NonDeterminismError,
    ReplayError,
    plan_actions,
)
from devhost.emulator.functions import OrchestratorOutcome

Invoke = Callable[[str], OrchestratorOutcome]
"""The orchestrator's handle: context JSON in, the SDK's answer out (`functions.run_orchestrator`)."""

RUNNING, COMPLETED, FAILED = S.Running.value, S.Completed.value, S.Failed.value
CONTINUED_AS_NEW = S.ContinuedAsNew.value


@dataclass(frozen=True)
class Decision:
    appended: tuple[dict[str, Any], ...]
    """The episode's events for the history: the new ones, what it scheduled, and its end."""
    status: str
    """Running, Completed, Failed or ContinuedAsNew."""
    output: Any
    """The orchestrator's output (Completed) or the failure text the status API shows (Failed)."""
    custom_status: Any
    state: dict[str, Any]
    """The SDK's answer, as it gave it (empty when it gave none)."""
    activities: tuple[NewActivity, ...] = ()
    timers: tuple[NewTimer, ...] = ()
    """New timers, the ones cancelled at once included: a scheduled timer fires whatever the
    orchestrator does (DTFx cannot revoke the message; the SDK ignores a cancelled timer's
    `TimerFired`), at the cost of one more episode, as in Azure."""
    cancelled_timer_ids: frozenset[int] = frozenset()
    children: tuple[NewSubOrchestration, ...] = ()
    entity_messages: tuple[NewEntityMessage, ...] = ()
    """Calls and signals to entities: sent however the episode ends. A failing orchestrator's last
    signal goes out (the extension's shim replays the actions before failing), and so does one
    made before ContinueAsNew (DTFx sends `orchestratorMessages`, SendEvent among them, with it)."""
    next_execution: dict[str, Any] | None = None
    """The next execution's `ExecutionStarted` (ContinuedAsNew only)."""
    nondeterminism: str | None = None
    """Why the replay diverged from the history (the status is then Failed)."""
    exception: Exception | None = None
    """What the orchestrator's handle raised outside the SDK's protocol (the status is then Failed)."""


def failure_output(name: str, error: str) -> str:
    """The extension's output for a failed orchestration (and Reason of its parent's
    `SubOrchestrationInstanceFailed`)."""
    return f"Orchestrator function '{name}' failed: {error}"


def context_json(instance_id: str, history: list[dict[str, Any]], parent_id: str | None) -> str:
    """The orchestration trigger's payload: the history with `IsPlayed` set, and the input the
    execution started with."""
    started = next((e for e in history if e["EventType"] == E.EXECUTION_STARTED), {})
    full = H.with_played_flags(history)
    return json.dumps({
        "history": full,
        "input": started.get("Input"),
        "instanceId": instance_id,
        "isReplaying": any(e["IsPlayed"] for e in full),  # an earlier episode exists
        "parentInstanceId": parent_id,
        "upperSchemaVersion": 1,
        "upperSchemaVersionNew": ReplaySchema.V3.value,
        "maximumShortTimerDuration": H.MAX_SHORT_TIMER,
        "longRunningTimerIntervalDuration": H.LONG_TIMER_INTERVAL,
    })


def decide(
    *,
    instance_id: str,
    name: str,
    past: list[dict[str, Any]],
    new: list[dict[str, Any]],
    now: datetime,
    invoke: Invoke | None,
    previous_custom_status: Any = None,
    parent_id: str | None = None,
    strict: bool = True,
) -> Decision:
    """Play one episode: `new` (from `H.new_events`) after `past`. `invoke` None means the
    orchestrator function is not loaded."""
    history = past + new

    def failed(error: str, state: dict[str, Any], custom: Any, scheduled: tuple[dict[str, Any], ...] = (),
               **why: Any) -> Decision:
        output = failure_output(name, error)
        ended = (H.execution_completed(now, FAILED, output), H.orchestrator_completed(now))
        return Decision((*new, *scheduled, *ended), FAILED, output, custom, state, **why)

    if invoke is None:
        return failed(f"the orchestrator function '{name}' is not loaded", {}, previous_custom_status)
    outcome = invoke(context_json(instance_id, history, parent_id))
    state = outcome.state
    custom = state.get("customStatus", previous_custom_status)
    if not outcome.answered:
        return failed(outcome.error or "the SDK gave no answer", {}, custom, exception=outcome.exception)
    try:
        if state["schemaVersion"] != ReplaySchema.V3.value:
            raise ReplayError(f"expected replay schema V3, the SDK answered {state['schemaVersion']}")
        plan = plan_actions(state.get("actions") or [], history, now, instance_id, strict=strict)
    except NonDeterminismError as e:
        return failed(f"Non-Deterministic workflow detected: {e}", state, custom, nondeterminism=str(e))
    except ReplayError as e:
        return failed(str(e), state, custom)

    # What the episode scheduled is recorded however it ends (DTFx records the decisions made
    # before the orchestration failed or completed; the instance then ignores their answers).
    scheduled = tuple(plan.history_events(now))
    work: dict[str, Any] = {
        "activities": tuple(plan.activities),
        "timers": tuple(plan.timers),
        "cancelled_timer_ids": frozenset(plan.cancelled_timer_ids),
        "children": tuple(plan.sub_orchestrations),
        "entity_messages": tuple(plan.entity_messages),
    }
    if outcome.error is not None:
        return failed(outcome.error, state, custom, scheduled, **work)
    if not state.get("isDone"):
        appended = (*new, *scheduled, H.orchestrator_completed(now))
        return Decision(appended, RUNNING, None, custom, state, **work)
    if plan.continues_as_new:
        started = next(e for e in history if e["EventType"] == E.EXECUTION_STARTED)
        # The version carries over (TaskOrchestrationDispatcher: `NewVersion ?? runtimeState.Version`;
        # the out-of-process ContinueAsNew action names none).
        next_execution = H.execution_started(now, name, plan.next_input, started.get("ParentInstance"),
                                             started.get("Version"))
        appended = (*new, *scheduled, H.continued_as_new(now, plan.next_input))
        return Decision(appended, CONTINUED_AS_NEW, None, custom, state, next_execution=next_execution, **work)
    output = state.get("output")
    appended = (*new, *scheduled, H.execution_completed(now, COMPLETED, output), H.orchestrator_completed(now))
    return Decision(appended, COMPLETED, output, custom, state, **work)
