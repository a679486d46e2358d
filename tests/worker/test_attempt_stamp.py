"""Every event names the attempt (container group) that sent it, so the orchestrator can ignore
a previous attempt's worker after it has moved on to a fresh group."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.support.services import Azurite
from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import FAST, worker_env
from tests.worker.media_server import MediaServer
from videojob.contract import container_env as E
from worker.runner import EXIT_CONFIG, EXIT_FAILED, EXIT_SUCCEEDED, main


@pytest.mark.parametrize(("given", "stamped"), [({E.JOB_ATTEMPT: "3"}, 3), ({}, 1)])
def test_every_event_carries_the_attempt_from_the_env(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, workspace: Path, given, stamped
) -> None:
    env = worker_env(job_id=uuid.uuid4().hex, url=media_server.url("clip.mp4"), callbacks=callbacks,
                     azurite=azurite, **given)

    assert main(env, tuning=FAST) == EXIT_SUCCEEDED
    events = callbacks.accepted()
    assert [e["state"] for e in events][-1] == "succeeded"
    assert {e.get("attempt") for e in events} == {stamped}


def test_a_failure_report_carries_the_attempt_too(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, workspace: Path
) -> None:
    env = worker_env(job_id=uuid.uuid4().hex, url=media_server.url("missing.mp4"), callbacks=callbacks,
                     azurite=azurite, **{E.JOB_ATTEMPT: "2"})

    assert main(env, tuning=FAST) == EXIT_FAILED
    failed = callbacks.accepted()[-1]
    assert failed["state"] == "failed" and failed["attempt"] == 2


def test_a_malformed_attempt_is_a_configuration_error(callbacks: CallbackReceiver, azurite: Azurite) -> None:
    env = worker_env(job_id="j", url="http://127.0.0.1/x.mp4", callbacks=callbacks, azurite=azurite,
                     **{E.JOB_ATTEMPT: "two"})

    assert main(env, tuning=FAST) == EXIT_CONFIG
    assert callbacks.received == []
