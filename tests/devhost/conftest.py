"""A devhost running the tiny sample app (tests/devhost/sample_app.py) on a free port."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost import stack
from tests.e2e.harness import Job, http


class SampleHost:
    def __init__(self, state: Path):
        self.state = state
        self.ticks = state / "ticks.txt"
        self.env = dict(stack.os.environ) | {
            "SAMPLE_SCHEDULE": "*/1 * * * * *",
            "SAMPLE_TICKS_FILE": str(self.ticks),
            "CALLBACK_SIGNING_KEY": secrets.token_urlsafe(48),
            "CONTAINER_BACKEND": "aci",  # the sample app uses no containers
        }
        self.args = ("--app", "tests.devhost.sample_app", "--settings", str(state / "local.settings.json"))
        self.devhost = stack.Devhost(stack.free_port(), state, state / "devhost.log")

    @property
    def base(self) -> str:
        return self.devhost.base_url

    def start(self) -> None:
        self.devhost.start(self.env, self.args)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleHost]:
    host = SampleHost(tmp_path_factory.mktemp("sample-devhost"))
    host.start()
    try:
        yield host
    finally:
        host.devhost.stop()


def start(sample: SampleHost, name: str, body: object = None) -> Job:
    """Start orchestration `name` of the sample app through its HTTP starter."""
    code, links = http("POST", f"{sample.base}/api/start/{name}", body)
    assert code == 202, links
    return Job(links["id"], links)
