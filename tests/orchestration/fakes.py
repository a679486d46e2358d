"""An in-memory container backend for the orchestration tests (ARM cannot run here).

It follows the `ContainerBackend` protocol: stopping or deleting a missing group is not an
error; failures are `BackendError`s scripted per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from videojob.domain.container_port import BackendError, ContainerState, GroupState, ManagedGroup
from videojob.domain.container_spec import ContainerSpec


@dataclass
class FakeBackend:
    create_errors: list[BackendError] = field(default_factory=list)
    """Raised by successive `create` calls (then creates succeed)."""
    failed_create_leaves_group: bool = False
    """ACI keeps a group whose provisioning failed (state Failed)."""
    states: list[GroupState] = field(default_factory=list)
    """Returned by successive `state` calls (then the group's current state)."""
    stop_errors: list[BackendError] = field(default_factory=list)
    delete_errors: list[BackendError] = field(default_factory=list)
    log_text: str = ""
    logs_error: BackendError | None = None
    groups: dict[str, GroupState] = field(default_factory=dict)
    specs: list[ContainerSpec] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def ops(self, op: str) -> list[str]:
        return [name for o, name in self.calls if o == op]

    def create(self, spec: ContainerSpec) -> GroupState:
        self.calls.append(("create", spec.name))
        self.specs.append(spec)
        if self.create_errors:
            error = self.create_errors.pop(0)
            if self.failed_create_leaves_group:
                self.groups[spec.name] = GroupState(spec.name, "Failed", detail="provisioning failed")
            raise error
        self.groups[spec.name] = GroupState(spec.name, ContainerState.RUNNING)
        return self.groups[spec.name]

    def state(self, name: str) -> GroupState:
        self.calls.append(("state", name))
        if self.states:
            return self.states.pop(0)
        return self.groups.get(name) or GroupState(name, ContainerState.MISSING)

    def logs(self, name: str, tail: int = 50) -> str:
        self.calls.append(("logs", name))
        if self.logs_error is not None:
            raise self.logs_error
        return "\n".join(self.log_text.splitlines()[-tail:])

    def stop(self, name: str) -> None:
        self.calls.append(("stop", name))
        if self.stop_errors:
            raise self.stop_errors.pop(0)
        if name in self.groups:
            self.groups[name] = GroupState(name, ContainerState.STOPPED, self.groups[name].exit_code)

    def delete(self, name: str) -> None:
        self.calls.append(("delete", name))
        if self.delete_errors:
            raise self.delete_errors.pop(0)
        self.groups.pop(name, None)

    def list_managed(self, managed_by: str) -> list[ManagedGroup]:
        return [ManagedGroup(g.name, g.state, {"managedBy": managed_by}) for g in self.groups.values()]
