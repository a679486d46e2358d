"""The worker's pure rules: error classification, throttling, byte budget, naming, stream checks."""

from __future__ import annotations

import io

import pytest
from yt_dlp.networking import Response
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError, UnsupportedError

from videojob.contract import ErrorCode
from worker.downloader import BeforeDownloadCheckPP, DownloadAborted, MediaRequest, format_selector
from worker.errors import classify
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
    error = check_streams(ProbeResult(streams, 3.0, "mp4"), fmt)
    assert (error.code if error else None) == code
