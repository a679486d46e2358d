"""The Durable engine: orchestration episodes, activities and timers over the SQLite store.

Runs on the server's asyncio loop. Episodes of one instance run one after another (the inbox
is drained per episode); different instances run in parallel. Each episode is `episode.decide`
(the core the replay test harness drives too), run in a thread; activities run for real in a
thread pool; timers are armed on the loop at their `FireAt` on the real clock and persisted, so
a restart fires overdue ones. A ContinueAsNew starts the instance's next execution at once.

Sub-orchestrations run as instances of their own (see `store`): the parent's episode creates
them, their end queues `SubOrchestrationInstanceCompleted` / `...Failed` for the parent, which
then runs an episode. Like the Durable extension, terminating (or purging) a parent does not
touch its children: they run to their own end, and their outcome is dropped because the parent
no longer waits. Whoever terminates a parent terminates or cancels its children by their ids;
the sweeper removes the container groups of whatever ended.

Entities (the extension's entity scheduler, out of process): an orchestration's `call_entity` /
`signal_entity` and a client's signal queue a RequestMessage for `@name@key`; operations of one
entity run in batches, one batch at a time, in arrival order, through the SDK's entity handle;
the state after the batch is stored and each call's answer is raised (an `EventRaised` named by
the request id) in its caller's inbox, in the same transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from devhost.emulator import history as H
from devhost.emulator.actions import NewSubOrchestration
from devhost.emulator.episode import CONTINUED_AS_NEW, Decision, decide
from devhost.emulator.functions import (
    FunctionIndex,
    entity_batch_json,
    is_async_activity,
    run_activity,
    run_async_activity,
    run_entity,
    run_orchestrator,
)
from devhost.emulator.store import (
    RUNNING,
    EntityPage,
    EntityQuery,
    EpisodeResult,
    Instance,
    InstanceQuery,
    OrphanActivity,
    PendingActivity,
    PendingChild,
    PendingEntityOp,
    PendingTimer,
    Store,
    entity_id,
)

log = logging.getLogger("devhost.emulator.engine")

ENTITY_BATCH_LIMIT = 50
"""Operations of one entity run in one batch at most (the extension batches too)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Answer:
    """An engine operation's outcome in HTTP terms (the Durable HTTP API's status codes)."""

    status: int
    body: Any = None


class Engine:
    def __init__(self, store: Store, index: FunctionIndex, *, max_activity_threads: int = 10,
                 clock: Callable[[], datetime] = utcnow, default_version: str | None = None):
        """`default_version`: host.json's `extensions.durableTask.defaultVersion`, the version of
        instances and sub-orchestrations started without one."""
        self.store = store
        self.default_version = default_version
        self.index = index
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=max_activity_threads, thread_name_prefix="activity")
        self._running: set[str] = set()
        self._dirty: set[str] = set()
        self._entities_running: set[str] = set()
        self._entities_dirty: set[str] = set()
        self._timers: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats: Counter[str] = Counter()
        """Work done since start (episodes, entity operations, activities): `make load`'s figures,
        logged at stop."""
        self.client_binding: Callable[[], str | None] = lambda: None
        """The durable client binding an activity with a client input gets (set by the server)."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume whatever a previous run left: timers, running activities, undelivered events."""
        self._loop = asyncio.get_running_loop()
        for t in self.store.pending_timers():
            self._arm(t)
        for a in self.store.pending_activities():
            self._start_activity(a)
        for orphan in self.store.pending_orphan_activities():
            self._spawn(self._orphan_activity(orphan))
        for instance_id in self.store.instances_with_inbox():
            self.kick(instance_id)
        for target in self.store.entities_with_ops():
            self.kick_entity(target)

    async def stop(self) -> None:
        log.info("devhost stats: %s", json.dumps(dict(self.stats), sort_keys=True))
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

    def start_new(self, name: str, instance_id: str, value: Any, version: str | None = None) -> Answer:
        if name not in self.index.orchestrators:
            message = f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
            return Answer(400, {"Message": "One or more of the arguments submitted is incorrect",
                                "ExceptionMessage": message})
        version = self.default_version if version is None else version
        if not self.store.create(instance_id, name, value, self.clock(), version):
            # DTFx refuses an active instance's id (the extension's default dedupe statuses) with
            # an InvalidOperationException, which HttpApiHandler answers 500.
            existing = self.store.get(instance_id)
            status = existing.status if existing else "Running"
            refusal = f"An Orchestration instance with the status {status} already exists."
            return Answer(500, {"Message": "Something went wrong while processing your request",
                                "ExceptionMessage": refusal,
                                "ExceptionType": "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"})
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

    def signal_entity(self, name: str, key: str, operation: str, request_input: str | None) -> Answer:
        """A client's signal (`request_input`: the `RequestMessage.Input`): queued, 202; an entity
        name the app does not define is 400 (the extension's `ThrowIfFunctionDoesNotExist`)."""
        if name.lower() not in self.index.entities:
            return Answer(400, {"Message": unknown_entity_message(name, self.index.entities)})
        target = entity_id(name, key)
        request = H.entity_request(operation, request_input, str(uuid.uuid4()), None, None, True)
        self.store.signal_entity(target, request)
        self.kick_entity(target)
        return Answer(202)

    def list_entities(self, name: str, query: EntityQuery, page_size: int, token: str | None) -> EntityPage:
        """Existing entities named `name` (any name when empty), in entity-id order."""
        return self.store.query_entities(name.lower(), query, page_size, token)

    def entity_state(self, name: str, key: str) -> Answer:
        """200 with the state, or 404 when the entity does not exist."""
        found = self.store.entity(entity_id(name, key))
        if found is None or not found[0]:
            return Answer(404)
        return Answer(200, json.loads(found[1]) if found[1] is not None else None)

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
            "createdTime": inst.created.strftime(H.STATUS_TIME_FORMAT),
            "lastUpdatedTime": inst.updated.strftime(H.STATUS_TIME_FORMAT),
        }
        if show_history:
            body["historyEvents"] = H.history_for_status(self.store.history(inst.id), show_history_output)
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
        orchestrator = self.index.orchestrators.get(inst.name)
        decision = await asyncio.to_thread(
            decide,
            instance_id=instance_id,
            name=inst.name,
            past=self.store.history(instance_id),
            new=H.new_events(now, [event for _, event in inbox]),
            now=now,
            invoke=partial(run_orchestrator, orchestrator) if orchestrator else None,
            previous_custom_status=inst.custom_status,
            parent_id=self.store.parent_of(instance_id),
        )
        consumed = tuple(seq for seq, _ in inbox)
        self.stats["episodes"] += 1
        if decision.nondeterminism:
            log.error("instance %s does not replay: %s", instance_id, decision.nondeterminism)
        if decision.exception is not None:
            log.error("the orchestrator of %s raised outside the SDK", instance_id, exc_info=decision.exception)
        if decision.status == CONTINUED_AS_NEW:
            self._continue_as_new(instance_id, consumed, decision, now)
            return
        result = EpisodeResult(
            consumed, decision.appended, decision.status, decision.output, decision.custom_status,
            activities=tuple(PendingActivity(instance_id, a.task_id, a.name, a.input) for a in decision.activities),
            timers=tuple(PendingTimer(instance_id, t.timer_id, t.fire_at) for t in decision.timers),
            children=tuple(self._child(instance_id, c) for c in decision.children),
            entity_messages=_entity_ops(decision),
        )
        if not self.store.commit_episode(instance_id, result, now):
            return
        for op in result.entity_messages:
            self.kick_entity(op.entity_id)
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
        # Cancelled timers stay armed: they fire, and the SDK ignores them (see `Decision.timers`).
        for t in result.timers:
            self._arm(t)
        for a in result.activities:
            self._start_activity(a)

    def _continue_as_new(self, instance_id: str, consumed: tuple[int, ...], decision: Decision, now: datetime) -> None:
        """A new execution of the instance. What the last episode scheduled is sent, as DTFx sends
        it: its activities run (results dropped), its children start (outcome dropped), its
        entity messages go; its timers would fire into an execution that is gone, so they are not
        armed. The old execution's earlier timers, activities and unconsumed results are dropped."""
        assert decision.next_execution is not None
        ops = _entity_ops(decision)
        activities = tuple(PendingActivity(instance_id, a.task_id, a.name, a.input) for a in decision.activities)
        children = tuple(self._child(instance_id, c) for c in decision.children)
        orphans = self.store.continue_as_new(instance_id, consumed, decision.next_execution,
                                             decision.custom_status, now, ops, activities, children)
        if orphans is None:
            return
        for op in ops:
            self.kick_entity(op.entity_id)
        for child in children:
            self.kick(child.instance_id)
        for orphan in orphans:
            self._spawn(self._orphan_activity(orphan))
        log.info("instance %s continued as new", instance_id)
        self._disarm_instance(instance_id)
        self.kick(instance_id)

    def _child(self, parent_id: str, c: NewSubOrchestration) -> PendingChild:
        """A sub-orchestration to start: the version its action names, else the default version at
        the time it is created."""
        version = self.default_version if c.version is None else c.version
        return PendingChild(parent_id, c.task_id, c.instance_id, c.name, c.input, version)

    def _kick_parent(self, instance_id: str) -> None:
        parent = self.store.parent_of(instance_id)
        if parent is not None:
            self.kick(parent)

    # -- entities -----------------------------------------------------------------------------

    def kick_entity(self, target: str) -> None:
        """Run the entity's queued operations (one batch at a time per entity)."""
        if target in self._entities_running:
            self._entities_dirty.add(target)
            return
        self._entities_running.add(target)
        self._spawn(self._drain_entity(target))

    async def _drain_entity(self, target: str) -> None:
        try:
            while True:
                self._entities_dirty.discard(target)
                try:
                    more = await self._entity_batch(target)
                except Exception:
                    log.exception("entity %s: a batch failed in the devhost", target)
                    return
                if not more and target not in self._entities_dirty:
                    return
        finally:
            self._entities_running.discard(target)

    async def _entity_batch(self, target: str) -> bool:
        """Run up to `ENTITY_BATCH_LIMIT` operations; True while more wait."""
        ops = self.store.entity_ops(target, ENTITY_BATCH_LIMIT)
        if not ops:
            return False
        _, name, key = target.split("@", 2)
        exists, state = self.store.entity(target) or (False, None)
        entity = self.index.entities.get(name)
        if entity is None:
            log.warning("entity %s: no entity function named %r; its operations fail", target, name)
            outcome_results: list[dict[str, Any]] = [
                {"isError": True, "result": json.dumps(f"no entity function named '{name}'")} for _ in ops]
        else:
            batch = entity_batch_json(name, key, exists, state,
                                      [(r.get("op") or "", r.get("input"), bool(r.get("signal"))) for _, r in ops])
            outcome = await asyncio.to_thread(run_entity, entity, batch)
            self.stats["entity_operations"] += len(ops)
            if outcome.error is not None:
                log.error("entity %s: the batch failed: %s", target, outcome.error)
                outcome_results = [{"isError": True, "result": json.dumps(outcome.error)} for _ in ops]
            else:
                exists, state = outcome.exists, outcome.state
                outcome_results = list(outcome.results)
        now = self.clock()
        responses = []
        for (_, request), result in zip(ops, outcome_results, strict=False):
            if request.get("signal") or not request.get("parent"):
                continue
            answer = H.entity_response(result.get("result"), bool(result.get("isError")))
            responses.append((request["parent"], H.event_raised_text(now, request["id"], answer)))
        for parent in self.store.commit_entity_batch(target, [seq for seq, _ in ops], exists, state, responses, now):
            self.kick(parent)
        return len(ops) == ENTITY_BATCH_LIMIT

    # -- activities ---------------------------------------------------------------------------

    def _start_activity(self, a: PendingActivity) -> None:
        self._spawn(self._activity(a))

    async def _activity(self, a: PendingActivity) -> None:
        activity = self.index.activities.get(a.name)
        self.stats["activities"] += 1
        loop = asyncio.get_running_loop()
        if activity is None:
            event = H.task_failed(self.clock(), a.task_id, f"The function '{a.name}' doesn't exist.", None)
        else:
            if is_async_activity(activity):
                outcome = await run_async_activity(activity, a.input, self.client_binding())
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

    async def _orphan_activity(self, a: OrphanActivity) -> None:
        activity = self.index.activities.get(a.name)
        if activity is not None and is_async_activity(activity):
            outcome = await run_async_activity(activity, a.input, self.client_binding())
        elif activity is not None:
            outcome = await asyncio.get_running_loop().run_in_executor(self._pool, run_activity, activity, a.input)
            log.info("activity %s of an earlier execution of %s ended (%s); its result is dropped",
                     a.name, a.instance_id, "failed" if outcome.failed else "completed")
        self.store.finish_orphan_activity(a.seq)

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


def unknown_entity_message(name: str, known: dict[str, Any]) -> str:
    """The extension's `GetInvalidEntityFunctionMessage` (DurableTaskExtension.cs)."""
    message = f"The function '{name}' doesn't exist, is disabled, or is not an entity function. Additional info: "
    if known:
        return message + "The following are the known entity functions: '" + "', '".join(known) + "'."
    return message + "No entity functions are currently registered!"


def _entity_ops(decision: Decision) -> tuple[PendingEntityOp, ...]:
    return tuple(PendingEntityOp(m.target, m.request()) for m in decision.entity_messages)
