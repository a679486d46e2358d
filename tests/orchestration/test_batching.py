"""The batch's decisions, without the SDK: ids, the window, child failures, status and report."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from videojob.contract.wire import (
    CUSTOM_STATUS_MAX_BYTES,
    BatchPlan,
    DownloadRequest,
    JobError,
    JobPlan,
    PlaylistEntry,
    custom_status_bytes,
)
from videojob.domain.batching import (
    BatchItem,
    ItemResult,
    batch_failure,
    batch_output,
    cancel_waiting,
    child_result,
    finish,
    item_instance_id,
    items_from_entries,
    listed_entries,
    open_window,
    parse_child_failure,
    progress_status,
    start_next,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def job(url: str = "https://media.example/a") -> JobPlan:
    return JobPlan(DownloadRequest(url=url), deadline_seconds=600, heartbeat_timeout_seconds=60,
                   provision_max_attempts=2)


def items(n: int, refused: tuple[int, ...] = ()) -> tuple[BatchItem, ...]:
    return tuple(
        BatchItem(i, f"https://media.example/{i}", item_instance_id("b", i, n),
                  None if i in refused else job(), JobError("host_not_allowed", "no") if i in refused else None)
        for i in range(n)
    )


def test_item_ids_are_zero_padded_and_sort_in_item_order():
    assert item_instance_id("abc", 7, 8) == "abc-007"
    assert item_instance_id("abc", 1234, 2000) == "abc-1234"
    ids = [item_instance_id("x", i, 200) for i in range(200)]
    assert ids == sorted(ids)


def test_the_window_fills_free_slots_in_order_and_refills_one_for_one():
    window = open_window(items(6), 3)

    window, first = start_next(window)
    window, none = start_next(window)
    window = finish(window, 1, ItemResult(True))
    window, refill = start_next(window)

    assert (first, none, refill) == ((0, 1, 2), (), (3,))
    assert window.running == (0, 2, 3) and window.waiting == (4, 5)
    assert window.counts() == {"total": 6, "running": 3, "succeeded": 1, "failed": 0, "pending": 2}


def test_refused_items_are_failed_from_the_start_and_never_run():
    window = open_window(items(3, refused=(1,)), 5)

    window, started = start_next(window)

    assert started == (0, 2)
    assert window.results[1].error.code == "host_not_allowed"


def test_finishing_an_item_that_is_not_running_is_a_bug():
    with pytest.raises(ValueError):
        finish(open_window(items(2), 1), 1, ItemResult(True))


def test_cancel_fails_waiting_items_only():
    window, _ = start_next(open_window(items(4), 2))

    window = cancel_waiting(window, JobError("cancelled", "stop"))

    assert window.running == (0, 1) and window.waiting == ()
    assert {i: r.error.code for i, r in window.results.items()} == {2: "cancelled", 3: "cancelled"}


@pytest.mark.parametrize(
    ("reason", "code", "message"),
    [
        ("Orchestrator function 'download_job' failed: deadline_exceeded: too slow \n None",
         "deadline_exceeded", "too slow"),
        ("http_error: HTTP Error 404: Not Found", "http_error", "HTTP Error 404: Not Found"),
        ("provisioning_failed: InaccessibleImage: cannot pull", "provisioning_failed",
         "InaccessibleImage: cannot pull"),
        ("Something broke: badly", "internal", "Something broke: badly"),
        ("", "internal", "the item failed without a message"),
    ],
)
def test_a_childs_failure_message_gives_its_code(reason: str, code: str, message: str):
    error = parse_child_failure(Exception(reason))

    assert (error.code, error.message) == (code, message)


def test_a_childs_long_failure_message_is_capped():
    assert len(parse_child_failure(Exception("internal: " + "z" * 5000)).message) <= 300


def test_a_child_output_gives_blob_and_share_link():
    out = child_result({"state": "succeeded", "blob": {"name": "a"}, "shareLink": {"url": "u"}})

    assert out == ItemResult(True, blob={"name": "a"}, share_link={"url": "u"})
    assert child_result(None).succeeded is False


def test_listed_entries_are_capped_and_malformed_ones_skipped():
    output = {"entries": [{"url": "https://a/1", "title": "One"}, {"title": "no url"}, {"url": "https://a/2"},
                          {"url": "https://a/3"}], "title": "List"}

    entries, title = listed_entries(output, 2)

    assert entries == (PlaylistEntry("https://a/1", "One"), PlaylistEntry("https://a/2"))
    assert title == "List"
    assert listed_entries("not a dict", 5) == ((), None)


def test_entries_become_template_items_checked_against_the_url_policy():
    template = job("https://media.example/playlist")
    plan = BatchPlan(items=(), max_parallel=2, playlist=job(), item_template=template,
                     allowed_hosts=("media.example",))
    entries = [PlaylistEntry("https://media.example/1", "One"), PlaylistEntry("http://10.0.0.1/x"),
               PlaylistEntry("https://user:pw@media.example/2")]

    made = items_from_entries("b", entries, plan)

    assert made[0].plan is not None and made[0].plan.request.url == "https://media.example/1"
    assert made[0].plan.deadline_seconds == template.deadline_seconds and made[0].title == "One"
    assert [(m.plan, m.rejection.code) for m in made[1:]] == [(None, "private_address"), (None, "invalid_url")]


def test_status_keeps_failed_indexes_per_code_and_degrades_to_counts_when_large():
    window, _ = start_next(open_window(items(3), 3))
    window = finish(window, 1, ItemResult(False, error=JobError("http_error", "404")))
    small = progress_status("running", window, NOW)

    many = open_window(tuple(BatchItem(i, "u", f"b-{i}", None, JobError(f"c{i:03d}_{'q' * 60}", "m"))
                             for i in range(200)), 3)
    large = progress_status("running", many, NOW)

    assert small == {"phase": "running", "counts": {"total": 3, "running": 2, "succeeded": 0, "failed": 1,
                                                    "pending": 0},
                     "runningItems": [0, 2], "errors": {"http_error": [1]}, "updatedAt": "2026-01-01T00:00:00Z"}
    assert custom_status_bytes(large) < CUSTOM_STATUS_MAX_BYTES and large["counts"]["failed"] == 200


def test_the_batch_failure_summarizes_codes():
    window = open_window(items(3, refused=(0, 1, 2)), 2)

    error = batch_failure(window)

    assert (error.code, error.message) == ("batch_failed", "all 3 items failed (host_not_allowed: 3)")
    assert batch_failure(window, cancelled=True).code == "cancelled"


def test_the_report_lists_every_item_in_order():
    made = items(2)
    window, _ = start_next(open_window(made, 2))
    window = finish(window, 1, ItemResult(False, error=JobError("unavailable", "gone")))
    window = finish(window, 0, ItemResult(True, blob={"name": "n"}))

    out = batch_output("b", made, window)

    assert out["state"] == "partial"
    assert [(i["index"], i["state"]) for i in out["items"]] == [(0, "succeeded"), (1, "failed")]
    assert out["items"][0]["blob"] == {"name": "n"} and "error" not in out["items"][0]
