"""The `job_slots` entity against its callers, through the devhost's entity webhook (issue 19.5).

Anyone holding the webhook's key can signal the entity (in Azure that key is in every
`statusQueryGetUri`). Before, a signal could give away another job's slot (`release` with its
id), lift the cap (`acquire` with `capacity: 500`) or jump the queue (`arrived: 1970-01-01`).
Each is sent here as an attacker would, between real holders (`tests/devhost/slots_app.py`), and
the cap, the holders and the order must hold throughout.

A signal gives no answer, so each attack is followed by a probe (a harmless `acquire` of a fresh
id): the entity runs operations in order, so once the probe is in the state the attack has run.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devhost import stack
from tests.e2e.harness import Job, http

CAP = 2
WEBHOOK = "/runtime/webhooks/durabletask"
FOREVER = 60.0


class SlotsHost:
    def __init__(self, state: Path):
        self.env = dict(stack.os.environ) | {
            "MAX_RUNNING_JOBS": str(CAP),
            "CALLBACK_SIGNING_KEY": secrets.token_urlsafe(48),
            "CALLBACK_BASE_URL": "http://127.0.0.1:9",
            "CONTAINER_BACKEND": "local",
            "OUTPUT_ACCOUNT_URL": "https://example.blob.core.windows.net",
            "OUTPUT_CONNECTION_STRING": "",
            "LOCAL_SETTINGS_PATH": str(state / "absent.json"),
        }
        self.args = ("--app", "tests.devhost.slots_app", "--settings", str(state / "local.settings.json"))
        self.devhost = stack.Devhost(stack.free_port(), state, state / "devhost.log")

    @property
    def base(self) -> str:
        return self.devhost.base_url

    def entity_url(self) -> str:
        return f"{self.base}{WEBHOOK}/entities/job_slots/global"

    def state(self) -> dict[str, Any]:
        code, body = http("GET", self.entity_url())
        assert code == 200, (code, body)
        assert len(body["holders"]) <= CAP, body  # the cap holds, whenever anyone looks
        return body

    def signal(self, operation: str, body: Any) -> None:
        # As the Python client's signal_entity sends it: the JSON text of the input as a JSON string.
        # The extension keeps a JSON body as is (RequestMessage.Input) and the SDK's get_input
        # decodes twice, so a bare object body would fail in the entity before any rule is reached;
        # the attack that works is the encoded one (tests/devhost/test_conformance.py).
        code, answer = http("POST", f"{self.entity_url()}?op={operation}", json.dumps(body))
        assert code == 202, (code, answer)

    def probe(self) -> dict[str, Any]:
        """Signal a marker and wait until the entity has run it (and so everything before it)."""
        marker = f"probe-{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self.signal("acquire", {"id": marker, "arrived": now, "capacity": CAP})
        stack.wait_until(lambda: marker in ids(self.state()["queue"]) + ids(self.state()["holders"]), FOREVER,
                         f"probe {marker} run")
        return self.state()

    def hold(self, job_id: str) -> Job:
        code, links = http("POST", f"{self.base}/api/hold/{job_id}?capacity={CAP}")
        assert code == 202, links
        return Job(links["id"], links)


def ids(members: list[dict[str, Any]]) -> list[str]:
    return [m["id"] for m in members]


def custom(job: Job) -> Any:
    return job.status().get("customStatus") or {}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlotsHost]:
    h = SlotsHost(tmp_path_factory.mktemp("slots-devhost"))
    h.devhost.start(h.env, h.args)
    try:
        yield h
    finally:
        h.devhost.stop()


@pytest.fixture(scope="module")
def holders(host: SlotsHost) -> dict[str, Job]:
    """Two jobs holding the two slots and a third one queued first, in that order."""
    jobs: dict[str, Job] = {}
    for name in ("holder-a", "holder-b", "waiter-c"):
        jobs[name] = host.hold(name)
        stack.wait_until(lambda n=name: "granted" in custom(jobs[n]), FOREVER, f"{name} asked")
    assert ids(host.state()["holders"]) == ["holder-a", "holder-b"]
    assert ids(host.state()["queue"])[:1] == ["waiter-c"]
    return jobs


def test_a_foreign_release_frees_nobodys_slot(host: SlotsHost, holders: dict[str, Job]):
    before = host.state()
    for victim in ids(before["holders"]):
        for forged in ({"id": victim}, {"id": victim, "token": "guessed"}, {"id": victim, "token": None}):
            host.signal("release", forged)
            host.signal("step_aside", forged)
    state = host.probe()
    assert ids(state["holders"]) == ids(before["holders"])
    assert ids(state["queue"])[:len(before["queue"])] == ids(before["queue"])


def test_a_caller_cannot_lift_the_cap(host: SlotsHost, holders: dict[str, Job]):
    for n in range(3):
        host.signal("acquire", {"id": f"greedy-{n}", "capacity": 500, "arrived": "2026-01-01T00:00:00Z"})
    before = host.state()
    state = host.probe()
    assert state["capacity"] == CAP
    assert ids(state["holders"]) == ids(before["holders"])


def test_an_old_arrival_jumps_no_queue(host: SlotsHost, holders: dict[str, Job]):
    before = host.state()
    host.signal("acquire", {"id": "early-bird", "arrived": "1970-01-01T00:00:00Z", "capacity": CAP})
    state = host.probe()
    assert ids(state["holders"]) == ids(before["holders"])
    assert ids(state["queue"])[:len(before["queue"]) + 1] == [*ids(before["queue"]), "early-bird"]


def test_only_the_sweeper_evicts(host: SlotsHost, holders: dict[str, Job]):
    before = host.state()
    everyone = ids(before["holders"]) + ids(before["queue"])
    host.signal("evict", {"ids": everyone, "before": "2100-01-01T00:00:00Z"})
    host.signal("evict", {"ids": everyone, "before": "2100-01-01T00:00:00Z", "mac": "0" * 64})
    state = host.probe()
    assert ids(state["holders"]) == ids(before["holders"])
    assert ids(state["queue"])[:len(before["queue"])] == ids(before["queue"])


def test_malformed_operations_change_nothing(host: SlotsHost, holders: dict[str, Job]):
    before = host.state()
    for operation, body in [("acquire", {"id": "../../etc"}), ("release", ["holder-a"]), ("evict", {"ids": "all"}),
                            ("drop", {"id": "holder-a"}), ("acquire", "holder-a"), ("release", None)]:
        host.signal(operation, body)
    after = host.probe()
    assert after["holders"] == before["holders"] and after["capacity"] == CAP
    assert ids(after["queue"])[:len(before["queue"])] == ids(before["queue"])


def test_the_state_shows_no_holder_token(host: SlotsHost, holders: dict[str, Job]):
    state = host.state()
    assert all(set(m) <= {"id", "arrived", "since", "seq", "key", "resting"} for m in state["holders"])


def test_the_holder_itself_still_releases_and_the_head_of_the_queue_gets_the_slot(
        host: SlotsHost, holders: dict[str, Job]):
    before = host.state()
    leaving, head = ids(before["holders"])[0], ids(before["queue"])[0]
    code, _ = http("POST", f"{host.base}{WEBHOOK}/instances/{holders[leaving].id}/raiseEvent/Release", {})
    assert code == 202
    assert holders[leaving].wait_done(timeout=FOREVER)["runtimeStatus"] == "Completed"
    assert head == "waiter-c"  # the first queued; it asked before every probe and attack
    stack.wait_until(lambda: custom(holders[head]).get("granted") is True, FOREVER, f"{head} granted")
    assert ids(host.state()["holders"]) == [*ids(before["holders"])[1:], head]
