"""YouTube from a datacenter, offline: the operator's cookies file and proxy, whole jobs in-process.

A loopback site answers 403 with a bot-check page unless the request carries the right cookie
(`/cookie-gate/`), and a loopback forward proxy serves every target it is sent from the media
server, so a job can name a public address without any traffic leaving loopback (a guard in
`loopback_only` fails the test if a connection would).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from yt_dlp.version import __version__ as YTDLP_VERSION

from tests.support.services import Azurite
from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import FAST, staged_media, worker_env
from tests.worker.forward_proxy import ForwardProxy, run_forward_proxy
from tests.worker.media_server import GATE_COOKIE_NAME, GATE_COOKIE_VALUE, MediaServer
from videojob.contract import container_env as E
from videojob.contract.wire import JobStatus
from worker import address_guard
from worker.runner import main

PUBLIC_HOST = "93.184.215.14"
"""A global address the jobs name; only the test proxy ever sees it (`loopback_only` checks)."""


def cookies_text(value: str = GATE_COOKIE_VALUE) -> str:
    return (
        "# Netscape HTTP Cookie File\n"
        "# exported for the test\n"
        f"127.0.0.1\tFALSE\t/\tFALSE\t4102444800\t{GATE_COOKIE_NAME}\t{value}\n"
        f"#HttpOnly_.youtube.com\tTRUE\t/\tTRUE\t4102444800\tHSID\tother-cookie-value-5b1d\n"
    )


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every connection this process makes (guard armed or not) must go to loopback."""
    real = address_guard._real_connect
    attempts: list[tuple[str, int]] = []

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append((str(address[0]), int(address[1])))
            if not ipaddress.ip_address(str(address[0]).split("%", 1)[0]).is_loopback:
                raise AssertionError(f"a connection to {address[0]} would have left loopback")
        return real(sock, address)

    monkeypatch.setattr(address_guard, "_real_connect", connect)
    return attempts


@pytest.fixture
def proxy(media_server: MediaServer) -> Iterator[ForwardProxy]:
    with run_forward_proxy(media_server.port) as p:
        yield p


def run(env: dict[str, str]) -> int:
    return main(env, tuning=FAST)


def terminal(callbacks: CallbackReceiver) -> dict[str, Any]:
    last = callbacks.accepted()[-1]
    JobStatus.from_wire(last)
    return last


def everything_reported(callbacks: CallbackReceiver) -> str:
    return json.dumps(callbacks.accepted())


# ---- cookies ------------------------------------------------------------------------------------


def test_without_cookies_the_gated_site_refuses_the_job(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, workspace: Path
) -> None:
    env = worker_env(job_id=uuid.uuid4().hex, url=media_server.url("cookie-gate/clip.mp4"), callbacks=callbacks,
                     azurite=azurite)  # fmt: skip
    assert run(env) != 0
    error = terminal(callbacks)["error"]
    assert error["code"] in ("bot_check", "http_error"), error
    assert "403" in error["message"]


def test_with_the_cookies_file_the_job_succeeds_and_the_cookies_stay_secret(
    media_server: MediaServer,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    workspace: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    mounted = tmp_path / "secrets" / "cookies.txt"
    mounted.parent.mkdir()
    mounted.write_text(cookies_text())
    mounted.chmod(0o400)  # read-only, as the ACI secret volume and podman's mount are
    before = (mounted.read_bytes(), os.stat(mounted).st_mtime_ns)
    jid = uuid.uuid4().hex
    env = worker_env(job_id=jid, url=media_server.url("cookie-gate/clip.mp4"), callbacks=callbacks, azurite=azurite,
                     **{E.COOKIES_FILE: str(mounted)})  # fmt: skip

    assert run(env) == 0, terminal(callbacks)
    event = terminal(callbacks)
    assert event["state"] == "succeeded"
    assert event["result"]["media"]["ytDlpVersion"] == YTDLP_VERSION
    # The mounted file is as it was (yt-dlp rewrote its private copy, which is gone).
    assert (mounted.read_bytes(), os.stat(mounted).st_mtime_ns) == before
    assert list(workspace.iterdir()) == []
    # No cookie value in a log line, an event, the output, the blob or its metadata.
    blob = staged_media(blob_service, jid)
    props = blob.get_blob_properties()
    places = {
        "logs": caplog.text,
        "events": everything_reported(callbacks),
        "blob metadata": json.dumps(props.metadata) + props.name,
    }
    data = blob.download_blob().readall()
    for value in (GATE_COOKIE_VALUE, "other-cookie-value-5b1d"):
        for where, text in places.items():
            assert value not in text, f"a cookie value in the {where}"
        assert value.encode() not in data
    assert "cookies" in caplog.text  # the worker says it used cookies, not which


@pytest.mark.parametrize(
    "content",
    [
        "SID=gate-cookie-value-7f3a91c2e5; HSID=abc",  # a Cookie header, not a cookies.txt
        '[{"name": "SID", "value": "gate-cookie-value-7f3a91c2e5"}]',  # a browser extension's JSON
        "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tgate-cookie-value-7f3a91c2e5\n",  # fields missing
        "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\tsoon\tSID\tgate-cookie-value-7f3a91c2e5\n",
        "# Netscape HTTP Cookie File\n# nothing else\n",
    ],
    ids=["header", "json", "short-line", "bad-expiry", "empty"],
)
def test_a_malformed_cookies_file_fails_the_job_as_invalid_cookies_without_quoting_it(
    content: str,
    media_server: MediaServer,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    workspace: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    mounted = tmp_path / "cookies.txt"
    mounted.write_text(content)
    before = len(media_server.requests)
    env = worker_env(job_id=uuid.uuid4().hex, url=media_server.url("cookie-gate/clip.mp4"), callbacks=callbacks,
                     azurite=azurite, **{E.COOKIES_FILE: str(mounted)})  # fmt: skip

    assert run(env) != 0
    error = terminal(callbacks)["error"]
    assert error["code"] == "invalid_cookies", error
    assert "YOUTUBE_COOKIES" in error["message"]
    assert len(media_server.requests) == before, "nothing is fetched with unusable cookies"
    printed = capsys.readouterr()
    for text in (caplog.text, everything_reported(callbacks), printed.out, printed.err):
        assert GATE_COOKIE_VALUE not in text
    assert list(workspace.iterdir()) == []


def test_a_missing_cookies_file_is_invalid_cookies(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, workspace: Path, tmp_path: Path
) -> None:
    env = worker_env(job_id=uuid.uuid4().hex, url=media_server.url("clip.mp4"), callbacks=callbacks, azurite=azurite,
                     **{E.COOKIES_FILE: str(tmp_path / "absent.txt")})  # fmt: skip
    assert run(env) != 0
    assert terminal(callbacks)["error"]["code"] == "invalid_cookies"


# ---- proxy --------------------------------------------------------------------------------------


def proxied_env(jid: str, url: str, proxy: ForwardProxy, callbacks: CallbackReceiver, azurite: Azurite) -> dict:
    return worker_env(
        job_id=jid, url=url, callbacks=callbacks, azurite=azurite,
        **{
            E.PROXY_URL: proxy.url.replace("http://", "http://proxyuser:proxy-password-4e7a@"),
            E.ALLOW_PRIVATE_ADDRESSES: "false",  # the guard is on: loopback is reachable only as an operator endpoint
            E.ALLOWED_HOSTS: PUBLIC_HOST,
        },
    )  # fmt: skip


def test_with_a_proxy_every_media_request_goes_through_it_and_callbacks_and_uploads_do_not(
    media_server: MediaServer,
    proxy: ForwardProxy,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    workspace: Path,
    loopback_only: list[tuple[str, int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://{PUBLIC_HOST}:8080/clip.mp4"
    before = len(media_server.requests)
    assert run(proxied_env(uuid.uuid4().hex, url, proxy, callbacks, azurite)) == 0, terminal(callbacks)

    assert terminal(callbacks)["state"] == "succeeded"
    assert proxy.seen, "nothing went through the proxy"
    assert all(target.startswith(f"http://{PUBLIC_HOST}:8080/") for _, target in proxy.seen), proxy.seen
    assert len(media_server.requests) - before == len(proxy.seen), "a media request bypassed the proxy"
    assert all(a is not None and a.startswith("Basic ") for a in proxy.authorizations)  # credentials were used
    # Callbacks and the upload went straight to their endpoints: the only connections to the
    # proxy's port were the media requests, and some went to the callback receiver and Azurite.
    ports = {port for _, port in loopback_only}
    assert {callbacks.port, azurite.port} <= ports, (ports, callbacks.port)
    assert "proxy-password-4e7a" not in caplog.text + everything_reported(callbacks)


@pytest.mark.parametrize(
    "redirect_to",
    ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/clip.mp4", "http://localhost:{port}/clip.mp4"],
    ids=["metadata-endpoint", "private-range", "name-resolving-to-loopback"],
)
def test_a_redirect_to_a_private_address_is_refused_before_the_proxy_sees_it(
    redirect_to: str,
    media_server: MediaServer,
    proxy: ForwardProxy,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    workspace: Path,
    loopback_only: list[tuple[str, int]],
) -> None:
    target = redirect_to.format(port=media_server.port)
    url = f"http://{PUBLIC_HOST}:8080/redirect?to={target}"
    assert run(proxied_env(uuid.uuid4().hex, url, proxy, callbacks, azurite)) != 0

    error = terminal(callbacks)["error"]
    assert error["code"] == "private_address", error
    assert proxy.seen and all(t.startswith(f"http://{PUBLIC_HOST}:8080/redirect") for _, t in proxy.seen), proxy.seen


def test_a_job_url_naming_a_private_address_never_reaches_the_proxy(
    proxy: ForwardProxy, callbacks: CallbackReceiver, azurite: Azurite, workspace: Path, loopback_only: list
) -> None:
    env = proxied_env(uuid.uuid4().hex, "http://169.254.169.254/latest/meta-data/", proxy, callbacks, azurite)
    env[E.ALLOWED_HOSTS] = "*"
    assert run(env) != 0
    assert terminal(callbacks)["error"]["code"] == "private_address"
    assert proxy.seen == []


def test_every_yt_dlp_request_handler_has_its_proxied_requests_checked() -> None:
    """A new handler (curl_cffi, websockets installed into the image) would pick its proxy
    unchecked: this fails until `address_guard` covers it."""
    from yt_dlp.networking.common import _REQUEST_HANDLERS

    address_guard.install()
    http_handlers = {k for k, rh in _REQUEST_HANDLERS.items() if "http" in getattr(rh, "_SUPPORTED_URL_SCHEMES", ())}
    assert http_handlers <= set(address_guard.PROXY_CHECKED_HANDLERS), http_handlers
    for module in address_guard.PROXY_CHECKED_HANDLERS.values():
        assert hasattr(__import__(module, fromlist=["select_proxy"]).select_proxy, "__wrapped__")


def test_a_bot_check_names_the_settings_that_get_past_it_even_when_the_message_is_long() -> None:
    from yt_dlp.utils import DownloadError, ExtractorError

    from worker.errors import classify

    cause = ExtractorError("Sign in to confirm you’re not a bot. " + "Use --cookies " * 200, expected=True)
    error = classify(DownloadError(str(cause), exc_info=(type(cause), cause, None)))
    assert error.code == "bot_check"
    assert len(error.message) <= 1000
    for setting in ("YOUTUBE_COOKIES", "WORKER_PROXY_URL", "YTDLP_EXTRACTOR_ARGS"):
        assert setting in error.message
