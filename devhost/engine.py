"""The Durable engine: orchestration episodes, activities and timers over the SQLite store.

Runs on the server's asyncio loop. Episodes of one instance run one after another (the inbox
is drained per episode); different instances run in parallel. Orchestrator code runs in a
thread through the SDK's handle; activities run for real in a thread pool; timers are armed on
the loop at their `FireAt` on the real clock and persisted, so a restart fires overdue ones.

Sub-orchestrations run as instances of their own (see `store`): the parent's episode creates
them, their end queues `SubOrchestrationInstanceCompleted` / `...Failed` for the parent, which
then runs an episode. Like the Durable extension, terminating (or purging) a parent does not
touch its children: they run to their own end, and their outcome is dropped because the parent
no longer waits. Whoever terminates a parent terminates or cancels its children by their ids;
the sweeper removes the container groups of whatever ended.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import history as H
from .actions import ReplayError, plan_actions
from .functions import FunctionIndex, run_activity, run_orchestrator
from .store import (
    COMPLETED,
    FAILED,
    RUNNING,
    EpisodeResult,
    Instance,
    InstanceQuery,
    PendingActivity,
    PendingChild,
    PendingTimer,
    Store,
)

log = logging.getLogger("devhost.engine")

MAX_SHORT_TIMER = "6.00:00:00"
LONG_TIMER_INTERVAL = "3.00:00:00"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Answer:
    """An engine operation's outcome in HTTP terms (the Durable HTTP API's status codes)."""

    status: int
    body: Any = None


class Engine:
    def __init__(self, store: Store, index: FunctionIndex, *, max_activity_threads: int = 10,
                 clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.index = index
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=max_activity_threads, thread_name_prefix="activity")
        self._running: set[str] = set()
        self._dirty: set[str] = set()
        self._timers: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume whatever a previous run left: timers, running activities, undelivered events."""
        self._loop = asyncio.get_running_loop()
        for t in self.store.pending_timers():
            self._arm(t)
        for a in self.store.pending_activities():
            self._start_activity(a)
        for instance_id in self.store.instances_with_inbox():
            self.kick(instance_id)

    async def stop(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- client operations ---------------------------------------------------------------------

    def start_new(self, name: str, instance_id: str, value: Any) -> Answer:
        if name not in self.index.orchestrators:
            message = f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
            return Answer(400, {"Message": "One or more of the arguments submitted is incorrect",
                                "ExceptionMessage": message})
        if not self.store.create(instance_id, name, value, self.clock()):
            return Answer(409, {"Message": f"An instance with ID '{instance_id}' already exists."})
        self.kick(instance_id)
        return Answer(202, {"id": instance_id})

    def raise_event(self, instance_id: str, name: str, value: Any) -> Answer:
        inst = self.store.get(instance_id)
        if inst is None:
            return Answer(404)
        if inst.is_terminal or not self.store.enqueue(instance_id, H.event_raised(self.clock(), name, value)):
            return Answer(410)
        self.kick(instance_id)
        return Answer(202)

    def terminate(self, instance_id: str, reason: str | None) -> Answer:
        inst = self.store.get(instance_id)
        if inst is None:
            return Answer(404)
        if not self.store.terminate(instance_id, reason, self.clock()):
            return Answer(410)
        self._disarm_instance(instance_id)
        self._kick_parent(instance_id)
        log.info("instance %s terminated", instance_id)
        return Answer(202)

    def purge(self, instance_id: str) -> Answer:
        inst = self.store.get(instance_id)
        if inst is None:
            return Answer(404)
        if not inst.is_terminal:
            return Answer(412, "Only orchestrations in a terminal state can be purged, but the orchestration with "
                               f"instance ID {instance_id} has status {inst.status}")
        n = self.store.purge(instance_id)
        self._disarm_instance(instance_id)
        return Answer(200, {"instancesDeleted": n}) if n else Answer(404)

    def purge_matching(self, query: InstanceQuery) -> Answer:
        """Purge by filter: 404 when nothing matched, as in the extension."""
        purged = self.store.purge_matching(query)
        for instance_id in purged:
            self._disarm_instance(instance_id)
        return Answer(200, {"instancesDeleted": len(purged)}) if purged else Answer(404)

    def status(self, instance_id: str, *, show_history: bool = False, show_history_output: bool = False,
               show_input: bool = True) -> dict[str, Any] | None:
        inst = self.store.get(instance_id)
        if inst is None:
            return None
        return self.status_payload(inst, show_history=show_history, show_history_output=show_history_output,
                                   show_input=show_input)

    def status_payload(self, inst: Instance, *, show_history: bool = False, show_history_output: bool = False,
                       show_input: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": inst.name,
            "instanceId": inst.id,
            "runtimeStatus": inst.status,
            "input": inst.input if show_input else None,
            "customStatus": inst.custom_status,
            "output": inst.output,
            "createdTime": inst.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lastUpdatedTime": inst.updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if show_history:
            body["historyEvents"] = history_for_status(self.store.history(inst.id), show_history_output)
        return body

    # -- episodes -----------------------------------------------------------------------------

    def kick(self, instance_id: str) -> None:
        """Run episodes for the instance until its inbox is empty (serially per instance)."""
        if instance_id in self._running:
            self._dirty.add(instance_id)
            return
        self._running.add(instance_id)
        self._spawn(self._drain(instance_id))

    async def _drain(self, instance_id: str) -> None:
        try:
            while True:
                self._dirty.discard(instance_id)
                try:
                    await self._episode(instance_id)
                except Exception:
                    log.exception("episode of %s failed in the devhost", instance_id)
                    return
                if instance_id not in self._dirty:
                    return
        finally:
            self._running.discard(instance_id)

    async def _episode(self, instance_id: str) -> None:
        inst = self.store.get(instance_id)
        if inst is None:
            return
        if inst.is_terminal:
            self.store.drop_inbox(instance_id)
            return
        inbox = self.store.inbox(instance_id)
        if not inbox:
            return
        now = self.clock()
        past = self.store.history(instance_id)
        new = [H.orchestrator_started(now)] + [event for _, event in inbox]
        full = H.with_played_flags(past + new)
        consumed = tuple(seq for seq, _ in inbox)
        orchestrator = self.index.orchestrators.get(inst.name)
        if orchestrator is None:
            result = self._failed(inst, consumed, new, now, f"the orchestrator function '{inst.name}' is not loaded")
        else:
            context = {
                "history": full,
                "input": H.input_text(inst.input),
                "instanceId": instance_id,
                "isReplaying": bool(past),
                "parentInstanceId": self.store.parent_of(instance_id),
                "upperSchemaVersion": 1,
                "upperSchemaVersionNew": 2,
                "maximumShortTimerDuration": MAX_SHORT_TIMER,
                "longRunningTimerIntervalDuration": LONG_TIMER_INTERVAL,
            }
            outcome = await asyncio.to_thread(run_orchestrator, orchestrator, json.dumps(context))
            result = self._result(inst, consumed, past, new, now, outcome.state, outcome.error)
        if not self.store.commit_episode(instance_id, result, now):
            return
        if result.status != RUNNING:
            log.info("instance %s %s", instance_id, result.status.lower())
            self._disarm_instance(instance_id)
            self._kick_parent(instance_id)
            return
        for child in result.children:
            log.info("instance %s started sub-orchestration %s (%s)", instance_id, child.instance_id, child.name)
            self.kick(child.instance_id)
        if result.children:
            self.kick(instance_id)  # a child refused (its id is taken) answers in our own inbox
        for tid in result.cancelled_timer_ids:
            handle = self._timers.pop((instance_id, tid), None)
            if handle:
                handle.cancel()
        for t in result.timers:
            self._arm(t)
        for a in result.activities:
            self._start_activity(a)

    def _failed(self, inst: Instance, consumed: tuple[int, ...], new: list[dict[str, Any]], now: datetime,
                error: str) -> EpisodeResult:
        output = f"Orchestrator function '{inst.name}' failed: {error}"
        appended = (*new, H.orchestrator_completed(now), H.execution_completed(now, FAILED, output))
        return EpisodeResult(consumed, appended, FAILED, output, inst.custom_status)

    def _result(self, inst: Instance, consumed: tuple[int, ...], past: list[dict[str, Any]],
                new: list[dict[str, Any]], now: datetime, state: dict[str, Any], error: str | None) -> EpisodeResult:
        custom = state.get("customStatus", inst.custom_status)
        inst = Instance(inst.id, inst.name, inst.status, inst.input, inst.output, custom, inst.created, inst.updated)
        if error is not None:
            return self._failed(inst, consumed, new, now, error)
        if state.get("isDone"):
            output = state.get("output")
            appended = (*new, H.orchestrator_completed(now), H.execution_completed(now, COMPLETED, output))
            return EpisodeResult(consumed, appended, COMPLETED, output, custom)
        try:
            plan = plan_actions(state.get("actions") or [], past + new, now, inst.id)
        except ReplayError as e:
            return self._failed(inst, consumed, new, now, str(e))
        appended = (*new, *plan.history_events(now), H.orchestrator_completed(now))
        return EpisodeResult(
            consumed, appended, RUNNING, None, custom,
            activities=tuple(PendingActivity(inst.id, a.task_id, a.name, a.input) for a in plan.activities),
            timers=tuple(PendingTimer(inst.id, t.timer_id, t.fire_at) for t in plan.timers if not t.cancelled),
            cancelled_timer_ids=frozenset(plan.cancelled_timer_ids),
            children=tuple(
                PendingChild(inst.id, c.task_id, c.instance_id, c.name, c.input) for c in plan.sub_orchestrations
            ),
        )

    def _kick_parent(self, instance_id: str) -> None:
        parent = self.store.parent_of(instance_id)
        if parent is not None:
            self.kick(parent)

    # -- activities ---------------------------------------------------------------------------

    def _start_activity(self, a: PendingActivity) -> None:
        self._spawn(self._activity(a))

    async def _activity(self, a: PendingActivity) -> None:
        activity = self.index.activities.get(a.name)
        loop = asyncio.get_running_loop()
        if activity is None:
            event = H.task_failed(self.clock(), a.task_id, f"The function '{a.name}' doesn't exist.", None)
        else:
            outcome = await loop.run_in_executor(self._pool, run_activity, activity, a.input)
            now = self.clock()
            if outcome.failed:
                log.warning("activity %s of %s failed: %s", a.name, a.instance_id, outcome.reason)
                event = H.task_failed(now, a.task_id, outcome.reason or "failed", outcome.details)
            else:
                event = H.task_completed(now, a.task_id, outcome.result)
        if self.store.finish_activity(a.instance_id, a.task_id, event):
            self.kick(a.instance_id)

    # -- timers -------------------------------------------------------------------------------

    def _arm(self, t: PendingTimer) -> None:
        assert self._loop is not None
        delay = max(0.0, (t.fire_at - self.clock()).total_seconds())
        key = (t.instance_id, t.timer_id)
        old = self._timers.pop(key, None)
        if old:
            old.cancel()
        self._timers[key] = self._loop.call_later(delay, self._fire, t)

    def _fire(self, t: PendingTimer) -> None:
        self._timers.pop((t.instance_id, t.timer_id), None)
        if self.store.fire_timer(t.instance_id, t.timer_id, H.timer_fired(self.clock(), t.timer_id, t.fire_at)):
            self.kick(t.instance_id)

    def _disarm_instance(self, instance_id: str) -> None:
        for key in [k for k in self._timers if k[0] == instance_id]:
            self._timers.pop(key).cancel()


_EVENT_NAMES = {
    H.EXECUTION_STARTED: "ExecutionStarted",
    H.EXECUTION_COMPLETED: "ExecutionCompleted",
    H.EXECUTION_TERMINATED: "ExecutionTerminated",
    H.TASK_COMPLETED: "TaskCompleted",
    H.TASK_FAILED: "TaskFailed",
    H.SUB_ORCHESTRATION_CREATED: "SubOrchestrationInstanceCreated",
    H.SUB_ORCHESTRATION_COMPLETED: "SubOrchestrationInstanceCompleted",
    H.SUB_ORCHESTRATION_FAILED: "SubOrchestrationInstanceFailed",
    H.TIMER_CREATED: "TimerCreated",
    H.TIMER_FIRED: "TimerFired",
    H.EVENT_RAISED: "EventRaised",
}


_COMPLETIONS = (H.TASK_COMPLETED, H.TASK_FAILED, H.SUB_ORCHESTRATION_COMPLETED, H.SUB_ORCHESTRATION_FAILED)


def history_for_status(history: list[dict[str, Any]], show_output: bool) -> list[dict[str, Any]]:
    """`historyEvents` as the status API shows them: named event types, no episode delimiters,
    completions carrying the function name (outputs only with showHistoryOutput)."""
    kinds = (H.TASK_SCHEDULED, H.SUB_ORCHESTRATION_CREATED)
    scheduled = {e["EventId"]: e for e in history if e["EventType"] in kinds}
    out: list[dict[str, Any]] = []
    for e in history:
        name = _EVENT_NAMES.get(e["EventType"])
        if name is None:
            continue
        item: dict[str, Any] = {"EventType": name, "Timestamp": e["Timestamp"]}
        if e["EventType"] in _COMPLETIONS:
            origin = scheduled.get(e["TaskScheduledId"], {})
            item["FunctionName"] = origin.get("Name")
            item["ScheduledTime"] = origin.get("Timestamp")
            if origin.get("InstanceId"):
                item["InstanceId"] = origin["InstanceId"]
            if e["EventType"] in (H.TASK_FAILED, H.SUB_ORCHESTRATION_FAILED):
                item["Reason"] = e.get("Reason")
            elif show_output:
                item["Result"] = _maybe_json(e.get("Result"))
        elif e["EventType"] == H.SUB_ORCHESTRATION_CREATED:
            item["FunctionName"] = e.get("Name")
            item["InstanceId"] = e.get("InstanceId")
            if show_output:
                item["Input"] = _maybe_json(e.get("Input"))
        elif e["EventType"] in (H.EXECUTION_STARTED, H.EVENT_RAISED):
            item["Name" if e["EventType"] == H.EVENT_RAISED else "FunctionName"] = e.get("Name")
            if show_output:
                item["Input"] = _maybe_json(e.get("Input"))
        elif e["EventType"] in (H.TIMER_CREATED, H.TIMER_FIRED):
            item["FireAt"] = e.get("FireAt")
        elif e["EventType"] == H.EXECUTION_COMPLETED:
            item["OrchestrationStatus"] = e.get("OrchestrationStatus")
            if show_output:
                item["Result"] = _maybe_json(e.get("Result"))
        out.append(item)
    return out


def _maybe_json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
