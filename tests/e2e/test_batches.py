"""Batches and playlists end to end, through `POST /api/downloads` and the Durable status API only.

A sampler watches the local backend's live worker processes for the whole batch: never more than
`MAX_PARALLEL_JOBS` at once, and it must see the window full (or the test could not fail).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devhost.media import MediaServer, write_feed
from tests.e2e.conftest import MAX_PARALLEL_JOBS, MULTI_SECONDS
from tests.e2e.harness import Job, LocalStack, error_code, http, sha256


def submit(local: LocalStack, body: dict) -> Job:
    code, answer = http("POST", f"{local.devhost.base_url}/api/downloads", body)
    assert code == 202, (code, answer)
    return Job(answer["id"], answer)


def group_prefix(batch_id: str) -> str:
    """Every container group of the batch's children (`<batch>-<index>`, `<batch>-list`, retries)."""
    return "dl-" + re.sub(r"[^a-z0-9]+", "-", batch_id.lower()).strip("-") + "-"


class WorkerSampler:
    """Counts the batch's live worker processes every 50 ms, in a thread."""

    def __init__(self, local: LocalStack, prefix: str):
        self.local, self.prefix = local, prefix
        self.counts: list[int] = []
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            self.counts.append(sum(1 for name in self.local.running_workers() if name.startswith(self.prefix)))
            time.sleep(0.05)

    @contextmanager
    def watching(self) -> Iterator[WorkerSampler]:
        thread = threading.Thread(target=self.run, name="worker-sampler", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=10)


def test_a_batch_of_eight_runs_at_most_three_workers_at_a_time_and_reports_each_item(
    local: LocalStack, fast_media: MediaServer
):
    urls = [fast_media.url(f"clip-{MULTI_SECONDS[i % len(MULTI_SECONDS)]}s.mp4") for i in range(8)]
    urls[5] = fast_media.url("missing.mp4")  # 404: this item fails, the batch does not

    job = submit(local, {"urls": urls, "format": "video"})
    with WorkerSampler(local, group_prefix(job.id)).watching() as sampler:
        done = job.wait_done(timeout=120)

    assert done["runtimeStatus"] == "Completed", done
    out = done["output"]
    assert out["batchId"] == job.id and out["state"] == "partial"
    assert out["counts"] == {"total": 8, "running": 0, "succeeded": 7, "failed": 1, "pending": 0}
    assert [item["url"] for item in out["items"]] == urls
    failed = out["items"][5]
    assert failed["state"] == "failed" and failed["error"]["code"] == "http_error"
    for item in out["items"]:
        if item["state"] == "succeeded":
            assert sha256(local.blob_bytes(item["blob"])) == item["blob"]["sha256"]
    assert len({item["blob"]["name"] for item in out["items"] if "blob" in item}) == 7
    assert max(sampler.counts) == MAX_PARALLEL_JOBS, sampler.counts  # the window was used, never exceeded
    running = [s["customStatus"] for s in job.seen if (s.get("customStatus") or {}).get("phase") == "running"]
    assert running and all(c["counts"]["running"] <= MAX_PARALLEL_JOBS for c in running)
    assert not [name for name in local.running_workers() if name.startswith(group_prefix(job.id))]


def test_a_playlist_served_on_loopback_is_listed_in_a_container_then_downloaded_as_a_batch(
    local: LocalStack, fast_media: MediaServer, clips: Path
):
    feed = f"feed-{uuid.uuid4().hex[:8]}.rss"
    entries = [(f"Clip {s}s", fast_media.url(f"clip-{s}s.mp4")) for s in MULTI_SECONDS[:4]]
    write_feed(clips / feed, "Loopback channel", entries)

    job = submit(local, {"url": fast_media.url(feed), "playlist": True, "maxItems": 3})
    done = job.wait_done(timeout=90)

    assert done["runtimeStatus"] == "Completed", done
    out = done["output"]
    assert out["playlist"] == {"url": fast_media.url(feed), "title": "Loopback channel", "entries": 3}
    assert [(i["title"], i["url"], i["state"]) for i in out["items"]] == [
        (title, url, "succeeded") for title, url in entries[:3]
    ]
    for item in out["items"]:
        assert sha256(local.blob_bytes(item["blob"])) == item["blob"]["sha256"]
    listing_url = job.links["statusQueryGetUri"].replace(job.id, f"{job.id}-list")
    listing = Job(f"{job.id}-list", {"statusQueryGetUri": listing_url}).status()
    assert listing["runtimeStatus"] == "Completed" and listing["name"] == "download_job"
    listing_input = listing["input"] if isinstance(listing["input"], dict) else json.loads(listing["input"])
    assert listing_input["mode"] == "list" and listing_input["maxItems"] == 3
    assert [e["url"] for e in listing["output"]["entries"]] == [url for _, url in entries[:3]]


def child_status(batch: Job, child_id: str) -> tuple[int, dict]:
    """A child's Durable status through the batch's status link (404 for one never started)."""
    code, body = http("GET", batch.links["statusQueryGetUri"].replace(batch.id, child_id))
    return code, body


def test_cancelling_a_batch_cancels_its_running_items_and_leaves_no_worker(
    local: LocalStack, slow_media: MediaServer
):
    urls = [slow_media.url("sample.mp4")] * (MAX_PARALLEL_JOBS + 1)  # about 4 s each: cancelled mid-download
    job = submit(local, {"urls": urls})
    children = [f"{job.id}-{i:03d}" for i in range(len(urls))]
    started, waiting = children[:MAX_PARALLEL_JOBS], children[MAX_PARALLEL_JOBS]

    running = job.wait(lambda b: b["runtimeStatus"] != "Running"
                       or (b.get("customStatus") or {}).get("runningItems") == list(range(MAX_PARALLEL_JOBS)),
                       timeout=30)
    assert running["runtimeStatus"] == "Running", running
    for child in started:
        Job(child, {"statusQueryGetUri": job.links["statusQueryGetUri"].replace(job.id, child)}).wait_phase(
            "downloading")
    code, answer = http("POST", f"{local.devhost.base_url}/api/downloads/{job.id}/cancel")
    done = job.wait_done(timeout=30)

    assert code == 202, answer
    assert sorted(answer["cancelledChildren"]) == started
    assert done["runtimeStatus"] == "Failed", done
    assert error_code(done) == "cancelled"
    assert done["customStatus"]["counts"] == {"total": 4, "running": 0, "succeeded": 0, "failed": 4, "pending": 0}
    for child in started:
        code, status = child_status(job, child)
        assert (code, status["runtimeStatus"], error_code(status)) == (200, "Failed", "cancelled"), status
    assert child_status(job, waiting)[0] == 404  # never started
    assert not [name for name in local.running_workers() if name.startswith(group_prefix(job.id))]


def test_an_invalid_batch_is_refused_with_per_index_errors_and_starts_nothing(local: LocalStack):
    before = set(local.running_workers())

    code, body = http("POST", f"{local.devhost.base_url}/api/downloads",
                      {"urls": ["http://127.0.0.1:9/a.mp4", "https://elsewhere.example/b", "ftp://x/c"]})

    assert code == 400, body
    assert body["error"]["code"]
    assert set(local.running_workers()) <= before
