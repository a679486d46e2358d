"""Parsers of the values an app setting and the worker's container env share (allowed hosts, proxy
URL, yt-dlp extractor arguments): one parser for both, so the app refuses at start-up what the worker
would refuse at run time. Pure: the worker imports it (it is part of the contract)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = (
    "youtube.com",
    ".youtube.com",
    "youtu.be",
    "youtube-nocookie.com",
    ".youtube-nocookie.com",
)

class SettingsError(ValueError):
    """A setting is missing or malformed. The message names the setting (never its value)."""


def parse_allowed_hosts(raw: str | None) -> tuple[str, ...]:
    """`ALLOWED_HOSTS`: comma list; a leading `.` allows subdomains; `*` allows any host."""
    if raw is None:
        return DEFAULT_ALLOWED_HOSTS
    hosts = tuple(h.strip().lower().rstrip(".") or h.strip().lower() for h in raw.split(",") if h.strip())
    for h in hosts:
        if h != "*" and (" " in h or "/" in h or h in (".",)):
            raise SettingsError("setting ALLOWED_HOSTS must be a comma list of host names")
    if not hosts:
        raise SettingsError("setting ALLOWED_HOSTS must name at least one host")
    return hosts


PROXY_SCHEMES: tuple[str, ...] = ("http", "https", "socks5")


def parse_proxy_url(raw: str | None) -> str | None:
    """`WORKER_PROXY_URL`: `http://`, `https://` or `socks5://`, a host, an optional port and
    credentials, nothing else. Errors name the setting, never the value (it may hold a password)."""
    if raw is None:
        return None
    name = "WORKER_PROXY_URL"
    if raw.startswith("@Microsoft.KeyVault("):
        raise SettingsError(f"setting {name} is an unresolved Key Vault reference")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise SettingsError(f"setting {name} must be a URL like http://host:port") from None
    if parts.scheme.lower() not in PROXY_SCHEMES:
        raise SettingsError(f"setting {name} must start with {', '.join(s + '://' for s in PROXY_SCHEMES)}")
    if not parts.hostname or any(c.isspace() for c in raw):
        raise SettingsError(f"setting {name} must name a host (http://[user:password@]host:port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SettingsError(f"setting {name} must be scheme://[user:password@]host[:port] with no path or query")
    if port == 0:
        raise SettingsError(f"setting {name} must have a port between 1 and 65535")
    return raw.rstrip("/")


_EXTRACTOR_KEY = r"[\w-]+"
_EXTRACTOR_GROUP = re.compile(rf"(?P<key>{_EXTRACTOR_KEY}):(?P<args>.+)", re.S)
_EXTRACTOR_ARG = re.compile(rf"{_EXTRACTOR_KEY}=.*", re.S)


def parse_extractor_args(raw: str | None) -> tuple[str, ...]:
    """`YTDLP_EXTRACTOR_ARGS`: one or more yt-dlp `--extractor-args` values separated by spaces,
    each `IE_KEY:ARG=VALUE[,VALUE...][;ARG=VALUE...]`, e.g. `youtube:player_client=default,mweb`.

    Pure (the function app has no yt-dlp); the worker hands each group to yt-dlp's own option
    parser. Stricter than yt-dlp, which takes `youtube:anything` and ignores what it cannot use:
    every argument must be `name=value`, so a typo fails at start-up instead of doing nothing."""
    if raw is None:
        return ()
    groups = tuple(raw.split())
    for group in groups:
        match = _EXTRACTOR_GROUP.fullmatch(group)
        if match is None or not all(_EXTRACTOR_ARG.fullmatch(a) for a in match.group("args").split(";")):
            raise SettingsError(
                "setting YTDLP_EXTRACTOR_ARGS must be space-separated IE_KEY:ARG=VALUE[,VALUE][;ARG=VALUE] groups "
                "(yt-dlp's --extractor-args), e.g. youtube:player_client=default,mweb"
            )
    return groups
