"""URL policy: one function, used by the starter and again by the worker.

`check_url` is pure: it never resolves names (the starter must not depend on DNS). The worker
adds the connection-time check with `is_forbidden_address` on every address it connects to.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from videojob.contract.wire import ErrorCode

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = ("http", "https")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRejected(ValueError):
    """The URL breaks the policy. `code` is one of the validation codes; `message` is user-safe."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class UrlPolicy:
    allowed_hosts: tuple[str, ...]
    allow_private_addresses: bool = False


@dataclass(frozen=True)
class CheckedUrl:
    url: str
    scheme: str
    host: str
    address: IPAddress | None
    """The host as an IP address when it is an IP literal (in any notation), else None."""


_IPV4_PART = re.compile(r"(0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)")
# IDNA (and so every HTTP client) reads these as "." in a host name: `127。0。0。1` is loopback.
_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes as an IP literal, in any notation a resolver accepts.

    Covers dotted quads, the short inet_aton forms (`127.1`), single decimal (`2130706433`),
    hex (`0x7f000001`, `0x7f.0.0.1`), octal (`0177.0.0.1`), bracketed IPv6 and IPv4-mapped IPv6.
    Returns None for a host name.
    """
    h = host.strip().lower().translate(_IDNA_DOTS).rstrip(".")
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if ":" in h:
        try:
            return ipaddress.IPv6Address(h.split("%", 1)[0])
        except ValueError:
            return None
    parts = h.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(p) for p in parts):
        return None
    values = []
    for p in parts:
        if p.startswith("0x"):
            values.append(int(p[2:] or "0", 16))
        elif len(p) > 1 and p.startswith("0"):
            values.append(int(p, 8))
        else:
            values.append(int(p))
    # inet_aton: the last part fills all remaining bytes.
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return None
    n = 0
    for v in head:
        n = n * 256 + v
    n = n * 256 ** (5 - len(values)) + last
    return ipaddress.IPv4Address(n)


def is_forbidden_address(address: IPAddress | str) -> bool:
    """True for loopback, private, link-local (the metadata endpoint), unspecified, multicast,
    reserved and other non-global addresses, also when wrapped in IPv4-mapped/compatible IPv6,
    6to4, Teredo or NAT64."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in ipaddress.IPv6Network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and int(ip) >> 32 == 0 and int(ip) > 1:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)  # IPv4-compatible (deprecated)
        if embedded is not None and is_forbidden_address(embedded):
            return True
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_multicast
        or ip.is_reserved
        or not ip.is_global
    )


def host_allowed(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    """Exact match, or a subdomain of an entry written with a leading `.`; `*` allows any."""
    h = host.lower().rstrip(".")
    for entry in allowed_hosts:
        if entry == "*":
            return True
        if entry.startswith("."):
            if h.endswith(entry) and len(h) > len(entry):
                return True
        elif h == entry:
            return True
    return False


def _has_control_chars(s: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in s)


def check_url(url: object, policy: UrlPolicy) -> CheckedUrl:
    """Check a user-supplied URL against the policy; raises `UrlRejected` with the error code."""
    if not isinstance(url, str) or not url.strip():
        raise UrlRejected(ErrorCode.MISSING_URL, "a video URL is required")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise UrlRejected(ErrorCode.URL_TOO_LONG, f"the URL is longer than {MAX_URL_LENGTH} characters")
    if _has_control_chars(url) or " " in url or "\\" in url:
        raise UrlRejected(ErrorCode.INVALID_URL, "the URL contains spaces, backslashes or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise UrlRejected(ErrorCode.INVALID_URL, "the URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise UrlRejected(ErrorCode.INVALID_URL, "the URL must be absolute (https://...)")
    if scheme not in ALLOWED_SCHEMES:
        raise UrlRejected(ErrorCode.SCHEME_NOT_ALLOWED, "only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRejected(ErrorCode.INVALID_URL, "credentials in the URL are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRejected(ErrorCode.INVALID_URL, "the URL has no host")
    del port
    address = parse_ip_literal(host)
    if address is None and (host.startswith("[") or ":" in host):
        raise UrlRejected(ErrorCode.INVALID_URL, "the URL's host is not a valid address")
    if address is not None and not policy.allow_private_addresses and is_forbidden_address(address):
        raise UrlRejected(ErrorCode.PRIVATE_ADDRESS, "the URL points to a private or reserved address")
    if not host_allowed(host if address is None else str(address), policy.allowed_hosts) and not host_allowed(
        host, policy.allowed_hosts
    ):
        raise UrlRejected(ErrorCode.HOST_NOT_ALLOWED, f"downloads from {host} are not allowed")
    return CheckedUrl(url=url, scheme=scheme, host=host.lower(), address=address)
