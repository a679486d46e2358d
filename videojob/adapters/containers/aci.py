"""The `aci` backend: one Azure Container Instances group per job (azure-mgmt-containerinstance).

The mapping from a `ContainerSpec` to a `ContainerGroup` and from a `ContainerGroup` back to a
`GroupState` are pure functions; `AciBackend` only makes the calls and classifies failures
(`arm_errors`). Secrets (secure env values, a registry password) go into the request body and
nowhere else: this module never logs a model, a body or an env value, and the SDK's body
logging (`logging_enable`) is forced off.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import (
    Container,
    ContainerGroup,
    ContainerGroupIdentity,
    EnvironmentVariable,
    ImageRegistryCredential,
    ResourceRequests,
    ResourceRequirements,
    UserAssignedIdentities,
    Volume,
    VolumeMount,
)

from videojob.adapters.containers.arm_errors import ArmFailure, classify_arm_error, short_message
from videojob.domain.container_port import BackendError, ContainerState, GroupState, ManagedGroup
from videojob.domain.container_spec import (
    CONTAINER_NAME,
    SECRETS_MOUNT_PATH,
    TAG_CREATED_AT,
    TAG_MANAGED_BY,
    ContainerSpec,
)
from videojob.domain.failure_reason import FailureReason
from videojob.domain.settings import SettingsError
from videojob.domain.sweep_policy import parse_tag_time

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from videojob.domain.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_LRO_TIMEOUT_SECONDS = 240.0
"""ACI's create operation completes once the container has started. Bounded below the Functions
Consumption plan's default 5-minute function timeout, so the activity answers before the host
kills it; a group still provisioning then is reported Pending and followed by the heartbeat."""

CONNECTION_TIMEOUT_SECONDS = 30
READ_TIMEOUT_SECONDS = 120

DEFAULT_RETRY_TOTAL = 3
"""The SDK's own retries (429/5xx/connection) per call. Its default of 10 with exponential backoff
can keep an activity busy for minutes; the orchestrator retries with durable timers instead."""

GROUP_STATES = {s.lower(): s for s in ContainerState if s != ContainerState.MISSING}
ENDED_PROVISIONING_STATES = frozenset({"failed", "canceled", "notaccessible"})
"""Provisioning states after which ACI does nothing more for the group (the SDK's
`ContainerGroupProvisioningState`): the worker will not start."""
LOG_UNAVAILABLE_CODES = frozenset({"ContainerLogNotAvailable", "ContainerGroupTransitioning"})
SECRETS_VOLUME = "secrets"


# ---------------------------------------------------------------------------------------------
# Pure mapping: spec -> ContainerGroup, ContainerGroup -> GroupState


def container_group(spec: ContainerSpec) -> ContainerGroup:
    """The ARM body for a job's group: run once, Linux, no public IP, the worker's own identity.
    Secret files go into a `secret` volume (base64 in the body, a read-only tmpfs in the
    container); only their paths are env values."""
    env = [EnvironmentVariable(name=k, value=v) for k, v in spec.env]
    env += [EnvironmentVariable(name=k, value=v) for k, v in sorted(spec.file_env(SECRETS_MOUNT_PATH).items())]
    env += [EnvironmentVariable(name=k, secure_value=v) for k, v in spec.secure_env]
    volumes, mounts = None, None
    if spec.secret_files:
        volumes = [
            Volume(
                name=SECRETS_VOLUME,
                secret={f.name: base64.b64encode(f.content.encode("utf-8")).decode("ascii") for f in spec.secret_files},
            )
        ]
        mounts = [VolumeMount(name=SECRETS_VOLUME, mount_path=SECRETS_MOUNT_PATH, read_only=True)]
    container = Container(
        name=spec.container_name,
        image=spec.image,
        resources=ResourceRequirements(requests=ResourceRequests(cpu=spec.cpu, memory_in_gb=spec.memory_gb)),
        environment_variables=env,
        volume_mounts=mounts,
    )
    identity = None
    if spec.identity_resource_id:
        identity = ContainerGroupIdentity(
            type="UserAssigned",
            user_assigned_identities={spec.identity_resource_id: UserAssignedIdentities()},
        )
    registries = None
    if spec.registry is not None:
        registries = [
            ImageRegistryCredential(
                server=spec.registry.server,
                identity=spec.registry.identity,
                username=spec.registry.username,
                password=spec.registry.password,
            )
        ]
    return ContainerGroup(
        location=spec.location,
        tags=spec.tag_map(),
        identity=identity,
        containers=[container],
        image_registry_credentials=registries,
        volumes=volumes,
        restart_policy="Never",
        os_type="Linux",
    )


def worker_container(group: ContainerGroup, container_name: str) -> Container | None:
    containers = group.containers or []
    for c in containers:
        if c.name == container_name:
            return c
    return containers[0] if containers else None


def _last_event(events: list[Any] | None) -> str | None:
    described = [f"{e.name}: {e.message}" if e.name else e.message for e in events or [] if e.message]
    return described[-1] if described else None


def last_event_message(group: ContainerGroup, container: Container | None) -> str | None:
    """The latest event that explains a group that is not running: the group's own events first
    (a failed volume mount, for instance, shows only there), then the worker container's."""
    group_events = group.instance_view.events if group.instance_view is not None else None
    view = container.instance_view if container is not None else None
    return _last_event(group_events) or _last_event(view.events if view is not None else None)


def derive_state(
    group_state: str | None,
    provisioning_state: str | None,
    container_state: str | None,
    exit_code: int | None,
) -> str:
    """One state for the orchestrator and the sweeper.

    A terminated worker container wins over the group state: with restart policy Never the
    worker will not come back, so the heartbeat check must see it as not active even in the
    moment before ACI moves the group itself to Succeeded/Failed. A stopped group stays Stopped
    (its container is terminated too, by the stop). A failed provisioning (e.g. an image that
    cannot be pulled) is Failed even while ACI still calls the group Pending, unless the
    worker runs after all.
    """
    group = GROUP_STATES.get((group_state or "").lower())
    container = (container_state or "").lower()
    provisioning = (provisioning_state or "").lower()
    if group == ContainerState.STOPPED:
        return ContainerState.STOPPED
    if container == "terminated":
        return ContainerState.SUCCEEDED if exit_code == 0 else ContainerState.FAILED
    if container == "running":
        return ContainerState.RUNNING
    if provisioning in ENDED_PROVISIONING_STATES:
        # Failed, Canceled, NotAccessible: not active, whatever the group state still says.
        return ContainerState.FAILED
    if group is not None:
        return group
    if provisioning == "deleting":
        # On its way out: not active, and the sweeper's delete of it is a harmless repeat.
        return ContainerState.STOPPED
    # Accepted/Creating/Pending/Updating, or a listing without an instance view.
    return ContainerState.PENDING


def group_state(group: ContainerGroup, container_name: str = CONTAINER_NAME) -> GroupState:
    container = worker_container(group, container_name)
    current = container.instance_view.current_state if container and container.instance_view else None
    group_view_state = group.instance_view.state if group.instance_view else None
    state = derive_state(
        group_view_state,
        group.provisioning_state,
        current.state if current else None,
        current.exit_code if current else None,
    )
    detail = (current.detail_status if current else None) or None
    if state in (ContainerState.FAILED, ContainerState.PENDING) and not detail:
        detail = last_event_message(group, container)
    if state == ContainerState.FAILED and not detail and group.provisioning_state:
        detail = f"provisioning {group.provisioning_state}"
    exit_code = current.exit_code if current else None
    return GroupState(
        name=group.name or "",
        state=state,
        exit_code=exit_code,
        detail=short_message(detail) or None,
        finished_at=format_finish(current.finish_time) if current and current.finish_time else None,
        reason=FailureReason.OUT_OF_MEMORY if is_memory_kill(state, exit_code, detail) else None,
    )


OOM_KILL_EXIT_CODE = 137


def is_memory_kill(state: str, exit_code: int | None, detail: str | None) -> bool:
    """SIGKILL's exit code and a detail that says memory (Kubernetes-style `OOMKilled`). No
    source says which words ACI uses for an out-of-memory kill (issue 18), so this is the second
    signal; the worker reports `out_of_memory` itself before the kernel kills it. Exit 137 alone
    is not enough: a worker killed from outside exits the same way."""
    words = (detail or "").lower()
    return (state == ContainerState.FAILED and exit_code == OOM_KILL_EXIT_CODE
            and ("oomkilled" in words or "out of memory" in words))


def format_finish(t: Any) -> str:
    """ARM's `finishTime` (a datetime from the SDK) as UTC ISO 8601 text."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(t, "strftime") else str(t)[:40]


# ---------------------------------------------------------------------------------------------
# Failure classification of SDK exceptions


def failure_of(error: AzureError, age_seconds: float | None = None) -> ArmFailure:
    """The status, ARM code and message of an SDK exception, classified (`age_seconds`: how long
    ago the attempt began, see `arm_errors.AUTHORIZATION_PROPAGATION_SECONDS`)."""
    if isinstance(error, ClientAuthenticationError) and error.status_code is None:
        # The credential could not get a token (no identity, wrong AZURE_CLIENT_ID): the
        # identity libraries retry their own endpoints already, so this is configuration.
        return ArmFailure("CredentialUnavailable", short_message(error.message), retryable=False)
    if isinstance(error, HttpResponseError):
        odata = error.error
        code = odata.code if odata is not None else None
        message = (odata.message if odata is not None else None) or error.reason or error.message
        return classify_arm_error(error.status_code, code, message, age_seconds)
    # ServiceRequestError/ServiceResponseError (connection, DNS, read timeout) and friends.
    return classify_arm_error(None, None, f"{type(error).__name__}: {error.message}")


def backend_error(error: AzureError, operation: str, name: str, age_seconds: float | None = None) -> BackendError:
    f = failure_of(error, age_seconds)
    return BackendError(
        f.code, f"{operation} {name}: {f.message}", retryable=f.retryable, retry_after_seconds=f.retry_after_seconds,
        reason=f.reason,
    )


def is_group_missing(error: ResourceNotFoundError) -> bool:
    """A 404 about the container group itself. A 404 `ResourceGroupNotFound` is not "no such
    group" but a configuration error: it must fail loudly, and the sweeper must not take the
    group for gone."""
    return failure_of(error).code != "ResourceGroupNotFound"


# ---------------------------------------------------------------------------------------------


class AciBackend:
    """Container groups in one resource group of one subscription."""

    def __init__(
        self,
        credential: TokenCredential,
        subscription_id: str,
        resource_group: str,
        *,
        lro_timeout_seconds: float = DEFAULT_LRO_TIMEOUT_SECONDS,
        container_name: str = CONTAINER_NAME,
        clock: Callable[[], datetime] | None = None,
        **client_kwargs: Any,
    ):
        # Network-trace logging would write request bodies, secure env values included, at DEBUG.
        client_kwargs["logging_enable"] = False
        self._client = ContainerInstanceManagementClient(credential, subscription_id, **client_kwargs)
        self._resource_group = resource_group
        self._lro_timeout = lro_timeout_seconds
        self._container_name = container_name
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(cls, settings: Settings) -> AciBackend:
        from azure.identity import DefaultAzureCredential

        if not settings.subscription_id or not settings.resource_group:
            raise SettingsError(
                "settings AZURE_SUBSCRIPTION_ID and ACI_RESOURCE_GROUP are required when CONTAINER_BACKEND=aci"
            )
        # DefaultAzureCredential picks the function app's own identity (AZURE_CLIENT_ID when it
        # is user-assigned); the worker's identity only travels in the spec.
        return cls(
            DefaultAzureCredential(),
            settings.subscription_id,
            settings.resource_group,
            retry_total=DEFAULT_RETRY_TOTAL,
            connection_timeout=CONNECTION_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
        )

    @property
    def _groups(self) -> Any:
        return self._client.container_groups

    @contextmanager
    def _classified(self, operation: str, name: str, age_seconds: float | None = None) -> Iterator[None]:
        try:
            yield
        except AzureError as e:
            err = backend_error(e, operation, name, age_seconds)
            log.warning("%s %s failed: %s (retryable=%s)", operation, name, err.code, err.retryable)
            raise err from None

    def _get(self, name: str) -> ContainerGroup | None:
        with self._classified("get", name):
            try:
                return self._groups.get(self._resource_group, name)
            except ResourceNotFoundError as e:
                if not is_group_missing(e):
                    raise
                return None

    def _wait(self, poller: Any, operation: str, name: str, age_seconds: float | None = None) -> tuple[bool, Any]:
        with self._classified(operation, name, age_seconds):
            result = poller.result(timeout=self._lro_timeout)
        return poller.done(), result

    # -- ContainerBackend -----------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> GroupState:
        existing = self._get(spec.name)
        if existing is not None:
            if (existing.provisioning_state or "").lower() not in ENDED_PROVISIONING_STATES:
                # ACI restarts a running group on a changed PUT and refuses to update a terminated
                # one: a retried create must not run the job twice, so it reports what is there.
                log.info("container group %s exists already; not re-created", spec.name)
                return group_state(existing, self._container_name)
            log.info("container group %s did not provision earlier (%s); deleting it to try again",
                     spec.name, existing.provisioning_state)
            self.delete(spec.name)

        log.info(
            "creating container group %s (image %s, %s cpu, %s GB, location %s)",
            spec.name,
            spec.image,
            spec.cpu,
            spec.memory_gb,
            spec.location,
        )
        age = self._age_of(spec)
        with self._classified("create", spec.name, age):
            poller = self._groups.begin_create_or_update(self._resource_group, spec.name, container_group(spec))
        done, result = self._wait(poller, "create", spec.name, age)
        if not done:
            # The group exists and is still provisioning; the orchestrator's heartbeat check
            # follows it from here (a Pending group counts as active).
            log.warning("container group %s still provisioning after %ss", spec.name, self._lro_timeout)
            detail = f"still provisioning after {self._lro_timeout:g}s"
            return GroupState(spec.name, ContainerState.PENDING, detail=detail)
        if result is None:
            return self.state(spec.name)
        state = replace(group_state(result, self._container_name), name=spec.name)
        log.info("container group %s created: %s", spec.name, state.state)
        return state

    def _age_of(self, spec: ContainerSpec) -> float | None:
        """Seconds since the spec's attempt began (its `createdAt` tag), or None if unknown."""
        created = parse_tag_time(spec.tag_map().get(TAG_CREATED_AT))
        return None if created is None else (self._clock() - created).total_seconds()

    def state(self, name: str) -> GroupState:
        group = self._get(name)
        if group is None:
            return GroupState(name, ContainerState.MISSING)
        return replace(group_state(group, self._container_name), name=name)

    def logs(self, name: str, tail: int = 50) -> str:
        try:
            with self._classified("logs", name):
                try:
                    result = self._client.containers.list_logs(
                        self._resource_group, name, self._container_name, tail=tail
                    )
                except ResourceNotFoundError as e:
                    if not is_group_missing(e):
                        raise
                    return ""
        except BackendError as e:
            if e.code in LOG_UNAVAILABLE_CODES:
                return ""
            raise
        return result.content or ""

    def stop(self, name: str) -> None:
        log.info("stopping container group %s", name)
        with self._classified("stop", name):
            try:
                self._groups.stop(self._resource_group, name)
            except ResourceNotFoundError as e:
                if not is_group_missing(e):
                    raise
                log.info("container group %s does not exist; nothing to stop", name)

    def delete(self, name: str) -> None:
        log.info("deleting container group %s", name)
        with self._classified("delete", name):
            try:
                poller = self._groups.begin_delete(self._resource_group, name)
            except ResourceNotFoundError as e:
                if not is_group_missing(e):
                    raise
                log.info("container group %s does not exist; nothing to delete", name)
                return
        try:
            done, _ = self._wait(poller, "delete", name)
        except BackendError as e:
            if e.code == "ResourceNotFound":
                return
            raise
        if not done:
            raise BackendError(
                "DeleteTimeout", f"delete {name}: not finished after {self._lro_timeout:g}s", retryable=True
            )

    def list_managed(self, managed_by: str) -> list[ManagedGroup]:
        out: list[ManagedGroup] = []
        with self._classified("list", self._resource_group):
            groups = list(self._groups.list_by_resource_group(self._resource_group))
        for group in groups:
            tags = dict(group.tags or {})
            if tags.get(TAG_MANAGED_BY) != managed_by:
                continue
            if group.instance_view is None:
                # Listings may omit the instance view; the sweeper needs to know Stopped/Failed.
                fresh = self._get(group.name)
                if fresh is None:
                    continue
                group = fresh
            out.append(ManagedGroup(group.name, group_state(group, self._container_name).state, tags))
        return out

    def close(self) -> None:
        self._client.close()
