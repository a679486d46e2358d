"""`download_batch` replayed through the SDK with extension-shaped histories: the sliding window,
per-item reports, playlists, failures, and the size limits of customStatus and output.

Children (`download_job` sub-orchestrations) are simulated: each ends after a scripted time with
an output or a failure message, as `SubOrchestrationInstanceCompleted` / `...Failed` events.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from azure.durable_functions.models.history import HistoryEventType

from orchestrators import download_batch, download_job
from tests.orchestration.conftest import BLOB, T0, at, plan, run_activity
from tests.orchestration.fakes import FakeBackend
from tests.support.replay import ChildOutcome, ReplayHost, RunResult, SubOrchestrationCall
from videojob.contract.wire import CUSTOM_STATUS_MAX_BYTES, BatchPlan, DownloadRequest, JobPlan, custom_status_bytes
from videojob.domain.batching import MAX_OUTPUT_BYTES, output_bytes

BATCH_ID = "b0c4"
MEDIA_HOST = "media.example"
PLAYLIST_URL = f"https://{MEDIA_HOST}/playlist.rss"


def url(i: int) -> str:
    return f"https://{MEDIA_HOST}/v/{i}.mp4"


def batch(n: int, max_parallel: int = 3, **changes: Any) -> BatchPlan:
    items = tuple(plan(request=DownloadRequest(url=url(i))) for i in range(n))
    return BatchPlan(items=items, max_parallel=max_parallel, allowed_hosts=(MEDIA_HOST,), **changes)


def playlist_batch(max_items: int = 10, max_parallel: int = 3, **changes: Any) -> BatchPlan:
    listing = plan(request=DownloadRequest(url=PLAYLIST_URL), mode="list", max_items=max_items)
    template = plan(request=DownloadRequest(url=PLAYLIST_URL, format="audio"))
    return BatchPlan(items=(), max_parallel=max_parallel, playlist=listing, item_template=template,
                     allowed_hosts=(MEDIA_HOST,), **changes)


def job_output(call: SubOrchestrationCall) -> dict[str, Any]:
    job = JobPlan.from_wire(call.input)
    blob = {**BLOB, "name": f"{call.instance_id}/video.mp4"}
    return {"jobId": call.instance_id, "state": "succeeded", "url": job.request.url, "blob": blob,
            "shareLink": {"url": f"https://share.example/{call.instance_id}", "expiresAt": "2026-01-02T00:00:00Z"}}


def children(
    seconds: Callable[[int], float] = lambda i: 10.0,
    failures: dict[int, str] | None = None,
    entries: list[dict[str, Any]] | None = None,
    listing_failure: str | None = None,
) -> Callable[[SubOrchestrationCall], ChildOutcome]:
    """Item `i` ends after `seconds(i)`, failing with `failures[i]` if given; the listing child
    (list mode) answers `entries` after 5 s."""
    failures = failures or {}

    def run(call: SubOrchestrationCall) -> ChildOutcome:
        job = JobPlan.from_wire(call.input)
        if job.mode == "list":
            if listing_failure:
                return ChildOutcome(5, failure=listing_failure)
            return ChildOutcome(5, output={"jobId": call.instance_id, "state": "succeeded", "url": job.request.url,
                                           "entries": entries or [], "title": "My list"})
        index = int(call.instance_id.rsplit("-", 1)[1])
        if index in failures:
            return ChildOutcome(seconds(index), failure=failures[index])
        return ChildOutcome(seconds(index), output=job_output(call))

    return run


def notify_ok(name: str, input_json: str) -> str:
    assert name == "notify_completion", name
    return json.dumps({"ok": True, "status": 200})


def run(batch_plan: BatchPlan, simulate: Callable[[SubOrchestrationCall], ChildOutcome], **kw: Any) -> RunResult:
    kw.setdefault("activities", notify_ok)
    host = ReplayHost(download_batch, instance_id=BATCH_ID, input=batch_plan.to_wire(), start=T0,
                      sub_orchestrations=simulate, **kw)
    result = host.run()
    check_batch_invariants(result, batch_plan.max_parallel)
    return result


def alive_children_per_prefix(history: list[dict[str, Any]]) -> list[int]:
    """After each history event: children created and not yet ended."""
    alive, out = 0, []
    for e in history:
        if e["EventType"] == HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED:
            alive += 1
        elif e["EventType"] in (HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
                                HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED):
            alive -= 1
        out.append(alive)
    return out


def check_batch_invariants(result: RunResult, max_parallel: int) -> None:
    assert max(alive_children_per_prefix(result.history), default=0) <= max_parallel
    for status in result.custom_statuses:
        assert custom_status_bytes(status) < CUSTOM_STATUS_MAX_BYTES
    if result.status == "Failed":
        assert len(result.error.encode()) < 1024
        assert result.custom_status["phase"] == "failed"
        assert result.error.startswith(result.custom_status["error"]["code"] + ": ")
    else:
        assert output_bytes(result.output) < MAX_OUTPUT_BYTES


def started_at(result: RunResult) -> dict[str, float]:
    return {c.instance_id: (c.scheduled_at - T0).total_seconds() for c in result.sub_orchestration_calls}


# --- the window ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "max_parallel"), [(8, 3), (5, 1), (3, 5), (12, 4)])
def test_never_more_children_alive_than_the_window_and_every_item_runs_once(n: int, max_parallel: int):
    result = run(batch(n, max_parallel), children(seconds=lambda i: 5 + (i * 7) % 11))

    assert result.status == "Completed", result.error
    ids = [c.instance_id for c in result.sub_orchestration_calls]
    assert ids == [f"{BATCH_ID}-{i:03d}" for i in range(n)]
    assert max(alive_children_per_prefix(result.history)) == min(n, max_parallel)
    assert result.output["counts"] == {"total": n, "running": 0, "succeeded": n, "failed": 0, "pending": 0}


def test_the_next_item_starts_as_soon_as_any_running_one_ends():
    # 0 ends at 10 s while 1 and 2 run until 30 s: 3 must not wait for them (no waves).
    durations = {0: 10, 1: 30, 2: 30, 3: 5, 4: 50}

    result = run(batch(5, 3), children(seconds=lambda i: durations[i]))

    assert started_at(result) == {
        f"{BATCH_ID}-000": 0, f"{BATCH_ID}-001": 0, f"{BATCH_ID}-002": 0,
        f"{BATCH_ID}-003": 10,  # when 0 ended
        f"{BATCH_ID}-004": 15,  # when 3 ended, 1 and 2 still running
    }
    assert result.finished_at == at(65)


def test_running_custom_status_shows_counts():
    result = run(batch(4, 2), children(seconds=lambda i: 10 * (i + 1), failures={1: "http_error: HTTP Error 404"}))

    first = result.custom_statuses[0]
    assert first["phase"] == "running"
    assert first["counts"] == {"total": 4, "running": 2, "succeeded": 0, "failed": 0, "pending": 2}
    assert first["runningItems"] == [0, 1]
    later = [s for s in result.custom_statuses if s["counts"]["failed"] == 1 and s["phase"] == "running"]
    assert later and later[0]["errors"] == {"http_error": [1]}


# --- outcomes -------------------------------------------------------------------------------------


def test_one_failing_item_makes_the_batch_partial_with_that_items_error():
    result = run(batch(4), children(failures={2: "http_error: HTTP Error 404: Not Found"}))

    assert result.status == "Completed"
    out = result.output
    assert out["batchId"] == BATCH_ID and out["state"] == "partial"
    assert out["counts"] == {"total": 4, "running": 0, "succeeded": 3, "failed": 1, "pending": 0}
    failed = out["items"][2]
    assert failed == {"index": 2, "url": url(2), "instanceId": f"{BATCH_ID}-002", "state": "failed",
                      "error": {"code": "http_error", "message": "HTTP Error 404: Not Found", "retryable": False}}
    ok = out["items"][0]
    assert ok["state"] == "succeeded" and ok["blob"]["name"] == f"{BATCH_ID}-000/video.mp4"
    assert ok["shareLink"]["url"] == f"https://share.example/{BATCH_ID}-000"
    assert result.custom_status["errors"] == {"http_error": [2]}


def test_all_items_succeeding_is_succeeded():
    result = run(batch(3), children())

    assert result.output["state"] == "succeeded"
    assert [i["state"] for i in result.output["items"]] == ["succeeded"] * 3


def test_all_items_failing_fails_the_batch_and_keeps_counts_and_codes():
    failures = {0: "unavailable: Video unavailable", 1: "http_error: 404", 2: "unavailable: gone"}

    result = run(batch(3), children(failures=failures))

    assert result.status == "Failed"
    assert result.error.startswith("batch_failed: all 3 items failed")
    assert "unavailable: 2" in result.error and "http_error: 1" in result.error
    status = result.custom_status
    assert status["counts"]["failed"] == 3 and status["counts"]["succeeded"] == 0
    assert status["errors"] == {"unavailable": [0, 2], "http_error": [1]}


def test_a_child_failure_without_a_code_is_reported_as_internal():
    result = run(batch(2), children(failures={0: "Something exploded in the host"}))

    assert result.output["items"][0]["error"]["code"] == "internal"
    assert "Something exploded" in result.output["items"][0]["error"]["message"]


# --- playlists ------------------------------------------------------------------------------------


def test_a_playlist_is_listed_by_a_list_mode_child_then_downloaded_as_a_batch():
    entries = [{"url": url(i), "title": f"Episode {i}"} for i in range(4)]

    result = run(playlist_batch(max_items=10, max_parallel=2), children(entries=entries))

    assert result.status == "Completed", result.error
    listing, *items = result.sub_orchestration_calls
    assert listing.instance_id == f"{BATCH_ID}-list"
    listing_plan = JobPlan.from_wire(listing.input)
    assert listing_plan.mode == "list" and listing_plan.max_items == 10
    assert listing_plan.request.url == PLAYLIST_URL
    assert [c.instance_id for c in items] == [f"{BATCH_ID}-{i:03d}" for i in range(4)]
    item_plans = [JobPlan.from_wire(c.input) for c in items]
    assert [p.request.url for p in item_plans] == [url(i) for i in range(4)]
    assert {(p.mode, p.request.format) for p in item_plans} == {("download", "audio")}  # from the template
    assert min(c.scheduled_at for c in items) == at(5)  # after the listing
    out = result.output
    assert out["playlist"] == {"url": PLAYLIST_URL, "title": "My list", "entries": 4}
    assert [i["title"] for i in out["items"]] == [f"Episode {i}" for i in range(4)]
    assert result.custom_statuses[0]["phase"] == "listing"


def test_playlist_entries_beyond_max_items_are_not_downloaded():
    entries = [{"url": url(i)} for i in range(9)]

    result = run(playlist_batch(max_items=3), children(entries=entries))

    assert result.output["counts"]["total"] == 3
    assert len(result.sub_orchestration_calls) == 1 + 3


def test_a_playlist_entry_that_breaks_the_url_policy_fails_without_being_fetched():
    entries = [{"url": url(0)}, {"url": "http://169.254.169.254/latest/meta-data"},
               {"url": "https://elsewhere.example/x.mp4"}, {"url": "file:///etc/passwd"}]

    result = run(playlist_batch(), children(entries=entries))

    assert result.status == "Completed"
    started = [c.instance_id for c in result.sub_orchestration_calls]
    assert started == [f"{BATCH_ID}-list", f"{BATCH_ID}-000"]
    codes = [i.get("error", {}).get("code") for i in result.output["items"]]
    assert codes == [None, "private_address", "host_not_allowed", "scheme_not_allowed"]
    assert result.output["state"] == "partial"


def test_a_failed_listing_fails_the_batch_with_the_listings_code():
    result = run(playlist_batch(), children(listing_failure="unsupported_url: Unsupported URL: https://x"))

    assert result.status == "Failed"
    assert result.error.startswith("unsupported_url: Unsupported URL")
    assert [c.instance_id for c in result.sub_orchestration_calls] == [f"{BATCH_ID}-list"]


def test_an_empty_playlist_fails_the_batch():
    result = run(playlist_batch(), children(entries=[]))

    assert result.status == "Failed" and result.error.startswith("playlist_empty: ")


def test_a_playlist_whose_entries_all_break_the_policy_fails_the_batch():
    result = run(playlist_batch(), children(entries=[{"url": "https://elsewhere.example/1"}]))

    assert result.status == "Failed" and result.error.startswith("batch_failed: all 1 items failed")
    assert result.custom_status["errors"] == {"host_not_allowed": [0]}


# --- cancel, notification, determinism, limits -----------------------------------------------------


def test_a_cancel_event_stops_new_items_and_lets_running_ones_finish():
    host = ReplayHost(download_batch, instance_id=BATCH_ID, input=batch(6, 2).to_wire(), start=T0,
                      activities=notify_ok, sub_orchestrations=children(seconds=lambda i: 10))
    host.raise_event(15, {"state": "cancelled"}, encoding="string")

    result = host.run()

    assert [c.instance_id for c in result.sub_orchestration_calls] == [f"{BATCH_ID}-{i:03d}" for i in range(4)]
    out = result.output
    assert out["state"] == "partial"
    assert [i["state"] for i in out["items"]] == ["succeeded"] * 4 + ["failed"] * 2
    assert out["items"][5]["error"]["code"] == "cancelled"


def test_the_completion_webhook_gets_the_report_and_its_delivery_is_recorded():
    calls: list[dict[str, Any]] = []

    def notify(name: str, input_json: str) -> str:
        calls.append(json.loads(input_json))
        return notify_ok(name, input_json)

    result = run(batch(2, notify_url="https://hooks.example/done"), children(), activities=notify)

    assert len(calls) == 1 and calls[0]["url"] == "https://hooks.example/done"
    assert calls[0]["payload"]["batchId"] == BATCH_ID and calls[0]["payload"]["counts"]["succeeded"] == 2
    assert result.output["notification"]["delivered"] is True


def test_the_same_script_replays_to_the_same_history():
    script = dict(seconds=lambda i: 3 + (i * 5) % 7, failures={4: "too_large: over"})

    first = run(batch(9, 3), children(**script))
    second = run(batch(9, 3), children(**script))

    def shape(r: RunResult) -> list[tuple[Any, ...]]:
        return [(e["EventType"], e.get("EventId"), e.get("InstanceId"), e.get("TaskScheduledId"), e["Timestamp"])
                for e in r.history]

    assert shape(first) == shape(second)
    assert first.output == second.output


def test_two_hundred_failing_items_keep_custom_status_and_output_small():
    long_message = "x" * 5000
    codes = [f"code_{i % 40}" for i in range(200)]
    failures = {i: f"{codes[i]}: {long_message}" for i in range(0, 200, 2)}
    big = replace(batch(200, 10), items=tuple(
        plan(request=DownloadRequest(url=f"https://{MEDIA_HOST}/{'p' * 1900}/{i}")) for i in range(200)))

    result = run(big, children(seconds=lambda i: 1 + i % 3, failures=failures))

    assert result.status == "Completed"
    assert result.output["counts"]["failed"] == 100
    assert all(len(i.get("error", {}).get("message", "")) <= 300 for i in result.output["items"])
    assert max(custom_status_bytes(s) for s in result.custom_statuses) < CUSTOM_STATUS_MAX_BYTES
    assert output_bytes(result.output) < MAX_OUTPUT_BYTES


def test_two_hundred_items_all_failing_with_distinct_codes_still_fail_with_a_small_status():
    failures = {i: f"code_{i:03d}_{'y' * 50}: nope" for i in range(200)}

    result = run(batch(200, 20), children(seconds=lambda i: 1, failures=failures))

    assert result.status == "Failed"
    assert custom_status_bytes(result.custom_status) < CUSTOM_STATUS_MAX_BYTES
    assert result.custom_status["counts"]["failed"] == 200
    assert len(result.error.encode()) < 1024


def test_the_listing_child_is_a_real_list_mode_download_job(backend: FakeBackend):
    """The batch and `download_job` agree on list mode: the listing child (replayed for real, on the
    fake backend) starts a worker with `JOB_MODE=list` and its output's entries become the items."""
    entries = [{"url": url(i), "title": f"Episode {i}"} for i in range(3)]
    listing_runs: list[RunResult] = []

    def simulate(call: SubOrchestrationCall) -> ChildOutcome:
        if JobPlan.from_wire(call.input).mode != "list":
            return children()(call)
        host = ReplayHost(download_job, instance_id=call.instance_id, input=call.input, start=call.scheduled_at,
                          activities=run_activity)
        host.raise_event(5, {"jobId": call.instance_id, "seq": 1, "state": "started"})
        host.raise_event(8, {"jobId": call.instance_id, "seq": 2, "state": "succeeded",
                             "result": {"entries": entries, "title": "Real list"}})
        child = host.run()
        listing_runs.append(child)
        seconds = (child.finished_at - call.scheduled_at).total_seconds()
        if child.status == "Failed":
            return ChildOutcome(seconds, failure=child.error)
        return ChildOutcome(seconds, output=child.output)

    result = run(playlist_batch(max_items=5), simulate)

    assert listing_runs and listing_runs[0].status == "Completed", listing_runs[0].error
    env = backend.specs[0].environment()
    assert (env["JOB_MODE"], env["JOB_MAX_ITEMS"], env["JOB_URL"]) == ("list", "5", PLAYLIST_URL)
    assert result.status == "Completed", result.error
    assert result.output["playlist"]["title"] == "Real list"
    assert [i["url"] for i in result.output["items"]] == [url(i) for i in range(3)]
