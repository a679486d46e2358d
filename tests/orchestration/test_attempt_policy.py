"""The attempt decisions, without the SDK: retry schedule, limits, and customStatus size."""

from __future__ import annotations

from datetime import timedelta

from tests.orchestration.conftest import T0, plan
from videojob.contract.wire import CUSTOM_STATUS_MAX_BYTES, JobError, JobStatus, custom_status_bytes
from videojob.domain.orchestration import (
    AttemptRecord,
    attempts_allowed,
    belongs_to_attempt,
    cost_summary,
    failed_status,
    retry_pause,
)

FAR = T0 + timedelta(days=1)


def test_the_pause_doubles_is_capped_and_stops_with_the_attempts():
    p = plan(max_attempts=10, retry_backoff_seconds=30)

    assert [retry_pause(p, n, T0, FAR) for n in range(1, 10)] == [30, 60, 120, 240, 300, 300, 300, 300, 300]
    assert retry_pause(p, 10, T0, FAR) is None
    assert retry_pause(plan(max_attempts=2), 2, T0, FAR) is None


def test_a_configured_pause_longer_than_the_cap_is_kept_and_zero_retries_at_once():
    assert [retry_pause(plan(max_attempts=3, retry_backoff_seconds=900), n, T0, FAR) for n in (1, 2)] == [900, 900]
    assert [retry_pause(plan(max_attempts=3, retry_backoff_seconds=0), n, T0, FAR) for n in (1, 2)] == [0, 0]


def test_no_pause_that_would_reach_the_deadline():
    p = plan(max_attempts=3, retry_backoff_seconds=30)

    assert retry_pause(p, 1, T0, T0 + timedelta(seconds=31)) == 30
    assert retry_pause(p, 1, T0, T0 + timedelta(seconds=30)) is None


def test_attempts_are_bounded_whatever_the_plan_says():
    assert attempts_allowed(plan(max_attempts=0)) == 1
    assert attempts_allowed(plan(max_attempts=1000)) == 10


def test_a_cancel_belongs_to_every_attempt_and_a_report_to_its_own():
    assert belongs_to_attempt(JobStatus.from_wire({"state": "cancelled"}), 3)
    assert belongs_to_attempt(JobStatus.from_wire({"state": "started", "seq": 1}), 1)
    assert not belongs_to_attempt(JobStatus.from_wire({"state": "started", "seq": 1}), 2)
    assert not belongs_to_attempt(JobStatus.from_wire({"state": "started", "seq": 1, "attempt": 1}), 2)
    assert belongs_to_attempt(JobStatus.from_wire({"state": "started", "seq": 1, "attempt": 2}), 2)


def test_custom_status_of_the_largest_failure_stays_under_the_limit():
    attempts = tuple(
        AttemptRecord(n, "g" * 63, "c" * 64, T0, T0 + timedelta(hours=n), "failed") for n in range(1, 11)
    )
    exotic = JobError("c" * 64, "\U0001f600" * 1000, retryable=True)  # escaped six-fold in JSON
    notification = {"delivered": False, "attempts": 5, "status": 500,
                    "error": {"code": "notify_http_status", "message": "\U0001f600" * 1000, "retryable": True}}

    status = failed_status(exotic, "failed", "g" * 63, T0, attempts, cost_summary(attempts, plan()), notification)

    assert custom_status_bytes(status) < CUSTOM_STATUS_MAX_BYTES
    assert len(status["attempts"]) == 10 and status["cost"]["vcpuSeconds"] == 55 * 3600
