"""The `aci` backend against the real SDK pipeline, with ARM replaced by a recording transport."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from tests.backends.arm_recorded import (
    COUNT_QUOTA_AT_LIMIT_MESSAGE,
    REGISTRY_CREDENTIAL_ERRORS,
    RESOURCE_GROUP_NOT_FOUND,
    SPOT_QUOTA_MESSAGE,
    authorization_failed,
    failed_mount_group,
    group_without_instance_view,
    quota_refusal,
    quota_refusal_message,
)
from tests.backends.arm_transport import (
    GROUPS_PATH,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    TOKEN,
    Exchange,
    FakeCredential,
    RecordingTransport,
    arm_error,
    group_json,
    group_path,
    operation_json,
)
from videojob.adapters.containers import ContainerBackend, make_backend
from videojob.adapters.containers.aci import AciBackend
from videojob.adapters.containers.arm_errors import AUTHORIZATION_PROPAGATION_SECONDS
from videojob.contract.staging import UploadGrant
from videojob.contract.wire import DownloadRequest
from videojob.domain.container_port import BackendError, ContainerState
from videojob.domain.container_spec import build_container_spec
from videojob.domain.failure_reason import FailureReason
from videojob.domain.settings import load_settings

IDENTITY = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-worker"
)
SIGNING_KEY = "k" * 40
CONNECTION_STRING = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0LWFjY291bnQta2V5;"
REGISTRY_PASSWORD = "registry-pass-w0rd-that-must-not-leak"
ASYNC_OP = "https://management.azure.com/subscriptions/x/providers/Microsoft.ContainerInstance/locations/westeurope/operations/op1"


def make_settings(**extra: str):
    env = {
        "CONTAINER_BACKEND": "aci",
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "ACI_RESOURCE_GROUP": RESOURCE_GROUP,
        "ACI_LOCATION": "westeurope",
        "WORKER_IMAGE": "registry.example/worker:1",
        "WORKER_IDENTITY_RESOURCE_ID": IDENTITY,
        "WORKER_IDENTITY_CLIENT_ID": "client-id-of-worker",
        "WORKER_CPU": "2",
        "WORKER_MEMORY_GB": "3.5",
        "REGISTRY_SERVER": "registry.example",
        "OUTPUT_CONNECTION_STRING": CONNECTION_STRING,
        "OUTPUT_CONTAINER": "downloads",
        "CALLBACK_BASE_URL": "https://fn.example",
        "CALLBACK_SIGNING_KEY": SIGNING_KEY,
        "WEBSITE_SITE_NAME": "vd-app",
    }
    env.update(extra)
    return load_settings(environ=env)


def make_spec(**extra: str):
    created = datetime(2026, 1, 1, tzinfo=UTC)
    return build_container_spec(
        DownloadRequest(url="https://youtu.be/abc"),
        make_settings(**extra),
        "job-1",
        created,
        created + timedelta(hours=2),
        upload=UploadGrant(  # the worker's only storage credential: secure values, as the token
            record_url="https://out.blob.core.windows.net/staging/job-1/r/a1/record.json?sp=w&sig=r",
            media_url="https://out.blob.core.windows.net/staging/job-1/r/a1/media?sp=w&sig=m",
        ),
    )


def backend(transport: RecordingTransport, **kwargs) -> AciBackend:
    return AciBackend(
        FakeCredential(), SUBSCRIPTION, RESOURCE_GROUP, transport=transport, polling_interval=0, retry_total=0, **kwargs
    )


def put_exchanges(name: str, final: dict) -> list[Exchange]:
    """A create as ARM does it: 201 + Azure-AsyncOperation, operation polled, then the final GET."""
    return [
        Exchange("PUT", group_path(name), 201, group_json(name, provisioning="Creating", instance_view=False),
                 {"Azure-AsyncOperation": ASYNC_OP}),
        Exchange("GET", "/subscriptions/x/providers/Microsoft.ContainerInstance/locations/westeurope/operations/op1",
                 200, operation_json("InProgress"), {"Azure-AsyncOperation": ASYNC_OP}),
        Exchange("GET", "/subscriptions/x/providers/Microsoft.ContainerInstance/locations/westeurope/operations/op1",
                 200, operation_json("Succeeded")),
        Exchange("GET", group_path(name), 200, final),
    ]


def not_found(name: str) -> Exchange:
    return Exchange("GET", group_path(name), 404, arm_error("ResourceNotFound", f"group {name} not found"))


def test_satisfies_the_backend_protocol():
    assert isinstance(backend(RecordingTransport()), ContainerBackend)


def test_create_sends_a_locked_down_group_and_waits_for_the_operation():
    spec = make_spec()
    t = RecordingTransport(not_found(spec.name), *put_exchanges(spec.name, group_json(spec.name)))
    state = backend(t).create(spec)

    assert state.name == spec.name and state.state == ContainerState.RUNNING and state.is_active
    assert not t.script, "every scripted exchange was used (operation polled, final GET made)"
    put = next(r for r in t.requests if r.method == "PUT")
    assert put.query["api-version"] == ["2023-05-01"]
    assert put.headers["Authorization"] == f"Bearer {TOKEN}"
    body = put.json()
    props = body["properties"]
    assert body["location"] == "westeurope"
    assert body["tags"] == spec.tag_map() and body["tags"]["managedBy"] == "vd-app"
    assert body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}
    assert props["restartPolicy"] == "Never"
    assert props["osType"] == "Linux"
    assert "ipAddress" not in props
    assert props["imageRegistryCredentials"] == [{"server": "registry.example", "identity": IDENTITY}]
    (container,) = props["containers"]
    assert container["name"] == "worker"
    assert container["properties"]["image"] == "registry.example/worker:1"
    assert container["properties"]["resources"] == {"requests": {"cpu": 2.0, "memoryInGB": 3.5}}
    assert "ports" not in container["properties"]
    env = {e["name"]: e for e in container["properties"]["environmentVariables"]}
    secure = dict(spec.secure_env)
    assert set(secure) == {"CALLBACK_TOKEN", "STAGING_MEDIA_URL", "STAGING_RECORD_URL"}
    for name, value in secure.items():
        assert env[name] == {"name": name, "secureValue": value}
    for name, value in spec.env:
        assert env[name] == {"name": name, "value": value}
    plain_values = [e.get("value", "") for e in env.values()]
    assert not any(s in v for s in secure.values() for v in plain_values)


COOKIES = "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t4102444800\tSID\tcookie-value-that-must-not-leak\n"
PROXY = "http://proxyuser:proxy-pass-w0rd-that-must-not-leak@proxy.example:3128"


def test_cookies_travel_in_a_read_only_secret_volume_and_the_proxy_as_a_secure_value(caplog):
    spec = make_spec(YOUTUBE_COOKIES=COOKIES, WORKER_PROXY_URL=PROXY, YTDLP_EXTRACTOR_ARGS="youtube:player_client=mweb")
    t = RecordingTransport(not_found(spec.name), *put_exchanges(spec.name, group_json(spec.name)))
    caplog.set_level(logging.DEBUG)
    backend(t).create(spec)

    put = next(r for r in t.requests if r.method == "PUT")
    props = put.json()["properties"]
    (volume,) = props["volumes"]
    assert set(volume) == {"name", "secret"}
    assert base64.b64decode(volume["secret"]["cookies.txt"]).decode() == COOKIES.strip()
    (container,) = props["containers"]
    (mount,) = container["properties"]["volumeMounts"]
    assert mount == {"name": volume["name"], "mountPath": "/mnt/videojob-secrets", "readOnly": True}
    env = {e["name"]: e for e in container["properties"]["environmentVariables"]}
    assert env["COOKIES_FILE"] == {"name": "COOKIES_FILE", "value": "/mnt/videojob-secrets/cookies.txt"}
    assert env["PROXY_URL"] == {"name": "PROXY_URL", "secureValue": PROXY}
    assert env["YTDLP_EXTRACTOR_ARGS"] == {"name": "YTDLP_EXTRACTOR_ARGS", "value": "youtube:player_client=mweb"}
    # Nothing secret in a plain value, nor anywhere in the logs; the cookies only in the volume.
    plain = json.dumps([e.get("value") for e in env.values()])
    body_without_volume = put.body.decode().replace(volume["secret"]["cookies.txt"], "")
    for secret in ("cookie-value-that-must-not-leak", "proxy-pass-w0rd-that-must-not-leak"):
        assert secret not in plain
        assert secret not in caplog.text
    assert "cookie-value-that-must-not-leak" not in body_without_volume
    assert "cookie-value" not in repr(spec) and "proxy-pass" not in repr(spec)


def test_a_group_without_cookies_has_no_volume():
    spec = make_spec()
    t = RecordingTransport(not_found(spec.name), *put_exchanges(spec.name, group_json(spec.name)))
    backend(t).create(spec)
    props = next(r for r in t.requests if r.method == "PUT").json()["properties"]
    assert "volumes" not in props and "volumeMounts" not in props["containers"][0]["properties"]
    assert "COOKIES_FILE" not in {e["name"] for e in props["containers"][0]["properties"]["environmentVariables"]}


def test_registry_password_is_sent_only_when_configured():
    spec = make_spec(REGISTRY_USERNAME="puller", REGISTRY_PASSWORD=REGISTRY_PASSWORD)
    t = RecordingTransport(not_found(spec.name), *put_exchanges(spec.name, group_json(spec.name)))
    backend(t).create(spec)
    props = next(r for r in t.requests if r.method == "PUT").json()["properties"]
    assert props["imageRegistryCredentials"] == [
        {"server": "registry.example", "username": "puller", "password": REGISTRY_PASSWORD}
    ]


def test_secrets_never_reach_the_logs_even_with_sdk_body_logging_asked_for(caplog):
    spec = make_spec(REGISTRY_USERNAME="puller", REGISTRY_PASSWORD=REGISTRY_PASSWORD)
    t = RecordingTransport(not_found(spec.name), *put_exchanges(spec.name, group_json(spec.name)))
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="azure")  # a worker test in the same process may have quietened it
    # A caller asking for network traces must not get request bodies (they carry secure values).
    AciBackend(FakeCredential(), SUBSCRIPTION, RESOURCE_GROUP, transport=t, polling_interval=0,
               retry_total=0, logging_enable=True).create(spec)
    assert "creating container group" in caplog.text  # the backend did log, at INFO
    assert "PUT" in caplog.text or "Request URL" in caplog.text  # and the SDK logged the request line
    secrets = [v for _, v in spec.secure_env] + [REGISTRY_PASSWORD, TOKEN]
    for secret in secrets:
        assert secret not in caplog.text


def test_existing_group_is_reported_not_recreated():
    spec = make_spec()
    t = RecordingTransport(Exchange("GET", group_path(spec.name), 200, group_json(spec.name)))
    assert backend(t).create(spec).state == ContainerState.RUNNING
    assert [r.method for r in t.requests] == ["GET"]


@pytest.mark.parametrize("provisioning", ["Failed", "Canceled", "NotAccessible"])
def test_group_that_failed_to_provision_is_deleted_and_created_again(provisioning):
    spec = make_spec()
    t = RecordingTransport(
        Exchange("GET", group_path(spec.name), 200, group_without_instance_view(spec.name, provisioning)),
        Exchange("DELETE", group_path(spec.name), 200, group_json(spec.name)),
        *put_exchanges(spec.name, group_json(spec.name)),
    )
    assert backend(t).create(spec).state == ContainerState.RUNNING
    assert [r.method for r in t.requests] == ["GET", "DELETE", "PUT", "GET", "GET", "GET"]


def test_failed_async_operation_is_not_retryable_with_its_code():
    spec = make_spec()
    t = RecordingTransport(
        not_found(spec.name),
        Exchange("PUT", group_path(spec.name), 201, group_json(spec.name, provisioning="Creating", instance_view=False),
                 {"Azure-AsyncOperation": ASYNC_OP}),
        Exchange("GET", "/subscriptions/x/providers/Microsoft.ContainerInstance/locations/westeurope/operations/op1",
                 200, operation_json("Failed", arm_error("InaccessibleImage",
                                                        "The image 'registry.example/worker:1' is not accessible."))),
    )
    with pytest.raises(BackendError) as e:
        backend(t).create(spec)
    assert e.value.code == "InaccessibleImage"
    assert e.value.retryable is False
    assert "not accessible" in e.value.message


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, "InvalidContainerGroupName", False),
        (400, "ContainerGroupQuotaReached", True),  # not now: the job waits in the queue
        (409, "ContainerGroupQuotaReached", True),
        (409, "ServiceUnavailable", True),
        (409, "ContainerGroupTransitioning", True),
        (403, "AuthorizationFailed", False),
        (429, "TooManyRequests", True),
        (500, "InternalServerError", True),
        (503, None, True),
        (400, "SomethingElse", False),
    ],
)
def test_create_errors_are_classified(status, code, retryable):
    spec = make_spec()
    body = arm_error(code, "details from ARM") if code else None
    t = RecordingTransport(not_found(spec.name), Exchange("PUT", group_path(spec.name), status, body))
    with pytest.raises(BackendError) as e:
        backend(t).create(spec)
    assert e.value.retryable is retryable
    assert e.value.code == (code or "ServerError")


def test_connection_failure_is_retryable():
    class Refusing(RecordingTransport):
        def send(self, request, **kwargs):
            from azure.core.exceptions import ServiceRequestError

            raise ServiceRequestError("connection refused")

    with pytest.raises(BackendError) as e:
        backend(Refusing()).state("dl-x")
    assert e.value.retryable is True and e.value.code == "ConnectionError"


def test_state_of_missing_group_is_missing():
    t = RecordingTransport(not_found("dl-gone"))
    s = backend(t).state("dl-gone")
    assert (s.state, s.is_active) == (ContainerState.MISSING, False)


@pytest.mark.parametrize(
    ("group_state", "container_state", "exit_code", "expected"),
    [
        ("Running", "Running", None, ContainerState.RUNNING),
        # The worker died but ACI still says Running for a moment: the heartbeat must see it dead.
        ("Running", "Terminated", 3, ContainerState.FAILED),
        ("Running", "Terminated", 0, ContainerState.SUCCEEDED),
        ("Succeeded", "Terminated", 0, ContainerState.SUCCEEDED),
        ("Failed", "Terminated", 137, ContainerState.FAILED),
        ("Stopped", "Terminated", 143, ContainerState.STOPPED),
        ("Pending", "Waiting", None, ContainerState.PENDING),
        (None, None, None, ContainerState.PENDING),
    ],
)
def test_state_maps_group_and_worker_container(group_state, container_state, exit_code, expected):
    body = group_json("dl-a", group_state=group_state, container_state=container_state, exit_code=exit_code,
                      detail="Error" if exit_code else None)
    s = backend(RecordingTransport(Exchange("GET", group_path("dl-a"), 200, body))).state("dl-a")
    assert s.state == expected
    assert s.exit_code == exit_code
    assert s.is_active is (expected in (ContainerState.RUNNING, ContainerState.PENDING))


@pytest.mark.parametrize("group_state", [None, "Pending"])
def test_state_of_a_group_that_never_started_explains_why(group_state):
    body = group_json("dl-a", provisioning="Failed", group_state=group_state, container_state="Waiting",
                      events=["Failed to pull image \"registry.example/worker:1\""])
    s = backend(RecordingTransport(Exchange("GET", group_path("dl-a"), 200, body))).state("dl-a")
    assert s.state == ContainerState.FAILED
    assert "Failed to pull image" in (s.detail or "")


def test_logs_tail_and_missing():
    t = RecordingTransport(
        Exchange("GET", group_path("dl-a") + "/containers/worker/logs", 200, {"content": "line 1\nline 2\n"}),
        Exchange("GET", group_path("dl-b") + "/containers/worker/logs", 404, arm_error("ResourceNotFound", "no")),
    )
    b = backend(t)
    assert b.logs("dl-a", tail=2) == "line 1\nline 2\n"
    assert t.requests[0].query["tail"] == ["2"]
    assert b.logs("dl-b") == ""


def test_stop_posts_and_ignores_a_missing_group():
    t = RecordingTransport(
        Exchange("POST", group_path("dl-a") + "/stop", 204),
        Exchange("POST", group_path("dl-b") + "/stop", 404, arm_error("ResourceNotFound", "no")),
    )
    b = backend(t)
    b.stop("dl-a")
    b.stop("dl-b")
    assert [r.method for r in t.requests] == ["POST", "POST"]


def test_delete_waits_for_the_operation_and_ignores_a_missing_group():
    t = RecordingTransport(
        Exchange("DELETE", group_path("dl-a"), 202, None, {"Azure-AsyncOperation": ASYNC_OP}),
        Exchange("GET", "/subscriptions/x/providers/Microsoft.ContainerInstance/locations/westeurope/operations/op1",
                 200, operation_json("Succeeded")),
        Exchange("DELETE", group_path("dl-b"), 404, arm_error("ResourceNotFound", "no")),
        Exchange("DELETE", group_path("dl-c"), 204),
    )
    b = backend(t)
    b.delete("dl-a")
    b.delete("dl-b")
    b.delete("dl-c")
    assert not t.script


def test_delete_conflict_is_retryable():
    t = RecordingTransport(
        Exchange("DELETE", group_path("dl-a"), 409, arm_error("ContainerGroupTransitioning", "still transitioning")),
    )
    with pytest.raises(BackendError) as e:
        backend(t).delete("dl-a")
    assert e.value.retryable is True


def test_list_managed_filters_by_tag_and_fills_in_missing_state():
    ours = {"managedBy": "vd-app", "jobId": "j1"}
    listing = {
        "value": [
            group_json("dl-1", tags=ours, group_state="Stopped", container_state="Terminated", exit_code=1),
            group_json("dl-2", tags={"managedBy": "other-app", "jobId": "j2"}),
            group_json("unrelated", tags={}),
            group_json("dl-3", tags={**ours, "jobId": "j3"}, instance_view=False),
        ]
    }
    t = RecordingTransport(
        Exchange("GET", GROUPS_PATH, 200, listing),
        Exchange("GET", group_path("dl-3"), 200, group_json("dl-3", tags={**ours, "jobId": "j3"},
                                                            group_state="Succeeded", container_state="Terminated",
                                                            exit_code=0)),
    )
    groups = backend(t).list_managed("vd-app")
    assert [(g.name, g.state, g.job_id) for g in groups] == [
        ("dl-1", ContainerState.STOPPED, "j1"),
        ("dl-3", ContainerState.SUCCEEDED, "j3"),
    ]


def test_make_backend_builds_the_aci_backend_with_a_default_credential():
    b = make_backend(make_settings())
    try:
        assert isinstance(b, AciBackend)
    finally:
        b.close()


def test_request_bodies_are_valid_json_without_nulls():
    # ARM rejects some explicit nulls; the serializer must leave unset fields out entirely.
    spec = make_spec()
    t = RecordingTransport(not_found(spec.name), *put_exchanges(spec.name, group_json(spec.name)))
    backend(t).create(spec)
    raw = next(r for r in t.requests if r.method == "PUT").body.decode()
    assert "null" not in raw
    json.loads(raw)


def test_create_that_outlasts_the_timeout_reports_pending():
    import threading

    release = threading.Event()
    spec = make_spec()

    class SlowOperation(RecordingTransport):
        def send(self, request, **kwargs):
            if "/operations/" in request.url:
                release.wait(30)
            return super().send(request, **kwargs)

    t = SlowOperation(
        not_found(spec.name),
        *put_exchanges(spec.name, group_json(spec.name)),
    )
    try:
        state = backend(t, lro_timeout_seconds=0.2).create(spec)
    finally:
        release.set()
    assert state.state == ContainerState.PENDING and state.is_active
    assert "still provisioning" in (state.detail or "")


# ---- ARM answers as Azure publishes them (tests/backends/arm_recorded.py names each source) ----


def test_group_level_events_explain_a_failed_mount():
    body = failed_mount_group("dl-a")
    s = backend(RecordingTransport(Exchange("GET", group_path("dl-a"), 200, body))).state("dl-a")

    assert s.state == ContainerState.FAILED and not s.is_active
    # The container only says its image was pulled; the group says why it never started.
    assert s.detail == "FailedMount: Output: mount error(2): Permission denied"


@pytest.mark.parametrize("provisioning", ["Canceled", "NotAccessible"])
def test_a_group_acis_gave_up_on_is_not_active(provisioning):
    body = group_without_instance_view("dl-a", provisioning)
    s = backend(RecordingTransport(Exchange("GET", group_path("dl-a"), 200, body))).state("dl-a")

    # Taken for Pending, the job would wait for its deadline for a worker that never starts.
    assert (s.state, s.is_active) == (ContainerState.FAILED, False)
    assert s.detail == f"provisioning {provisioning}"


@pytest.mark.parametrize("code", ["AuthorizationFailed", "LinkedAuthorizationFailed"])
@pytest.mark.parametrize(
    ("age", "retryable"),
    [(0, True), (AUTHORIZATION_PROPAGATION_SECONDS - 1, True), (AUTHORIZATION_PROPAGATION_SECONDS, False)],
)
def test_a_refused_authorization_is_retried_while_role_assignments_may_still_propagate(code, age, retryable):
    spec = make_spec()  # its attempt began at 2026-01-01T00:00:00Z
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=age)
    refused = Exchange("PUT", group_path(spec.name), 403, authorization_failed(code))
    t = RecordingTransport(not_found(spec.name), refused)

    with pytest.raises(BackendError) as e:
        backend(t, clock=lambda: now).create(spec)

    assert (e.value.code, e.value.retryable) == (code, retryable)
    assert e.value.message.startswith(f"create {spec.name}: The client ")


@pytest.mark.parametrize("code", sorted(REGISTRY_CREDENTIAL_ERRORS))
def test_registry_credential_errors_are_permanent(code):
    spec = make_spec()
    body = {"error": {"code": code, "message": REGISTRY_CREDENTIAL_ERRORS[code]}}
    t = RecordingTransport(not_found(spec.name), Exchange("PUT", group_path(spec.name), 400, body))

    with pytest.raises(BackendError) as e:
        backend(t).create(spec)

    assert (e.value.code, e.value.retryable) == (code, False)


@pytest.mark.parametrize(
    ("operation", "method", "suffix"),
    [
        ("state", "GET", ""),
        ("stop", "POST", "/stop"),
        ("delete", "DELETE", ""),
        ("logs", "GET", "/containers/worker/logs"),
    ],
)
def test_a_missing_resource_group_is_a_configuration_error_not_a_missing_group(operation, method, suffix):
    t = RecordingTransport(Exchange(method, group_path("dl-a") + suffix, 404, RESOURCE_GROUP_NOT_FOUND))

    with pytest.raises(BackendError) as e:
        getattr(backend(t), operation)("dl-a")

    assert (e.value.code, e.value.retryable) == ("ResourceGroupNotFound", False)
    assert "configuration" in e.value.message and "ACI_RESOURCE_GROUP" in e.value.message


def test_the_sweeper_does_not_act_on_a_missing_resource_group():
    import asyncio

    from sweeper.sweep import sweep

    t = RecordingTransport(Exchange("GET", GROUPS_PATH, 404, RESOURCE_GROUP_NOT_FOUND))

    with pytest.raises(BackendError) as e:
        asyncio.run(sweep(object(), backend(t), make_settings(), datetime(2026, 1, 1, tzinfo=UTC)))

    assert e.value.code == "ResourceGroupNotFound"
    assert [r.method for r in t.requests] == ["GET"]  # listed, nothing deleted


def create_refused_with(status: int, body: dict) -> BackendError:
    """The `BackendError` the ACI backend raises when ARM answers a create's PUT this way."""
    spec = make_spec()
    t = RecordingTransport(not_found(spec.name), Exchange("PUT", group_path(spec.name), status, body))
    with pytest.raises(BackendError) as e:
        backend(t).create(spec)
    return e.value


def test_a_create_above_the_quota_limit_is_refused_for_good_naming_quota_and_request():
    """Issue 18.5: a 2-core worker under a 1-core quota never fits; it was taken for "not now"."""
    error = create_refused_with(400, quota_refusal(quota_refusal_message("StandardCores", "eastus", 1, 0, 2)))

    assert (error.code, error.retryable, error.retry_after_seconds) == ("ContainerGroupQuotaReached", False, None)
    assert error.reason == FailureReason.QUOTA_IMPOSSIBLE
    assert "quota 'StandardCores' in region 'eastus' allows 1 and one container group requests 2" in error.message


@pytest.mark.parametrize("message", [SPOT_QUOTA_MESSAGE, COUNT_QUOTA_AT_LIMIT_MESSAGE], ids=["spot", "at-limit"])
def test_a_create_refused_by_a_quota_that_may_free_is_not_now(message):
    error = create_refused_with(400, quota_refusal(message))

    assert (error.retryable, error.reason) == (True, FailureReason.QUOTA_EXHAUSTED)
    assert error.retry_after_seconds and error.retry_after_seconds > 0


@pytest.mark.parametrize(("detail", "reason"), [("OOMKilled", FailureReason.OUT_OF_MEMORY), ("Error", None)])
def test_state_names_an_out_of_memory_kill_as_a_reason_only_when_acis_detail_says_memory(detail, reason):
    body = group_json("dl-a", group_state="Failed", container_state="Terminated", exit_code=137, detail=detail)
    s = backend(RecordingTransport(Exchange("GET", group_path("dl-a"), 200, body))).state("dl-a")
    assert (s.state, s.exit_code, s.reason) == (ContainerState.FAILED, 137, reason)
