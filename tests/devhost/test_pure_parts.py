"""The devhost's pure parts: NCRONTAB schedules, action planning, settings merging, routes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.durable_functions.models.actions import ActionType
from azure.durable_functions.models.history import HistoryEventType

from devhost.emulator import config
from devhost.emulator import history as H
from devhost.emulator.actions import NonDeterminismError, ReplayError, plan_actions
from devhost.emulator.routes import match_route
from devhost.emulator.schedule import ScheduleError, parse_schedule, resolve_setting_reference

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 */10 * * * *", T0, T0 + timedelta(minutes=10)),
        ("*/3 * * * * *", T0, T0 + timedelta(seconds=3)),
        ("30 15 9 * * *", T0, datetime(2026, 1, 2, 9, 15, 30, tzinfo=UTC)),
        ("0 0 0 * * Mon", T0, datetime(2026, 1, 5, tzinfo=UTC)),  # 2026-01-01 is a Thursday
        ("0 0 0 1 Feb *", T0, datetime(2026, 2, 1, tzinfo=UTC)),
        ("0 5-7 * * * *", T0 + timedelta(minutes=6), T0 + timedelta(minutes=7)),
    ],
)
def test_schedules_fire_at_the_next_matching_second(expression: str, after: datetime, expected: datetime):
    assert parse_schedule(expression).next_after(after) == expected


@pytest.mark.parametrize("expression", ["* * * * *", "61 * * * * *", "*/0 * * * * *", "x * * * * *"])
def test_malformed_schedules_are_refused(expression: str):
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


def test_a_schedule_can_name_an_app_setting():
    assert resolve_setting_reference("%SWEEP_SCHEDULE%", {"SWEEP_SCHEDULE": "0 * * * * *"}) == "0 * * * * *"
    with pytest.raises(ScheduleError, match="SWEEP_SCHEDULE"):
        resolve_setting_reference("%SWEEP_SCHEDULE%", {})


def activity(name: str, value: object = None) -> dict:
    return {"actionType": ActionType.CALL_ACTIVITY, "functionName": name, "input": json.dumps(value)}


def timer(at: datetime, cancelled: bool = False) -> dict:
    return {"actionType": ActionType.CREATE_TIMER, "fireAt": H.format_timestamp(at), "isCanceled": cancelled}


def test_only_actions_without_a_history_entry_are_new_work():
    history = [H.task_scheduled(T0, 0, "create", "{}"), H.task_completed(T0, 0, '"ok"')]
    waiter = {"actionType": ActionType.WAIT_FOR_EXTERNAL_EVENT, "externalEventName": "JobStatus",
              "reason": "ExternalEvent"}
    any_of = {"actionType": ActionType.WHEN_ANY, "compoundActions": [waiter, timer(T0 + timedelta(5))]}
    actions = [[activity("create", {}), any_of]]

    plan = plan_actions(actions, history, T0)

    assert plan.activities == []
    assert [(t.timer_id, t.fire_at) for t in plan.timers] == [(1, T0 + timedelta(5))]


def test_a_cancelled_timer_is_recorded_and_reported():
    history = [H.timer_created(T0, 0, T0 + timedelta(seconds=5))]

    plan = plan_actions([[timer(T0 + timedelta(seconds=5), cancelled=True), activity("next")]], history, T0)

    assert plan.cancelled_timer_ids == {0}
    assert [(a.task_id, a.name) for a in plan.activities] == [(1, "next")]


def test_a_retried_activity_gets_a_retry_timer_then_a_new_attempt():
    retry = {"actionType": ActionType.CALL_ACTIVITY_WITH_RETRY, "functionName": "flaky", "input": "null",
             "retryOptions": {"firstRetryIntervalInMilliseconds": 2000, "maxNumberOfAttempts": 2}}
    failed = [H.task_scheduled(T0, 0, "flaky", "null"), H.task_failed(T0, 0, "boom", None)]

    after_failure = plan_actions([[retry]], failed, T0)
    fired = failed + [H.timer_created(T0, 1, T0 + timedelta(seconds=2)), H.timer_fired(T0, 1, T0)]
    after_timer = plan_actions([[retry]], fired, T0)

    assert [(t.timer_id, t.fire_at) for t in after_failure.timers] == [(1, T0 + timedelta(seconds=2))]
    assert [(a.task_id, a.name) for a in after_timer.activities] == [(2, "flaky")]


def test_a_history_that_does_not_match_the_code_is_a_replay_error():
    with pytest.raises(ReplayError, match="non-deterministic"):
        plan_actions([[activity("other")]], [H.task_scheduled(T0, 0, "create", None)], T0)


@pytest.mark.parametrize(
    ("recorded", "replayed", "differs"),
    [
        ([H.task_scheduled(T0, 0, "create", '{"n": 1}')], activity("create", {"n": 2}), "input"),
        ([H.timer_created(T0, 0, T0 + timedelta(seconds=5))], timer(T0 + timedelta(seconds=6)), "fireAt"),
        ([H.sub_orchestration_created(T0, 0, "child", "kid-1", "null")],
         {"actionType": ActionType.CALL_SUB_ORCHESTRATOR, "functionName": "child", "input": "null",
          "instanceId": "kid-2"},
         "instance id"),
    ],
)
def test_a_replay_with_another_input_fire_time_or_child_id_is_non_deterministic(recorded, replayed, differs):
    with pytest.raises(NonDeterminismError, match=differs):
        plan_actions([[replayed]], recorded, T0, "parent-1")

    assert plan_actions([[replayed]], recorded, T0, "parent-1", strict=False).activities == []


def test_a_replay_that_schedules_fewer_tasks_than_the_history_holds_is_non_deterministic():
    history = [H.task_scheduled(T0, 0, "create", "null"), H.task_scheduled(T0, 1, "inspect", "null")]

    with pytest.raises(NonDeterminismError, match="task 1"):
        plan_actions([[activity("create")]], history, T0)


def test_continue_as_new_is_reported_with_the_next_input():
    plan = plan_actions([[activity("create"), {"actionType": ActionType.CONTINUE_AS_NEW, "input": '{"n": 2}'}]], [], T0)

    assert plan.continues_as_new and plan.next_input == '{"n": 2}'
    assert [a.name for a in plan.activities] == ["create"]


def test_is_played_marks_events_before_the_current_episode():
    events = [H.orchestrator_started(T0), H.execution_started(T0, "x", None), H.orchestrator_completed(T0),
              H.orchestrator_started(T0), H.task_completed(T0, 0, "1")]

    assert [e["IsPlayed"] for e in H.with_played_flags(events)] == [True, True, True, False, False]


def test_local_settings_are_created_with_a_fresh_signing_key(tmp_path):
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps({"Values": {"CALLBACK_SIGNING_KEY": "", "OUTPUT_CONTAINER": "downloads"}}))
    one, two = tmp_path / "one.json", tmp_path / "two.json"

    assert config.ensure_local_settings(one, sample) and config.ensure_local_settings(two, sample)
    assert not config.ensure_local_settings(one, sample)

    keys = [json.loads(p.read_text())["Values"]["CALLBACK_SIGNING_KEY"] for p in (one, two)]
    assert len(keys[0]) >= 48 and keys[0] != keys[1]


def test_environment_wins_and_a_loopback_callback_follows_the_port(tmp_path):
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {"CALLBACK_BASE_URL": "http://127.0.0.1:7071", "OUTPUT_CONTAINER": "a",
                                               "HEARTBEAT_TIMEOUT_SECONDS": "600"}}))
    env = {"HEARTBEAT_TIMEOUT_SECONDS": "5"}

    config.apply_settings(settings, 8000, env)
    explicit = {"CALLBACK_BASE_URL": "https://tunnel.example"}
    config.apply_settings(settings, 8000, explicit)

    assert env == {"HEARTBEAT_TIMEOUT_SECONDS": "5", "OUTPUT_CONTAINER": "a", "CALLBACK_BASE_URL": "http://127.0.0.1:8000"}
    assert explicit["CALLBACK_BASE_URL"] == "https://tunnel.example"


def test_route_templates_bind_parameters():
    assert match_route("api/downloads/{id}/cancel", "api/downloads/abc/cancel") == {"id": "abc"}
    assert match_route("api/downloads/{id}/cancel", "api/downloads/abc") is None
    assert match_route("api/items/{id:int}/{rest?}", "api/items/7") == {"id": "7"}
    assert match_route("api/files/{*path}", "api/files/a/b.mp4") == {"path": "a/b.mp4"}


def test_a_sub_orchestration_is_new_work_once_and_gets_a_deterministic_id_when_none_is_given():
    named = {"actionType": ActionType.CALL_SUB_ORCHESTRATOR, "functionName": "child", "input": '{"a": 1}',
             "instanceId": "kid-1"}
    unnamed = {"actionType": ActionType.CALL_SUB_ORCHESTRATOR, "functionName": "child", "input": "null"}

    first = plan_actions([[named, unnamed]], [], T0, "parent-1")
    created = first.history_events(T0)
    again = plan_actions([[named, unnamed]], created, T0, "parent-1")

    assert [(c.task_id, c.instance_id, c.input) for c in first.sub_orchestrations] == [
        (0, "kid-1", '{"a": 1}'), (1, "parent-1:1", "null")]
    created_type = HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED
    assert [(e["EventType"], e["EventId"], e["InstanceId"]) for e in created] == [
        (created_type, 0, "kid-1"), (created_type, 1, "parent-1:1")]
    assert again.sub_orchestrations == []
    with pytest.raises(ReplayError, match="non-deterministic"):
        plan_actions([[activity("create")]], created, T0, "parent-1")


def entity_action(kind: int, operation: str, value: str | None = None, target: str = "@job_slots@global") -> dict:
    return {"actionType": kind, "instanceId": target, "operation": operation, "input": value}


def test_call_and_signal_entity_become_event_sent_with_sequence_ids():
    call = entity_action(ActionType.CALL_ENTITY, "acquire", '{"id": "a"}')
    signal = entity_action(ActionType.SIGNAL_ENTITY, "release", '{"id": "a"}')
    plan = plan_actions([[activity("create"), call, signal]], [], T0, "job-1")

    assert [(m.task_id, m.operation, m.signal) for m in plan.entity_messages] == [(1, "acquire", False),
                                                                                   (2, "release", True)]
    sent = [e for e in plan.history_events(T0) if e["EventType"] == HistoryEventType.EVENT_SENT]
    assert [(e["EventId"], e["InstanceId"], e["Name"]) for e in sent] == [(1, "@job_slots@global", "op"),
                                                                          (2, "@job_slots@global", "op")]
    request = json.loads(sent[0]["Input"])
    assert request["op"] == "acquire" and request["parent"] == "job-1" and "signal" not in request
    assert request["id"] == plan.entity_messages[0].request_id
    assert json.loads(sent[1]["Input"])["signal"] is True
    # Replayed against its own history: nothing new, the same request id kept by the history.
    assert plan_actions([[activity("create"), call, signal]], plan.history_events(T0),
                        T0 + timedelta(seconds=5), "job-1").entity_messages == []


@pytest.mark.parametrize("replayed", [
    entity_action(7, "release", '{"id": "a"}'),
    entity_action(9, "acquire", '{"id": "a"}'),
    entity_action(7, "acquire", '{"id": "b"}'),
    entity_action(7, "acquire", '{"id": "a"}', target="@other@global"),
])
def test_replay_with_another_entity_operation_is_non_deterministic(replayed):
    recorded = plan_actions([[entity_action(7, "acquire", '{"id": "a"}')]], [], T0, "job-1").history_events(T0)
    with pytest.raises(NonDeterminismError):
        plan_actions([[replayed]], recorded, T0, "job-1")


def test_the_next_execution_keeps_the_version_and_a_child_carries_its_own():
    """DTFx TaskOrchestrationDispatcher.cs:1075 (Azure/durabletask@5217032): the new execution's
    `Version = NewVersion ?? runtimeState.Version` (the SDK's ContinueAsNew action names none); a
    sub-orchestration action's `version` (CallSubOrchestratorAction) reaches its history event."""
    from devhost.emulator.episode import decide
    from devhost.emulator.functions import OrchestratorOutcome

    def answer(actions: list) -> OrchestratorOutcome:
        return OrchestratorOutcome({"isDone": True, "actions": [actions], "schemaVersion": 2}, None)

    started = H.execution_started(T0, "o", {"n": 1}, version="1.5")
    child = {"actionType": ActionType.CALL_SUB_ORCHESTRATOR, "functionName": "c", "input": None,
             "instanceId": "kid", "version": "0.9"}
    can = {"actionType": ActionType.CONTINUE_AS_NEW, "input": '{"n": 2}'}

    decision = decide(instance_id="i", name="o", past=[], new=H.new_events(T0, [started]), now=T0,
                      invoke=lambda _: answer([child, can]))

    assert decision.next_execution is not None and decision.next_execution["Version"] == "1.5"
    assert [c.version for c in decision.children] == ["0.9"]
    created = [e for e in decision.appended if e["EventType"] == HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED]
    assert [e["Version"] for e in created] == ["0.9"]
