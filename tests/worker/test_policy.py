"""The worker's pure rules: error classification, throttling, byte budget, naming, stream checks."""

from __future__ import annotations

import io

import pytest
from yt_dlp.networking import Response
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError, UnsupportedError

from videojob.contract.wire import ErrorCode
from worker.downloader import BeforeDownloadCheckPP, DownloadAborted, MediaRequest, format_selector
from worker.errors import classify
from worker.manifests import fragment_upper_bound
from worker.media_guard import INPUT_RESTRICTIONS, restricted_command
from worker.memory_limit import cgroup_memory_bytes, job_process_limit
from worker.naming import blob_name, content_type, header_safe, sanitize_title
from worker.progress import ByteBudget, ProgressThrottle, progress_from_hook
from worker.verify import ProbeResult, StreamInfo, check_streams


def http_error(status: int) -> HTTPError:
    return HTTPError(Response(io.BytesIO(b""), "https://example.com/v", {}, status=status, reason="x"))


def wrapped(exc: BaseException) -> DownloadError:
    """How yt-dlp hands an extractor failure to its caller."""
    return DownloadError(f"ERROR: {exc}", (type(exc), exc, None))


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ExtractorError("Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies", expected=True),
         ErrorCode.BOT_CHECK),
        (ExtractorError("Sign in to confirm your age. This video may be inappropriate", expected=True),
         ErrorCode.LOGIN_REQUIRED),
        (ExtractorError("Private video. Sign in if you've been granted access to this video", expected=True),
         ErrorCode.LOGIN_REQUIRED),
        (GeoRestrictedError("The uploader has not made this video available in your country"), ErrorCode.GEO_BLOCKED),
        (ExtractorError("Video unavailable. This video has been removed by the uploader", expected=True),
         ErrorCode.UNAVAILABLE),
        (UnsupportedError("https://example.com/page"), ErrorCode.UNSUPPORTED_URL),
        (ExtractorError("Unable to download webpage", cause=http_error(403)), ErrorCode.HTTP_ERROR),
        (ExtractorError("Unable to download webpage", cause=TransportError("timed out")), ErrorCode.NETWORK),
        (ValueError("something odd"), ErrorCode.INTERNAL),
    ],
    ids=["bot-check", "age", "private", "geo", "removed", "unsupported", "http", "transport", "other"],
)  # fmt: skip
def test_yt_dlp_failures_are_classified(exc: BaseException, code: str) -> None:
    error = classify(wrapped(exc))
    assert error.code == code
    assert not error.message.startswith("ERROR")


def test_transient_failures_are_retryable_and_permanent_ones_are_not() -> None:
    assert classify(wrapped(ExtractorError("x", cause=TransportError("reset")))).retryable
    assert not classify(wrapped(UnsupportedError("https://example.com"))).retryable
    assert classify(wrapped(ExtractorError("x", cause=http_error(503)))).retryable
    assert not classify(wrapped(ExtractorError("x", cause=http_error(404)))).retryable


def test_the_throttle_lets_one_event_per_interval_and_every_phase_change_through() -> None:
    t = ProgressThrottle(interval_seconds=20)
    assert t.offer(0, "downloading")
    assert not t.offer(5, "downloading")
    assert not t.offer(19.9, "downloading")
    assert t.offer(20, "downloading")
    assert t.offer(21, "processing")
    assert t.offer(21.5, "uploading")
    assert not t.offer(22, "uploading")


def test_the_byte_budget_counts_every_file_of_a_job() -> None:
    b = ByteBudget(max_bytes=100)
    b.update("video", 60)
    b.update("video", 50)  # counts never go back
    assert not b.exceeded
    b.update("audio", 41)
    assert b.total == 101 and b.exceeded
    assert ByteBudget(100).announced_too_large(101)


def test_progress_uses_the_job_total_and_computes_percent() -> None:
    p = progress_from_hook(
        {"status": "downloading", "downloaded_bytes": 50, "total_bytes": 200, "speed": 10.04, "eta": 15,
         "job_downloaded_bytes": 250}
    )  # fmt: skip
    assert (p.percent, p.downloaded_bytes, p.total_bytes, p.speed_bps, p.eta_seconds) == (25.0, 250, 200, 10.0, 15)


def test_an_announced_size_over_the_cap_stops_before_downloading() -> None:
    check = BeforeDownloadCheckPP(max_bytes=1000)
    with pytest.raises(DownloadAborted) as aborted:
        check.run({"requested_formats": [{"filesize": 800}, {"filesize_approx": 300}]})
    assert aborted.value.error.code == ErrorCode.TOO_LARGE
    assert check.run({"filesize": 999})[1] == {"filesize": 999}
    with pytest.raises(DownloadAborted):
        check.run({"is_live": True})


def test_the_format_respects_the_requested_height() -> None:
    assert format_selector(MediaRequest(url="u", format="video")) == "bv*+ba/b"
    assert format_selector(MediaRequest(url="u", format="video", max_height=720)) == (
        "bv*[height<=?720]+ba/b[height<=?720]"
    )
    assert format_selector(MediaRequest(url="u", format="audio")) == "ba/b"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("My video: part 1/2?", "My video_ part 1_2"),
        ("  ..hidden  ", "hidden"),
        ("Ünïcødé 日本語", "Ünïcødé 日本語"),
        ("line\nbreak\ttab", "line break tab"),
        ("%2e%2e/#frag", "2e_2e_frag"),
        (None, "media"),
        ("////", "media"),
    ],
)
def test_titles_become_safe_blob_names(title: str | None, expected: str) -> None:
    assert sanitize_title(title) == expected
    assert blob_name("job1", title, "MP4") == f"job1/{expected}.mp4"


def test_long_titles_are_cut_and_metadata_is_ascii() -> None:
    assert len(sanitize_title("x" * 500)) == 120
    assert header_safe("Ünï").isascii()
    assert (content_type("mp4"), content_type("m4a"), content_type("mp3")) == ("video/mp4", "audio/mp4", "audio/mpeg")


VIDEO = StreamInfo("video", "h264", 320, 240)
AUDIO = StreamInfo("audio", "aac")
COVER = StreamInfo("video", "mjpeg", 100, 100, attached_picture=True)


@pytest.mark.parametrize(
    ("fmt", "streams", "code"),
    [
        ("video", (VIDEO, AUDIO), None),
        ("video", (VIDEO,), ErrorCode.NO_AUDIO),
        ("video", (AUDIO, COVER), ErrorCode.INVALID_MEDIA),
        ("audio", (AUDIO,), None),
        ("audio", (VIDEO,), ErrorCode.NO_AUDIO),
    ],
)
def test_a_result_must_hold_the_streams_asked_for(fmt: str, streams: tuple[StreamInfo, ...], code: str | None) -> None:
    error = check_streams(ProbeResult(streams, 3.0, "mov,mp4,m4a,3gp,3g2,mj2"), fmt)
    assert (error.code if error else None) == code


@pytest.mark.parametrize("format_name", ["hls", "dash", "concat", "image2", "webm_dash_manifest", "tee", "", None])
def test_only_media_containers_pass_verification(format_name: str | None) -> None:
    error = check_streams(ProbeResult((VIDEO, AUDIO), 3.0, format_name), "video")
    assert error is not None and error.code == ErrorCode.INVALID_MEDIA


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["ffmpeg", "-y", "-i", "file:a.mp4", "-i", "file:b.m4a", "file:out.mp4"],
         ["ffmpeg", "-y", *INPUT_RESTRICTIONS, "-i", "file:a.mp4", *INPUT_RESTRICTIONS, "-i", "file:b.m4a",
          "file:out.mp4"]),
        (["/usr/bin/ffprobe", "-show_streams", "file:a.mp4"], ["/usr/bin/ffprobe", *INPUT_RESTRICTIONS,
                                                              "-show_streams", "file:a.mp4"]),
        (["ffprobe", "-version"], ["ffprobe", "-version"]),
        (["deno", "-i", "x"], ["deno", "-i", "x"]),
    ],
    ids=["ffmpeg-every-input", "ffprobe-file", "ffprobe-version", "other-program"],
)
def test_every_ffmpeg_input_is_restricted(argv: list[str], expected: list[str]) -> None:
    assert restricted_command(argv) == expected


def test_the_job_process_takes_its_share_of_the_containers_memory(tmp_path) -> None:
    assert job_process_limit(1536 * 1024 * 1024) == int(1536 * 1024 * 1024 * 0.75)
    assert job_process_limit(None) is None
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    v2.write_text("max\n")
    v1.write_text(f"{2 * 1024**3}\n")
    assert cgroup_memory_bytes((v2, v1)) == 2 * 1024**3
    v1.write_text(f"{1 << 62}\n")  # cgroup v1's "no limit"
    assert cgroup_memory_bytes((v2, v1)) is None


@pytest.mark.parametrize(
    ("body", "at_least"),
    [
        (b"#EXTM3U\n" + b"#EXTINF:1,\ns.ts\n" * 5, 5),
        (b'<MPD mediaPresentationDuration="PT100S"><Period><AdaptationSet><SegmentTemplate timescale="10"'
         b' duration="10"/><Representation/><Representation/></AdaptationSet></Period></MPD>', 200),
        (b'<MPD><Period><AdaptationSet><Representation><SegmentTemplate><SegmentTimeline><S d="1" r="999999"/>'
         b"</SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period></MPD>", 1_000_000),
        (b"<html><body>no manifest</body></html>", 0),
    ],
    ids=["hls", "dash-template", "dash-timeline-repeat", "page"],
)
def test_segments_are_counted_before_yt_dlp_expands_a_manifest(body: bytes, at_least: int) -> None:
    assert fragment_upper_bound(body) >= at_least
    assert fragment_upper_bound(body) <= max(at_least * 2, 0)
