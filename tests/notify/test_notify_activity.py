"""`notify_completion`: one signed POST to a loopback receiver, classified answers, address checks."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from activities.notify import NotifyConfig, notify_completion_activity, post_notification
from tests.notify.receiver import run_receiver
from tests.notify.tls import make_pki
from tests.support.replay import run_activity_function
from videojob import bootstrap
from videojob.contract.url_policy import UrlPolicy
from videojob.domain.notify_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from videojob.domain.settings import load_settings

KEY = "notify-key-for-tests-0123456789abcdef"
OUTPUT = {"jobId": "job-1", "state": "succeeded", "title": "Grüße"}
LOOPBACK_OK = NotifyConfig(KEY, UrlPolicy(("*",), allow_private_addresses=True))
STRICT = NotifyConfig(KEY, UrlPolicy(("*",), allow_private_addresses=False))


def resolver_for(mapping: dict[str, list[str]]):
    """A resolver answering from `mapping` (host -> IPs): names that do not exist anywhere."""

    def resolve(host: str, port: int, *_: Any) -> list[tuple[Any, ...]]:
        if host not in mapping:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        out = []
        for ip in mapping[host]:
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sockaddr = (ip, port, 0, 0) if family == socket.AF_INET6 else (ip, port)
            out.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return out

    return resolve


def test_delivers_the_output_signed_with_the_key_and_a_timestamp():
    with run_receiver() as receiver:
        answer = post_notification(receiver.url(), OUTPUT, LOOPBACK_OK)

    assert answer == {"ok": True, "status": 204}
    [delivery] = receiver.received
    assert delivery.path == "/hooks/videojob"
    assert json.loads(delivery.body) == OUTPUT
    assert delivery.headers["content-type"].startswith("application/json")
    assert delivery.headers["user-agent"].startswith("video-downloader-webhook/")
    timestamp = delivery.headers[TIMESTAMP_HEADER.lower()]
    assert abs(int(timestamp) - time.time()) < 600
    signature = delivery.headers[SIGNATURE_HEADER.lower()]
    assert signature.startswith("sha256=")
    assert verify(KEY, delivery.body, signature, timestamp, now=time.time())
    # A receiver holding another key, or a tampered body, does not accept it.
    assert not verify("another-key-0123456789abcdef0123456789", delivery.body, signature, timestamp, time.time())
    assert not verify(KEY, delivery.body.replace(b"job-1", b"job-2"), signature, timestamp, time.time())


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (429, True), (408, True), (404, False), (400, False), (401, False)],
)
def test_failed_answers_are_classified_for_the_retry_loop(status: int, retryable: bool):
    with run_receiver([status]) as receiver:
        answer = post_notification(receiver.url(), OUTPUT, LOOPBACK_OK)

    assert answer["ok"] is False
    assert answer["status"] == status
    assert answer["error"]["code"] == "notify_http_status"
    assert answer["error"]["retryable"] is retryable
    assert len(receiver.received) == 1


def test_a_redirect_is_not_followed():
    with run_receiver([302], location="/elsewhere") as receiver:
        answer = post_notification(receiver.url(), OUTPUT, LOOPBACK_OK)

    assert answer["ok"] is False and answer["status"] == 302
    assert answer["error"]["retryable"] is False
    assert "redirect" in answer["error"]["message"]
    assert [d.path for d in receiver.received] == ["/hooks/videojob"]


def test_a_private_address_is_refused_when_not_allowed_and_nothing_is_sent():
    with run_receiver() as receiver:
        literal = post_notification(receiver.url(), OUTPUT, STRICT)
        # A public-looking name that resolves to loopback (DNS rebinding) is refused as well,
        # also when only one of its answers is private.
        resolve = resolver_for({"hooks.example.test": ["93.184.216.34", "127.0.0.1"]})
        by_name = post_notification(receiver.url(host="hooks.example.test"), OUTPUT, STRICT, resolve=resolve)

    for answer in (literal, by_name):
        assert answer["ok"] is False
        assert answer["error"]["code"] == "private_address"
        assert answer["error"]["retryable"] is False
    assert receiver.received == []


def test_the_connection_goes_to_the_address_that_was_checked():
    # The name exists only in this resolver: the request can only arrive if the socket connects
    # to the address resolved (and checked) here, with the name kept in the Host header.
    resolve = resolver_for({"hooks.example.test": ["127.0.0.1"]})
    with run_receiver() as receiver:
        answer = post_notification(receiver.url(host="hooks.example.test"), OUTPUT, LOOPBACK_OK, resolve=resolve)

    assert answer == {"ok": True, "status": 204}
    assert receiver.received[0].headers["host"] == f"hooks.example.test:{receiver.port}"


def test_https_verifies_the_certificate_against_the_host_name_not_the_address():
    pki = make_pki("hooks.example.test")
    config = NotifyConfig(KEY, UrlPolicy(("*",), True), ssl_context=pki.client_context)
    resolve = resolver_for({"hooks.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
    with run_receiver(tls=pki.server_context) as receiver:
        good = post_notification(receiver.url(host="hooks.example.test"), OUTPUT, config, resolve=resolve)
        wrong_name = post_notification(receiver.url(host="other.example.test"), OUTPUT, config, resolve=resolve)

    assert good == {"ok": True, "status": 204}
    assert wrong_name["ok"] is False
    assert "certificate" in wrong_name["error"]["message"].lower()
    assert len(receiver.received) == 1


def test_connection_failures_are_retryable():
    with run_receiver() as receiver:
        closed_port = receiver.port
    refused = post_notification(f"http://127.0.0.1:{closed_port}/x", OUTPUT, LOOPBACK_OK)
    unknown = post_notification("http://nowhere.example.test/x", OUTPUT, LOOPBACK_OK, resolve=resolver_for({}))

    for answer in (refused, unknown):
        assert answer["ok"] is False
        assert answer["error"] == {
            "code": "notify_connection_failed",
            "message": answer["error"]["message"],
            "retryable": True,
        }
        assert "status" not in answer


def test_without_a_signing_key_nothing_is_sent():
    with run_receiver() as receiver:
        answer = post_notification(receiver.url(), OUTPUT, NotifyConfig(None, UrlPolicy(("*",), True)))

    assert answer["error"]["code"] == "configuration" and answer["error"]["retryable"] is False
    assert receiver.received == []


def test_the_registered_activity_reads_the_key_and_policy_from_settings():
    import activities

    settings = load_settings(
        environ={
            "CONTAINER_BACKEND": "local",
            "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
            "CALLBACK_SIGNING_KEY": "c" * 40,
            "OUTPUT_CONNECTION_STRING": "UseDevelopmentStorage=true",
            "ALLOW_PRIVATE_ADDRESSES": "true",
            "NOTIFY_SIGNING_KEY": KEY,
        }
    )
    bootstrap.override(settings=settings)
    try:
        run = run_activity_function(activities.notify_completion)
        with run_receiver() as receiver:
            answer = json.loads(run(json.dumps({"url": receiver.url(), "payload": OUTPUT})))
        bad_input = notify_completion_activity({"payload": OUTPUT}, lambda: settings)
    finally:
        bootstrap.reset()

    assert answer == {"ok": True, "status": 204}
    d = receiver.received[0]
    assert verify(KEY, d.body, d.headers["x-signature"], d.headers["x-signature-timestamp"], time.time())
    assert bad_input["error"]["code"] == "invalid_input"


def test_signature_verification_refuses_stale_or_malformed_headers():
    body = b'{"jobId":"job-1"}'
    now = 1_800_000_000
    from videojob.domain.notify_signature import sign

    good = sign(KEY, now, body)
    assert verify(KEY, body, good, str(now), now=now + 299)
    assert not verify(KEY, body, good, str(now), now=now + 301)  # a replay, minutes later
    assert not verify(KEY, body, good, str(now + 1), now=now)  # the timestamp is signed too
    assert not verify(KEY, body, None, str(now), now=now)
    assert not verify(KEY, body, good, "soon", now=now)
    assert not verify(KEY, body, good.removeprefix("sha256="), str(now), now=now)


def test_the_readme_receiver_example_accepts_a_real_delivery_and_refuses_a_forgery():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\nimport hashlib, hmac, time")
    code = readme[start + len("```python\n"): readme.index("```", start + 10)]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 (our own documentation)
    verified = namespace["verified"]

    with run_receiver() as receiver:
        post_notification(receiver.url(), OUTPUT, LOOPBACK_OK)
    d = receiver.received[0]
    headers = {"X-Signature": d.headers["x-signature"], "X-Signature-Timestamp": d.headers["x-signature-timestamp"]}

    assert verified(d.body, headers, KEY)
    assert not verified(d.body + b" ", headers, KEY)
    assert not verified(d.body, headers, "some-other-key-0123456789abcdef0123")
