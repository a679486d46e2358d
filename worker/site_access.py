"""Operator access to sites that refuse datacenter addresses: cookies, a proxy, extractor arguments.

All three come from the operator's settings (never from a request) and reach yt-dlp as options:
- Cookies: `COOKIES_FILE` names a read-only Netscape cookies.txt. yt-dlp rewrites its cookie file
  when it closes, so it gets a private copy (0600, in the job's work directory) that is deleted
  after the download; the mounted file is never written. The copy is checked first, strictly:
  yt-dlp skips a malformed line with a warning that prints the line, cookie value included, so a
  file with any malformed line is refused as `invalid_cookies` before yt-dlp sees it. No message
  here quotes the file.
- Proxy: `PROXY_URL` becomes yt-dlp's `proxy` (the address guard still checks every target, see
  `address_guard.check_proxied_target`); blob upload and callbacks never use it.
- Extractor arguments: `YTDLP_EXTRACTOR_ARGS` groups, read by yt-dlp's own option parser.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from videojob.contract.wire import ErrorCode, JobError

from .failures import JobFailed

MAX_COOKIES_BYTES = 1024 * 1024
COOKIE_FIELDS = 7
_HTTPONLY_PREFIX = "#HttpOnly_"
_MAGIC = re.compile(r"#( Netscape)? HTTP Cookie File")
_FLAG = ("TRUE", "FALSE")


@dataclass(frozen=True)
class SiteAccess:
    """What yt-dlp gets from the operator's settings for one job."""

    cookie_file: Path | None = None
    """The job's private copy, never the mounted file."""
    proxy_url: str | None = field(default=None, repr=False)
    extractor_args: tuple[str, ...] = ()

    def ydl_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.cookie_file is not None:
            options["cookiefile"] = str(self.cookie_file)
        if self.proxy_url:
            options["proxy"] = self.proxy_url
        if self.extractor_args:
            options["extractor_args"] = ytdlp_extractor_args(self.extractor_args)
        return options


NO_SITE_ACCESS = SiteAccess()


def ytdlp_extractor_args(groups: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """`IE_KEY:ARGS` groups as yt-dlp's own `--extractor-args` parser reads them."""
    import yt_dlp

    argv: list[str] = []
    for group in groups:
        argv += ["--extractor-args", group]
    return dict(yt_dlp.parse_options(argv).ydl_opts["extractor_args"])


def invalid_cookies(reason: str) -> JobFailed:
    return JobFailed(
        JobError(ErrorCode.INVALID_COOKIES, f"the operator's cookies file (YOUTUBE_COOKIES) is not usable: {reason}")
    )


def cookie_values(text: str) -> list[str]:
    """The values of a checked cookies.txt (what logs and reports must never contain)."""
    values = []
    for line in text.splitlines():
        if line.startswith(_HTTPONLY_PREFIX):
            line = line[len(_HTTPONLY_PREFIX) :]
        if line.strip() and not line.startswith("#"):
            values.append(line.split("\t")[6])
    return values


def check_cookies_text(text: str) -> None:
    """A Netscape cookies.txt as yt-dlp loads it, with no line yt-dlp would skip; raises
    `invalid_cookies` naming the line number only."""
    lines = text.splitlines()
    if not lines or not _MAGIC.match(lines[0]):
        raise invalid_cookies("it must start with '# Netscape HTTP Cookie File' (export it in Netscape format)")
    cookies = 0
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith(_HTTPONLY_PREFIX):
            line = line[len(_HTTPONLY_PREFIX) :]
        elif line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != COOKIE_FIELDS:
            raise invalid_cookies(f"line {number} has {len(fields)} tab-separated fields, not {COOKIE_FIELDS}")
        domain, subdomains, _path, secure, expires, name, _value = fields
        if not domain or subdomains not in _FLAG or secure not in _FLAG or not name:
            raise invalid_cookies(f"line {number} is not a cookie (domain, TRUE/FALSE flags and a name are needed)")
        if expires and not expires.isdigit():
            raise invalid_cookies(f"line {number} has an expiry that is not a whole number of seconds")
        cookies += 1
    if cookies == 0:
        raise invalid_cookies("it holds no cookie")


def load_with_ytdlp(path: Path) -> None:
    """yt-dlp's own cookie jar reads the copy (its error messages may quote a line: not used)."""
    from yt_dlp.cookies import YoutubeDLCookieJar

    try:
        YoutubeDLCookieJar(str(path)).load()
    except Exception:  # noqa: BLE001 - any failure means the same to the operator
        raise invalid_cookies("yt-dlp cannot read it") from None


@contextlib.contextmanager
def private_cookie_copy(source: str | None, directory: Path) -> Iterator[tuple[Path | None, list[str]]]:
    """A checked private copy of the cookies file at `source` in `directory`, and the cookie
    values (for redaction); the copy is removed when the block ends. `(None, [])` without a file."""
    if source is None:
        yield None, []
        return
    try:
        with open(source, "rb") as f:
            raw = f.read(MAX_COOKIES_BYTES + 1)
    except OSError as e:
        raise invalid_cookies(f"it cannot be read ({type(e).__name__})") from None
    if len(raw) > MAX_COOKIES_BYTES:
        raise invalid_cookies(f"it is larger than {MAX_COOKIES_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid_cookies("it is not UTF-8 text") from None
    check_cookies_text(text)
    fd = os.open(directory / "cookies.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    copy = directory / "cookies.txt"
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        load_with_ytdlp(copy)
        yield copy, cookie_values(text)
    finally:
        copy.unlink(missing_ok=True)


def proxy_secrets(proxy_url: str | None) -> list[str]:
    """What of a proxy URL must not appear in a log or a report: the URL, its credentials."""
    if not proxy_url:
        return []
    parts = urlsplit(proxy_url)
    return [s for s in (proxy_url, parts.password, parts.username and parts.netloc.rpartition("@")[0]) if s]

