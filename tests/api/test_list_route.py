"""`GET /api/downloads` against the devhost's real Durable HTTP API (paging by
`x-ms-continuation-token`, newest first): this app's jobs only, batch items folded under their
batch, stable pages, bad tokens and sizes refused.

The jobs' workers are a `sleep` (nothing is downloaded): the jobs stay `Running`, which is all a
list needs.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost import stack
from tests.e2e.harness import http
from videojob import cli
from videojob.instances import MAX_HOST_PAGES_PER_LIST, InstancePage, decode_list_token, list_jobs

MEDIA = "http://127.0.0.1:9/clip-{}.mp4"  # never fetched: the worker only sleeps


class ListHost:
    def __init__(self, state: Path):
        self.state = state
        env = stack.devhost_env(stack.Azurite(stack.free_port()), {
            "ALLOWED_HOSTS": "127.0.0.1",
            "CALLBACK_SIGNING_KEY": secrets.token_urlsafe(48),
            "MAX_PARALLEL_JOBS": "2",
            "DEVHOST_WORKER_COMMAND": f"{sys.executable} -c 'import time; time.sleep(600)'",
        })
        self.devhost = stack.Devhost(stack.free_port(), state, state / "devhost.log")
        self.devhost.start(env, ("--app", "tests.api.list_app", "--settings", str(state / "local.settings.json")))
        self.base = self.devhost.base_url

    def submit(self, body: dict) -> str:
        code, answer = http("POST", f"{self.base}/api/downloads", body)
        assert code == 202, (code, answer)
        return answer["id"]

    def instances(self, prefix: str) -> list[dict]:
        code, body = http("GET", f"{self.base}/runtime/webhooks/durabletask/instances?instanceIdPrefix={prefix}")
        assert code == 200, (code, body)
        return body

    def jobs(self, query: str = "") -> tuple[int, dict]:
        return http("GET", f"{self.base}/api/downloads{query}")

    def all_pages(self, top: int) -> list[list[dict]]:
        pages, token = [], None
        while True:
            query = f"?top={top}" + (f"&continuationToken={token}" if token else "")
            code, body = self.jobs(query)
            assert code == 200, (code, body)
            pages.append(body["jobs"])
            token = body.get("continuationToken")
            if token is None:
                return pages
            assert len(pages) < 50, "paging does not end"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ListHost]:
    state = tmp_path_factory.mktemp("list-devhost")
    h = ListHost(state)
    try:
        yield h
    finally:
        h.devhost.stop()
        stack.stop_local_containers(state)


@pytest.fixture(scope="module")
def submitted(host: ListHost) -> dict[str, object]:
    """Jobs, a batch (its first two items start at once), a playlist (its listing child starts) and
    a foreign orchestration, interleaved. Returns their ids, oldest first."""
    single = [host.submit({"url": MEDIA.format(0)})]
    code, _ = http("POST", f"{host.base}/runtime/webhooks/durabletask/orchestrators/another_apps_flow", {})
    assert code == 202
    batch = host.submit({"urls": [MEDIA.format(1), MEDIA.format(2), MEDIA.format(3)]})
    single += [host.submit({"url": MEDIA.format(n), "format": "audio"}) for n in (4, 5)]
    playlist = host.submit({"url": MEDIA.format(6), "playlist": True, "maxItems": 3})
    single += [host.submit({"url": MEDIA.format(n)}) for n in (7, 8)]
    # Wait for the children, so folding is tested against items that exist.
    stack.wait_until(lambda: {i["instanceId"] for i in host.instances(batch)} >= {f"{batch}-000", f"{batch}-001"},
                     30, "the batch's first items")
    stack.wait_until(lambda: f"{playlist}-list" in {i["instanceId"] for i in host.instances(playlist)},
                     30, "the playlist's listing job")
    ours_newest_first = [*reversed(single[3:]), playlist, *reversed(single[1:3]), batch, single[0]]
    return {"ours": ours_newest_first, "batch": batch, "playlist": playlist}


def test_the_list_shows_this_apps_jobs_newest_first_with_batch_items_folded(host: ListHost, submitted: dict):
    in_task_hub = {i["instanceId"]: i["name"] for i in host.instances("")}
    code, body = host.jobs()

    assert code == 200, body
    assert [j["id"] for j in body["jobs"]] == submitted["ours"]
    assert "continuationToken" not in body
    left_out = set(in_task_hub) - set(submitted["ours"])
    assert {in_task_hub[i] for i in left_out} == {"another_apps_flow", "download_job"}  # foreign, batch items
    assert {f"{submitted['batch']}-000", f"{submitted['playlist']}-list"} <= left_out
    rows = {j["id"]: j for j in body["jobs"]}
    batch, playlist = rows[submitted["batch"]], rows[submitted["playlist"]]
    assert (batch["kind"], batch["url"], batch["counts"]["total"]) == ("batch", MEDIA.format(1), 3)
    assert (playlist["kind"], playlist["url"], playlist["phase"]) == ("batch", MEDIA.format(6), "listing")
    first = rows[submitted["ours"][-1]]
    assert (first["kind"], first["url"], first["runtimeStatus"]) == ("job", MEDIA.format(0), "Running")
    assert first["createdTime"] and first["lastUpdatedTime"] and "percent" in first
    code, status = http("GET", first["statusQueryGetUri"])
    assert code == 202 and status["instanceId"] == first["id"]


def test_pages_of_two_cover_the_list_once_in_order(host: ListHost, submitted: dict):
    pages = host.all_pages(top=2)

    assert all(1 <= len(page) <= 2 for page in pages[:-1]) and len(pages[-1]) <= 2
    assert [j["id"] for page in pages for j in page] == submitted["ours"]


def test_a_job_started_while_paging_neither_shifts_nor_repeats_later_pages(host: ListHost, submitted: dict):
    code, first = host.jobs("?top=3")
    host.submit({"url": MEDIA.format(9)})
    rest, token = [], first["continuationToken"]
    while token:
        code, page = host.jobs(f"?top=3&continuationToken={token}")
        assert code == 200, page
        rest += page["jobs"]
        token = page.get("continuationToken")

    assert [j["id"] for j in first["jobs"] + rest] == submitted["ours"]


@pytest.mark.parametrize("token", [
    "not-a-token",
    "%%%",
    base64.urlsafe_b64encode(b'{"v": 2, "host": "x"}').decode().rstrip("="),
    "A" * 5000,
])
def test_a_malformed_continuation_token_is_400(host: ListHost, token: str):
    code, body = host.jobs(f"?continuationToken={token}")

    assert code == 400, body
    assert body["error"]["code"] == "invalid_option" and "continuationToken" in body["error"]["message"]


def test_a_token_the_task_hub_did_not_issue_is_400_too(host: ListHost):
    forged = base64.urlsafe_b64encode(json.dumps({"v": 1, "host": "forged"}).encode()).decode().rstrip("=")

    code, body = host.jobs(f"?continuationToken={forged}")

    assert code == 400, body
    assert body["error"]["code"] == "invalid_option"


@pytest.mark.parametrize("top", ["0", "101", "ten", "-1", "1.5"])
def test_top_outside_1_to_100_is_400(host: ListHost, top: str):
    code, body = host.jobs(f"?top={top}")

    assert code == 400 and body["error"]["code"] == "invalid_option", body


def test_the_cli_prints_every_page_as_a_table(host: ListHost, submitted: dict):
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(["--base-url", host.base, "list", "--top", "2", "--all"], out, err)

    lines = out.getvalue().splitlines()
    assert code == 0, err.getvalue()
    assert lines[0].split()[:6] == ["ID", "KIND", "STATUS", "PHASE", "%", "CREATED"]
    listed = [line.split()[0] for line in lines[1:]]
    assert listed[-len(submitted["ours"]):] == submitted["ours"]  # a job started by another test may lead
    row = next(line for line in lines if line.startswith(submitted["batch"]))
    assert row.split()[1:3] == ["batch", "Running"] and MEDIA.format(1) in row


def test_the_cli_names_the_next_page(host: ListHost, submitted: dict):
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(["--base-url", host.base, "list", "--top", "1"], out, err)

    assert code == 0 and len(out.getvalue().splitlines()) == 2
    assert err.getvalue().startswith("more: --continuation-token ")


# --- the paging policy against task hubs that page differently from the devhost ------------------

class ScriptedPages:
    """An `InstancePages` answering fixed host pages keyed by token (None = the first)."""

    def __init__(self, pages: dict[str | None, InstancePage]):
        self.pages = pages
        self.reads: list[str | None] = []

    async def page(self, top: int, continuation_token: str | None) -> InstancePage:
        self.reads.append(continuation_token)
        return self.pages[continuation_token]


def job_status(n: int) -> dict:
    return {"name": "download_job", "instanceId": f"{n:032x}", "runtimeStatus": "Running"}


KINDS = {"download_job": "job", "download_batch": "batch"}


def test_empty_host_pages_with_tokens_end_the_answer_after_a_bounded_number_of_reads():
    # Netherite can answer empty pages that still carry a token (durable-extension#3245).
    pages = {None: InstancePage((), "t1"), **{f"t{i}": InstancePage((), f"t{i + 1}") for i in range(1, 9)}}
    source = ScriptedPages(pages)

    listed = asyncio.run(list_jobs(source, KINDS, 5))

    assert listed.jobs == () and len(source.reads) == MAX_HOST_PAGES_PER_LIST
    assert decode_list_token(listed.continuation_token) == f"t{MAX_HOST_PAGES_PER_LIST}"


def test_base64_null_from_an_older_azure_storage_provider_ends_the_list():
    source = ScriptedPages({None: InstancePage((job_status(1),), "bnVsbA==")})

    listed = asyncio.run(list_jobs(source, KINDS, 5))

    assert [j.id for j in listed.jobs] == [f"{1:032x}"] and listed.continuation_token is None


def test_a_host_page_that_would_overflow_the_answer_is_left_whole_for_the_next_one():
    foreign = {"name": "other", "instanceId": "x" * 32, "runtimeStatus": "Running"}
    source = ScriptedPages({
        None: InstancePage((job_status(1), foreign), "t1"),
        "t1": InstancePage((job_status(2), job_status(3)), None),
    })

    first = asyncio.run(list_jobs(source, KINDS, 2))
    second = asyncio.run(list_jobs(source, KINDS, 2, first.continuation_token))

    assert [j.id for j in first.jobs] == [f"{1:032x}"]
    assert [j.id for j in second.jobs] == [f"{2:032x}", f"{3:032x}"] and second.continuation_token is None
