"""The orchestration's decisions, without the SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.orchestration.conftest import T0, plan
from videojob.contract.wire import JobError, JobStatus, failure_message
from videojob.domain.activity_wire import InspectResult
from videojob.domain.orchestration import (
    EventLedger,
    ProgressView,
    WatchState,
    backoff_seconds,
    deadline_for,
    heartbeat_error,
    next_heartbeat_wake,
    on_event,
    triage,
    view_after_event,
    wake_at,
)
from videojob.domain.settings import MAX_TIMER_SECONDS


def event(seq, state="progress", **extra):
    return JobStatus.from_wire({"seq": seq, "state": state, **extra})


def test_backoff_doubles_and_is_capped():
    assert [backoff_seconds(5, n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert backoff_seconds(5, 10_000) == 300


def test_timers_never_reach_six_days_and_never_pass_the_deadline():
    assert wake_at(T0, 10 * 86400) - T0 == timedelta(seconds=MAX_TIMER_SECONDS)
    assert wake_at(T0, 600, T0 + timedelta(seconds=60)) == T0 + timedelta(seconds=60)
    assert deadline_for(T0, plan(deadline_seconds=30 * 86400)) - T0 == timedelta(seconds=MAX_TIMER_SECONDS)
    state = WatchState(last_heard=T0)
    assert next_heartbeat_wake(state, 600, T0 + timedelta(seconds=100)) == T0 + timedelta(seconds=100)


def test_triage_sequence_rules():
    ledger = EventLedger()
    ledger, v = triage(ledger, event(3))
    assert v == "progress"
    assert triage(ledger, event(3))[1] == "duplicate"
    assert triage(ledger, event(2))[1] == "stale"
    assert triage(ledger, event(2, "failed", error={"code": "network"}))[1] == "terminal"  # older, still honoured
    done, v = triage(ledger, event(4, "succeeded", result={"blob": {
        "url": "u", "container": "c", "name": "n", "sizeBytes": 1, "sha256": "s", "contentType": "t"}}))
    assert v == "terminal"
    assert triage(done, event(4, "failed", error={"code": "internal"}))[1] == "duplicate"
    assert triage(ledger, JobStatus.from_wire({"state": "cancelled"}))[1] == "terminal"


def test_an_event_without_numbers_keeps_the_last_ones():
    view = view_after_event(ProgressView(), event(1, phase="downloading", progress={"percent": 12.5}))
    view = view_after_event(view, event(2, phase="processing"))
    assert (view.phase, view.percent) == ("processing", 12.5)


def test_invalid_and_duplicate_events_do_not_count_as_a_heartbeat():
    state = WatchState(last_heard=T0)
    later = T0 + timedelta(seconds=30)
    state, outcome, changed = on_event(state, "{not json", later)
    assert (state.last_heard, outcome, changed, state.ignored) == (T0, None, False, 1)
    state, _, changed = on_event(state, {"seq": 1, "state": "started"}, later)
    assert state.last_heard == later
    state, _, changed = on_event(state, {"seq": 1, "state": "started"}, later + timedelta(seconds=1))
    assert state.last_heard == later and state.ignored == 2


def test_heartbeat_error_keeps_the_end_of_a_long_log_under_the_limit():
    inspected = InspectResult(True, "Failed", 1, "Error", "\n".join(f"line {i} " + "y" * 80 for i in range(200)))
    error = heartbeat_error("dl-x", inspected, 600)
    assert error.code == "heartbeat_lost"
    assert len(error.message) <= 1000
    assert "exit code 1" in error.message and "line 199" in error.message


def test_failure_message_starts_with_the_code_and_stays_short():
    message = failure_message(JobError("network", "z" * 5000))
    assert message.startswith("network: zzz") and len(message) <= 1000


# --- the callback's rate limit (issue 12) ---------------------------------------------------------

from videojob.domain.orchestration import admit_report, progress_event_limit  # noqa: E402

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _status(seconds_ago: float | None, phase: str = "downloading", attempt: int = 1) -> dict:
    status = {"phase": phase, "attempt": attempt, "updatedAt": "2026-01-01T11:00:00Z"}
    if seconds_ago is not None:
        status["lastReportAt"] = (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return status


def _event(state: str = "progress", phase: str | None = "downloading", attempt: int | None = 1) -> JobStatus:
    extra = {"error": {"code": "network", "message": "x"}} if state == "failed" else {}
    return JobStatus.from_wire({"seq": 5, "state": state, "phase": phase, "attempt": attempt, **extra})


@pytest.mark.parametrize(
    ("event", "status", "admitted"),
    [
        (_event(), _status(3), False),  # too soon
        (_event(), _status(10), True),  # interval elapsed
        (_event(), _status(None), True),  # the attempt's first report
        (_event(phase="uploading"), _status(1), True),  # a later phase
        (_event(phase="downloading"), _status(1, phase="uploading"), False),  # an earlier one
        (_event("started"), _status(1), True),
        (_event("failed", phase=None), _status(1), True),
        (_event(attempt=1), _status(60, attempt=2), False),  # another attempt's worker
        (_event(attempt=None), _status(60, attempt=1), True),
        (_event(), _status(-60), True),  # lastReportAt far in the future: clock skew never silences
        (_event(), {**_status(3), "lastReportAt": "garbled"}, True),
        (_event(), {"phase": "listing", "containerGroup": None}, True),  # a batch's status
        (_event(), None, True),
        (_event(), _status(3, phase="running"), True),  # first worker phase after provisioning
    ],
)
def test_admit_report(event, status, admitted):
    assert admit_report(event, status, NOW, 10) is admitted


def test_admit_report_limit_zero_passes_everything():
    assert admit_report(_event(), _status(0), NOW, 0)


def test_limit_never_starves_the_heartbeat():
    assert progress_event_limit(10, 600) == 10
    assert progress_event_limit(100, 60) == 20


def test_progress_status_has_last_report_at():
    from videojob.domain.orchestration import ProgressView, progress_status

    status = progress_status(ProgressView(), "g", NOW, 1, NOW - timedelta(seconds=4))
    assert status["lastReportAt"] == "2026-01-01T11:59:56Z"
    assert "lastReportAt" not in progress_status(ProgressView(), "g", NOW)
