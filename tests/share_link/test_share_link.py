"""`create_share_link`: a read-only SAS URL for the output blob.

The user-delegation path (Azure) runs `generate_blob_sas` for real with a stub delegation key
(Azurite 3.35 rejects user-delegation SAS); the account-key path runs against a real Azurite.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpRequest, HttpResponse, HttpTransport
from azure.core.utils import case_insensitive_dict
from azure.storage.blob import BlobServiceClient, UserDelegationKey

from activities.share_link import DelegationSigner, share_link_activity, signer_from_settings
from tests.support.replay import run_activity_function
from tests.support.services import Azurite
from videojob import bootstrap
from videojob.domain.settings import Settings, load_settings

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ACCOUNT_URL = "https://videodlout.blob.core.windows.net"
APP_OID = "11111111-2222-3333-4444-555555555555"
TENANT = "66666666-7777-8888-9999-000000000000"


def settings_with(**values: str) -> Settings:
    env = {
        "CONTAINER_BACKEND": "local",
        "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
        "CALLBACK_SIGNING_KEY": "c" * 40,
        **values,
    }
    return load_settings(environ=env)


class StubDelegationKeys:
    """Stands in for `BlobServiceClient.get_user_delegation_key` (the one network call)."""

    def __init__(self, fail: Exception | None = None):
        self.requests: list[tuple[datetime, datetime]] = []
        self.fail = fail

    def get_user_delegation_key(self, key_start_time: datetime, key_expiry_time: datetime, **kw: Any):
        self.requests.append((key_start_time, key_expiry_time))
        if self.fail:
            raise self.fail
        key = UserDelegationKey()
        key.signed_oid, key.signed_tid = APP_OID, TENANT
        key.signed_start = key_start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_expiry = key_expiry_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_service, key.signed_version = "b", "2025-01-05"
        key.value = base64.b64encode(b"k" * 32).decode()
        return key


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_user_delegation_sas_is_read_only_for_that_blob_and_expires_as_configured():
    keys = StubDelegationKeys()
    signer = DelegationSigner(ACCOUNT_URL, "videodlout", keys)

    answer = share_link_activity(
        {"jobId": "job-1", "container": "downloads", "name": "job-1/My video.mp4", "hours": 24},
        lambda: settings_with(OUTPUT_ACCOUNT_URL=ACCOUNT_URL),
        signer=signer,
        clock=lambda: NOW,
    )

    assert answer["ok"] is True
    assert answer["expiresAt"] == "2026-03-02T12:00:00Z"
    url = answer["url"]
    assert url.startswith(f"{ACCOUNT_URL}/downloads/job-1/My%20video.mp4?")
    q = query_of(url)
    assert q["sp"] == "r"  # read only
    assert q["sr"] == "b"  # this one blob
    assert q["se"] == "2026-03-02T12:00:00Z"
    assert q["st"] == "2026-03-01T11:55:00Z"  # a little in the past, for clock skew
    assert q["spr"] == "https"
    assert q["skoid"] == APP_OID and q["sktid"] == TENANT  # signed by the app's identity
    assert q["ske"] == "2026-03-02T12:00:00Z"
    assert q["sig"]
    assert keys.requests == [(NOW - timedelta(minutes=5), NOW + timedelta(hours=24))]


class DelegationKeyTransport(HttpTransport):
    """Answers the Get User Delegation Key call as Blob Storage does, recording the request."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []

    def __enter__(self):
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.requests.append(request)
        body = (
            '<?xml version="1.0" encoding="utf-8"?><UserDelegationKey>'
            f"<SignedOid>{APP_OID}</SignedOid><SignedTid>{TENANT}</SignedTid>"
            "<SignedStart>2026-03-01T11:55:00Z</SignedStart><SignedExpiry>2026-03-01T13:00:00Z</SignedExpiry>"
            "<SignedService>b</SignedService><SignedVersion>2025-01-05</SignedVersion>"
            f"<Value>{base64.b64encode(b'k' * 32).decode()}</Value></UserDelegationKey>"
        ).encode()
        return XmlResponse(request, body)


class XmlResponse(HttpResponse):
    def __init__(self, request: HttpRequest, body: bytes):
        super().__init__(request, None)
        self.status_code, self.reason = 200, "OK"
        self.headers = case_insensitive_dict({"Content-Type": "application/xml", "x-ms-version": "2025-01-05"})
        self.content_type = "application/xml"
        self._body = body

    def body(self) -> bytes:
        return self._body


class FakeAppIdentity:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("fake-app-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.scopes.append(scopes)
        return AccessTokenInfo("fake-app-token", int(time.time()) + 3600)


def test_in_azure_the_app_identity_asks_storage_for_a_delegation_key():
    """The production path, with only the socket replaced: the SDK's real request and parsing."""
    settings = settings_with(OUTPUT_ACCOUNT_URL=ACCOUNT_URL)
    transport, identity = DelegationKeyTransport(), FakeAppIdentity()
    signer = signer_from_settings(settings, credential_factory=lambda: identity, transport=transport)

    answer = share_link_activity(
        {"jobId": "job-1", "container": "downloads", "name": "job-1/video.mp4", "hours": 1},
        lambda: settings, signer=signer, clock=lambda: NOW,
    )

    assert isinstance(signer, DelegationSigner) and signer.account_name == "videodlout"
    [request] = transport.requests
    assert request.method == "POST"
    assert request.url.startswith(f"{ACCOUNT_URL}/?")
    assert query_of(request.url) == {"restype": "service", "comp": "userdelegationkey"}
    assert request.headers["Authorization"] == "Bearer fake-app-token"
    assert identity.scopes == [("https://storage.azure.com/.default",)]
    sent = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
    assert "<Start>2026-03-01T11:55:00Z</Start>" in sent and "<Expiry>2026-03-01T13:00:00Z</Expiry>" in sent
    assert answer["ok"] is True
    q = query_of(answer["url"])
    assert (q["sp"], q["sr"], q["skoid"], q["se"]) == ("r", "b", APP_OID, "2026-03-01T13:00:00Z")


def test_a_refused_delegation_key_is_reported_not_raised():
    error = HttpResponseError(message="This request is not authorized to perform this operation.")
    error.status_code = 403
    error.error_code = "AuthorizationPermissionMismatch"
    signer = DelegationSigner(ACCOUNT_URL, "videodlout", StubDelegationKeys(fail=error))

    answer = share_link_activity(
        {"jobId": "job-1", "container": "downloads", "name": "job-1/a.mp4", "hours": 1},
        lambda: settings_with(OUTPUT_ACCOUNT_URL=ACCOUNT_URL),
        signer=signer,
    )

    assert answer["ok"] is False
    assert answer["error"]["code"] == "AuthorizationPermissionMismatch"
    assert answer["error"]["retryable"] is False


@pytest.mark.parametrize(
    "payload",
    [None, {"jobId": "j", "container": "downloads", "name": "j/a.mp4"},
     {"jobId": "j", "container": "downloads", "name": "j/a", "hours": 0},
     {"jobId": "j", "container": "downloads", "name": "j/a", "hours": 169},
     {"jobId": "j", "name": "j/a", "hours": 1},
     {"container": "downloads", "name": "j/a", "hours": 1},
     {"jobId": "../j", "container": "downloads", "name": "../j/a", "hours": 1}],
)
def test_bad_input_is_refused(payload: Any):
    answer = share_link_activity(payload, lambda: settings_with(OUTPUT_ACCOUNT_URL=ACCOUNT_URL))

    assert answer["ok"] is False and answer["error"]["code"] == "invalid_input"


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback Azurite)
        return response.read()


def test_azurite_account_key_sas_downloads_the_blob_and_cannot_write(azurite: Azurite):
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = f"share-{uuid.uuid4().hex[:8]}"
    service.create_container(container)
    content = b"\x00\x01media bytes" * 1000
    service.get_blob_client(container, "job-1/video.mp4").upload_blob(content)
    settings = settings_with(OUTPUT_CONNECTION_STRING=azurite.connection_string, OUTPUT_CONTAINER=container)
    bootstrap.override(settings=settings)
    try:
        import activities

        run = run_activity_function(activities.create_share_link)
        answer = json.loads(run(json.dumps({"jobId": "job-1", "container": container, "name": "job-1/video.mp4",
                                            "hours": 2})))
    finally:
        bootstrap.reset()

    assert answer["ok"] is True
    url = answer["url"]
    assert url.startswith(f"{azurite.blob_endpoint.rstrip('/')}/{container}/job-1/video.mp4?")
    assert query_of(url)["sp"] == "r"
    assert _download(url) == content

    # The same link cannot overwrite the blob or write a new one.
    for name in ("job-1/video.mp4", "job-1/other.mp4"):
        target = url.replace("job-1/video.mp4", name)
        put = urllib.request.Request(
            target, data=b"evil", method="PUT", headers={"x-ms-blob-type": "BlockBlob", "Content-Length": "4"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(put, timeout=10)  # noqa: S310
        assert refused.value.code == 403
    assert _download(url) == content
    # Without the SAS the blob is not public.
    with pytest.raises(urllib.error.HTTPError):
        _download(url.split("?", 1)[0])


FOREIGN_BLOBS = {
    "the host's keys": ("azure-webjobs-secrets", "job-1/host.json"),
    "another job's file": (None, "job-2/video.mp4"),
    "a sibling prefix": (None, "job-10/video.mp4"),
    "a climb out of the prefix": (None, "job-1/../job-2/video.mp4"),
}


@pytest.mark.parametrize(("container", "name"), FOREIGN_BLOBS.values(), ids=FOREIGN_BLOBS.keys())
def test_a_blob_outside_the_jobs_output_is_never_signed(azurite: Azurite, container: str | None, name: str):
    # The last gate: even if the orchestrator asked, no link to another container or job's file.
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    output = f"share-{uuid.uuid4().hex[:8]}"
    target = container or output
    for c in {output, target}:
        if not service.get_container_client(c).exists():
            service.create_container(c)
    if ".." not in name:  # a real blob there (a `..` name cannot even be addressed: URLs resolve it)
        service.get_blob_client(target, name).upload_blob(b"secret", overwrite=True)
    settings = settings_with(OUTPUT_CONNECTION_STRING=azurite.connection_string, OUTPUT_CONTAINER=output)

    answer = share_link_activity({"jobId": "job-1", "container": target, "name": name, "hours": 1}, lambda: settings)

    assert answer["ok"] is False
    assert answer["error"]["code"] == "invalid_result" and answer["error"]["retryable"] is False
    assert "url" not in answer and "sig=" not in json.dumps(answer)
