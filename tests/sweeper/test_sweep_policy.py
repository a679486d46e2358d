"""The sweeper's pure decision: which container groups to delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from videojob.contract.wire import DownloadRequest
from videojob.domain.container_spec import build_container_spec, format_time
from videojob.domain.settings import load_settings
from videojob.domain.sweep_policy import JobSnapshot, SweepPolicy, decide_sweep, parse_tag_time

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
POLICY = SweepPolicy(failed_group_retention_seconds=86400, grace_seconds=1800)


def tags(deadline: datetime | None = None, created: datetime | None = None) -> dict[str, str]:
    t = {"managedBy": "video-downloader", "jobId": "abc"}
    if deadline is not None:
        t["deadline"] = format_time(deadline)
    if created is not None:
        t["createdAt"] = format_time(created)
    return t


FUTURE_DEADLINE = tags(deadline=NOW + timedelta(hours=1), created=NOW - timedelta(hours=1))


@pytest.mark.parametrize("runtime_status", ["Running", "Pending", "Suspended", "ContinuedAsNew"])
def test_group_of_a_live_job_within_its_deadline_is_kept(runtime_status: str) -> None:
    decision = decide_sweep("Running", FUTURE_DEADLINE, JobSnapshot(runtime_status), NOW, POLICY)

    assert not decision.delete
    assert decision.reason == "job_active"


@pytest.mark.parametrize("runtime_status", ["Completed", "Terminated", "Canceled"])
@pytest.mark.parametrize("group_state", ["Running", "Succeeded", "Stopped", "Failed"])
def test_group_of_a_completed_or_terminated_job_is_deleted(runtime_status: str, group_state: str) -> None:
    decision = decide_sweep(group_state, FUTURE_DEADLINE, JobSnapshot(runtime_status, NOW), NOW, POLICY)

    assert decision.delete
    assert decision.reason == f"job_{runtime_status.lower()}"


def test_group_of_a_missing_job_is_deleted() -> None:
    decision = decide_sweep("Running", FUTURE_DEADLINE, None, NOW, POLICY)

    assert decision.delete
    assert decision.reason == "job_missing"


@pytest.mark.parametrize("group_state", ["Stopped", "Failed", "Succeeded"])
def test_stopped_group_of_a_failed_job_is_kept_within_retention(group_state: str) -> None:
    job = JobSnapshot("Failed", last_updated=NOW - timedelta(hours=23, minutes=59))

    decision = decide_sweep(group_state, FUTURE_DEADLINE, job, NOW, POLICY)

    assert not decision.delete
    assert decision.reason == "job_failed_within_retention"


def test_retention_of_a_failed_job_wins_over_a_passed_deadline() -> None:
    # The deadline rule is for stuck jobs; a failed job's stopped group is kept for its logs.
    old_deadline = tags(deadline=NOW - timedelta(hours=5))
    job = JobSnapshot("Failed", last_updated=NOW - timedelta(hours=2))

    assert not decide_sweep("Stopped", old_deadline, job, NOW, POLICY).delete


def test_stopped_group_of_a_failed_job_is_deleted_after_retention() -> None:
    job = JobSnapshot("Failed", last_updated=NOW - timedelta(hours=24))

    decision = decide_sweep("Stopped", FUTURE_DEADLINE, job, NOW, POLICY)

    assert decision.delete
    assert decision.reason == "job_failed_retention_passed"


@pytest.mark.parametrize("group_state", ["Running", "Pending"])
def test_still_running_group_of_a_failed_job_is_deleted_at_once(group_state: str) -> None:
    # Its cleanup did not stop it: it costs money and its logs are still being written.
    job = JobSnapshot("Failed", last_updated=NOW - timedelta(minutes=1))

    decision = decide_sweep(group_state, FUTURE_DEADLINE, job, NOW, POLICY)

    assert decision.delete
    assert decision.reason == "job_failed_group_active"


def test_zero_retention_deletes_failed_groups_at_once() -> None:
    job = JobSnapshot("Failed", last_updated=NOW)

    assert decide_sweep("Stopped", FUTURE_DEADLINE, job, NOW, SweepPolicy(failed_group_retention_seconds=0)).delete


def test_failed_job_without_update_time_measures_retention_from_the_tags() -> None:
    recent = tags(deadline=NOW - timedelta(hours=1))
    old = tags(deadline=NOW - timedelta(days=2))

    assert not decide_sweep("Stopped", recent, JobSnapshot("Failed"), NOW, POLICY).delete
    assert decide_sweep("Stopped", old, JobSnapshot("Failed"), NOW, POLICY).delete


@pytest.mark.parametrize("runtime_status", ["Running", "Pending"])
def test_live_job_past_deadline_and_grace_is_deleted(runtime_status: str) -> None:
    past = tags(deadline=NOW - timedelta(seconds=1800))

    decision = decide_sweep("Running", past, JobSnapshot(runtime_status), NOW, POLICY)

    assert decision.delete
    assert decision.reason == "deadline_passed"


def test_live_job_past_deadline_but_within_grace_is_kept() -> None:
    within_grace = tags(deadline=NOW - timedelta(seconds=1799))

    assert not decide_sweep("Running", within_grace, JobSnapshot("Running"), NOW, POLICY).delete


@pytest.mark.parametrize("deadline", [None, "", "yesterday", "2026-13-45T99:00:00Z"])
def test_live_job_with_missing_or_malformed_deadline_tag_is_kept(deadline: str | None) -> None:
    t = {"jobId": "abc"} | ({"deadline": deadline} if deadline is not None else {})

    assert not decide_sweep("Running", t, JobSnapshot("Running"), NOW, POLICY).delete


def test_naive_now_is_taken_as_utc() -> None:
    past = tags(deadline=NOW - timedelta(hours=1))

    assert decide_sweep("Running", past, JobSnapshot("Running"), NOW.replace(tzinfo=None), POLICY).delete


def test_tag_times_parse_as_written_by_the_spec_builder() -> None:
    assert parse_tag_time("2026-03-01T12:00:00Z") == NOW
    assert parse_tag_time("garbage") is None
    assert parse_tag_time(None) is None


def test_policy_reads_the_tags_the_spec_builder_writes() -> None:
    settings = load_settings(
        environ={
            "CONTAINER_BACKEND": "local",
            "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
            "CALLBACK_SIGNING_KEY": "k" * 40,
            "OUTPUT_ACCOUNT_URL": "https://a.blob.core.windows.net",
        }
    )
    created = NOW - timedelta(hours=3)
    spec = build_container_spec(
        DownloadRequest("https://youtu.be/x"), settings, "job1", created, created + timedelta(hours=2)
    )

    # Deadline was an hour ago; with 30 minutes of grace the stuck job's group goes.
    assert decide_sweep("Running", spec.tag_map(), JobSnapshot("Running"), NOW, POLICY).reason == "deadline_passed"
    later = SweepPolicy(failed_group_retention_seconds=0, grace_seconds=2 * 3600)
    assert not decide_sweep("Running", spec.tag_map(), JobSnapshot("Running"), NOW, later).delete


def _slot_state(now):
    from videojob.domain import job_slots as slots

    state = slots.SlotState()
    for job in ["running", "terminated", "purged", "completed", "failed-lookup", "fresh"]:
        since = now - timedelta(seconds=600) if job != "fresh" else now
        state, _ = slots.acquire(state, job, since, 2, new_token=lambda: "t")
    return state


def test_stale_slot_members_are_finished_or_missing_jobs_past_grace():
    from videojob.domain.sweep_policy import stale_slot_members

    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    jobs = {"running": JobSnapshot("Running"), "terminated": JobSnapshot("Terminated"), "purged": None,
            "completed": JobSnapshot("Completed"), "fresh": JobSnapshot("Terminated")}
    state = _slot_state(now)

    assert set(stale_slot_members(state, jobs, now, grace_seconds=60)) == {"terminated", "purged", "completed"}
    assert "fresh" in stale_slot_members(state, jobs, now, grace_seconds=0)


def test_lookup_failure_never_frees_a_slot():
    from videojob.domain.sweep_policy import stale_slot_members

    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert "failed-lookup" not in stale_slot_members(_slot_state(now), {}, now)
