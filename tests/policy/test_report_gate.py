"""`videojob.domain.report_gate`: only the attempt that runs reports, and at a bounded rate (issue 19)."""

from __future__ import annotations

import itertools
import random

import pytest

from videojob.contract.wire import JobStatus
from videojob.domain.report_gate import (
    AttemptLedger,
    ReportLedgers,
    attempt_check,
    gate,
    raised_per_minute_bound,
    report_spacing,
    started_already_taken,
    terminal_already_taken,
)
from videojob.domain.tokens import TokenClaims

RUN = "0a1b2c3d"
CLAIMS = TokenClaims(RUN, 2, 2_000_000_000)


def status(phase: str = "downloading", attempt: int = 2, run: str | None = RUN, **extra) -> dict:
    return {"phase": phase, "attempt": attempt, **({"run": run} if run is not None else {}), **extra}


def event(state: str, seq: int = 1, phase: str | None = None, attempt: int = 2) -> JobStatus:
    wire = {"seq": seq, "state": state, "attempt": attempt, **({"phase": phase} if phase else {})}
    if state == "failed":
        wire["error"] = {"code": "network", "message": "x", "retryable": True}
    if state == "succeeded":
        wire["result"] = {"entries": []}
    return JobStatus.from_wire(wire)


@pytest.mark.parametrize(
    ("shown", "verdict"),
    [
        (status(), "current"),
        (status("provisioning"), "current"),
        (status("running"), "current"),
        (status(run="ffffffff"), "other_run"),
        (status(attempt=3), "ended"),
        (status("retrying", attempt=3), "ended"),
        (status(attempt=1), "other_run"),
        (status("uploading", attemptEnded=True), "ended"),
        (status(attempt=1, attemptEnded=True), "other_run"),
        (status("succeeded"), "ended"),
        ({"phase": "failed", "run": RUN, "error": {}}, "ended"),
        (status("retrying"), "unknown"),
        (status("queued"), "unknown"),
        (status(run=None), "unknown"),
        (status(attempt="2"), "unknown"),
        (status(attempt=True), "unknown"),
        (None, "unknown"),
        ("downloading", "unknown"),
    ],
)
def test_attempt_check(shown, verdict) -> None:
    assert attempt_check(CLAIMS, shown) == verdict


def test_a_terminal_report_of_the_attempt_the_status_ends_is_a_repeat() -> None:
    ended = status("uploading", attemptEnded=True)
    assert terminal_already_taken(CLAIMS, event("failed"), ended)
    assert terminal_already_taken(CLAIMS, event("succeeded"), status("succeeded"))
    assert not terminal_already_taken(CLAIMS, event("progress"), ended)
    assert not terminal_already_taken(CLAIMS, event("failed"), status(attempt=3))
    assert not terminal_already_taken(CLAIMS, event("failed"), status(run="ffffffff", attemptEnded=True))


def test_started_is_a_repeat_once_the_orchestration_took_a_report() -> None:
    assert not started_already_taken(event("started"), status())
    assert started_already_taken(event("started"), status(lastReportAt="2026-01-01T00:00:00Z"))
    assert not started_already_taken(event("progress"), status(lastReportAt="2026-01-01T00:00:00Z"))


@pytest.mark.parametrize(("min_seconds", "heartbeat", "spacing"), [(10, 600, 10), (0, 600, 1), (10, 6, 2), (10, 5, 1)])
def test_spacing_is_the_limit_within_a_third_of_the_heartbeat_and_never_under_a_second(min_seconds, heartbeat,
                                                                                         spacing) -> None:
    assert report_spacing(min_seconds, heartbeat) == spacing


def test_started_and_the_first_terminal_pass_once_and_nothing_after_the_terminal() -> None:
    ledger, decisions = None, []
    for e in [event("started"), event("started", 2), event("failed", 3), event("failed", 4),
              event("succeeded", 5), event("progress", 6), event("started", 7)]:
        ledger, decision = gate(ledger, CLAIMS, e, 0.0, 10)
        decisions.append(decision)

    assert decisions == ["raise", "duplicate", "raise", "duplicate", "duplicate", "ended", "ended"]


def test_progress_is_spaced_but_each_later_phase_passes_once() -> None:
    ledger: AttemptLedger | None = None
    decisions = []
    for now, phase in [(0, "downloading"), (1, "downloading"), (2, "processing"), (3, "downloading"),
                       (4, "processing"), (5, "uploading"), (6, "uploading"), (16, "uploading")]:
        ledger, decision = gate(ledger, CLAIMS, event("progress", phase=phase), float(now), 10)
        decisions.append(decision)

    assert decisions == ["raise", "coalesced", "raise", "coalesced", "coalesced", "raise", "coalesced", "raise"]


def test_a_new_attempt_starts_a_fresh_ledger() -> None:
    ledger, _ = gate(None, CLAIMS, event("failed"), 0.0, 10)
    ledger, decision = gate(ledger, TokenClaims(RUN, 3, CLAIMS.expires), event("started", attempt=3), 1.0, 10)

    assert decision == "raise" and (ledger.attempt, ledger.ended) == (3, False)


@pytest.mark.parametrize("spacing", [1, 2, 10, 200])
def test_a_hostile_worker_never_gets_more_than_the_bound_raised_in_any_minute(spacing: int) -> None:
    # Every kind of event, in random order, 50 a second for five minutes of one attempt.
    rng = random.Random(spacing)
    kinds = [("started", None), ("progress", None), ("progress", "downloading"), ("progress", "processing"),
             ("progress", "uploading"), ("failed", None), ("succeeded", None)]
    ledger, raised_at = None, []
    for tick in range(5 * 60 * 50):
        now = tick / 50
        state, phase = rng.choice(kinds)
        if state in ("failed", "succeeded") and now < 200:
            state = "progress"  # keep the attempt going most of the time: the worst case
        ledger, decision = gate(ledger, CLAIMS, event(state, tick + 1, phase), now, spacing)
        if decision == "raise":
            raised_at.append(now)

    bound = raised_per_minute_bound(spacing)
    busiest = max(sum(1 for t in raised_at if start <= t < start + 60) for start in raised_at)
    assert busiest <= bound, (busiest, bound)
    assert bound == 2 + 3 + 60 // spacing + 1
    assert raised_per_minute_bound(10) == 12  # the number docs/design.md states for the defaults


def test_ledgers_are_bounded_and_a_failed_raise_can_be_taken_back() -> None:
    ledgers = ReportLedgers(max_jobs=3)
    for job in ("a", "b", "c", "d"):
        assert ledgers.decide(job, CLAIMS, event("started"), 0.0, 10)[0] == "raise"
    # "a" was dropped (least recently reported): its ledger starts again.
    assert ledgers.decide("a", CLAIMS, event("started"), 0.0, 10)[0] == "raise"
    decision, before = ledgers.decide("b", CLAIMS, event("failed"), 0.0, 10)
    ledgers.undo("b", before)
    assert ledgers.decide("b", CLAIMS, event("failed"), 0.0, 10)[0] == "raise"
    assert [ledgers.decide("b", CLAIMS, event("failed"), 0.0, 10)[0] for _ in itertools.repeat(None, 2)] == [
        "duplicate", "duplicate"]
