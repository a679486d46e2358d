"""A retention run against the devhost's real Durable HTTP API, the job index and the blobs in a real
Azurite: finished jobs created before the cutoff are gone from the task hub, the list and storage;
newer jobs, running jobs and their blobs are untouched. The clock is injected: the run is told it
is `JOB_RETENTION_DAYS` after the boundary between the old and the new jobs."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient
from azure.storage.blob import BlobServiceClient

from devhost import stack
from retention import APP_ORCHESTRATORS, run_retention
from retention.blobs import ContainerBlobs
from tests.api.test_list_route import MEDIA, ListHost, list_host
from tests.e2e.harness import http
from videojob.adapters.durable_http import DurableHttp
from videojob.adapters.job_index_table import JOB_INDEX_TABLE, TableJobIndex
from videojob.domain.job_index import DEFAULT_OWNER, TIME_ROWS_END
from videojob.domain.settings import SettingsError, load_settings

DAYS = 30
CONTAINER = "downloads"


class RetentionHost:
    def __init__(self, host: ListHost, azurite: stack.Azurite):
        self.host = host
        self.blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
        self.index = TableJobIndex(TableClient.from_connection_string(azurite.connection_string, JOB_INDEX_TABLE))
        self.hub = DurableHttp(f"{host.base}/durabletask/")

    def finished_job(self, n: int) -> str:
        instance_id = self.host.submit({"url": MEDIA.format(n)})
        code, _ = http("POST", f"{self.host.base}/runtime/webhooks/durabletask/instances/{instance_id}/terminate")
        assert code == 202
        return instance_id

    def files_of(self, instance_id: str) -> list[str]:
        """What a job leaves in the output container: its media and its result record."""
        names = [f"{instance_id}/clip.mp4", f"records/{instance_id}.json"]
        container = self.blobs.get_container_client(CONTAINER)
        for name in names:
            container.upload_blob(name, b"x" * 10, overwrite=True)
        return names

    def blob_names(self) -> set[str]:
        return {b.name for b in self.blobs.get_container_client(CONTAINER).list_blobs()}

    def listed(self) -> list[str]:
        code, body = self.host.jobs("?top=100")
        assert code == 200, body
        return [j["id"] for j in body["jobs"]]

    def index_ids(self) -> set[str]:
        return {r.instance_id for r in self.index.rows(DEFAULT_OWNER, after=None, before=TIME_ROWS_END,
                                                       limit=100).rows}

    def known(self, instance_id: str) -> bool:
        return asyncio.run(self.hub.status(instance_id)) is not None


def _next_whole_second(t: datetime) -> datetime:
    return t.replace(microsecond=0) + timedelta(seconds=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    state = tmp_path_factory.mktemp("retention-devhost")
    with stack.run_azurite() as azurite, list_host(state, azurite=azurite, MAX_RUNNING_JOBS="1") as host:
        r = RetentionHost(host, azurite)
        r.blobs.create_container(CONTAINER)
        old_finished = [r.finished_job(n) for n in range(3)]
        old_running = [r.host.submit({"url": MEDIA.format(10 + n)}) for n in range(2)]
        old_files = [name for i in old_finished for name in r.files_of(i)]
        running_files = [name for i in old_running for name in r.files_of(i)]
        # Durable createdTime and blob Last-Modified are whole seconds: the new ones start on the next.
        boundary = _next_whole_second(datetime.now(UTC))
        stack.wait_until(lambda: datetime.now(UTC) >= boundary, 5, "the next second")
        new_finished = [r.finished_job(20 + n) for n in range(2)]
        new_files = [name for i in new_finished for name in r.files_of(i)]
        stack.wait_until(lambda: {i["instanceId"] for i in host.instances("") if i["runtimeStatus"] == "Terminated"}
                         >= set(old_finished + new_finished), 30, "the terminated jobs")
        yield {"r": r, "boundary": boundary, "old_finished": old_finished, "old_running": old_running,
               "new_finished": new_finished, "old_files": old_files, "running_files": running_files,
               "new_files": new_files}


@pytest.fixture(scope="module")
def after_run(world: dict) -> dict:
    r: RetentionHost = world["r"]
    assert set(world["old_finished"]) <= set(r.listed())  # before: all there
    summary = asyncio.run(run_retention(r.hub, r.index, ContainerBlobs(r.blobs, (CONTAINER,)), APP_ORCHESTRATORS,
                                        DAYS, world["boundary"] + timedelta(days=DAYS)))
    return {**world, "summary": summary}


def test_old_finished_jobs_are_gone_from_the_task_hub_the_list_and_the_index(after_run: dict):
    r: RetentionHost = after_run["r"]

    assert sorted(after_run["summary"].purged) == sorted(after_run["old_finished"])
    assert not any(r.known(i) for i in after_run["old_finished"])
    assert set(after_run["old_finished"]).isdisjoint(r.listed())
    assert set(after_run["old_finished"]).isdisjoint(r.index_ids())


def test_their_blobs_and_records_are_gone(after_run: dict):
    assert set(after_run["old_files"]).isdisjoint(after_run["r"].blob_names())


def test_newer_jobs_and_their_blobs_are_untouched(after_run: dict):
    r: RetentionHost = after_run["r"]

    assert all(r.known(i) for i in after_run["new_finished"])
    assert set(after_run["new_finished"]) <= set(r.listed())
    assert set(after_run["new_files"]) <= r.blob_names()


def test_running_jobs_are_never_touched_whatever_their_age(after_run: dict):
    r: RetentionHost = after_run["r"]

    assert all(r.known(i) for i in after_run["old_running"])
    assert set(after_run["old_running"]) <= set(r.listed()) and set(after_run["old_running"]) <= r.index_ids()


def test_a_second_run_finds_nothing_more(after_run: dict):
    r: RetentionHost = after_run["r"]

    again = asyncio.run(run_retention(r.hub, r.index, None, APP_ORCHESTRATORS, DAYS,
                                      after_run["boundary"] + timedelta(days=DAYS)))

    assert again.purged == [] and again.failures == 0 and not again.more


def test_in_azure_no_blob_is_deleted_by_the_app(after_run: dict):
    from retention.blobs import expiring_blobs

    azure = load_settings(environ={"CONTAINER_BACKEND": "local", "CALLBACK_BASE_URL": "https://x.example",
                                   "CALLBACK_SIGNING_KEY": secrets.token_urlsafe(48),
                                   "OUTPUT_ACCOUNT_URL": "https://acct.blob.core.windows.net"})

    assert expiring_blobs(azure) is None  # the output account's lifecycle rule does it


@pytest.mark.parametrize(("raw", "expected"), [(None, 30), ("1", 1), ("3650", 3650)])
def test_job_retention_days_is_parsed_once_with_its_range(raw: str | None, expected: int):
    env = {"CONTAINER_BACKEND": "local", "CALLBACK_BASE_URL": "https://x.example",
           "CALLBACK_SIGNING_KEY": "k" * 48, "OUTPUT_ACCOUNT_URL": "https://acct.blob.core.windows.net"}
    if raw is not None:
        env["JOB_RETENTION_DAYS"] = raw

    assert load_settings(environ=env).job_retention_days == expected


@pytest.mark.parametrize(("raw", "message"), [("0", "between 1 and 3650"), ("3651", "between 1 and 3650"),
                                             ("30d", "whole number")])
def test_a_bad_job_retention_days_names_the_setting(raw: str, message: str):
    env = {"CONTAINER_BACKEND": "local", "CALLBACK_BASE_URL": "https://x.example",
           "CALLBACK_SIGNING_KEY": "k" * 48, "OUTPUT_ACCOUNT_URL": "https://acct.blob.core.windows.net",
           "JOB_RETENTION_DAYS": raw}

    with pytest.raises(SettingsError, match=f"JOB_RETENTION_DAYS must be .*{message}"):
        load_settings(environ=env)
