"""Private addresses stay out of reach when ALLOW_PRIVATE_ADDRESSES is false."""

from __future__ import annotations

import socket
import tempfile
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.support.services import Azurite
from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import FAST, worker_env
from tests.worker.media_server import MediaServer
from videojob.contract import container_env as E
from worker import address_guard
from worker.address_guard import AddressRefused
from worker.downloader import MediaRequest, YtDlpDownloader
from worker.errors import JobFailed
from worker.runner import main

STRICT = address_guard.GuardPolicy(allow_private_addresses=False)


def test_a_job_for_a_name_that_resolves_to_loopback_fails_with_private_address(
    media_server: MediaServer, callbacks: CallbackReceiver, azurite: Azurite, workspace: Path
) -> None:
    url = f"http://localhost:{media_server.port}/clip.mp4"
    before = len(media_server.requests)
    env = worker_env(
        job_id=uuid.uuid4().hex, url=url, callbacks=callbacks, azurite=azurite, **{E.ALLOW_PRIVATE_ADDRESSES: "false"}
    )
    assert main(env, tuning=FAST) != 0
    # The callback (operator-configured, on loopback here) still got the report.
    last = callbacks.accepted()[-1]
    assert (last["state"], last["error"]["code"]) == ("failed", "private_address")
    assert len(media_server.requests) == before


@pytest.mark.parametrize("host", ["127.0.0.1", "0x7f.1", "2130706433", "[::ffff:127.0.0.1]", "169.254.169.254"])
def test_a_job_for_a_private_ip_literal_is_refused_before_any_request(
    host: str, callbacks: CallbackReceiver, azurite: Azurite, workspace: Path
) -> None:
    env = worker_env(
        job_id=uuid.uuid4().hex, url=f"http://{host}/video.mp4", callbacks=callbacks, azurite=azurite,
        **{E.ALLOW_PRIVATE_ADDRESSES: "false", E.ALLOWED_HOSTS: "*"},
    )  # fmt: skip
    assert main(env, tuning=FAST) != 0
    assert callbacks.accepted()[-1]["error"]["code"] == "private_address"


def test_yt_dlp_connections_are_refused_at_connect_time(media_server: MediaServer) -> None:
    """Past the URL check (as after a redirect or a DNS answer that changed), the connection
    itself is refused and nothing reaches the server."""
    before = len(media_server.requests)
    with tempfile.TemporaryDirectory() as work, address_guard.armed(STRICT) as state:
        with pytest.raises(JobFailed) as failed:
            YtDlpDownloader().download(
                MediaRequest(url=media_server.url("hls/master.m3u8"), format="video"),
                Path(work),
                lambda status: None,
                lambda phase: None,
            )
    assert state.refusals
    assert failed.value.error.code == "private_address"
    assert len(media_server.requests) == before


def test_a_redirect_to_a_private_address_is_refused(media_server: MediaServer) -> None:
    target = media_server.url("clip.mp4")
    trusted = address_guard.resolve_trusted([("127.0.0.1", media_server.port)])
    # The redirector is trusted (stands in for a public host); its target is not.
    with address_guard.armed(address_guard.GuardPolicy(False, trusted)) as state:
        other = MediaServerAlias(media_server, "127.0.0.2")
        with pytest.raises(OSError):
            urllib.request.urlopen(media_server.url(f"redirect?to={other.url('clip.mp4')}"), timeout=5)  # noqa: S310
    assert state.refusals == [("127.0.0.2", media_server.port)]
    assert target not in media_server.requests


class MediaServerAlias:
    def __init__(self, server: MediaServer, ip: str):
        self.server, self.ip = server, ip

    def url(self, path: str) -> str:
        return f"http://{self.ip}:{self.server.port}/{path}"


def test_connect_by_name_is_resolved_checked_and_refused(media_server: MediaServer) -> None:
    with address_guard.armed(STRICT), pytest.raises(AddressRefused):
        socket.create_connection(("localhost", media_server.port), timeout=5)
    with address_guard.armed(STRICT), socket.socket() as s, pytest.raises(AddressRefused):
        s.connect(("localhost", media_server.port))


def test_trusted_operator_endpoints_and_public_addresses_pass() -> None:
    policy = address_guard.GuardPolicy(False, frozenset({("127.0.0.1", 7071)}))
    assert address_guard.connection_allowed("127.0.0.1", 7071, policy)
    assert not address_guard.connection_allowed("127.0.0.1", 7072, policy)
    assert not address_guard.connection_allowed("169.254.169.254", 80, policy)
    assert not address_guard.connection_allowed("::ffff:10.0.0.1", 443, policy)
    assert address_guard.connection_allowed("142.250.1.1", 443, policy)
    assert address_guard.connection_allowed("10.0.0.1", 443, address_guard.GuardPolicy(True))


def test_the_guard_is_off_outside_a_job(media_server: MediaServer) -> None:
    with address_guard.armed(STRICT):
        pass
    with socket.create_connection(("127.0.0.1", media_server.port), timeout=5):
        pass
