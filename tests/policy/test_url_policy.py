"""URL policy: schemes, hosts, credentials, length and IP literals in every notation."""

from __future__ import annotations

import ipaddress

import pytest

from videojob.contract.setting_values import DEFAULT_ALLOWED_HOSTS
from videojob.contract.url_policy import UrlPolicy, UrlRejected, check_url, is_forbidden_address, parse_ip_literal

YOUTUBE = UrlPolicy(DEFAULT_ALLOWED_HOSTS)
ANY_HOST = UrlPolicy(("*",))
DEV = UrlPolicy(("*",), allow_private_addresses=True)


def rejection(url: object, policy: UrlPolicy = YOUTUBE) -> str:
    with pytest.raises(UrlRejected) as e:
        check_url(url, policy)
    assert e.value.message  # always a user-facing message
    return e.value.code


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://youtube.com/shorts/abc",
        "https://m.youtube.com/watch?v=x",
        "https://youtu.be/dQw4w9WgXcQ?t=42",
        "https://www.youtube-nocookie.com/embed/x",
        "HTTPS://WWW.YOUTUBE.COM/watch?v=x",
        "https://www.youtube.com./watch?v=x",
        "http://youtube.com:443/watch?v=x",
        "  https://youtu.be/x  ",
    ],
)
def test_allowed_urls_pass(url: str) -> None:
    checked = check_url(url, YOUTUBE)

    assert checked.url == url.strip()
    assert checked.address is None


@pytest.mark.parametrize(
    ("url", "code"),
    [
        (None, "missing_url"),
        ("", "missing_url"),
        ("   ", "missing_url"),
        ("https://www.youtube.com/watch?v=" + "a" * 3000, "url_too_long"),
        ("file:///etc/passwd", "scheme_not_allowed"),
        ("javascript:alert(1)", "scheme_not_allowed"),
        ("ftp://youtube.com/x", "scheme_not_allowed"),
        ("gopher://youtube.com/x", "scheme_not_allowed"),
        ("data:text/html,hi", "scheme_not_allowed"),
        ("www.youtube.com/watch?v=x", "invalid_url"),
        ("//www.youtube.com/watch?v=x", "invalid_url"),
        ("https://user:pass@www.youtube.com/x", "invalid_url"),
        ("https://user@www.youtube.com/x", "invalid_url"),
        ("https://www.youtube.com@evil.example/x", "invalid_url"),
        ("https://www.youtube.com/watch?v=a b", "invalid_url"),
        ("https://www.youtube.com/\x00", "invalid_url"),
        ("https://www.youtube.com/\r\nHost: evil", "invalid_url"),
        ("https://www.youtube.com/\u200bx", "invalid_url"),
        ("https:\\\\www.youtube.com\\x", "invalid_url"),
        ("https://youtube.com:99999/x", "invalid_url"),
        ("https://youtube.com:port/x", "invalid_url"),
        ("https:///x", "invalid_url"),
        ("https://evil.example/watch?v=x", "host_not_allowed"),
        ("https://youtube.com.evil.example/x", "host_not_allowed"),
        ("https://notyoutube.com/x", "host_not_allowed"),
        ("https://www.youtub\u0435.com/x", "host_not_allowed"),  # Cyrillic "е"
        ("http://8.8.8.8/", "host_not_allowed"),
    ],
)
def test_rejected_urls_carry_their_code(url: object, code: str) -> None:
    assert rejection(url) == code


def test_length_limit_is_2048() -> None:
    base = "https://youtu.be/"
    check_url(base + "a" * (2048 - len(base)), YOUTUBE)
    assert rejection(base + "a" * (2049 - len(base))) == "url_too_long"


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",  # the metadata endpoint reachable from ACI
        "127.0.0.1",
        "[::1]",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "0",
        "2130706433",  # 127.0.0.1 as one decimal number
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "0177.1",
        "127.1",
        "017700000001",
        "2852039166",  # 169.254.169.254 as one number
        "0xa9fea9fe",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::ffff:a9fe:a9fe]",
        "[::127.0.0.1]",  # IPv4-compatible
        "[64:ff9b::7f00:1]",  # NAT64
        "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
        "[fe80::1]",
        "[fe80::1%25eth0]",
        "[fc00::1]",
        "[::]",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "127\u30020\u30020\u30021",  # ideographic full stops: IDNA reads them as dots
    ],
)
def test_private_and_reserved_literals_are_refused_in_every_notation(host: str) -> None:
    url = f"http://{host}/"
    assert rejection(url, YOUTUBE) == "private_address"
    assert rejection(url, ANY_HOST) == "private_address"


def test_private_addresses_pass_only_when_allowed_for_development() -> None:
    checked = check_url("http://127.0.0.1:8080/video.mp4", DEV)

    assert checked.address == ipaddress.IPv4Address("127.0.0.1")


def test_ip_literal_in_the_allowlist_matches_in_any_notation() -> None:
    policy = UrlPolicy(("127.0.0.1",), allow_private_addresses=True)

    assert check_url("http://2130706433/x", policy).address == ipaddress.IPv4Address("127.0.0.1")
    assert rejection("http://127.0.0.2/x", policy) == "host_not_allowed"


def test_leading_dot_allows_subdomains_but_not_the_bare_suffix() -> None:
    policy = UrlPolicy((".example.com",))

    check_url("https://a.b.example.com/", policy)
    assert rejection("https://example.com/", policy) == "host_not_allowed"
    assert rejection("https://badexample.com/", policy) == "host_not_allowed"


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("0x01020304", "1.2.3.4"),
        ("1.0x20304", "1.2.3.4"),
        ("1.2.0x304", "1.2.3.4"),
        ("01.02.03.04", "1.2.3.4"),
        ("16909060", "1.2.3.4"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("example.com", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
        ("08.1.1.1", None),
        ("4294967296", None),
    ],
)
def test_parse_ip_literal_follows_inet_aton(literal: str, expected: str | None) -> None:
    parsed = parse_ip_literal(literal)

    assert (str(parsed) if parsed is not None else None) == expected


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("8.8.8.8", False),
        ("142.250.74.110", False),
        ("2607:f8b0:4004:c07::64", False),
        ("169.254.169.254", True),
        ("::ffff:10.1.2.3", True),
        ("2001:db8::1", True),  # documentation range: not global
    ],
)
def test_is_forbidden_address_for_the_worker_guard(address: str, forbidden: bool) -> None:
    assert is_forbidden_address(address) is forbidden
