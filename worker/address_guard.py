"""Connection-time address guard: no socket of this process reaches a private address.

The URL policy checks the job URL once, but yt-dlp then follows redirects, fetches manifests
and fragments from other hosts, and a name can resolve differently on each lookup (DNS
rebinding). So the check happens where the address is final: `socket.socket.connect` (and
`connect_ex`), which every HTTP client in this process ends up calling with the resolved IP
(urllib, http.client, urllib3/requests, ssl). A connect by host name is resolved here, checked,
and then connected to the checked address, so no second lookup can differ.

ffmpeg opens its own connections when yt-dlp delegates a download to it; those cannot be
seen from here, so the downloader refuses that delegation (see `downloader`).

Operator-configured endpoints (the callback URL and the blob endpoint, which are on loopback
in development, and the operator's proxy) stay reachable: their `(ip, port)` pairs, resolved
when the guard is armed, are trusted. They come from the container env, never from the user.

Through a proxy, every connection goes to the proxy's address, so the check moves to the
request: before yt-dlp sends a request via a proxy (the first one and every redirect: both of
its HTTP handlers pick the proxy per request with `select_proxy`), the target's host is
resolved here and the request is refused, before anything reaches the proxy, if any address is
private or reserved (`check_proxied_target`). The proxy resolves the name again; an operator's
proxy should refuse private destinations itself (see README, "YouTube from the cloud").
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from videojob.contract.url_policy import is_forbidden_address


class AddressRefused(ConnectionRefusedError):
    """The address guard refused a connection to a private/loopback/link-local/reserved address."""

    def __init__(self, address: str, port: int | None):
        super().__init__(f"connection to a private or reserved address refused ({address})")
        self.address = address
        self.port = port


_INET_FAMILIES = (socket.AF_INET, socket.AF_INET6)


@dataclass(frozen=True)
class GuardPolicy:
    allow_private_addresses: bool
    trusted: frozenset[tuple[str, int]] = frozenset()
    """`(ip, port)` pairs of operator endpoints that may be private."""


def connection_allowed(ip: str, port: int, policy: GuardPolicy) -> bool:
    """Pure decision for one resolved address."""
    if policy.allow_private_addresses:
        return True
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if not is_forbidden_address(address):
        return True
    return (str(address), port) in policy.trusted


def endpoint_of(url: str) -> tuple[str, int] | None:
    """`(host, port)` of an http(s) (or socks5 proxy) URL, with the scheme's default port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname, port or DEFAULT_PORTS.get(parts.scheme.lower(), 80)


DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080}


def resolve_trusted(endpoints: Iterable[tuple[str, int]]) -> frozenset[tuple[str, int]]:
    """Every `(ip, port)` the operator endpoints resolve to now (unresolvable ones are skipped)."""
    pairs: set[tuple[str, int]] = set()
    for host, port in endpoints:
        try:
            infos = _real_getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except OSError:
            continue
        for family, _, _, _, sockaddr in infos:
            if family in _INET_FAMILIES:
                pairs.add((str(ipaddress.ip_address(sockaddr[0].split("%", 1)[0])), port))
    return frozenset(pairs)


@dataclass
class GuardState:
    policy: GuardPolicy
    refusals: list[tuple[str, int]] = field(default_factory=list)


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_lock = threading.Lock()
_installed = False
_active: GuardState | None = None


def _checked_address(sock: socket.socket, address: object) -> object:
    """The address to really connect to, after the check; raises `AddressRefused`."""
    state = _active
    if state is None or sock.family not in _INET_FAMILIES or not isinstance(address, tuple) or len(address) < 2:
        return address
    host, port = address[0], address[1]
    try:
        ipaddress.ip_address(str(host).split("%", 1)[0])
        candidates = [address]
    except ValueError:
        # A connect by name: resolve once here and connect to what was checked.
        infos = _real_getaddrinfo(host, port, sock.family, sock.type)
        candidates = [info[4] for info in infos]
    for candidate in candidates:
        ip = str(candidate[0])
        if connection_allowed(ip, int(port), state.policy):
            return candidate
    refused_ip = str(candidates[0][0]) if candidates else str(host)
    state.refusals.append((refused_ip, int(port)))
    raise AddressRefused(refused_ip, int(port))


def _guarded_connect(self: socket.socket, address: object) -> None:
    return _real_connect(self, _checked_address(self, address))


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    return _real_connect_ex(self, _checked_address(self, address))


def check_proxied_target(url: str) -> None:
    """Raise `AddressRefused` (recorded like a refused connection) when `url`, about to be sent
    through a proxy, names a private or reserved address or a host resolving to one."""
    state = _active
    if state is None or state.policy.allow_private_addresses:
        return
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        host, port = None, 0
    if not host:
        raise AddressRefused(str(url)[:100], None)
    try:
        addresses = [str(ipaddress.ip_address(host.split("%", 1)[0]))]
    except ValueError:
        try:
            infos = _real_getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except OSError as e:
            # Unchecked is refused: the proxy could resolve it to anything.
            raise ConnectionError(f"cannot resolve {host} to check its address before using the proxy") from e
        addresses = [str(info[4][0]) for info in infos if info[0] in _INET_FAMILIES]
    for address in addresses:
        if is_forbidden_address(address.split("%", 1)[0]):
            state.refusals.append((address, port))
            raise AddressRefused(address, port)


def _checked_select_proxy(real: Callable[..., str | None]) -> Callable[..., str | None]:
    def select_proxy(url: str, proxies: object) -> str | None:
        proxy = real(url, proxies)
        if proxy is not None:
            check_proxied_target(url)
        return proxy

    select_proxy.__wrapped__ = real  # type: ignore[attr-defined]
    return select_proxy


def _guard_ytdlp_proxies() -> None:
    """Put `check_proxied_target` in front of each yt-dlp HTTP handler's proxy choice."""
    import importlib

    for name in PROXY_CHECKED_HANDLERS.values():
        try:
            module = importlib.import_module(name)
        except ImportError:  # e.g. `requests` missing: yt-dlp does not offer that handler either
            continue
        if not hasattr(module.select_proxy, "__wrapped__"):
            module.select_proxy = _checked_select_proxy(module.select_proxy)


PROXY_CHECKED_HANDLERS = {"Urllib": "yt_dlp.networking._urllib", "Requests": "yt_dlp.networking._requests"}
"""yt-dlp's request handlers whose proxied requests are checked (a test fails if yt-dlp gains another)."""


def is_trusted_peer(sock: socket.socket) -> bool:
    """`sock` is connected to one of the armed policy's operator endpoints."""
    state = _active
    if state is None or sock.family not in _INET_FAMILIES:
        return False
    try:
        peer = sock.getpeername()
    except OSError:
        return False
    ip = str(ipaddress.ip_address(str(peer[0]).split("%", 1)[0]))
    return (ip, int(peer[1])) in state.policy.trusted


def install() -> None:
    """Put the guard on `socket.socket` (once per process). Inactive until `armed()`."""
    global _installed
    with _lock:
        if _installed:
            return
        socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
        _guard_ytdlp_proxies()
        _installed = True


@contextlib.contextmanager
def armed(policy: GuardPolicy) -> Iterator[GuardState]:
    """Enforce `policy` for every connection of this process while the block runs."""
    global _active
    install()
    state = GuardState(policy)
    with _lock:
        if _active is not None:
            raise RuntimeError("the address guard is already armed (one job per process)")
        _active = state
    try:
        yield state
    finally:
        with _lock:
            _active = None
