"""`POST /api/downloads/{id}/cancel` against scripted instances in the Durable stand-in."""

from __future__ import annotations

import pytest

from tests.api.conftest import APP_ORIGIN, Api
from videojob.contract import EVENT_NAME


@pytest.mark.parametrize("runtime_status", ["Running", "Pending", "Suspended"])
def test_cancel_of_a_live_job_raises_the_cancelled_event(client_api: Api, runtime_status: str) -> None:
    job = client_api.standin.add_instance(runtime_status=runtime_status)

    answer = client_api.cancel(job.instance_id)

    assert answer.status == 202
    assert answer.json["id"] == job.instance_id
    assert answer.json["statusQueryGetUri"].startswith(
        f"{APP_ORIGIN}/runtime/webhooks/durabletask/instances/{job.instance_id}?"
    )
    [event] = client_api.standin.raised_events
    assert (event.instance_id, event.name) == (job.instance_id, EVENT_NAME)
    assert event.payload == {"state": "cancelled"}


def test_cancel_of_an_unknown_job_is_404(client_api: Api) -> None:
    answer = client_api.cancel("0123456789abcdef0123456789abcdef")

    assert answer.status == 404
    assert answer.error_code == "not_found"
    assert client_api.standin.raised_events == []


@pytest.mark.parametrize("runtime_status", ["Completed", "Failed", "Terminated"])
def test_cancel_of_a_finished_job_is_409(client_api: Api, runtime_status: str) -> None:
    job = client_api.standin.add_instance(runtime_status=runtime_status)

    answer = client_api.cancel(job.instance_id)

    assert answer.status == 409
    assert answer.error_code == "already_finished"
    assert client_api.standin.raised_events == []


@pytest.mark.parametrize("bad_id", ["../orchestrators/x", "a/b", "a?b=c", "a b", "a%2Fb", "x" * 101, ""])
def test_ids_that_are_not_url_safe_never_reach_the_durable_client(client_api: Api, bad_id: str) -> None:
    answer = client_api.cancel(bad_id)

    assert answer.status == 404
    assert answer.error_code == "not_found"
    assert client_api.standin.calls == []


def test_cancel_when_the_durable_host_is_down_is_503(client_api: Api) -> None:
    client_api.standin.stop()

    answer = client_api.cancel("0123456789abcdef0123456789abcdef")

    assert answer.status == 503
    assert answer.error_code == "service_unavailable"


def test_cancel_racing_the_job_to_its_end_is_409(client_api: Api) -> None:
    job = client_api.standin.add_instance(runtime_status="Running")
    client_api.standin.before_next("raise_event", lambda: client_api.standin.set_status(job.instance_id, "Failed"))

    answer = client_api.cancel(job.instance_id)

    assert answer.status == 409
    assert answer.error_code == "already_finished"


def test_cancel_of_a_job_purged_meanwhile_is_404(client_api: Api) -> None:
    job = client_api.standin.add_instance(runtime_status="Running")
    client_api.standin.before_next("raise_event", lambda: client_api.standin.instances.pop(job.instance_id))

    answer = client_api.cancel(job.instance_id)

    assert answer.status == 404


def test_cancel_when_the_host_errors_is_503_not_404(client_api: Api) -> None:
    job = client_api.standin.add_instance(runtime_status="Running")
    client_api.standin.fail(500)

    answer = client_api.cancel(job.instance_id)

    assert answer.status == 503
