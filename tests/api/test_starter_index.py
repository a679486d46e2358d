"""The starters write the job list's index row (real Azurite table), once per started job."""

from __future__ import annotations

import json
import logging

import pytest
from azure.data.tables import TableClient

from tests.api.conftest import Api
from tests.api.test_idempotent_submits import KEYED_ID, submit
from tests.support.services import AZURITE_ACCOUNT, AZURITE_KEY, free_port
from videojob import bootstrap
from videojob.adapters.job_index_table import TableJobIndex
from videojob.domain.job_index import DEFAULT_OWNER, TIME_ROWS_END, StatusGroup

VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


def rows(index: TableJobIndex) -> list:
    return list(index.rows(DEFAULT_OWNER, after=None, before=TIME_ROWS_END, limit=100).rows)


def test_a_started_job_and_a_started_batch_get_their_rows_newest_first(client_api: Api, job_index: TableJobIndex):
    job = client_api.download({"url": VIDEO}).json["id"]
    batch = client_api.download({"urls": [VIDEO, VIDEO + "1"]}).json["id"]

    assert [(r.instance_id, r.kind, r.status) for r in rows(job_index)] == [
        (batch, "batch", StatusGroup.RUNNING), (job, "job", StatusGroup.RUNNING)]


def test_a_replayed_submit_writes_no_row_and_a_restart_replaces_the_old_one(client_api: Api,
                                                                            job_index: TableJobIndex):
    submit(client_api, {"url": VIDEO})
    first = rows(job_index)
    client_api.standin.set_status(KEYED_ID, "Running")
    submit(client_api, {"url": VIDEO})  # a duplicate: answered, nothing started
    client_api.standin.set_status(KEYED_ID, "Failed")

    submit(client_api, {"url": VIDEO})  # started again under the same id

    [row] = rows(job_index)
    assert len(first) == 1 and row.instance_id == KEYED_ID and row.key > "t" and row.created >= first[0].created


def test_an_index_that_cannot_be_written_leaves_the_job_started(client_api: Api, caplog: pytest.LogCaptureFixture):
    dead = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"TableEndpoint=http://127.0.0.1:{free_port()}/{AZURITE_ACCOUNT};")
    bootstrap.override(job_index=TableJobIndex(TableClient.from_connection_string(dead, "jobindex", retry_total=0)))

    with caplog.at_level(logging.WARNING):
        answer = client_api.download({"url": VIDEO})

    assert answer.status == 202 and [s.instance_id for s in client_api.standin.started] == [answer.json["id"]]
    assert "is not in the job list" in caplog.text
    assert json.loads(answer.body)["id"] in caplog.text


def test_the_list_is_503_while_the_index_cannot_be_read(client_api: Api):
    dead = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"TableEndpoint=http://127.0.0.1:{free_port()}/{AZURITE_ACCOUNT};")
    bootstrap.override(job_index=TableJobIndex(TableClient.from_connection_string(dead, "jobindex", retry_total=0)))

    answer = client_api.call("list_downloads", "downloads")

    assert answer.status == 503 and answer.error_code == "service_unavailable"
    assert answer.headers["retry-after"]


def test_the_list_shows_what_the_starters_indexed(client_api: Api):
    job = client_api.download({"url": VIDEO}).json["id"]

    answer = client_api.call("list_downloads", "downloads")

    assert answer.status == 200, answer.body
    [row] = answer.json["jobs"]
    assert (row["id"], row["kind"], row["url"]) == (job, "job", VIDEO)
