"""A worker's storage access is its own attempt's and nothing more (issue 19, item 1).

The hole: every worker held a standing credential for the whole output container (locally the
account key in `OUTPUT_CONNECTION_STRING`, in Azure an identity with Storage Blob Data Contributor);
a worker of job A overwrote job B's finished video with other bytes of the same size and B's share
link served them.

Here the real `create_container_group` activity builds job A's worker environment (settings on a
real Azurite, the group recorded by a fake backend), and every storage credential found in it is
turned against job B's finished blob, the output container, and A's own published copy: the worker
tries exactly what a worker taken over by hostile media could. Azurite decides.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient

from activities.container_activities import create_group
from activities.share_link import DelegationSigner
from activities.upload_grant import issue_upload_grant
from tests.orchestration.fakes import FakeBackend
from tests.share_link.test_share_link import ACCOUNT_URL, APP_OID, StubDelegationKeys, query_of, settings_with
from tests.support.services import Azurite
from videojob.contract.staging import WORKER_BLOB_PERMISSION, staged_media_name
from videojob.contract.wire import DownloadRequest
from videojob.domain.activity_wire import CreateInput
from videojob.domain.settings import Settings

RUN = "0a1b2c3d"
VICTIM = "job-b"
ATTACKER = "job-a"
DATA = Path(__file__).parent / "data" / "sas_permissions.json"


@pytest.fixture
def stack(azurite: Azurite) -> tuple[Settings, BlobServiceClient]:
    """The app's settings on Azurite, fresh containers, and job B's finished (published) video."""
    suffix = uuid.uuid4().hex[:10]
    settings = settings_with(OUTPUT_CONNECTION_STRING=azurite.connection_string,
                             OUTPUT_CONTAINER=f"out-{suffix}", STAGING_CONTAINER=f"stage-{suffix}")
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.create_container(settings.output_container)
    service.get_blob_client(settings.output_container, f"{VICTIM}/video.mp4").upload_blob(b"B" * 4096)
    return settings, service


def worker_env(settings: Settings, job_id: str = ATTACKER, *, created: datetime | None = None,
               deadline: datetime | None = None, mode: str = "download") -> dict[str, str]:
    """What the create activity gives the worker of `job_id` (attempt 1 of run `RUN`)."""
    created = created or datetime.now(UTC)
    payload: dict[str, Any] = {
        "jobId": job_id, "request": DownloadRequest("https://youtu.be/x").to_wire(), "run": RUN, "attempt": 1,
        "createdAt": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "deadline": (deadline or created + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if mode == "list":
        payload |= {"mode": "list", "maxItems": 5}
    backend = FakeBackend()
    answer = create_group(json.loads(json.dumps(payload)), lambda: settings, lambda: backend)
    assert answer["ok"], answer
    return backend.specs[-1].environment()


class Credential:
    """One storage credential found in a worker's environment, and what it can be pointed at."""

    def __init__(self, service: BlobServiceClient | None = None, sas: str | None = None, endpoint: str = ""):
        self.service, self.sas, self.endpoint = service, sas, endpoint

    def blob(self, container: str, name: str) -> BlobClient:
        if self.service is not None:
            return self.service.get_blob_client(container, name)
        return BlobClient.from_blob_url(f"{self.endpoint}/{container}/{name}?{self.sas}")

    def container(self, container: str) -> ContainerClient:
        if self.service is not None:
            return self.service.get_container_client(container)
        return ContainerClient.from_container_url(f"{self.endpoint}/{container}?{self.sas}")


def credentials_in(env: dict[str, str]) -> list[Credential]:
    """Every storage credential a worker could lift from its environment: a connection string or
    account key, and every SAS (reused on any name: the signature, not the URL, is what it holds)."""
    found: list[Credential] = []
    for value in env.values():
        if "AccountKey=" in value:
            found.append(Credential(service=BlobServiceClient.from_connection_string(value)))
        elif value.startswith("http") and "sig=" in value:
            parts = urlsplit(value)
            path = parts.path.strip("/").split("/")
            account = f"/{path[0]}" if parts.port else ""  # Azurite's URLs carry the account
            found.append(Credential(sas=parts.query, endpoint=f"{parts.scheme}://{parts.netloc}{account}"))
    assert found, "the worker has no storage credential at all: it could not upload"
    return found


def refused(action: Any) -> bool:
    try:
        result = action()
        if hasattr(result, "__iter__") and not isinstance(result, (bytes, dict)):
            list(result)
    except HttpResponseError as e:
        return e.status_code in (401, 403)
    return False


def test_a_worker_credential_cannot_touch_another_jobs_finished_blob(stack):
    settings, service = stack
    out = settings.output_container
    victim = f"{VICTIM}/video.mp4"
    other_staging = staged_media_name(VICTIM, RUN, 1)
    for credential in credentials_in(worker_env(settings)):
        target = credential.blob(out, victim)
        assert refused(lambda t=target: t.download_blob().readall()), "read another job's video"
        assert refused(lambda t=target: t.upload_blob(b"A" * 4096, overwrite=True)), "overwrote it (same size)"
        assert refused(lambda t=target: t.delete_blob()), "deleted it"
        assert refused(lambda c=credential: c.blob(out, f"{VICTIM}/planted.mp4").upload_blob(b"x")), "wrote beside it"
        assert refused(lambda c=credential: c.container(out).list_blobs()), "listed the output container"
        assert refused(lambda c=credential: c.container(settings.staging_container).list_blobs()), "listed staging"
        assert refused(lambda c=credential: c.blob(settings.staging_container, other_staging).upload_blob(
            b"x", overwrite=True)), "wrote another job's staging blob"
    assert service.get_blob_client(out, victim).download_blob().readall() == b"B" * 4096


def test_a_worker_credential_cannot_read_or_delete_even_its_own_staging_blob(stack):
    settings, service = stack
    env = worker_env(settings)
    own = staged_media_name(ATTACKER, RUN, 1)
    for credential in credentials_in(env):
        blob = credential.blob(settings.staging_container, own)
        if refused(lambda b=blob: b.upload_blob(b"mine", overwrite=True)):
            continue  # the record's SAS: not this name
        assert refused(lambda b=blob: b.download_blob().readall()), "read back"
        assert refused(lambda b=blob: b.get_blob_properties()), "read properties"
        assert refused(lambda b=blob: b.delete_blob()), "deleted"


def test_a_worker_credential_cannot_write_its_own_published_copy_after_the_job(stack):
    """The final copy is the app's: published under the reported name, which no worker credential names."""
    settings, service = stack
    env = worker_env(settings)
    final = f"{ATTACKER}/video.mp4"
    service.get_blob_client(settings.output_container, final).upload_blob(b"V" * 2048)  # as publishing leaves it
    for credential in credentials_in(env):
        assert refused(lambda c=credential: c.blob(settings.output_container, final).upload_blob(
            b"X" * 2048, overwrite=True)), "rewrote its own published video"
    assert service.get_blob_client(settings.output_container, final).download_blob().readall() == b"V" * 2048


def test_a_worker_credential_stops_working_at_the_jobs_deadline(stack):
    settings, _ = stack
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    env = worker_env(settings, created=long_ago, deadline=long_ago + timedelta(hours=2))  # ended an hour ago
    for credential in credentials_in(env):
        for name in (staged_media_name(ATTACKER, RUN, 1), f"{ATTACKER}/{RUN}/a1/record.json"):
            assert refused(lambda c=credential, n=name: c.blob(settings.staging_container, n).upload_blob(
                b"late", overwrite=True)), "wrote after the deadline"


def test_a_listing_worker_gets_no_media_credential(stack):
    settings, _ = stack
    env = worker_env(settings, mode="list")
    media = staged_media_name(ATTACKER, RUN, 1)
    for credential in credentials_in(env):
        assert refused(lambda c=credential: c.blob(settings.staging_container, media).upload_blob(b"x"))


def test_the_worker_sas_permission_is_what_the_documented_block_upload_needs():
    """`w` is what Put Block and Put Block List need (in every service version Azurite 3.35 and
    the SDK speak); nothing that reads, lists or deletes. Extract: data/sas_permissions.json."""
    facts = json.loads(DATA.read_text())
    needed = set(facts["azurite_3_35_blob_sas"]["Put Block"]) | set(facts["azurite_3_35_blob_sas"]["Put Block List"])
    assert set(WORKER_BLOB_PERMISSION) == needed == {"w"}
    assert not set(WORKER_BLOB_PERMISSION) & {"r", "l", "d", "x", "y", "t", "a"}
    assert "Put Block" in facts["version_2026_04_06"]["text"]  # before that version `c` cannot stage blocks


def test_in_azure_the_worker_sas_is_user_delegation_write_only_per_blob_until_the_deadline():
    """`OUTPUT_ACCOUNT_URL`, no key: signed with a delegation key of the app's identity (a stub key;
    `generate_blob_sas` runs for real), as share links are."""
    keys = StubDelegationKeys()
    settings = settings_with(OUTPUT_ACCOUNT_URL=ACCOUNT_URL)
    created, deadline = datetime(2026, 3, 1, 12, 0, tzinfo=UTC), datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
    job = CreateInput(ATTACKER, DownloadRequest("https://youtu.be/x"), created, deadline, 2, run=RUN)

    grant = issue_upload_grant(settings, job, signer=DelegationSigner(ACCOUNT_URL, "videodlout", keys))

    for url, name in ((grant.media_url, "media"), (grant.record_url, "record.json")):
        assert url is not None and url.startswith(f"{ACCOUNT_URL}/staging/{ATTACKER}/{RUN}/a2/{name}?")
        q = query_of(url)
        assert (q["sp"], q["sr"], q["spr"]) == ("w", "b", "https")  # write only, this one blob, HTTPS
        assert q["se"] == "2026-03-01T14:00:00Z" == q["ske"]  # the job's deadline
        assert q["st"] == "2026-03-01T11:55:00Z"
        assert q["skoid"] == APP_OID  # the app's identity signed it; the worker has none to use
    assert "sig=" not in repr(grant) and "sig=" not in str(grant)
