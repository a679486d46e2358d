"""Durable state in SQLite: instances, their histories, pending events, timers and activities.

Every state change that must survive a crash is one transaction, so a devhost killed at any
point restarts into a consistent state: undelivered events are still in the inbox, armed timers
are still in `timers` (overdue ones fire at once), and activities that were running are run
again (at-least-once, like the real host).

Sub-orchestrations: a parent's episode creates its children (instance, `ExecutionStarted`, and
the link to the parent's task id) in the same transaction that records
`SubOrchestrationInstanceCreated`; a child's terminal transition queues
`SubOrchestrationInstanceCompleted` / `...Failed` in the parent's inbox in the same transaction
that ends it. So a crash at any point neither loses a child nor its result.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.durable_functions import OrchestrationRuntimeStatus as S
from azure.durable_functions.models.history import HistoryEventType

from devhost.emulator import history as H

PENDING, RUNNING, COMPLETED, FAILED, TERMINATED = (
    S.Pending.value, S.Running.value, S.Completed.value, S.Failed.value, S.Terminated.value)
TERMINAL_STATUSES: frozenset[str] = frozenset({COMPLETED, FAILED, TERMINATED})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
  input TEXT, output TEXT, custom_status TEXT, created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history (
  instance_id TEXT NOT NULL, idx INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (instance_id, idx));
CREATE TABLE IF NOT EXISTS inbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS timers (
  instance_id TEXT NOT NULL, timer_id INTEGER NOT NULL, fire_at TEXT NOT NULL, PRIMARY KEY (instance_id, timer_id));
CREATE TABLE IF NOT EXISTS activities (
  instance_id TEXT NOT NULL, task_id INTEGER NOT NULL, name TEXT NOT NULL, input TEXT,
  PRIMARY KEY (instance_id, task_id));
CREATE TABLE IF NOT EXISTS parents (
  child_id TEXT PRIMARY KEY, parent_id TEXT NOT NULL, task_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, key TEXT NOT NULL,
  present INTEGER NOT NULL, state TEXT, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entity_ops (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, entity_id TEXT NOT NULL, request TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS entity_ops_by_entity ON entity_ops (entity_id, seq);
CREATE TABLE IF NOT EXISTS orphan_activities (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, name TEXT NOT NULL, input TEXT);
"""
_INSTANCE_COLUMNS = "id,name,status,input,output,custom_status,created,updated"


@dataclass(frozen=True)
class Instance:
    id: str
    name: str
    status: str
    input: Any
    output: Any
    custom_status: Any
    created: datetime
    updated: datetime

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class InstanceQuery:
    """The filters of the Durable HTTP API's instance query and purge (all optional, ANDed)."""

    created_from: datetime | None = None
    created_to: datetime | None = None
    statuses: frozenset[str] = frozenset()
    """Any of these runtime statuses; empty means any status."""
    id_prefix: str = ""


@dataclass(frozen=True)
class InstancePage:
    instances: tuple[Instance, ...]
    continuation_token: str | None
    """Opaque; None on the last page."""


class BadContinuationToken(ValueError):
    pass


@dataclass(frozen=True)
class EntityQuery:
    """The filters of the entity HTTP API's listing (`GET entities/{name}`)."""

    last_operation_from: datetime | None = None
    last_operation_to: datetime | None = None
    fetch_state: bool = False


@dataclass(frozen=True)
class EntityRecord:
    name: str
    key: str
    last_operation: datetime
    state: str | None
    """JSON text (None when not fetched)."""


@dataclass(frozen=True)
class EntityPage:
    entities: tuple[EntityRecord, ...]
    continuation_token: str | None
    """Opaque; None on the last page."""


def _sortable_stamp(t: datetime) -> str:
    """A bound in the stored `created` format (which sorts as text), whatever the year."""
    t = t.astimezone(UTC)
    return f"{t.year:04d}{t.strftime('-%m-%dT%H:%M:%S.%fZ')}"


def _where(query: InstanceQuery) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if query.created_from is not None:
        clauses.append("created >= ?")
        args.append(_sortable_stamp(query.created_from))
    if query.created_to is not None:
        clauses.append("created <= ?")
        args.append(_sortable_stamp(query.created_to))
    if query.statuses:
        clauses.append(f"status IN ({','.join('?' * len(query.statuses))})")
        args.extend(sorted(query.statuses))
    if query.id_prefix:
        clauses.append("substr(id, 1, ?) = ?")
        args.extend((len(query.id_prefix), query.id_prefix))
    return clauses, args


def _encode_token(created: str, instance_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created, instance_id]).encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, str]:
    try:
        created, instance_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError, binascii.Error) as e:
        raise BadContinuationToken("not a continuation token this API issued") from e
    if not isinstance(created, str) or not isinstance(instance_id, str):
        raise BadContinuationToken("not a continuation token this API issued")
    return created, instance_id


@dataclass(frozen=True)
class PendingTimer:
    instance_id: str
    timer_id: int
    fire_at: datetime


@dataclass(frozen=True)
class PendingActivity:
    instance_id: str
    task_id: int
    name: str
    input: str | None


@dataclass(frozen=True)
class OrphanActivity:
    """An activity scheduled by the episode that continued as new: it runs (DTFx sent its message),
    and its result is dropped (it answers the old execution)."""

    seq: int
    instance_id: str
    name: str
    input: str | None


@dataclass(frozen=True)
class PendingChild:
    """A sub-orchestration a parent's episode starts: created with the episode's commit."""

    parent_id: str
    task_id: int
    instance_id: str
    name: str
    input: str | None
    """The input as JSON text (as the SDK's action carries it)."""
    version: str | None = None


@dataclass(frozen=True)
class PendingEntityOp:
    """A message for an entity: its scheduler id (`@name@key`) and the RequestMessage JSON."""

    entity_id: str
    request: str


def entity_id(name: str, key: str) -> str:
    """The scheduler id the SDK writes (`@name@key`, the name lowercased)."""
    return f"@{name.lower()}@{key}"


@dataclass(frozen=True)
class EpisodeResult:
    """What one orchestrator episode changes, written in one transaction."""

    consumed: tuple[int, ...]
    appended: tuple[dict[str, Any], ...]
    status: str
    output: Any
    custom_status: Any
    activities: tuple[PendingActivity, ...] = ()
    timers: tuple[PendingTimer, ...] = ()
    children: tuple[PendingChild, ...] = ()
    entity_messages: tuple[PendingEntityOp, ...] = ()


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Store:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    # -- instances -------------------------------------------------------------------------

    @staticmethod
    def _instance(row: tuple[Any, ...]) -> Instance:
        iid, name, status, inp, out, custom, created, updated = row
        return Instance(
            iid, name, status, _load(inp), _load(out), _load(custom),
            H.parse_timestamp(created), H.parse_timestamp(updated),
        )

    def get(self, instance_id: str) -> Instance | None:
        rows = self._query(f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE id=?", (instance_id,))  # noqa: S608 (fixed)
        return self._instance(rows[0]) if rows else None

    def query_instances(self, query: InstanceQuery, page_size: int, token: str | None = None) -> InstancePage:
        """One page of matching instances in instance-id order, as the Azure Storage provider
        lists them (its Instances table's PartitionKey is the instance id, and a table query
        answers in key order), not newest first. The token marks the last id of the page, so an
        instance created meanwhile shows up on a later page exactly when its id sorts after it."""
        clauses, args = _where(query)
        if token is not None:
            _, after = _decode_token(token)
            clauses.append("id > ?")
            args.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances {where} ORDER BY id LIMIT ?",  # noqa: S608 (fixed clauses, values bound)
            [*args, page_size + 1],
        )
        page = rows[:page_size]
        more = len(rows) > page_size
        return InstancePage(tuple(self._instance(r) for r in page), _encode_token("", page[-1][0]) if more else None)

    def create(self, instance_id: str, name: str, value: Any, now: datetime, version: str | None = None) -> bool:
        """A new Pending instance with its ExecutionStarted event queued; False if one is active."""
        stamp = H.format_timestamp(now)
        with self._tx() as db:
            row = db.execute("SELECT status FROM instances WHERE id=?", (instance_id,)).fetchone()
            if row is not None and row[0] not in TERMINAL_STATUSES:
                return False
            self._delete(db, instance_id)
            db.execute(
                "INSERT INTO instances VALUES (?,?,?,?,?,?,?,?)",
                (instance_id, name, PENDING, _dump(value), None, None, stamp, stamp),
            )
            db.execute(
                "INSERT INTO inbox (instance_id, event) VALUES (?,?)",
                (instance_id, json.dumps(H.execution_started(now, name, value, version=version))),
            )
        return True

    def put(self, inst: Instance) -> None:
        """Write an instance row as given, with no event for it (for tests that script the HTTP
        API's answers: tests/support/durable_standin.py)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?,?,?,?)",
                (inst.id, inst.name, inst.status, _dump(inst.input), _dump(inst.output), _dump(inst.custom_status),
                 H.format_timestamp(inst.created), H.format_timestamp(inst.updated)),
            )

    @staticmethod
    def _delete(db: sqlite3.Connection, instance_id: str) -> int:
        n = db.execute("DELETE FROM instances WHERE id=?", (instance_id,)).rowcount
        for table in ("history", "inbox", "timers", "activities"):
            db.execute(f"DELETE FROM {table} WHERE instance_id=?", (instance_id,))  # noqa: S608 (fixed names)
        return n

    def purge(self, instance_id: str) -> int:
        with self._tx() as db:
            n = self._delete(db, instance_id)
            db.execute("DELETE FROM parents WHERE child_id=?", (instance_id,))
            return n

    def purge_matching(self, query: InstanceQuery) -> list[str]:
        """Purge every matching instance, whatever its status (as the extension's purge by
        filter does); the ids purged."""
        clauses, args = _where(query)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._tx() as db:
            ids = [r[0] for r in db.execute(f"SELECT id FROM instances {where}", args).fetchall()]  # noqa: S608 (fixed clauses, values bound)
            for instance_id in ids:
                self._delete(db, instance_id)
                db.execute("DELETE FROM parents WHERE child_id=?", (instance_id,))
            return ids

    def parent_of(self, instance_id: str) -> str | None:
        rows = self._query("SELECT parent_id FROM parents WHERE child_id=?", (instance_id,))
        return rows[0][0] if rows else None

    def children_of(self, instance_id: str) -> list[str]:
        return [r[0] for r in self._query("SELECT child_id FROM parents WHERE parent_id=?", (instance_id,))]

    def _start_child(self, db: sqlite3.Connection, child: PendingChild, now: datetime) -> None:
        """Create a sub-orchestration instance; if one with its id is still active, the parent's
        task fails at once (as the extension refuses to start a second instance with the same id)."""
        row = db.execute("SELECT status FROM instances WHERE id=?", (child.instance_id,)).fetchone()
        if row is not None and row[0] not in TERMINAL_STATUSES:
            reason = f"An orchestration with the instance ID '{child.instance_id}' already exists and is active."
            event = H.sub_orchestration_failed(now, child.task_id, reason, None)
            db.execute("INSERT INTO inbox (instance_id, event) VALUES (?,?)", (child.parent_id, json.dumps(event)))
            return
        self._delete(db, child.instance_id)
        stamp = H.format_timestamp(now)
        db.execute(
            "INSERT INTO instances VALUES (?,?,?,?,?,?,?,?)",
            (child.instance_id, child.name, PENDING, _dump(child.input), None, None, stamp, stamp),
        )
        parent = {"Name": None, "OrchestrationInstance": {"InstanceId": child.parent_id},
                  "TaskScheduleId": child.task_id}
        started = H.execution_started(now, child.name, child.input, parent, child.version)
        db.execute("INSERT INTO inbox (instance_id, event) VALUES (?,?)", (child.instance_id, json.dumps(started)))
        db.execute("INSERT OR REPLACE INTO parents VALUES (?,?,?)", (child.instance_id, child.parent_id, child.task_id))

    @staticmethod
    def _tell_parent(db: sqlite3.Connection, instance_id: str, status: str, output: Any, now: datetime) -> None:
        """Queue a finished child's outcome for its parent (if it has one that still runs)."""
        row = db.execute("SELECT parent_id, task_id FROM parents WHERE child_id=?", (instance_id,)).fetchone()
        if row is None:
            return
        parent_id, task_id = row
        parent = db.execute("SELECT status FROM instances WHERE id=?", (parent_id,)).fetchone()
        if parent is None or parent[0] in TERMINAL_STATUSES:
            return
        event = H.child_outcome(now, task_id, status, output)
        db.execute("INSERT INTO inbox (instance_id, event) VALUES (?,?)", (parent_id, json.dumps(event)))

    def terminate(self, instance_id: str, reason: str | None, now: datetime) -> bool:
        with self._tx() as db:
            row = db.execute("SELECT status FROM instances WHERE id=?", (instance_id,)).fetchone()
            if row is None or row[0] in TERMINAL_STATUSES:
                return False
            for table in ("inbox", "timers", "activities"):
                db.execute(f"DELETE FROM {table} WHERE instance_id=?", (instance_id,))  # noqa: S608 (fixed names)
            self._append(db, instance_id, [H.execution_terminated(now, reason)])
            db.execute(
                "UPDATE instances SET status=?, output=?, updated=? WHERE id=?",
                (TERMINATED, _dump(reason), H.format_timestamp(now), instance_id),
            )
            self._tell_parent(db, instance_id, TERMINATED, reason, now)
        return True

    # -- history and inbox ----------------------------------------------------------------

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT event FROM history WHERE instance_id=? ORDER BY idx", (instance_id,))
        return [json.loads(r[0]) for r in rows]

    @staticmethod
    def _append(db: sqlite3.Connection, instance_id: str, events: Iterable[dict[str, Any]]) -> None:
        (n,) = db.execute("SELECT COUNT(*) FROM history WHERE instance_id=?", (instance_id,)).fetchone()
        db.executemany(
            "INSERT INTO history VALUES (?,?,?)",
            [(instance_id, n + i, json.dumps(e)) for i, e in enumerate(events)],
        )

    def enqueue(self, instance_id: str, event: dict[str, Any]) -> bool:
        """Queue an event for the next episode; False if the instance is unknown or finished."""
        with self._tx() as db:
            row = db.execute("SELECT status FROM instances WHERE id=?", (instance_id,)).fetchone()
            if row is None or row[0] in TERMINAL_STATUSES:
                return False
            db.execute("INSERT INTO inbox (instance_id, event) VALUES (?,?)", (instance_id, json.dumps(event)))
        return True

    def inbox(self, instance_id: str) -> list[tuple[int, dict[str, Any]]]:
        rows = self._query("SELECT seq, event FROM inbox WHERE instance_id=? ORDER BY seq", (instance_id,))
        return [(seq, json.loads(e)) for seq, e in rows]

    def drop_inbox(self, instance_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM inbox WHERE instance_id=?", (instance_id,))

    def instances_with_inbox(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT instance_id FROM inbox")]

    def commit_episode(self, instance_id: str, result: EpisodeResult, now: datetime) -> bool:
        """Apply an episode unless the instance was terminated or purged while it ran."""
        with self._tx() as db:
            row = db.execute("SELECT status FROM instances WHERE id=?", (instance_id,)).fetchone()
            if row is None or row[0] in TERMINAL_STATUSES:
                return False
            db.executemany(
                "DELETE FROM inbox WHERE seq=?", [(seq,) for seq in result.consumed]
            )
            self._append(db, instance_id, result.appended)
            self._queue_entity_ops(db, result.entity_messages)
            db.execute(
                "UPDATE instances SET status=?, output=?, custom_status=?, updated=? WHERE id=?",
                (result.status, _dump(result.output), _dump(result.custom_status), H.format_timestamp(now),
                 instance_id),
            )
            if result.status in TERMINAL_STATUSES:
                db.execute("DELETE FROM timers WHERE instance_id=?", (instance_id,))
                db.execute("DELETE FROM activities WHERE instance_id=?", (instance_id,))
                db.execute("DELETE FROM inbox WHERE instance_id=?", (instance_id,))
                self._tell_parent(db, instance_id, result.status, result.output, now)
                return True
            for child in result.children:
                self._start_child(db, child, now)
            db.executemany(
                "INSERT OR REPLACE INTO activities VALUES (?,?,?,?)",
                [(a.instance_id, a.task_id, a.name, a.input) for a in result.activities],
            )
            db.executemany(
                "INSERT OR REPLACE INTO timers VALUES (?,?,?)",
                [(t.instance_id, t.timer_id, H.format_timestamp(t.fire_at)) for t in result.timers],
            )
        return True

    def continue_as_new(self, instance_id: str, consumed: Iterable[int], started: dict[str, Any],
                        custom_status: Any, now: datetime, entity_messages: Iterable[PendingEntityOp] = (),
                        activities: Iterable[PendingActivity] = (), children: Iterable[PendingChild] = (),
                        ) -> list[OrphanActivity] | None:
        """Start the instance's next execution (ContinueAsNew), unless it was terminated or purged
        meanwhile: a fresh history whose first event is `started`; the custom status carries over.
        Events the old execution consumed go with its history; of the ones that arrived during
        its last episode, raised events reach the new execution and task results are dropped (they
        answer the old one). Its timers and activities go, and its children are no longer its
        own: they run to their end, their outcome dropped (DTFx drops it too: it names the old
        execution). What the last episode scheduled is still sent, as DTFx sends it: `activities`
        become orphans (run, their result dropped; returned to be started) and `children` start
        unlinked. None when the instance ended meanwhile."""
        with self._tx() as db:
            row = db.execute("SELECT status FROM instances WHERE id=?", (instance_id,)).fetchone()
            if row is None or row[0] in TERMINAL_STATUSES:
                return None
            db.executemany("DELETE FROM inbox WHERE seq=?", [(seq,) for seq in consumed])
            for child in children:  # first: a refused child's failure is a stale answer, dropped below
                self._start_child(db, child, now)
            rows = db.execute("SELECT seq, event FROM inbox WHERE instance_id=?", (instance_id,)).fetchall()
            stale = [(seq,) for seq, event in rows if json.loads(event)["EventType"] != HistoryEventType.EVENT_RAISED]
            db.executemany("DELETE FROM inbox WHERE seq=?", stale)
            for table in ("history", "timers", "activities"):
                db.execute(f"DELETE FROM {table} WHERE instance_id=?", (instance_id,))  # noqa: S608 (fixed names)
            db.execute("DELETE FROM parents WHERE parent_id=?", (instance_id,))
            self._queue_entity_ops(db, entity_messages)
            orphans = [OrphanActivity(db.execute(
                "INSERT INTO orphan_activities (instance_id, name, input) VALUES (?,?,?)",
                (instance_id, a.name, a.input)).lastrowid or 0, instance_id, a.name, a.input) for a in activities]
            db.execute("INSERT INTO inbox (instance_id, event) VALUES (?,?)", (instance_id, json.dumps(started)))
            db.execute(
                "UPDATE instances SET status=?, input=?, output=NULL, custom_status=?, updated=? WHERE id=?",
                (RUNNING, _dump(started["Input"]), _dump(custom_status), H.format_timestamp(now), instance_id),
            )
        return orphans

    def pending_orphan_activities(self) -> list[OrphanActivity]:
        rows = self._query("SELECT seq, instance_id, name, input FROM orphan_activities")
        return [OrphanActivity(*r) for r in rows]

    def finish_orphan_activity(self, seq: int) -> None:
        """An orphan ran: its result answers an execution that is gone."""
        with self._tx() as db:
            db.execute("DELETE FROM orphan_activities WHERE seq=?", (seq,))

    # -- activities and timers -------------------------------------------------------------

    def pending_activities(self) -> list[PendingActivity]:
        rows = self._query("SELECT instance_id, task_id, name, input FROM activities")
        return [PendingActivity(*r) for r in rows]

    def finish_activity(self, instance_id: str, task_id: int, event: dict[str, Any]) -> bool:
        """Record an activity's result as an inbox event, unless nobody waits for it any more."""
        with self._tx() as db:
            n = db.execute(
                "DELETE FROM activities WHERE instance_id=? AND task_id=?", (instance_id, task_id)
            ).rowcount
            if n:
                db.execute("INSERT INTO inbox (instance_id, event) VALUES (?,?)", (instance_id, json.dumps(event)))
        return bool(n)

    def pending_timers(self) -> list[PendingTimer]:
        rows = self._query("SELECT instance_id, timer_id, fire_at FROM timers")
        return [PendingTimer(i, t, H.parse_timestamp(f)) for i, t, f in rows]

    def fire_timer(self, instance_id: str, timer_id: int, event: dict[str, Any]) -> bool:
        with self._tx() as db:
            n = db.execute("DELETE FROM timers WHERE instance_id=? AND timer_id=?", (instance_id, timer_id)).rowcount
            if n:
                db.execute("INSERT INTO inbox (instance_id, event) VALUES (?,?)", (instance_id, json.dumps(event)))
        return bool(n)

    # -- entities ----------------------------------------------------------------------------
    # An entity's operations wait in `entity_ops` in arrival order; the engine runs them in
    # batches, and each batch's new state, consumed operations and answers to callers are one
    # transaction. The extension keeps entity state when instances are purged; so does this.

    @staticmethod
    def _queue_entity_ops(db: sqlite3.Connection, ops: Iterable[PendingEntityOp]) -> None:
        db.executemany("INSERT INTO entity_ops (entity_id, request) VALUES (?,?)",
                       [(op.entity_id, op.request) for op in ops])

    def signal_entity(self, target: str, request: str) -> None:
        """A client's signal (the entity HTTP API)."""
        with self._tx() as db:
            self._queue_entity_ops(db, [PendingEntityOp(target, request)])

    def entity(self, target: str) -> tuple[bool, str | None] | None:
        """(exists, state JSON text), or None when the entity never ran."""
        rows = self._query("SELECT present, state FROM entities WHERE id=?", (target,))
        return (bool(rows[0][0]), rows[0][1]) if rows else None

    def entity_ops(self, target: str, limit: int) -> list[tuple[int, dict[str, Any]]]:
        rows = self._query("SELECT seq, request FROM entity_ops WHERE entity_id=? ORDER BY seq LIMIT ?",
                           (target, limit))
        return [(seq, json.loads(r)) for seq, r in rows]

    def query_entities(self, name: str, query: EntityQuery, page_size: int, token: str | None = None) -> EntityPage:
        """One page of existing entities (named `name`, lowercase; any when empty) in entity-id
        order, as the Azure Storage provider lists them (PartitionKey = `@name@key`)."""
        clauses, args = ["present = 1"], []
        if name:
            clauses.append("substr(id, 1, ?) = ?")
            args.extend((len(name) + 2, f"@{name}@"))
        if query.last_operation_from is not None:
            clauses.append("updated >= ?")
            args.append(_sortable_stamp(query.last_operation_from))
        if query.last_operation_to is not None:
            clauses.append("updated <= ?")
            args.append(_sortable_stamp(query.last_operation_to))
        if token is not None:
            _, after = _decode_token(token)
            clauses.append("id > ?")
            args.append(after)
        rows = self._query(
            f"SELECT id, name, key, state, updated FROM entities WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?",  # noqa: S608 (fixed clauses, values bound)
            [*args, page_size + 1],
        )
        page = rows[:page_size]
        records = tuple(EntityRecord(n, k, H.parse_timestamp(u), st if query.fetch_state else None)
                        for _, n, k, st, u in page)
        return EntityPage(records, _encode_token("", page[-1][0]) if len(rows) > page_size else None)

    def entities_with_ops(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT entity_id FROM entity_ops")]

    def commit_entity_batch(self, target: str, consumed: Iterable[int], present: bool, state: str | None,
                            responses: Iterable[tuple[str, dict[str, Any]]], now: datetime) -> list[str]:
        """Store the state after a batch, drop its operations and queue each answer (an
        `EventRaised`) for its caller, unless the caller has ended or is gone (the extension drops
        an answer to a finished execution). Returns the callers to run."""
        _, name, key = target.split("@", 2)
        kicked: list[str] = []
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO entities VALUES (?,?,?,?,?,?)",
                       (target, name, key, int(present), state if present else None, H.format_timestamp(now)))
            db.executemany("DELETE FROM entity_ops WHERE seq=?", [(seq,) for seq in consumed])
            for parent, event in responses:
                row = db.execute("SELECT status FROM instances WHERE id=?", (parent,)).fetchone()
                if row is None or row[0] in TERMINAL_STATUSES:
                    continue
                db.execute("INSERT INTO inbox (instance_id, event) VALUES (?,?)", (parent, json.dumps(event)))
                kicked.append(parent)
        return kicked
