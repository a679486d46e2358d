"""`POST /api/downloads/{id}/cancel` against scripted instances in the Durable stand-in."""

from __future__ import annotations

import pytest

from tests.api.conftest import APP_ORIGIN, Api
from videojob.contract.wire import EVENT_NAME


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


# -- batches: the cancel also reaches the running children ----------------------------------

BATCH = "b" * 32


def running_batch(client_api: Api, custom_status: object) -> None:
    client_api.standin.add_instance(BATCH, name="download_batch", custom_status=custom_status)


def child(client_api: Api, suffix: str, runtime_status: str = "Running") -> str:
    return client_api.standin.add_instance(f"{BATCH}-{suffix}", runtime_status=runtime_status).instance_id


def cancels(client_api: Api) -> list[str]:
    events = client_api.standin.raised_events
    assert all(e.name == EVENT_NAME and e.payload == {"state": "cancelled"} for e in events)
    return [e.instance_id for e in events]


def test_cancel_of_a_batch_cancels_the_batch_then_its_running_items(client_api: Api) -> None:
    running_batch(client_api, {"phase": "running", "counts": {"total": 4, "running": 2, "succeeded": 1,
                                                              "failed": 0, "pending": 1}, "runningItems": [1, 2]})
    done = child(client_api, "000", "Completed")
    first, second = child(client_api, "001"), child(client_api, "002")
    waiting = f"{BATCH}-003"  # not started yet: the batch itself fails it

    answer = client_api.cancel(BATCH)

    assert answer.status == 202
    assert answer.json["id"] == BATCH
    assert answer.json["cancelledChildren"] == [first, second]
    raised = cancels(client_api)
    assert raised[0] == BATCH and sorted(raised[1:]) == [first, second]
    assert done not in raised and waiting not in raised


def test_cancel_of_a_playlist_while_listing_cancels_the_listing_child(client_api: Api) -> None:
    running_batch(client_api, {"phase": "listing", "updatedAt": "2026-01-01T00:00:00.000000Z"})
    listing = child(client_api, "list")

    answer = client_api.cancel(BATCH)

    assert answer.status == 202
    assert answer.json["cancelledChildren"] == [listing]
    assert cancels(client_api) == [BATCH, listing]


def test_children_that_finish_or_vanish_meanwhile_are_skipped(client_api: Api) -> None:
    running_batch(client_api, {"phase": "running", "counts": {"total": 3}, "runningItems": [0, 1, 2]})
    ending, purged, still_running = child(client_api, "000"), child(client_api, "001"), child(client_api, "002")
    standin = client_api.standin
    # Once the batch has its event, one child fails and another is purged before their cancel lands.
    standin.before_next("raise_event", lambda: None)
    standin.before_next("raise_event", lambda: (standin.set_status(ending, "Failed"), standin.instances.pop(purged)))

    answer = client_api.cancel(BATCH)

    assert answer.status == 202
    assert answer.json["cancelledChildren"] == [still_running]


def test_cancel_of_a_single_job_reports_no_children(client_api: Api) -> None:
    job = client_api.standin.add_instance(custom_status={"phase": "downloading", "runningItems": [0]})

    answer = client_api.cancel(job.instance_id)

    assert answer.status == 202
    assert "cancelledChildren" not in answer.json
    assert cancels(client_api) == [job.instance_id]


def test_a_batch_whose_children_cannot_be_reached_answers_503_so_the_cancel_is_retried(client_api: Api) -> None:
    running_batch(client_api, {"phase": "running", "counts": {"total": 2}, "runningItems": [0, 1]})
    for suffix in ("000", "001"):
        child(client_api, suffix)
    standin = client_api.standin
    standin.before_next("raise_event", lambda: standin.fail(500, "raise_event"))

    answer = client_api.cancel(BATCH)

    assert answer.status == 503
    assert answer.error_code == "service_unavailable"
    assert cancels(client_api)[0] == BATCH
