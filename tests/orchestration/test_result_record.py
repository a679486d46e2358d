"""The worker's result record (issue 12): its format (pure) and the `read_result_record` activity on
Azurite. A record is taken only for the asked job, attempt and run, with the job's MAC."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import BlobClient, BlobServiceClient

from activities.result_record import read_result_record_activity
from activities.upload_grant import issue_upload_grant
from tests.orchestration.conftest import BLOB, JOB_ID, MEDIA
from tests.support.services import Azurite
from videojob import bootstrap
from videojob.contract.output_blob import blob_name_problem
from videojob.contract.result_record import MAX_RECORD_BYTES, RecordRefused, ResultRecord, parse_record
from videojob.contract.staging import result_record_name, staged_record_name
from videojob.contract.wire import DownloadRequest, JobStatus
from videojob.domain.activity_wire import CreateInput, RecordResult, record_input
from videojob.domain.settings import Settings, load_settings
from videojob.domain.tokens import worker_token

SIGNING_KEY = "k" * 40
RUN = "0a1b2c3d"
DEADLINE = datetime(2026, 1, 1, 2, tzinfo=UTC)


def job_token(key: str, job_id: str, run: str | None = RUN, attempt: int = 1) -> str:
    """The token the worker of that attempt held (the record's MAC key)."""
    return worker_token(key, job_id, run, attempt, DEADLINE)


TOKEN = job_token(SIGNING_KEY, JOB_ID)
CONNECTION = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=c2VjcmV0;BlobEndpoint=http://x"


def outcome(job_id: str = JOB_ID, attempt: int = 1, **more: Any) -> JobStatus:
    return JobStatus.from_wire({"jobId": job_id, "seq": 7, "attempt": attempt, "state": "succeeded",
                                "result": {"blob": BLOB, "media": MEDIA}, **more})


def test_record_round_trip():
    data = ResultRecord(outcome(), RUN).to_bytes(TOKEN)
    event = parse_record(data, job_id=JOB_ID, attempt=1, run=RUN, mac_key=TOKEN)
    assert event == outcome()
    assert event.result.blob.sha256 == BLOB["sha256"]


@pytest.mark.parametrize(
    ("job_id", "attempt", "run"), [("job-0002", 1, RUN), (JOB_ID, 2, RUN), (JOB_ID, 1, "ffffffff"), (JOB_ID, 1, None)]
)
def test_other_job_attempt_run_refused(job_id, attempt, run):
    data = ResultRecord(outcome(), RUN).to_bytes(TOKEN)
    key = job_token(SIGNING_KEY, job_id)
    with pytest.raises(RecordRefused):
        parse_record(data, job_id=job_id, attempt=attempt, run=run, mac_key=key)


def test_wrong_or_missing_mac_refused():
    other_job_key = job_token(SIGNING_KEY, "job-0002")
    forged = ResultRecord(outcome(), RUN).to_bytes(other_job_key)  # another job's worker, this job's name
    with pytest.raises(RecordRefused, match="MAC"):
        parse_record(forged, job_id=JOB_ID, attempt=1, run=RUN, mac_key=TOKEN)
    d = json.loads(ResultRecord(outcome(), RUN).to_bytes(TOKEN))
    d["event"]["result"]["blob"]["sizeBytes"] += 1  # tampered after signing
    with pytest.raises(RecordRefused, match="MAC"):
        parse_record(json.dumps(d).encode(), job_id=JOB_ID, attempt=1, run=RUN, mac_key=TOKEN)
    del d["mac"]
    with pytest.raises(RecordRefused):
        parse_record(json.dumps(d).encode(), job_id=JOB_ID, attempt=1, run=RUN, mac_key=TOKEN)


@pytest.mark.parametrize(
    "data",
    [b"x" * (MAX_RECORD_BYTES + 1), b"[" * 50_000 + b"]" * 50_000, b"not json", b"[]", b'{"version": 1}'],
    ids=["oversized", "nested", "text", "array", "partial"],
)
def test_oversized_or_nested_refused(data):
    with pytest.raises(RecordRefused):
        parse_record(data, job_id=JOB_ID, attempt=1, run=RUN, mac_key=TOKEN)


def test_a_progress_is_no_outcome():
    event = JobStatus.from_wire({"jobId": JOB_ID, "seq": 2, "attempt": 1, "state": "progress"})
    with pytest.raises(RecordRefused, match="not an outcome"):
        parse_record(ResultRecord(event, RUN).to_bytes(TOKEN), job_id=JOB_ID, attempt=1, run=RUN, mac_key=TOKEN)


def test_record_holds_no_secret():
    data = ResultRecord(outcome(), RUN).to_bytes(TOKEN)
    assert TOKEN.encode() not in data
    assert SIGNING_KEY.encode() not in data
    assert b"AccountKey" not in data and b"sig=" not in data


def test_the_record_is_the_attempts_staging_record():
    """Issue 19: the record moved out of the output container to the name its own SAS reaches."""
    assert result_record_name(JOB_ID, 1, RUN) == f"{JOB_ID}/{RUN}/a1/record.json" == staged_record_name(JOB_ID, RUN, 1)
    assert result_record_name(JOB_ID, 2, None) == f"{JOB_ID}/a2/record.json"
    assert blob_name_problem(JOB_ID, f"{JOB_ID}/.hidden.mp4") is not None  # '.' names stay reserved


# --- the activity on Azurite ------------------------------------------------------------------------


@pytest.fixture
def output(azurite: Azurite) -> Iterator[tuple[BlobServiceClient, Settings]]:
    container = f"rec-{uuid.uuid4().hex[:12]}"
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.create_container(container)
    settings = load_settings(environ={
        "CONTAINER_BACKEND": "local",
        "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
        "CALLBACK_SIGNING_KEY": SIGNING_KEY,
        "OUTPUT_CONNECTION_STRING": azurite.connection_string,
        "STAGING_CONTAINER": container,
    })
    bootstrap.override(settings=settings)
    yield service, settings
    bootstrap.reset()


def _store(output: tuple[BlobServiceClient, Settings], data: bytes, attempt: int = 1, run: str = RUN) -> None:
    service, settings = output
    service.get_blob_client(settings.staging_container, result_record_name(JOB_ID, attempt, run)).upload_blob(
        data, overwrite=True)


def _read(output: tuple[BlobServiceClient, Settings], attempt: int = 1, run: str = RUN) -> RecordResult:
    _, settings = output
    request = record_input(JOB_ID, attempt, run, DEADLINE)
    return RecordResult.from_wire(read_result_record_activity(request, lambda: settings))


def test_reads_matching_record(output):
    _store(output, ResultRecord(outcome(), RUN).to_bytes(TOKEN))
    answer = _read(output)
    assert answer.ok and answer.event == outcome()


def test_a_record_written_through_the_workers_own_sas_is_read(output):
    _, settings = output
    now = datetime.now(UTC)
    job = CreateInput(JOB_ID, DownloadRequest("https://youtu.be/x"), now, now + timedelta(hours=1), 1, run=RUN)
    grant = issue_upload_grant(settings, job)
    BlobClient.from_blob_url(grant.record_url).upload_blob(ResultRecord(outcome(), RUN).to_bytes(TOKEN))

    answer = _read(output)
    assert answer.ok and answer.event == outcome()


def test_missing_record_is_not_found(output):
    _store(output, ResultRecord(outcome(), RUN).to_bytes(TOKEN), attempt=1)
    answer = _read(output, attempt=2)  # attempt 1's record is never attempt 2's
    assert answer.ok and answer.event is None and answer.refused is None


def test_record_of_other_job_refused(output):
    _store(output, ResultRecord(outcome(), RUN).to_bytes(job_token(SIGNING_KEY, "job-0002")))
    answer = _read(output)
    assert answer.ok and answer.event is None and "MAC" in answer.refused


def test_oversized_record_refused(output):
    _store(output, b" " * (MAX_RECORD_BYTES + 10))
    answer = _read(output)
    assert answer.ok and answer.event is None and "over" in answer.refused


def test_storage_errors_classified(output):
    _, settings = output
    from dataclasses import replace

    unreachable = replace(settings, output_connection_string=(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=c2VjcmV0;"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1"))
    answer = RecordResult.from_wire(
        read_result_record_activity(record_input(JOB_ID, 1, RUN, DEADLINE), lambda: unreachable, retry_total=0))
    assert not answer.ok and answer.error.retryable
    bad = RecordResult.from_wire(read_result_record_activity({"jobId": "../x", "attempt": 1}, lambda: settings))
    assert not bad.ok and not bad.error.retryable
