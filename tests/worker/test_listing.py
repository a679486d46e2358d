"""List mode (`JOB_MODE=list`): a playlist's entries by flat extraction, in-process with real
yt-dlp against an RSS feed served on loopback; no upload but the result record, the URL policy
and guard on."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.media import write_feed
from tests.support.services import Azurite
from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import FAST, STAGING, TOKEN, worker_env
from tests.worker.media_server import MediaServer
from videojob.contract import container_env as E
from videojob.contract.result_record import parse_record
from videojob.contract.staging import result_record_name
from videojob.contract.wire import JobStatus, PlaylistEntry
from worker.listing import entries_of
from worker.runner import main


def feed(media_server: MediaServer, n: int) -> str:
    name = f"feed-{uuid.uuid4().hex[:8]}.rss"
    items = [(f"Episode {i}", media_server.url(f"clip.mp4?episode={i}")) for i in range(n)]
    write_feed(media_server.root / name, "Loopback feed", items)
    return name


def list_env(url: str, callbacks: CallbackReceiver, azurite: Azurite, **overrides: str) -> dict[str, str]:
    env = worker_env(job_id=uuid.uuid4().hex, url=url, callbacks=callbacks, azurite=azurite, **overrides)
    env[E.JOB_MODE] = "list"
    return env


def events(callbacks: CallbackReceiver) -> list[dict[str, Any]]:
    out = callbacks.accepted()
    for e in out:
        JobStatus.from_wire(e)  # every event follows the wire contract
    return out


def test_a_feed_is_listed_with_urls_and_titles_and_nothing_is_downloaded(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite
):
    name = feed(media_server, 3)
    before = len(media_server.requests)

    code = main(list_env(media_server.url(name), callbacks, azurite), tuning=FAST)

    assert code == 0
    sent = events(callbacks)
    assert [e["state"] for e in sent] == ["started", "succeeded"]
    result = sent[-1]["result"]
    assert result["title"] == "Loopback feed"
    assert result["entries"] == [
        {"url": media_server.url(f"clip.mp4?episode={i}"), "title": f"Episode {i}"} for i in range(3)
    ]
    assert "blob" not in result
    assert [r for r in media_server.requests[before:] if "clip.mp4" in r] == []  # entries are not fetched


def job_blobs(blob_service: BlobServiceClient, job_id: str) -> list[str]:
    return [b.name for b in blob_service.get_container_client(STAGING).list_blobs(name_starts_with=f"{job_id}/")]


def recorded(blob_service: BlobServiceClient, job_id: str) -> JobStatus:
    data = blob_service.get_blob_client(STAGING, result_record_name(job_id, 1, None)).download_blob().readall()
    return parse_record(data, job_id=job_id, attempt=1, run=None, mac_key=TOKEN)


def test_a_listing_records_its_outcome_before_reporting_it_and_stores_nothing_else(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, blob_service: BlobServiceClient
):
    env = list_env(media_server.url(feed(media_server, 2)), callbacks, azurite)

    assert main(env, tuning=FAST) == 0

    job_id = env[E.JOB_ID]
    reported = events(callbacks)[-1]
    record = recorded(blob_service, job_id)
    assert (record.state, record.seq, record.result.to_wire()) == ("succeeded", reported["seq"], reported["result"])
    assert job_blobs(blob_service, job_id) == [result_record_name(job_id, 1, None)]


def test_a_failed_listing_records_its_error(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, blob_service: BlobServiceClient
):
    env = list_env(media_server.url("status/404"), callbacks, azurite)

    assert main(env, tuning=FAST) == 1

    record = recorded(blob_service, env[E.JOB_ID])
    assert (record.state, record.error.code, record.seq) == ("failed", "http_error", events(callbacks)[-1]["seq"])



def test_max_items_stops_the_listing(media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite):
    name = feed(media_server, 6)

    main(list_env(media_server.url(name), callbacks, azurite, **{E.JOB_MAX_ITEMS: "2"}), tuning=FAST)

    assert len(events(callbacks)[-1]["result"]["entries"]) == 2


def test_the_url_policy_and_address_rule_apply_to_the_listing(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite
):
    name = feed(media_server, 2)
    before = len(media_server.requests)
    url = f"http://localhost:{media_server.port}/{name}"  # a name that resolves to loopback

    code = main(list_env(url, callbacks, azurite, **{E.ALLOW_PRIVATE_ADDRESSES: "false"}), tuning=FAST)

    assert code == 1
    last = events(callbacks)[-1]
    assert (last["state"], last["error"]["code"]) == ("failed", "private_address")
    assert media_server.requests[before:] == []


def test_a_missing_playlist_fails_with_a_classified_error(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite
):
    code = main(list_env(media_server.url("status/404"), callbacks, azurite), tuning=FAST)

    assert code == 1
    assert events(callbacks)[-1]["error"]["code"] == "http_error"


@pytest.mark.parametrize("path", ["endless/page.html", "gzipbomb/page.html"], ids=["endless-page", "gzip-bomb"])
def test_a_page_that_never_ends_stops_the_listing_as_too_large(
    path: str, media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite
):
    code = main(list_env(media_server.url(path), callbacks, azurite), tuning=FAST)

    assert code == 1
    assert events(callbacks)[-1]["error"]["code"] == "too_large"


def test_an_unknown_mode_is_a_configuration_error(callbacks: CallbackReceiver, azurite: Azurite):
    env = list_env("http://127.0.0.1/x", callbacks, azurite)
    env[E.JOB_MODE] = "crawl"

    assert main(env, tuning=FAST) == 2


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"_type": "playlist", "title": "P", "entries": [
            {"url": "https://a.example/1.mp4#__youtubedl_smuggle=%7B%22x%22%3A+1%7D", "title": "One"},
            {"url": "relative/only"},
            {"url": "abc123", "webpage_url": "https://www.youtube.com/watch?v=abc123"},
            {"url": "ftp://a.example/2"},
            {"url": "https://a.example/3"},
        ]}, [PlaylistEntry("https://a.example/1.mp4", "One"),
             PlaylistEntry("https://www.youtube.com/watch?v=abc123"), PlaylistEntry("https://a.example/3")]),
        ({"title": "Single", "webpage_url": "https://a.example/v"}, [PlaylistEntry("https://a.example/v", "Single")]),
        (None, []),
    ],
)
def test_entries_of_keeps_absolute_http_urls_without_smuggled_hints(info: Any, expected: list[PlaylistEntry]):
    assert list(entries_of(info, 10).entries) == expected


def test_entries_of_caps_at_max_items():
    info = {"_type": "playlist", "entries": [{"url": f"https://a.example/{i}"} for i in range(10)]}

    assert len(entries_of(info, 4).entries) == 4


def test_write_feed_escapes_titles(tmp_path: Path):
    path = write_feed(tmp_path / "f.rss", "A & B", [("<x>", "https://a.example/?a=1&b=2")])

    text = path.read_text()
    assert "A &amp; B" in text and "&lt;x&gt;" in text and "a=1&amp;b=2" in text


def test_a_list_job_reaches_the_worker_through_the_create_input_and_the_spec(azurite: Azurite):
    from datetime import UTC, datetime, timedelta

    from activities.upload_grant import issue_upload_grant
    from videojob.contract.container_env import parse_worker_env
    from videojob.contract.wire import DownloadRequest
    from videojob.domain.activity_wire import CreateInput
    from videojob.domain.container_spec import build_container_spec
    from videojob.domain.settings import load_settings

    settings = load_settings(environ={"CONTAINER_BACKEND": "local", "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
                                      "CALLBACK_SIGNING_KEY": "k" * 40,
                                      "OUTPUT_CONNECTION_STRING": azurite.connection_string})
    now = datetime(2026, 1, 1, tzinfo=UTC)
    request = DownloadRequest(url="https://www.youtube.com/playlist?list=PL1")
    listing = CreateInput.from_wire(CreateInput("b-list", request, now, now + timedelta(hours=1),
                                                mode="list", max_items=7).to_wire())
    download = CreateInput("b-000", request, now, now + timedelta(hours=1))

    def env_of(job: CreateInput) -> dict[str, str]:
        spec = build_container_spec(job.request, settings, job.job_id, job.created_at, job.deadline, job.attempt,
                                    mode=job.mode, max_items=job.max_items, upload=issue_upload_grant(settings, job))
        return spec.environment()

    listed = parse_worker_env(env_of(listing))
    assert (listed.mode, listed.max_items) == ("list", 7)
    assert listed.media_upload_url is None and listed.record_upload_url  # a listing stores no media
    assert "mode" not in download.to_wire() and E.JOB_MODE not in env_of(download)
    assert parse_worker_env(env_of(download)).mode == "download"
