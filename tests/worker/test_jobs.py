"""Whole jobs in-process: real yt-dlp, ffmpeg, ffprobe and Azurite against media served on loopback."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from tests.support.services import Azurite
from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import FAST, STAGING, TOKEN, sha256_of, staged_media, worker_env
from tests.worker.media_server import MediaServer, refused_port
from videojob.contract import container_env as E
from videojob.contract.result_record import parse_record
from videojob.contract.staging import is_result_record, result_record_name
from videojob.contract.wire import JobStatus
from worker.runner import main


def run(env: dict[str, str]) -> int:
    return main(env, tuning=FAST)


def terminal(callbacks: CallbackReceiver) -> dict[str, Any]:
    events = callbacks.accepted()
    assert events, "no event reached the callback"
    last = events[-1]
    assert last["state"] in ("succeeded", "failed")
    JobStatus.from_wire(last)  # follows the wire contract
    return last


def probe_kinds(data: bytes, tmp_path: Path) -> list[str]:
    f = tmp_path / "probe.bin"
    f.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(f)], capture_output=True, check=True
    )
    return sorted(s["codec_type"] for s in json.loads(out.stdout)["streams"])


def job_id() -> str:
    return uuid.uuid4().hex


@pytest.mark.parametrize(
    ("path", "fmt", "extra", "ext", "content_type", "kinds"),
    [
        ("clip.mp4", "video", {}, "mp4", "video/mp4", ["audio", "video"]),
        ("hls/master.m3u8", "video", {}, "mp4", "video/mp4", ["audio", "video"]),
        ("dash/manifest.mpd", "video", {}, "mp4", "video/mp4", ["audio", "video"]),
        ("dash/manifest.mpd", "audio", {}, "m4a", "audio/mp4", ["audio"]),
        ("clip.mp4", "audio", {E.JOB_AUDIO_FORMAT: "mp3"}, "mp3", "audio/mpeg", ["audio"]),
    ],
    ids=["progressive", "hls", "dash-merged", "audio-m4a", "audio-mp3"],
)
def test_a_download_lands_in_blob_storage_as_reported(
    path: str,
    fmt: str,
    extra: dict[str, str],
    ext: str,
    content_type: str,
    kinds: list[str],
    media_server: MediaServer,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    workspace: Path,
    tmp_path: Path,
) -> None:
    jid = job_id()
    url = media_server.url(path)
    code = run(worker_env(job_id=jid, url=url, callbacks=callbacks, azurite=azurite, fmt=fmt, **extra))

    event = terminal(callbacks)
    assert event["state"] == "succeeded", event
    assert code == 0
    blob_info, media = event["result"]["blob"], event["result"]["media"]
    assert blob_info["name"].startswith(f"{jid}/") and blob_info["name"].endswith(f".{ext}")
    assert blob_info["contentType"] == content_type
    assert "?" not in blob_info["url"] and blob_info["url"].startswith(azurite.blob_endpoint)

    blob = staged_media(blob_service, jid)  # the app publishes it under blob_info["name"]
    data = blob.download_blob().readall()
    props = blob.get_blob_properties()
    assert len(data) == blob_info["sizeBytes"]
    assert sha256_of(data) == blob_info["sha256"]
    assert props.content_settings.content_type == content_type
    assert props.metadata["sourceurl"] == url
    assert props.metadata["jobid"] == jid
    assert props.metadata["title"] == media["title"]
    assert abs(float(props.metadata["durationseconds"]) - 3.0) < 0.5
    assert probe_kinds(data, tmp_path) == kinds
    assert media["audioCodec"] == {"m4a": "aac", "mp3": "mp3", "mp4": "aac"}[ext]
    if fmt == "video":
        assert (media["width"], media["height"], media["videoCodec"]) == (320, 240, "h264")
    assert list(workspace.iterdir()) == [], "the work directory was left behind"
    # Recorded before it was reported (issue 12): the same outcome, signed with the job's token.
    record = parse_record(blob_service.get_blob_client(STAGING, result_record_name(jid, 1, None))
                          .download_blob().readall(), job_id=jid, attempt=1, run=None, mac_key=TOKEN)
    assert (record.seq, record.result.to_wire()) == (event["seq"], event["result"])


def media_blobs(container: Any, jid: str) -> list[str]:
    """The job's blobs besides its result records."""
    return [b.name for b in container.list_blobs(name_starts_with=f"{jid}/") if not is_result_record(jid, b.name)]


@pytest.mark.parametrize(
    ("url_of", "code"),
    [
        (lambda s: s.url("hls-nocodecs/master.m3u8"), "no_audio"),
        (lambda s: s.url("status/404"), "http_error"),
        (lambda s: f"http://127.0.0.1:{refused_port()}/clip.mp4", "network"),
        (lambda s: s.url("page.html"), "unsupported_url"),
        (lambda s: "https://www.example.com/watch?v=1", "host_not_allowed"),
    ],
    ids=["hls-without-codecs-loses-audio", "404", "connection-refused", "html-without-media", "host-not-allowed"],
)
def test_a_failed_download_is_reported_with_its_code(
    url_of: Any,
    code: str,
    media_server: MediaServer,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    workspace: Path,
) -> None:
    jid = job_id()
    exit_code = run(worker_env(job_id=jid, url=url_of(media_server), callbacks=callbacks, azurite=azurite))

    event = terminal(callbacks)
    assert event["state"] == "failed"
    assert event["error"]["code"] == code, event["error"]
    assert exit_code != 0
    downloads = blob_service.get_container_client(STAGING)
    assert media_blobs(downloads, jid) == []
    # The outcome is recorded next to the output (issue 12), as the report says it.
    record = json.loads(downloads.download_blob(result_record_name(jid, 1, None)).readall())
    assert record["event"]["state"] == "failed" and record["event"]["error"]["code"] == code
    assert list(workspace.iterdir()) == []


@pytest.mark.parametrize(
    "path",
    ["nolength/clip.mp4", "clip.mp4", "hls/master.m3u8"],
    ids=["plain-without-content-length", "plain", "hls"],
)
def test_the_byte_cap_stops_a_download_on_every_protocol(
    path: str,
    media_server: MediaServer,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    media_root: Path,
    workspace: Path,
) -> None:
    cap = (media_root / "clip.mp4").stat().st_size // 3
    env = worker_env(
        job_id=job_id(), url=media_server.url(path), callbacks=callbacks, azurite=azurite, **{E.JOB_MAX_BYTES: str(cap)}
    )
    assert run(env) != 0
    event = terminal(callbacks)
    assert event["error"]["code"] == "too_large", event["error"]
    assert list(workspace.iterdir()) == [], "partial files were left behind"


def test_a_stream_only_ffmpeg_would_download_is_refused_before_ffmpeg_connects(
    media_server: MediaServer,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    media_root: Path,
    workspace: Path,
) -> None:
    # yt-dlp's native HLS downloader declines a SAMPLE-AES playlist and hands it to ffmpeg, whose
    # own connections would escape the address guard and the byte cap. (The segments are not
    # really encrypted: an ffmpeg left to download them would succeed.)
    playlist = (media_root / "hls" / "index.m3u8").read_text()
    name = f"hls/sample-aes-{uuid.uuid4().hex}.m3u8"
    (media_root / name).write_text(
        playlist.replace("#EXTINF", '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="key.bin"\n#EXTINF', 1)
    )
    seen = len(media_server.requests)
    jid = job_id()

    exit_code = run(worker_env(job_id=jid, url=media_server.url(name), callbacks=callbacks, azurite=azurite))

    event = terminal(callbacks)
    assert event["state"] == "failed" and exit_code != 0
    assert event["error"]["code"] == "unsupported_url", event["error"]
    assert "ffmpeg" in event["error"]["message"]
    assert [r for r in media_server.requests[seen:] if ".ts" in r or "key.bin" in r] == [], "a segment was fetched"
    downloads = blob_service.get_container_client(STAGING)
    assert not downloads.exists() or media_blobs(downloads, jid) == []
    assert list(workspace.iterdir()) == []
