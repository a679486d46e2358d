"""The container spec: group names, env contract, secrets only in secure env, tags."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from videojob.contract import container_env as E
from videojob.contract.container_env import parse_worker_env
from videojob.contract.staging import UploadGrant
from videojob.contract.wire import DownloadRequest
from videojob.domain.container_spec import attempt_group_name, build_container_spec, group_name, run_token
from videojob.domain.settings import load_settings
from videojob.domain.tokens import TokenClaims, expiry_seconds, verified_claims, worker_token

KEY = "spec-test-signing-key-0123456789abcdefgh"
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DEADLINE = CREATED + timedelta(hours=2)
VALID_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
ACI = {
    "CONTAINER_BACKEND": "aci",
    "AZURE_SUBSCRIPTION_ID": "sub",
    "ACI_RESOURCE_GROUP": "rg",
    "ACI_LOCATION": "westeurope",
    "WORKER_IMAGE": "myregistry.azurecr.io/worker:1",
    "WORKER_IDENTITY_RESOURCE_ID": "/subscriptions/sub/resourceGroups/rg/providers/x/id-worker",
    "WORKER_IDENTITY_CLIENT_ID": "client-id-worker",
    "REGISTRY_SERVER": "myregistry.azurecr.io",
    "OUTPUT_ACCOUNT_URL": "https://account.blob.core.windows.net",
    "CALLBACK_BASE_URL": "https://videodl.example.net/",
    "CALLBACK_SIGNING_KEY": KEY,
    "WEBSITE_SITE_NAME": "videodl",
}


@pytest.mark.parametrize(
    "job_id",
    [
        "0123456789abcdef0123456789abcdef",
        "0123456789ABCDEF0123456789ABCDEF",
        "a--b",
        "-leading-and-trailing-",
        "under_score.dot",
        "x" * 200,
        "é",
        "---",
        "",
    ],
)
def test_group_names_follow_the_aci_rules(job_id: str) -> None:
    name = group_name(job_id)

    assert name.startswith("dl-")
    assert 1 <= len(name) <= 63
    assert VALID_NAME.fullmatch(name), name
    assert "--" not in name


def test_a_generated_instance_id_keeps_its_readable_name() -> None:
    assert group_name("0123456789abcdef0123456789abcdef") == "dl-0123456789abcdef0123456789abcdef"


def test_ids_that_sanitize_alike_get_different_names() -> None:
    ids = ["Job-1", "job-1", "job_1", "job.1", "x" * 100 + "a", "x" * 100 + "b"]

    assert len({group_name(i) for i in ids}) == len(ids)


def test_names_are_stable() -> None:
    assert group_name("Job_1") == group_name("Job_1")


GRANT = UploadGrant(
    record_url="https://account.blob.core.windows.net/staging/job1/r/a1/record.json?sp=w&sig=record-sas-sig",
    media_url="https://account.blob.core.windows.net/staging/job1/r/a1/media?sp=w&sig=media-sas-sig",
)


def spec_for(request: DownloadRequest, **env: str):
    settings = load_settings(environ={**ACI, **env})
    return settings, build_container_spec(request, settings, "job1", CREATED, DEADLINE, upload=GRANT)


def test_env_contract_round_trips_through_the_worker_parser() -> None:
    request = DownloadRequest("https://youtu.be/x", "audio", 720, None, "mp3")
    settings, spec = spec_for(request)

    worker = parse_worker_env(spec.environment())

    assert (worker.job_id, worker.url, worker.format, worker.audio_format) == ("job1", request.url, "audio", "mp3")
    assert worker.max_height == 720
    assert worker.timeout_seconds == 7200
    assert worker.callback_url == "https://videodl.example.net/api/jobs/job1/status"
    # The attempt's token: this job, no run (none given), attempt 1, expiring at the deadline.
    assert verified_claims(KEY, "job1", worker.callback_token) == TokenClaims("", 1, expiry_seconds(DEADLINE))
    assert (worker.media_upload_url, worker.record_upload_url) == (GRANT.media_url, GRANT.record_url)
    assert worker.output_container == settings.output_container
    assert worker.allowed_hosts == settings.allowed_hosts
    assert worker.allow_private_addresses is False


def test_secrets_go_only_to_secure_env() -> None:
    _, spec = spec_for(
        DownloadRequest("https://youtu.be/x"),
        OUTPUT_ACCOUNT_URL="",
        OUTPUT_CONNECTION_STRING="AccountName=devstoreaccount1;AccountKey=very-secret-account-key",
    )
    plain, secure = dict(spec.env), dict(spec.secure_env)

    assert set(secure) == {E.CALLBACK_TOKEN, E.STAGING_MEDIA_URL, E.STAGING_RECORD_URL}
    assert secure[E.CALLBACK_TOKEN] == worker_token(KEY, "job1", None, 1, DEADLINE)
    assert not set(secure) & set(plain)
    flat = repr(spec) + " ".join(plain.values())
    assert "sas-sig" not in flat
    assert secure[E.CALLBACK_TOKEN] not in flat
    assert KEY not in flat + " ".join(secure.values())  # the signing key itself never leaves the app


@pytest.mark.parametrize("output", [
    {"OUTPUT_ACCOUNT_URL": "", "OUTPUT_CONNECTION_STRING": "AccountName=devstoreaccount1;AccountKey=very-secret-key"},
    {"OUTPUT_CONNECTION_STRING": "AccountName=devstoreaccount1;AccountKey=very-secret-key"},
    {},
])
def test_no_storage_account_credential_reaches_the_worker(output: dict[str, str]) -> None:
    """Issue 19: a worker held the account key (Azurite) or an identity with a role on the whole
    output container; its only storage credential is now its attempt's two write-only SAS URLs."""
    _, spec = spec_for(DownloadRequest("https://youtu.be/x"), **output)
    everything = spec.environment()

    assert not any("very-secret-key" in v or "AccountKey" in v for v in everything.values())
    assert "OUTPUT_CONNECTION_STRING" not in everything
    assert "OUTPUT_ACCOUNT_URL" not in everything  # nothing to point an identity at
    assert "AZURE_CLIENT_ID" not in everything  # the worker identity is for the image pull only
    storage = {k for k, v in everything.items() if ".blob." in v}
    assert storage == {E.STAGING_MEDIA_URL, E.STAGING_RECORD_URL}


def test_a_listing_gets_only_its_record_url() -> None:
    settings = load_settings(environ=ACI)
    spec = build_container_spec(DownloadRequest("https://youtube.com/playlist?list=x"), settings, "job1", CREATED,
                                DEADLINE, mode="list", max_items=5, upload=UploadGrant(record_url=GRANT.record_url))

    env = spec.environment()
    assert E.STAGING_MEDIA_URL not in env
    assert parse_worker_env(env).record_upload_url == GRANT.record_url


def test_tags_identity_and_resources() -> None:
    _, spec = spec_for(DownloadRequest("https://youtu.be/x"), WORKER_CPU="2", WORKER_MEMORY_GB="3.5")

    assert spec.tag_map() == {
        "managedBy": "videodl",
        "jobId": "job1",
        "createdAt": "2026-01-02T03:04:05Z",
        "deadline": "2026-01-02T05:04:05Z",
    }
    assert spec.name == "dl-job1"
    assert (spec.cpu, spec.memory_gb, spec.location) == (2.0, 3.5, "westeurope")
    assert spec.identity_resource_id == ACI["WORKER_IDENTITY_RESOURCE_ID"]


def test_image_is_pulled_with_the_worker_identity_unless_credentials_are_configured() -> None:
    _, by_identity = spec_for(DownloadRequest("https://youtu.be/x"))
    _, by_password = spec_for(
        DownloadRequest("https://youtu.be/x"), REGISTRY_USERNAME="puller", REGISTRY_PASSWORD="registry-secret"
    )

    assert by_identity.registry is not None
    assert by_identity.registry.identity == ACI["WORKER_IDENTITY_RESOURCE_ID"]
    assert by_identity.registry.password is None
    assert by_password.registry is not None
    assert (by_password.registry.username, by_password.registry.identity) == ("puller", None)
    assert "registry-secret" not in repr(by_password)


def test_video_requests_do_not_set_an_audio_format_or_height_when_absent() -> None:
    _, spec = spec_for(DownloadRequest("https://youtu.be/x"))

    assert E.JOB_AUDIO_FORMAT not in dict(spec.env)
    assert E.JOB_MAX_HEIGHT not in dict(spec.env)


@pytest.mark.parametrize("job_id", ["0123456789abcdef0123456789abcdef", "job-1", "x" * 200, "Job_1.a", "b0c4-12"])
def test_every_attempt_gets_its_own_valid_group_name(job_id: str) -> None:
    names = [attempt_group_name(job_id, n) for n in range(1, 11)]

    assert names[0] == group_name(job_id)
    assert len(set(names)) == 10
    for name in names:
        assert 1 <= len(name) <= 63 and VALID_NAME.fullmatch(name) and "--" not in name, name
    assert attempt_group_name(job_id, 2) == attempt_group_name(job_id, 2)


def test_a_retry_never_takes_another_jobs_group_name() -> None:
    # Ids that look like a retry's readable part do not collide with a real retry's name (the hash
    # of `job-1#a2` would have to be guessed into the id).
    retry = attempt_group_name("job-1", 2)
    others = {group_name(i) for i in ("job-1-a2", "job-1a2", "job-1#a2x", "job-1-A2")}

    assert retry.startswith("dl-job-1-a2-")
    assert retry not in others


RUNS = [run_token(str(uuid.uuid5(uuid.NAMESPACE_OID, f"job_2026-01-01T00:00:0{n}.000000Z_0"))) for n in range(3)]


@pytest.mark.parametrize("job_id", ["0123456789abcdef0123456789abcdef", "k-" + "a" * 32, "x" * 200,
                                    "3f2a1b4c-0000-4000-8000-123456789abc-999", "Job_1.a"])
def test_every_run_and_attempt_of_a_job_gets_its_own_valid_group_name(job_id: str) -> None:
    names = [attempt_group_name(job_id, n, run) for run in RUNS for n in range(1, 11)]

    assert len(set(names)) == len(names)
    assert not set(names) & {attempt_group_name(job_id, n) for n in range(1, 11)}
    for name in names:
        assert 1 <= len(name) <= 63 and VALID_NAME.fullmatch(name) and "--" not in name, name
    assert attempt_group_name(job_id, 2, RUNS[0]) == attempt_group_name(job_id, 2, RUNS[0])


def test_a_guid_jobs_run_groups_stay_readable() -> None:
    # A GUID job id, its run and its attempt all fit in the 63 characters, untruncated.
    job_id = "3f2a1b4c-0000-4000-8000-123456789abc"
    assert attempt_group_name(job_id, 10, "0a1b2c3d").startswith(f"dl-{job_id}-r0a1b2c3d-a10-")


@pytest.mark.parametrize("text", ["", "not-a-uuid", "zzzzzzzz-0000"])
def test_a_run_token_needs_a_uuid(text: str) -> None:
    with pytest.raises(ValueError):
        run_token(text)


def test_the_spec_names_the_group_of_its_run() -> None:
    settings = load_settings(environ=ACI)
    spec = build_container_spec(
        DownloadRequest("https://youtu.be/x"), settings, "job1", CREATED, DEADLINE, 2, run="0a1b2c3d"
    )

    assert spec.name == attempt_group_name("job1", 2, "0a1b2c3d")
    assert spec.tag_map()["jobId"] == "job1"  # the sweeper finds the job from any run's group


def test_the_spec_of_a_retry_names_its_group_and_tells_the_worker_its_attempt() -> None:
    settings = load_settings(environ=ACI)
    first = build_container_spec(DownloadRequest("https://youtu.be/x"), settings, "job1", CREATED, DEADLINE,
                                 upload=GRANT)
    third = build_container_spec(DownloadRequest("https://youtu.be/x"), settings, "job1", CREATED, DEADLINE, 3,
                                 upload=GRANT)

    assert first.environment()[E.JOB_ATTEMPT] == "1" and first.name == group_name("job1")
    assert third.environment()[E.JOB_ATTEMPT] == "3" and third.name == attempt_group_name("job1", 3)
    assert third.tag_map()["jobId"] == "job1"  # the sweeper finds the job from any attempt's group
    assert parse_worker_env(third.environment()).attempt == 3
