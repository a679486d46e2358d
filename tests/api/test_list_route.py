"""`GET /api/downloads` against the devhost's real Durable HTTP API and the job index in a real
Azurite table service: this app's jobs only, newest first, batch items folded under their batch,
stable pages, bad tokens and sizes refused.

The jobs' workers are a `sleep` (nothing is downloaded): the jobs stay `Running`, which is all a
list needs.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost import stack
from tests.e2e.harness import http
from videojob.client import cli
from videojob.domain.job_index import ListQuery, StatusGroup, encode_list_token, token_key

MEDIA = "http://127.0.0.1:9/clip-{}.mp4"  # never fetched: the worker only sleeps


class ListHost:
    def __init__(self, state: Path, azurite: stack.Azurite, **settings: str):
        self.state = state
        self.signing_key = secrets.token_urlsafe(48)
        env = stack.devhost_env(azurite, {
            "ALLOWED_HOSTS": "127.0.0.1",
            "CALLBACK_SIGNING_KEY": self.signing_key,
            "MAX_PARALLEL_JOBS": "2",
            "DEVHOST_WORKER_COMMAND": f"{sys.executable} -c 'import time; time.sleep(600)'",
            **settings,
        })
        self.devhost = stack.Devhost(stack.free_port(), state, state / "devhost.log")
        self.devhost.start(env, ("--app", "tests.api.list_app", "--settings", str(state / "local.settings.json")))
        self.base = self.devhost.base_url

    def submit(self, body: dict, headers: dict[str, str] | None = None) -> str:
        code, answer = http("POST", f"{self.base}/api/downloads", body, headers=headers)
        assert code == 202, (code, answer)
        return answer["id"]

    def instances(self, prefix: str) -> list[dict]:
        code, body = http("GET", f"{self.base}/runtime/webhooks/durabletask/instances?instanceIdPrefix={prefix}")
        assert code == 200, (code, body)
        return body

    def jobs(self, query: str = "") -> tuple[int, dict]:
        return http("GET", f"{self.base}/api/downloads{query}")

    def all_pages(self, top: int, filters: str = "") -> list[list[dict]]:
        pages, token = [], None
        while True:
            query = f"?top={top}{filters}" + (f"&continuationToken={token}" if token else "")
            code, body = self.jobs(query)
            assert code == 200, (code, body)
            pages.append(body["jobs"])
            token = body.get("continuationToken")
            if token is None:
                return pages
            assert len(pages) < 50, "paging does not end"


@contextlib.contextmanager
def list_host(state: Path, azurite: stack.Azurite | None = None, **settings: str) -> Iterator[ListHost]:
    with contextlib.ExitStack() as services:
        azurite = azurite or services.enter_context(stack.run_azurite())
        h = ListHost(state, azurite, **settings)
        try:
            yield h
        finally:
            h.devhost.stop()
            stack.stop_local_containers(state)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ListHost]:
    with list_host(tmp_path_factory.mktemp("list-devhost")) as h:
        yield h


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


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _forged_tokens(signing_key: str) -> dict[str, str]:
    """Every shape of token this API did not issue for the query it is sent with."""
    key = token_key(signing_key)
    real = encode_list_token(key, ListQuery(), f"t{'0' * 13}-{'a' * 32}")
    payload, mac = real.split(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")  # also a spelling whose spare bits differ
    flipped_inside = mac[:5] + ("A" if mac[5] != "A" else "B") + mac[6:]
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered["after"] = f"t{'9' * 13}-{'b' * 32}"
    return {
        "not a token": "not-a-token",
        "not base64url": "%%%",
        "bad base64 padding": "A.AAAAAAAAAAAAAAAAAAAAAA",
        "the old envelope": _b64(b'{"v": 1, "host": "x"}'),
        # Before the job index, this one reached the task hub as a header and answered 503 (issue 18).
        "the old envelope, a host token with a line break": _b64(json.dumps({"v": 1, "host": "a\nb"}).encode()),
        "the old envelope, another version": _b64(b'{"v": 2, "host": "x"}'),
        "too long": "A" * 5000,
        "payload without a MAC": payload,
        "a MAC that does not match": f"{payload}.{flipped_inside}",
        "a MAC's last character changed": f"{payload}.{flipped}",
        "a tampered payload under the old MAC": f"{_b64(json.dumps(tampered).encode())}.{mac}",
        "signed with another key": encode_list_token(token_key("x" * 48), ListQuery(), f"t{'0' * 13}-{'a' * 32}"),
        "issued for another filter": encode_list_token(key, ListQuery(status=StatusGroup.FAILED),
                                                       f"t{'0' * 13}-{'a' * 32}"),
        "right MAC, not a row key inside": encode_list_token(key, ListQuery(), "i" + "a" * 32),
    }


FORGED_SHAPES = list(_forged_tokens("k" * 48))


@pytest.mark.parametrize("shape", FORGED_SHAPES)
def test_a_forged_or_tampered_continuation_token_is_400(host: ListHost, shape: str):
    token = _forged_tokens(host.signing_key)[shape]

    code, body = host.jobs(f"?continuationToken={token}")

    assert code == 400, body
    assert body["error"]["code"] == "invalid_option" and "continuationToken" in body["error"]["message"]


@pytest.mark.parametrize(("query", "word"), [
    ("?status=done", "status"), ("?status=Running", "status"), ("?since=yesterday", "since"),
    ("?since=2026-13-01", "since"), ("?since=1969-12-31T00:00:00Z", "since"),
])
def test_a_filter_the_list_does_not_take_is_400(host: ListHost, query: str, word: str):
    code, body = host.jobs(query)

    assert code == 400 and body["error"]["code"] == "invalid_option", body
    assert word in body["error"]["message"]


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
