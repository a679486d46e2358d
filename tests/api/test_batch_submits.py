"""Batch and playlist submits start `download_batch` with a `BatchPlan`; bad batches start nothing."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.test_starters import assert_check_status_answer
from videojob.contract.wire import BatchPlan

VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
VIDEO2 = "https://youtu.be/9bZkp7q19f0"
PLAYLIST = "https://www.youtube.com/playlist?list=PL123"
HOOK = "https://hooks.example.com/videojob"


def test_a_batch_starts_download_batch_with_one_plan_per_url(client_api: Api) -> None:
    answer = client_api.download({"urls": [VIDEO, VIDEO2], "format": "audio", "notifyUrl": HOOK})

    [started] = client_api.standin.started
    assert started.name == "download_batch"
    assert_check_status_answer(answer, started.instance_id)
    plan = BatchPlan.from_wire(started.input)
    assert [i.request.url for i in plan.items] == [VIDEO, VIDEO2]
    assert all(i.request.format == "audio" and i.request.notify_url is None for i in plan.items)
    assert all(i.max_attempts == 2 and i.share_link_hours == 12 for i in plan.items)
    assert plan.notify_url == HOOK
    assert plan.max_parallel == 2
    assert started.input["maxParallel"] == 2 and started.input["notifyUrl"] == HOOK


def test_a_playlist_starts_download_batch_with_a_list_job(client_api: Api) -> None:
    answer = client_api.download({"url": PLAYLIST, "playlist": True, "maxItems": 3})

    [started] = client_api.standin.started
    assert started.name == "download_batch"
    assert answer.status == 202
    plan = BatchPlan.from_wire(started.input)
    assert plan.items == ()
    assert plan.playlist.mode == "list" and plan.playlist.max_items == 3
    assert plan.playlist.request.url == PLAYLIST
    assert plan.item_template.mode == "download"


def test_a_playlist_without_max_items_gets_the_setting(client_api: Api) -> None:
    client_api.download({"url": PLAYLIST, "playlist": True})

    assert client_api.standin.started[0].input["playlist"]["maxItems"] == 10


def test_a_batch_with_bad_urls_lists_them_and_starts_nothing(client_api: Api) -> None:
    answer = client_api.download({"urls": [VIDEO, "http://10.1.2.3/x", "https://vimeo.com/1", VIDEO2]})

    assert answer.status == 400
    assert answer.json == {
        "error": {
            "code": "invalid_batch",
            "message": answer.json["error"]["message"],
            "items": [
                {"index": 1, "code": "private_address", "message": answer.json["error"]["items"][0]["message"]},
                {"index": 2, "code": "host_not_allowed", "message": "downloads from vimeo.com are not allowed"},
            ],
        }
    }
    assert client_api.standin.calls == []


def test_a_batch_over_the_limit_is_refused(client_api: Api) -> None:
    answer = client_api.download({"urls": [VIDEO] * 5})  # MAX_BATCH_URLS=4 in the test settings

    assert answer.status == 400 and answer.error_code == "invalid_option"
    assert client_api.standin.calls == []


def test_a_single_job_carries_its_notify_url(client_api: Api) -> None:
    client_api.download({"url": VIDEO, "notifyUrl": HOOK})

    assert client_api.standin.started[0].input["request"]["notifyUrl"] == HOOK


def test_a_private_notify_url_is_refused(client_api: Api) -> None:
    answer = client_api.download({"url": VIDEO, "notifyUrl": "http://169.254.169.254/hook"})

    assert answer.status == 400 and answer.error_code == "private_address"
    assert client_api.standin.calls == []
