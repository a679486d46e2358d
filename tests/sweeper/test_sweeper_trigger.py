"""The timer trigger, invoked as the worker invokes it, with a fake backend and the Durable stand-in."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter

import sweeper
from tests.support.durable_standin import DurableStandIn, IndexedFunctions, client_binding_value, run
from videojob import bootstrap
from videojob.domain.container_port import BackendError, GroupState, ManagedGroup
from videojob.domain.container_spec import format_time, group_name
from videojob.domain.settings import Settings, load_settings

APP_NAME = "video-downloader-test"
SIGNING_KEY = "sweeper-test-signing-key-0123456789abcdef"


class FakeBackend:
    """Holds groups in memory; `delete` of a name in `failing` raises like a throttled ARM call."""

    def __init__(self, groups: list[ManagedGroup], failing: frozenset[str] = frozenset()):
        self.groups = {g.name: g for g in groups}
        self.failing = failing
        self.deleted: list[str] = []
        self.listed_for: list[str] = []

    def list_managed(self, managed_by: str) -> list[ManagedGroup]:
        self.listed_for.append(managed_by)
        return [g for g in self.groups.values() if g.tags.get("managedBy") == managed_by]

    def delete(self, name: str) -> None:
        if name in self.failing:
            raise BackendError("throttled", "too many requests", retryable=True)
        self.groups.pop(name, None)
        self.deleted.append(name)

    def create(self, spec):  # pragma: no cover - the sweeper never creates
        raise AssertionError("the sweeper must not create groups")

    def state(self, name: str) -> GroupState:  # pragma: no cover
        raise AssertionError("not used by the sweeper")

    def logs(self, name: str, tail: int = 50) -> str:  # pragma: no cover
        raise AssertionError("not used by the sweeper")

    def stop(self, name: str) -> None:  # pragma: no cover
        raise AssertionError("the sweeper must not stop groups")


def managed(job_id: str, state: str = "Running", *, deadline: datetime | None = None, **extra: str) -> ManagedGroup:
    now = datetime.now(UTC)
    tags = {
        "managedBy": APP_NAME,
        "jobId": job_id,
        "createdAt": format_time(now - timedelta(minutes=10)),
        "deadline": format_time(deadline or now + timedelta(hours=2)),
    } | extra
    return ManagedGroup(name=group_name(job_id), state=state, tags=tags)


@pytest.fixture(scope="module")
def sweep_function():
    return IndexedFunctions(sweeper.bp).user_function("sweep_container_groups")


@pytest.fixture
def settings() -> Iterator[Settings]:
    s = load_settings(
        environ={
            "CONTAINER_BACKEND": "local",
            "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
            "CALLBACK_SIGNING_KEY": SIGNING_KEY,
            "OUTPUT_ACCOUNT_URL": "https://account.blob.core.windows.net",
            "FAILED_GROUP_RETENTION_SECONDS": "3600",
            "WEBSITE_SITE_NAME": APP_NAME,
        }
    )
    yield s
    bootstrap.reset()


@pytest.fixture
def standin() -> Iterator[DurableStandIn]:
    with DurableStandIn() as s:
        yield s


def invoke(sweep_function, standin: DurableStandIn, past_due: bool = False) -> None:
    timer_datum = meta.Datum(type="json", value=json.dumps({"Schedule": {}, "IsPastDue": past_due}))
    timer = TimerRequestConverter.decode(timer_datum, trigger_metadata=None)
    assert run(sweep_function(timer=timer, client=client_binding_value(standin.binding_json()))) is None


def test_sweep_deletes_the_groups_no_live_job_needs(sweep_function, standin, settings) -> None:
    now = datetime.now(UTC)
    running = standin.add_instance(runtime_status="Running")
    pending = standin.add_instance(runtime_status="Pending")
    completed = standin.add_instance(runtime_status="Completed")
    terminated = standin.add_instance(runtime_status="Terminated")
    failed_recent = standin.add_instance(runtime_status="Failed", last_updated_time=now - timedelta(minutes=5))
    failed_old = standin.add_instance(runtime_status="Failed", last_updated_time=now - timedelta(hours=2))
    stuck = standin.add_instance(runtime_status="Running")
    backend = FakeBackend(
        [
            managed(running.instance_id),
            managed(pending.instance_id, "Pending"),
            managed(completed.instance_id, "Succeeded"),
            managed(terminated.instance_id),
            managed(failed_recent.instance_id, "Stopped"),
            managed(failed_old.instance_id, "Stopped"),
            managed(stuck.instance_id, deadline=now - timedelta(hours=1)),
            managed("0123456789abcdef0123456789abcdef"),  # its job was purged
            ManagedGroup("dl-someone-else", "Running", {"managedBy": "another-app", "jobId": "zzz"}),
        ]
    )
    bootstrap.override(settings=settings, backend=backend)

    invoke(sweep_function, standin)

    assert backend.listed_for == [APP_NAME]
    assert sorted(backend.deleted) == sorted(
        group_name(i)
        for i in (
            completed.instance_id,
            terminated.instance_id,
            failed_old.instance_id,
            stuck.instance_id,
            "0123456789abcdef0123456789abcdef",
        )
    )
    assert set(backend.groups) == {
        group_name(running.instance_id),
        group_name(pending.instance_id),
        group_name(failed_recent.instance_id),
        "dl-someone-else",
    }
    # Each of our groups' jobs was looked up once, through the extension's status endpoint.
    assert len(standin.calls_of("get_status")) == 8
    # The sweeper cleans containers only: it never terminates, purges or signals jobs.
    assert standin.calls_of("terminate") == standin.calls_of("purge") == standin.calls_of("raise_event") == []


def test_one_failing_delete_does_not_stop_the_sweep(sweep_function, standin, settings, caplog) -> None:
    jobs = [standin.add_instance(runtime_status="Completed") for _ in range(3)]
    names = [group_name(j.instance_id) for j in jobs]
    backend = FakeBackend([managed(j.instance_id) for j in jobs], failing=frozenset({names[0]}))
    bootstrap.override(settings=settings, backend=backend)
    caplog.set_level(logging.INFO)

    invoke(sweep_function, standin)

    assert sorted(backend.deleted) == sorted(names[1:])
    assert "3 groups, 2 deleted, 0 kept, 1 failed" in caplog.text


def test_a_job_lookup_failure_leaves_that_group_alone_and_the_rest_swept(sweep_function, standin, settings) -> None:
    done = standin.add_instance(runtime_status="Completed")
    tampered = managed("x/../../instances", "Running")  # a jobId that is not an instance id
    backend = FakeBackend([tampered, managed(done.instance_id)])
    bootstrap.override(settings=settings, backend=backend)

    invoke(sweep_function, standin)

    assert backend.deleted == [group_name(done.instance_id)]
    assert all("instances/x" not in c.path for c in standin.calls)


def test_durable_host_down_deletes_nothing(sweep_function, standin, settings) -> None:
    done = standin.add_instance(runtime_status="Completed")
    backend = FakeBackend([managed(done.instance_id)])
    bootstrap.override(settings=settings, backend=backend)
    standin.stop()

    invoke(sweep_function, standin)

    # "Unknown" must never be read as "missing": an unreachable host would otherwise wipe every group.
    assert backend.deleted == []


def test_host_errors_are_not_read_as_missing_jobs(sweep_function, standin, settings) -> None:
    done = standin.add_instance(runtime_status="Running")
    backend = FakeBackend([managed(done.instance_id)])
    bootstrap.override(settings=settings, backend=backend)
    standin.fail(500)

    invoke(sweep_function, standin)

    assert backend.deleted == []


def test_status_endpoint_errors_fall_back_to_the_list_endpoint(sweep_function, standin, settings) -> None:
    running = standin.add_instance(runtime_status="Running")
    completed = standin.add_instance(runtime_status="Completed")
    backend = FakeBackend([managed(running.instance_id), managed(completed.instance_id)])
    bootstrap.override(settings=settings, backend=backend)
    standin.fail(500, kind="get_status")

    invoke(sweep_function, standin)

    assert backend.deleted == [group_name(completed.instance_id)]


def test_summary_log_names_no_secret(sweep_function, standin, settings, caplog) -> None:
    backend = FakeBackend([managed("0123456789abcdef0123456789abcdef")])
    bootstrap.override(settings=settings, backend=backend)
    caplog.set_level(logging.DEBUG)

    invoke(sweep_function, standin, past_due=True)

    assert "1 groups, 1 deleted" in caplog.text
    assert SIGNING_KEY not in caplog.text


def test_timer_binding_uses_the_schedule_setting() -> None:
    functions = IndexedFunctions(sweeper.bp)
    bindings = {b["type"]: b for b in functions.bindings("sweep_container_groups")}

    assert set(functions.functions) == {"sweep_container_groups"}
    assert bindings["timerTrigger"]["schedule"] == "%SWEEP_SCHEDULE%"
    assert bindings["durableClient"]["name"] == "client"


def test_sweep_frees_the_slots_of_jobs_that_ended_without_giving_them_back(sweep_function, standin, settings):
    """Terminated and purged jobs run no orchestrator code: the sweep evicts them from `job_slots`,
    which hands their slots to the queue; live jobs and jobs whose lookup fails keep theirs."""
    from devhost.emulator.store import entity_id
    from devhost.stack import wait_until
    from videojob.domain import job_slots as slots

    now = datetime.now(UTC)
    running = standin.add_instance(runtime_status="Running")
    terminated = standin.add_instance(runtime_status="Terminated")
    queued = standin.add_instance(runtime_status="Running")
    state = slots.SlotState()
    for job in [running.instance_id, terminated.instance_id, "0123456789abcdef0123456789abcdef", queued.instance_id]:
        state, _ = slots.acquire(state, job, now - timedelta(minutes=5), 3, new_token=lambda: "t")
    target = entity_id(slots.ENTITY_NAME, slots.ENTITY_KEY)
    standin.store.commit_entity_batch(target, [], True, json.dumps(state.to_wire()), [], now)
    bootstrap.override(settings=settings, backend=FakeBackend([]))

    invoke(sweep_function, standin)

    def holders() -> list[str]:
        found = standin.store.entity(target)
        return [m["id"] for m in json.loads(found[1])["holders"]] if found else []

    wait_until(lambda: holders() == [running.instance_id, queued.instance_id], 30, "the slots freed")
    # ...and tells the job its slot went to (issue 22: pushed grants, not found at a re-check).
    told = [(e.instance_id, e.name) for e in standin.raised_events]
    assert told == [(queued.instance_id, slots.GRANT_EVENT)]
