"""The `notify_completion` activity: one signed POST of a job's output to its `notifyUrl`.

Input `{"url", "payload"}`; answer `{"ok": true, "status"}` for a 2xx, else `{"ok": false,
"status"?, "error": {code, message, retryable}}` (retryable: connection failures, timeouts, 5xx,
408, 429). The orchestrator retries (`orchestrators.notification`).

The URL came from a user, so the request is made the way the worker fetches media: the host is
resolved once here, every address it resolves to is checked (`is_forbidden_address`, unless
`ALLOW_PRIVATE_ADDRESSES`), and the socket connects to a checked address. A name that resolves
to something public now and private a moment later (DNS rebinding) cannot reach the private
address, and redirects are not followed (a 3xx is a failed delivery). TLS still verifies the
certificate against the host name (SNI), not the address.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from videojob.contract.url_policy import UrlPolicy, UrlRejected, check_url, is_forbidden_address
from videojob.contract.wire import JobError
from videojob.domain.notification import (
    NOTIFY_CONNECTION_FAILED,
    NOTIFY_HTTP_STATUS,
    NOTIFY_INVALID_URL,
    NOTIFY_NOT_CONFIGURED,
    NOTIFY_PRIVATE_ADDRESS,
    NotifyResult,
    is_retryable_status,
)
from videojob.domain.notify_signature import signature_headers
from videojob.domain.request_parsing import notify_policy
from videojob.domain.settings import Settings

logger = logging.getLogger(__name__)

USER_AGENT = "video-downloader-webhook/1"
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024

Resolver = Callable[..., list[tuple[Any, ...]]]


@dataclass(frozen=True)
class NotifyConfig:
    signing_key: str | None
    policy: UrlPolicy
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS
    read_timeout: float = READ_TIMEOUT_SECONDS
    ssl_context: ssl.SSLContext | None = None
    """None: the system's trust store (tests pass one that trusts their own CA)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> NotifyConfig:
        return cls(settings.notify_signing_key, notify_policy(UrlPolicy((), settings.allow_private_addresses)))


class AddressNotAllowed(Exception):
    pass


def _failure(code: str, message: str, retryable: bool, status: int | None = None) -> dict[str, Any]:
    return NotifyResult(False, status, JobError(code, " ".join(message.split())[:300], retryable)).to_wire()


def _checked_addresses(host: str, port: int, config: NotifyConfig, resolve: Resolver) -> list[tuple[Any, ...]]:
    """Every address `host` resolves to, each allowed by the policy; raises when any is not."""
    infos = resolve(host, port, 0, socket.SOCK_STREAM)
    usable = [i for i in infos if i[0] in (socket.AF_INET, socket.AF_INET6)]
    if not usable:
        raise OSError(f"{host} has no IPv4 or IPv6 address")
    if not config.policy.allow_private_addresses:
        for info in usable:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if is_forbidden_address(ip):
                # Any private answer refuses the host: a resolver that mixes answers is not trusted.
                raise AddressNotAllowed(str(ip))
    return usable


def _connect(addresses: list[tuple[Any, ...]], timeout: float) -> socket.socket:
    last: OSError | None = None
    for family, type_, proto, _, sockaddr in addresses:
        sock = socket.socket(family, type_, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
            return sock
        except OSError as e:
            sock.close()
            last = e
    raise last or OSError("no address to connect to")


def _connection(
    scheme: str, host: str, port: int, sock_factory: Callable[[], socket.socket], config: NotifyConfig
) -> http.client.HTTPConnection:
    """An http.client connection for `host` whose socket is `sock_factory()` (already checked)."""
    read_timeout = config.read_timeout
    if scheme == "https":
        context = config.ssl_context or ssl.create_default_context()
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=read_timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=read_timeout)

    def create_connection(*_args: Any, **_kw: Any) -> socket.socket:
        sock = sock_factory()
        sock.settimeout(read_timeout)
        return sock

    # http.client opens its socket through this attribute; HTTPS then wraps it with
    # server_hostname=host, so SNI and certificate checks use the name, not the address.
    conn._create_connection = create_connection  # type: ignore[attr-defined]
    return conn


def post_notification(
    url: str, payload: Any, config: NotifyConfig, *, resolve: Resolver = socket.getaddrinfo,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """One delivery attempt; the answer is the activity's wire shape. Never raises."""
    if not config.signing_key:
        return _failure(NOTIFY_NOT_CONFIGURED, "NOTIFY_SIGNING_KEY is not set", False)
    try:
        checked = check_url(url, notify_policy(config.policy))
    except UrlRejected as e:
        code = NOTIFY_PRIVATE_ADDRESS if e.code == NOTIFY_PRIVATE_ADDRESS else NOTIFY_INVALID_URL
        return _failure(code, f"notifyUrl: {e.message}", False)
    parts = urlsplit(checked.url)
    port = parts.port or (443 if checked.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        **signature_headers(config.signing_key, int(clock()), body),
    }
    try:
        addresses = _checked_addresses(checked.host, port, config, resolve)
        conn = _connection(
            checked.scheme, checked.host, port, lambda: _connect(addresses, config.connect_timeout), config
        )
        try:
            conn.request("POST", target, body=body, headers=headers)
            response = conn.getresponse()
            response.read(MAX_RESPONSE_BYTES)
            status = response.status
        finally:
            conn.close()
    except AddressNotAllowed:
        return _failure(NOTIFY_PRIVATE_ADDRESS, f"notifyUrl: {checked.host} resolves to a private address", False)
    except ssl.SSLCertVerificationError as e:
        # The receiver's certificate does not match its name: retrying will not fix that.
        return _failure(NOTIFY_CONNECTION_FAILED, f"TLS certificate not accepted: {e.verify_message}", False)
    except (OSError, http.client.HTTPException) as e:
        return _failure(NOTIFY_CONNECTION_FAILED, f"could not deliver to {checked.host}: {type(e).__name__}", True)

    if 200 <= status < 300:
        logger.info("completion webhook delivered to %s (%d)", checked.host, status)
        return NotifyResult(True, status).to_wire()
    hint = " (redirects are not followed)" if 300 <= status < 400 else ""
    logger.warning("completion webhook to %s answered %d", checked.host, status)
    return _failure(NOTIFY_HTTP_STATUS, f"the receiver answered {status}{hint}", is_retryable_status(status), status)


def notify_completion_activity(payload: Any, settings: Callable[[], Settings]) -> dict[str, Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("url"), str) or "payload" not in payload:
        return _failure("invalid_input", "the input needs 'url' and 'payload'", False)
    try:
        config = NotifyConfig.from_settings(settings())
    except Exception as e:  # noqa: BLE001 - a settings error is answered, not raised
        return _failure(NOTIFY_NOT_CONFIGURED, str(e), False)
    return post_notification(payload["url"], payload["payload"], config)
