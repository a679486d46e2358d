"""Which extractor a job starts with: the generic one for direct media links, yt-dlp's own
search (unchanged) for everything a site extractor may claim."""

from __future__ import annotations

import re
from typing import Any

import pytest
from yt_dlp import YoutubeDL
from yt_dlp.extractor import gen_extractor_classes

from worker.downloader import new_youtube_dl
from worker.extractor_choice import GENERIC, choose_extractor, host_terms, names_media_file, site_candidates

EXTRACTORS = list(gen_extractor_classes())


def yt_dlp_would_choose(url: str) -> str:
    """What `YoutubeDL.extract_info` picks without a hint: the first suitable extractor in order."""
    return next(ie.ie_key() for ie in EXTRACTORS if ie.suitable(url))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/large.mp4",
        "http://127.0.0.1:8000/hls/master.m3u8",
        "http://127.0.0.1:8000/dash/manifest.mpd",
        "https://cdn.example.com/videos/2024/clip.MP4?token=abc",
        "https://media.example.org/podcast/episode%201.mp3",
        "https://d1234.cloudfront.net/out/v1/index.m3u8",
        "https://storage.googleapis.com/bucket/movie.webm",
    ],
)
def test_a_direct_media_link_goes_straight_to_the_generic_extractor(url: str) -> None:
    assert choose_extractor(url, EXTRACTORS) == GENERIC
    # ...which is what yt-dlp's full search would have picked anyway.
    assert yt_dlp_would_choose(url) == GENERIC


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "Youtube"),
        ("https://youtu.be/dQw4w9WgXcQ", "Youtube"),
        ("https://www.youtube.com/shorts/dQw4w9WgXcQ", "Youtube"),
        ("https://vimeo.com/76979871", "Vimeo"),
        # Site extractors that claim URLs naming a media file on their own hosts:
        ("https://rss.art19.com/episodes/0ad18abf-3b2b-4bd1-b2a9-f52bd8e8b4a0.mp3", "Art19"),
        ("https://content.uplynk.com/e89eaf2ce9054aa89d92ddb2d817a52e.m3u8", "Uplynk"),
    ],
)
def test_a_url_a_site_extractor_claims_is_left_to_yt_dlp(url: str, site: str) -> None:
    assert choose_extractor(url, EXTRACTORS) is None
    assert yt_dlp_would_choose(url) == site


class _SiteIE:
    """A stand-in extractor class with the two things the choice reads."""

    _VALID_URL: Any = None

    @classmethod
    def ie_key(cls) -> str:
        return cls.__name__

    @classmethod
    def suitable(cls, url: str) -> bool:
        return re.match(cls._VALID_URL, url) is not None


class AnyHostFilesIE(_SiteIE):
    _VALID_URL = r"https?://[^/]+/files/(?P<id>\w+)\.mp4"


class PinnedHostIE(_SiteIE):
    _VALID_URL = r"https?://(?:www\.)?pinnedsite\.tv/v/(?P<id>\w+)\.mp4"


def test_an_extractor_that_accepts_any_host_is_always_asked() -> None:
    assert choose_extractor("https://anything.example/files/abc.mp4", [AnyHostFilesIE]) is None
    assert choose_extractor("https://anything.example/other/abc.mp4", [AnyHostFilesIE]) == GENERIC


def test_only_extractors_naming_the_host_are_compiled_and_asked() -> None:
    assert site_candidates("cdn.pinnedsite.tv", [PinnedHostIE, AnyHostFilesIE]) == [PinnedHostIE, AnyHostFilesIE]
    assert site_candidates("cdn.othersite.tv", [PinnedHostIE]) == []
    assert choose_extractor("https://www.pinnedsite.tv/v/abc.mp4", [PinnedHostIE]) is None
    assert choose_extractor("https://www.pinnedsite.tv/download/abc.mp4", [PinnedHostIE]) == GENERIC


def test_host_terms_cover_labels_their_prefixes_and_the_escaped_domain() -> None:
    assert set(host_terms("cdn.Example.com.")) == {"cdn", "exa", "example", "example\\.com"}
    assert host_terms("127.0.0.1") == ("127.0.0.1", "127\\.0\\.0\\.1")
    assert "www" not in host_terms("www.youtube.com")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.test/a/b/clip.mp4", True),
        ("https://x.test/master.M3U8?sig=1", True),
        ("https://x.test/watch?v=clip.mp4", False),  # the query does not name the file
        ("https://x.test/videos/123", False),
        ("https://x.test/page.html", False),
        ("https://x.test/", False),
    ],
)
def test_what_counts_as_naming_a_media_file(url: str, expected: bool) -> None:
    assert names_media_file(url) is expected


def test_the_worker_registers_the_same_extractors_as_yt_dlp_in_the_same_order() -> None:
    params = {"quiet": True, "cachedir": False}
    with YoutubeDL(dict(params)) as reference, new_youtube_dl(dict(params)) as ours:
        assert list(ours._ies) == list(reference._ies)
        assert ours.get_info_extractor(GENERIC).ie_key() == GENERIC
