"""30 jobs with random ids on the devhost: the list is newest first across pages whatever order the
task hub lists instances in (the Azure Storage provider lists them by instance id), and the `status`
and `since` filters hold, also for jobs ended by the terminate webhook (no orchestrator code runs,
so their index rows are repaired by the list)."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from devhost import stack
from tests.e2e.harness import http
from videojob.client import cli

from .test_list_route import MEDIA, ListHost, list_host

JOBS, TERMINATED_EVERY = 30, 4


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ListHost]:
    # Two workers at a time: the other jobs wait in the queue (Running, phase "queued").
    with list_host(tmp_path_factory.mktemp("order-devhost"), MAX_RUNNING_JOBS="2") as h:
        yield h


@pytest.fixture(scope="module")
def jobs(host: ListHost) -> dict[str, object]:
    def submit(n: int) -> str:
        # An Idempotency-Key makes the id `k-` + 32 hex digits of a hash: random, unrelated to time.
        return host.submit({"url": MEDIA.format(n)}, headers={"Idempotency-Key": secrets.token_hex(16)})

    older = [submit(n) for n in range(JOBS // 2)]
    since = datetime.now(UTC)
    newer = [submit(n) for n in range(JOBS // 2, JOBS)]
    oldest_first = older + newer
    terminated = set(oldest_first[1::TERMINATED_EVERY])
    for instance_id in terminated:
        code, _ = http("POST", f"{host.base}/runtime/webhooks/durabletask/instances/{instance_id}/terminate?reason=t")
        assert code == 202
    stack.wait_until(lambda: {i["instanceId"] for i in host.instances("") if i["runtimeStatus"] == "Terminated"}
                     >= terminated, 30, "the terminated jobs")
    return {"newest_first": oldest_first[::-1], "newer": newer[::-1], "since": since, "terminated": terminated}


def listed(host: ListHost, filters: str = "", top: int = 7) -> list[str]:
    return [j["id"] for page in host.all_pages(top, filters) for j in page]


def test_the_ids_are_not_in_time_order(jobs: dict):
    # Otherwise the test below could pass on a list in instance id order.
    assert sorted(jobs["newest_first"]) != jobs["newest_first"]
    assert sorted(jobs["newest_first"], reverse=True) != jobs["newest_first"]


def test_all_jobs_newest_first_across_pages(host: ListHost, jobs: dict):
    pages = host.all_pages(7)

    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    assert [j["id"] for p in pages for j in p] == jobs["newest_first"]


def test_status_failed_lists_the_terminated_jobs_newest_first(host: ListHost, jobs: dict):
    failed = listed(host, "&status=failed", top=3)

    assert failed == [i for i in jobs["newest_first"] if i in jobs["terminated"]]


def test_status_running_leaves_the_terminated_jobs_out(host: ListHost, jobs: dict):
    running = listed(host, "&status=running", top=4)

    assert running == [i for i in jobs["newest_first"] if i not in jobs["terminated"]]


def test_status_completed_is_empty_while_none_completed(host: ListHost, jobs: dict):
    code, body = host.jobs("?status=completed")

    assert code == 200 and body["jobs"] == [] and "continuationToken" not in body


def test_since_lists_only_jobs_created_at_or_after_it(host: ListHost, jobs: dict):
    since = jobs["since"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    assert listed(host, f"&since={since}", top=4) == jobs["newer"]
    assert listed(host, f"&since={since}&status=failed", top=2) == [
        i for i in jobs["newer"] if i in jobs["terminated"]]


def test_a_token_of_one_filter_is_400_with_another(host: ListHost, jobs: dict):
    code, first = host.jobs("?top=2&status=running")
    assert code == 200 and first["continuationToken"]

    code, body = host.jobs(f"?top=2&status=failed&continuationToken={first['continuationToken']}")

    assert code == 400 and body["error"]["code"] == "invalid_option", body


def test_the_cli_lists_with_the_filters(host: ListHost, jobs: dict):
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(["--base-url", host.base, "list", "--status", "failed", "--top", "2", "--all"], out, err)

    assert code == 0, err.getvalue()
    listed = [line.split()[0] for line in out.getvalue().splitlines()[1:]]
    assert listed == [i for i in jobs["newest_first"] if i in jobs["terminated"]]
