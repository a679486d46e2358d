"""The `podman` backend: real containers of the worker image (a stand-in entrypoint plays the worker),
and the same spec the ACI backend receives."""

from __future__ import annotations

import json
import logging
import subprocess
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from activities.upload_grant import issue_upload_grant
from tests.support.podman import podman, requires_podman, wait_for, worker_image
from videojob.adapters.containers import make_backend
from videojob.adapters.containers.aci import container_group
from videojob.adapters.containers.podman import (
    SCOPE_LABEL,
    SECURE_ENV_MOUNT_PATH,
    PodmanBackend,
    container_environment,
    create_arguments,
    derive_podman_state,
    scope_secret_prefix,
    secret_name,
)
from videojob.contract.container_env import SECURE_ENV_FILE
from videojob.contract.wire import DownloadRequest
from videojob.domain.activity_wire import CreateInput
from videojob.domain.container_port import BackendError, ContainerState
from videojob.domain.container_spec import ContainerSpec, build_container_spec
from videojob.domain.failure_reason import FailureReason
from videojob.domain.settings import PODMAN_DEFAULT_IMAGE, load_settings

SECRET_CONNECTION = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=c2VjcmV0LWtleQ==;" \
    "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"
SIGNING_KEY = "k" * 40
APP = "vd-podman-test"


def settings_for(backend: str, **extra: str):
    return load_settings(
        environ={
            "CONTAINER_BACKEND": backend,
            "OUTPUT_CONNECTION_STRING": SECRET_CONNECTION,
            "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
            "CALLBACK_SIGNING_KEY": SIGNING_KEY,
            "WEBSITE_SITE_NAME": APP,
            "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
            "ACI_RESOURCE_GROUP": "rg",
            "ACI_LOCATION": "westeurope",
            "WORKER_IMAGE": "example.azurecr.io/video-worker:1",
            "WORKER_IDENTITY_RESOURCE_ID": "/subscriptions/x/resourceGroups/rg/providers/id/worker",
            "WORKER_IDENTITY_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
            **extra,
        }
    )


def spec_for(backend: str = "podman", job_id: str | None = None, **extra: str) -> ContainerSpec:
    """As the create activity builds it: with the worker's staging SAS signed by the app."""
    now = datetime.now(UTC)
    request = DownloadRequest(url="https://youtu.be/x")
    job_id = job_id or f"job-{uuid.uuid4().hex[:12]}"
    settings = settings_for(backend, **extra)
    grant = issue_upload_grant(settings, CreateInput(job_id, request, now, now + timedelta(hours=1)))
    return build_container_spec(request, settings, job_id, now, now + timedelta(hours=1), upload=grant)


# --- one spec builder, two adapters ---------------------------------------------------------------


def test_the_podman_and_aci_adapters_carry_the_same_spec() -> None:
    spec = spec_for("aci")
    group = container_group(spec)
    variables = group.containers[0].environment_variables
    aci_env = {v.name: v.value if v.value is not None else v.secure_value for v in variables}
    args = create_arguments(spec, scope="/tmp/scope")

    named = {args[i + 1] for i, a in enumerate(args) if a == "--env"}
    labels = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--label")
    secure = {name for name, _ in spec.secure_env}
    assert secure and not named & secure  # the secure values travel as a podman secret (below)
    assert named - {SECURE_ENV_FILE} | secure == set(aci_env) == set(spec.environment())
    assert args[args.index("--secret") + 1] == f"{secret_name('/tmp/scope', spec.name)},type=mount,target=" + (
        SECURE_ENV_MOUNT_PATH
    )
    assert aci_env == spec.environment()
    assert labels.pop(SCOPE_LABEL) == "/tmp/scope"
    assert labels == group.tags == spec.tag_map()
    resources = group.containers[0].resources.requests
    assert args[args.index("--memory") + 1] == f"{round(resources.memory_in_gb * 1024)}m"
    assert float(args[args.index("--cpus") + 1]) == resources.cpu
    assert args[-1] == group.containers[0].image == spec.image
    assert group.restart_policy == "Never" and args[args.index("--restart") + 1] == "no"


def test_no_value_of_the_environment_is_on_the_command_line() -> None:
    spec = spec_for()
    args = create_arguments(spec, scope="s")
    passed = [args[i + 1] for i, a in enumerate(args) if a == "--env"]
    assert sorted(passed) == sorted(container_environment(spec))  # names only: podman reads values from its env
    line = " ".join(args)
    for name in ("CALLBACK_TOKEN", "STAGING_MEDIA_URL", "STAGING_RECORD_URL", "JOB_URL", "CALLBACK_URL"):
        assert spec.environment()[name] not in line, name


def test_no_account_key_reaches_a_podman_worker() -> None:
    """Issue 19: the podman worker got OUTPUT_CONNECTION_STRING, the account key inside."""
    spec = spec_for()
    env = spec.environment()
    assert not any("AccountKey" in v or "c2VjcmV0LWtleQ==" in v for v in env.values())
    assert "OUTPUT_CONNECTION_STRING" not in env and "OUTPUT_CONNECTION_STRING" not in create_arguments(spec, scope="s")


def test_the_podman_backend_is_chosen_by_setting_and_defaults_to_the_make_image_tag(tmp_path: Path) -> None:
    settings = settings_for("podman", WORKER_IMAGE="")
    assert settings.worker_image == PODMAN_DEFAULT_IMAGE
    assert isinstance(make_backend(settings), PodmanBackend)


@pytest.mark.parametrize(
    ("state", "stopped", "expected", "detail"),
    [
        ({"Status": "created"}, False, ContainerState.PENDING, None),
        ({"Status": "running"}, False, ContainerState.RUNNING, None),
        ({"Status": "exited", "ExitCode": 0}, False, ContainerState.SUCCEEDED, None),
        ({"Status": "exited", "ExitCode": 3}, False, ContainerState.FAILED, None),
        ({"Status": "exited", "ExitCode": 137}, False, ContainerState.FAILED, "out of memory"),
        ({"Status": "exited", "ExitCode": 137, "OOMKilled": True}, False, ContainerState.FAILED, "OOMKilled"),
        ({"Status": "exited", "ExitCode": 143}, True, ContainerState.STOPPED, "stopped"),
        ({"Status": "exited", "ExitCode": 137}, True, ContainerState.STOPPED, "stopped"),
    ],
)
def test_podman_states_map_to_aci_states(
    state: dict[str, Any], stopped: bool, expected: str, detail: str | None
) -> None:
    got = derive_podman_state("dl-x", state, stopped=stopped, memory_limit_bytes=64 * 1024 * 1024)
    assert got.state == expected
    if detail:
        assert got.detail and detail in got.detail
    # The memory kill is a type on the wire, not the detail's words (issue 20.3).
    oom = state.get("ExitCode") == 137 and not stopped
    assert got.reason == (FailureReason.OUT_OF_MEMORY if oom else None)


ZERO_TIME = "0001-01-01T00:00:00Z"  # podman's FinishedAt before the container ended (Go's zero time)


@pytest.mark.parametrize(
    ("state", "stopped", "finished_at"),
    [
        ({"Status": "exited", "ExitCode": 0, "FinishedAt": "2026-11-29T21:30:28.553594044Z"}, False,
         "2026-11-29T21:30:28Z"),
        ({"Status": "exited", "ExitCode": 3, "FinishedAt": "2026-11-29T22:30:28.5+01:00"}, False,
         "2026-11-29T21:30:28Z"),
        ({"Status": "exited", "ExitCode": 137, "FinishedAt": "2026-11-29T21:30:28Z"}, False, "2026-11-29T21:30:28Z"),
        ({"Status": "exited", "ExitCode": 143, "FinishedAt": "2026-11-29T21:30:28Z"}, True, "2026-11-29T21:30:28Z"),
        ({"Status": "running", "FinishedAt": ZERO_TIME}, False, None),
        ({"Status": "created", "FinishedAt": ZERO_TIME}, True, None),
        ({"Status": "exited", "ExitCode": 0, "FinishedAt": ZERO_TIME}, False, None),
        ({"Status": "exited", "ExitCode": 0, "FinishedAt": "yesterday"}, False, None),
        ({"Status": "exited", "ExitCode": 0, "FinishedAt": "2026-11-29T21:30:28"}, False, None),  # no offset
        ({"Status": "exited", "ExitCode": 0}, False, None),
    ],
)
def test_an_ended_container_reports_when_it_ended_in_utc_like_aci(
    state: dict[str, Any], stopped: bool, finished_at: str | None
) -> None:
    assert derive_podman_state("dl-x", state, stopped=stopped).finished_at == finished_at


# --- real containers -----------------------------------------------------------------------------

PRINT_ENV = [
    "python3", "-c",
    "import json, os; e = dict(os.environ); f = e.get('SECURE_ENV_FILE'); e.update(json.load(open(f)) if f else {}); "
    "print(json.dumps(e))",
]  # what the worker sees: its env plus the secure values' file (`worker.config.with_secure_env_file`)
SLEEP = ["python3", "-c", "import time; time.sleep(600)"]
HOG = ["python3", "-c", "b = []\nwhile True: b.append(bytearray(8 << 20))"]


class RecordingRunner:
    """subprocess.run, recording every command line (what `ps` would show)."""

    def __init__(self) -> None:
        self.argv: list[list[str]] = []

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        self.argv.append(list(argv))
        return subprocess.run(argv, **kwargs)  # noqa: PLW1510 (the backend passes check=False)


@pytest.fixture(scope="module")
def image() -> str:
    return worker_image()


@pytest.fixture
def made(tmp_path: Path):
    """Backends made here; every container they started is removed after the test."""
    backends: list[PodmanBackend] = []

    def make(**kwargs: Any) -> PodmanBackend:
        backend = PodmanBackend(tmp_path / f"podman-{len(backends)}", grace_seconds=2, **kwargs)
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.remove_all()


def finished(backend: PodmanBackend, name: str, timeout: float = 120) -> None:
    wait_for(lambda: not backend.state(name).is_active, timeout, f"{name} ends")


@requires_podman
def test_the_worker_container_sees_exactly_the_specs_environment_and_no_secret_leaks(
    image: str, made, caplog: pytest.LogCaptureFixture
) -> None:
    runner = RecordingRunner()
    backend = made(entrypoint=PRINT_ENV, runner=runner)
    spec = replace(spec_for(), image=image)
    caplog.set_level(logging.DEBUG)

    backend.create(spec)
    finished(backend, spec.name)

    ended = backend.state(spec.name)
    assert ended.state == ContainerState.SUCCEEDED
    assert ended.finished_at is not None
    assert abs(datetime.now(UTC) - datetime.fromisoformat(ended.finished_at)) < timedelta(hours=1)
    # podman's log file may trail the exit by a moment on a busy machine
    wait_for(lambda: bool(backend.logs(spec.name, tail=5).strip()), 180, "the container's output in its log")
    seen = json.loads(backend.logs(spec.name, tail=5).strip().splitlines()[-1])
    assert {k: seen.get(k) for k in spec.environment()} == spec.environment()
    secrets = [v for _, v in spec.secure_env]
    assert secrets and all(s for s in secrets)
    for argv in runner.argv:
        assert not any(s in " ".join(argv) for s in secrets), argv
        assert ".Config" not in " ".join(argv)  # podman keeps the env there: never read back
    assert not any(s in caplog.text for s in secrets)


@requires_podman
def test_the_container_has_acis_limits_labels_restart_policy_and_the_hosts_network(image: str, made) -> None:
    backend = made(entrypoint=SLEEP)
    spec = replace(spec_for(WORKER_CPU="0.5", WORKER_MEMORY_GB="0.25"), image=image)
    backend.create(spec)

    out = podman(
        "container", "inspect", "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}} "
        "{{.HostConfig.NetworkMode}} {{json .Config.Labels}}",
        spec.name,
    )
    memory, nano_cpus, restart, network, labels = out.stdout.strip().split(" ", 4)
    assert int(memory) == 256 * 1024 * 1024
    assert int(nano_cpus) == 500_000_000
    assert restart in ("no", "")
    assert network == "host"
    labels = json.loads(labels)
    assert labels.items() >= spec.tag_map().items()  # besides the image's own (io.buildah.version)
    assert labels[SCOPE_LABEL] == backend.scope


@requires_podman
def test_stop_keeps_a_stopped_group_delete_removes_it_and_listing_stays_in_its_scope(image: str, made) -> None:
    backend, other = made(entrypoint=SLEEP), made(entrypoint=SLEEP)
    spec = replace(spec_for(), image=image)
    assert backend.create(spec).state in (ContainerState.RUNNING, ContainerState.PENDING)
    assert backend.create(spec).state in (ContainerState.RUNNING, ContainerState.PENDING)  # idempotent: the same group

    listed = {g.name: g for g in backend.list_managed(APP)}
    assert listed[spec.name].state == ContainerState.RUNNING and listed[spec.name].job_id == spec.tag_map()["jobId"]
    assert other.list_managed(APP) == []  # another devhost's sweeper does not see it

    backend.stop(spec.name)
    assert backend.state(spec.name).state == ContainerState.STOPPED
    assert {g.name: g.state for g in backend.list_managed(APP)} == {spec.name: ContainerState.STOPPED}

    backend.delete(spec.name)
    assert backend.state(spec.name).state == ContainerState.MISSING
    backend.delete(spec.name)  # idempotent
    backend.stop(spec.name)  # a missing group is not an error
    assert backend.logs(spec.name) == ""


@requires_podman
def test_a_worker_over_its_memory_limit_is_failed_with_137_and_an_out_of_memory_detail(image: str, made) -> None:
    backend = made(entrypoint=HOG)
    spec = replace(spec_for(WORKER_MEMORY_GB="0.1"), image=image)
    backend.create(spec)
    finished(backend, spec.name)

    state = backend.state(spec.name)
    assert (state.state, state.exit_code) == (ContainerState.FAILED, 137), state
    assert state.detail and "memory" in state.detail and "102 MiB" in state.detail


@requires_podman
def test_an_image_that_does_not_exist_is_an_inaccessible_image(made) -> None:
    backend = made()
    spec = replace(spec_for(), image="localhost/no-such-image:never")
    with pytest.raises(BackendError) as e:
        backend.create(spec)
    assert e.value.code == "InaccessibleImage" and not e.value.retryable
    assert backend.state(spec.name).state == ContainerState.MISSING


# --- secure values never in `podman inspect` (issue 19) -------------------------------------------

PROXY_SECRET = "proxy-pass-7f3a91"
# The worker image has python3 and no shell; its base has a shell and no python3.
SHOW_ENV_AND_SECURE_FILE = {
    PODMAN_DEFAULT_IMAGE: ["python3", "-c", "import os\nfor k, v in os.environ.items(): print(f'{k}={v}')\n"
                           "print('---')\np = os.environ.get('SECURE_ENV_FILE')\n"
                           "print(open(p).read() if p and os.path.exists(p) else '')"],
    "localhost/debian:bookworm-local": ["/bin/sh", "-c", 'env; echo "---"; cat "$SECURE_ENV_FILE" 2>/dev/null; true'],
}


def an_existing_image() -> str:
    """The worker image if it is built, else its base; never builds one."""
    for image in SHOW_ENV_AND_SECURE_FILE:
        if podman("image", "exists", image).returncode == 0:
            return image
    pytest.skip("no local image to run (neither the worker image nor its base is built)")


def our_secrets() -> list[str]:
    return podman("secret", "ls", "--format", "{{.Name}}").stdout.split()


@requires_podman
def test_no_secure_value_is_in_podman_inspect_and_no_secret_outlives_the_container(made) -> None:
    image = an_existing_image()
    backend = made(entrypoint=SHOW_ENV_AND_SECURE_FILE[image])
    spec = replace(
        spec_for(WORKER_PROXY_URL=f"http://videojob:{PROXY_SECRET}@127.0.0.1:3128"), image=image
    )
    secure = dict(spec.secure_env)
    assert {"CALLBACK_TOKEN", "STAGING_MEDIA_URL", "STAGING_RECORD_URL", "PROXY_URL"} <= secure.keys()
    assert PROXY_SECRET in secure["PROXY_URL"]

    backend.create(spec)
    finished(backend, spec.name)
    assert backend.state(spec.name).state == ContainerState.SUCCEEDED
    for command in (["container", "inspect", spec.name], ["inspect", spec.name]):
        shown = podman(*command).stdout
        assert spec.name in shown
        for name, value in secure.items():
            assert value not in shown, f"{name} is in `podman {command[0]} inspect`"
        assert PROXY_SECRET not in shown
    # The worker still gets every value: the plain ones in its env, the secure ones in the file.
    env_text, _, secure_text = backend.logs(spec.name, tail=200).partition("---")
    assert json.loads(secure_text.strip()) == secure
    for name, value in spec.environment().items():
        if name not in secure:
            assert f"{name}={value}\n" in env_text, name

    backend.delete(spec.name)
    assert backend.state(spec.name).state == ContainerState.MISSING
    assert secret_name(backend.scope, spec.name) not in our_secrets(), "a podman secret outlived its container"


@requires_podman
def test_the_devhosts_cleanup_removes_its_secrets_even_of_a_create_that_failed(made, tmp_path: Path) -> None:
    backend = made()
    spec = replace(spec_for(), image="localhost/no-such-image:never")
    with pytest.raises(BackendError):
        backend.create(spec)
    assert secret_name(backend.scope, spec.name) not in our_secrets()
    # A crash between `secret create` and `create` leaves one behind: the clean-up finds it.
    (tmp_path / "left.json").write_text("{}")
    podman("secret", "create", secret_name(backend.scope, "dl-crashed"), str(tmp_path / "left.json"))
    assert secret_name(backend.scope, "dl-crashed") in our_secrets()
    backend.remove_all()
    assert not [s for s in our_secrets() if s.startswith(scope_secret_prefix(backend.scope))]
