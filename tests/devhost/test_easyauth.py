"""The devhost plays App Service Authentication with `AUTH_MODE=entra` (issue 21): it says
authentication is on, signs people in with a user name (cookie session, `/.auth/me`,
`/.auth/logout`), and passes `cli --as NAME`'s principal headers through. A real devhost process,
the real app, the job index in a real Azurite.
"""

from __future__ import annotations

import http.cookiejar
import http.server
import io
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from devhost import stack
from tests.api.test_list_route import MEDIA, ListHost, list_host
from tests.e2e.harness import http as http_call
from videojob.client import cli
from videojob.client.local_principal import local_object_id


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ListHost]:
    with list_host(tmp_path_factory.mktemp("entra-devhost"), AUTH_MODE="entra") as h:
        yield h


def run_cli(host: ListHost, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--base-url", host.base, *args], out, err)
    return code, out.getvalue(), err.getvalue()


def listed(host: ListHost, *who: str) -> list[str]:
    code, out, err = run_cli(host, *who, "list", "--json")
    assert code == 0, err
    return [j["id"] for j in json.loads(out)["jobs"]]


def test_cli_as_a_user_sees_and_manages_only_that_users_jobs(host: ListHost):
    code, out, err = run_cli(host, "--as", "alice", "submit", MEDIA.format(1))
    assert code == 0, err
    answer = json.loads(out)
    job = answer["id"]
    assert answer["statusQueryGetUri"] == f"{host.base}/api/downloads/{job}"  # the app's route, no system key

    assert job in listed(host, "--as", "alice")
    assert job not in listed(host, "--as", "bob")
    code, _, err = run_cli(host, "--as", "op", "--operator", "status", job)  # operators see every job
    assert code == 0, err
    code, _, err = run_cli(host, "--as", "bob", "status", job)
    assert code == 2 and "does not exist" in err
    code, out, err = run_cli(host, "--as", "alice", "status", job)
    assert code == 0 and json.loads(out)["runtimeStatus"] in ("Pending", "Running"), err
    code, _, err = run_cli(host, "--as", "bob", "cancel", job)
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli(host, "--as", "alice", "cancel", job)
    assert code == 0, err

    def finished() -> bool:
        code, out, _ = run_cli(host, "--as", "alice", "status", job)
        return code == 0 and json.loads(out)["runtimeStatus"] not in ("Pending", "Running")

    stack.wait_until(finished, 60, "the cancelled job to end")
    code, _, err = run_cli(host, "--as", "bob", "delete", job)
    assert code == 2 and "does not exist" in err
    code, out, err = run_cli(host, "--as", "alice", "delete", job)
    assert code == 0 and json.loads(out)["instancesDeleted"] == 1, err
    assert job not in listed(host, "--as", "alice")


def test_without_a_sign_in_the_api_is_401_and_the_page_is_served(host: ListHost):
    code, body = http_call("POST", f"{host.base}/api/downloads", {"url": MEDIA.format(2)})
    assert (code, body["error"]["code"]) == (401, "unauthorized")
    page = urllib.request.urlopen(f"{host.base}/api/app", timeout=30)
    assert page.status == 200


class Browser:
    """urllib with a cookie jar: what a browser keeps between requests."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, method: str, url: str, form: dict[str, str] | None = None) -> tuple[int, str, Any]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        try:
            with self.opener.open(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, resp.url, raw
        except urllib.error.HTTPError as e:
            return e.code, e.url, e.read()


def test_sign_in_me_and_sign_out_as_the_platform_offers_them(host: ListHost):
    browser = Browser()
    assert browser.request("GET", f"{host.base}/.auth/me")[0] == 401
    status, _, form = browser.request("GET", f"{host.base}/.auth/login?post_login_redirect_uri=/api/app")
    assert status == 200 and b'name="name"' in form

    status, landed, _ = browser.request("POST", f"{host.base}/.auth/login",
                                        {"name": "carol", "post_login_redirect_uri": "/api/app"})
    assert (status, urllib.parse.urlsplit(landed).path) == (200, "/api/app")
    status, _, me = browser.request("GET", f"{host.base}/.auth/me")
    claims = {c["typ"]: c["val"] for c in json.loads(me)[0]["user_claims"]}
    assert status == 200 and claims["name"] == "carol"
    assert claims["http://schemas.microsoft.com/identity/claims/objectidentifier"] == local_object_id("carol")

    status, _, jobs = browser.request("GET", f"{host.base}/api/downloads")
    assert (status, json.loads(jobs)["jobs"]) == (200, [])  # carol's own (she has none yet)

    browser.request("GET", f"{host.base}/.auth/logout")
    assert browser.request("GET", f"{host.base}/.auth/me")[0] == 401
    assert browser.request("GET", f"{host.base}/api/downloads")[0] == 401


def test_sign_in_redirects_only_within_the_host(host: ListHost):
    browser = Browser()
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        _, landed, _ = browser.request("POST", f"{host.base}/.auth/login",
                                       {"name": "dave", "post_login_redirect_uri": target})
        assert urllib.parse.urlsplit(landed).netloc == urllib.parse.urlsplit(host.base).netloc
        assert urllib.parse.urlsplit(landed).path == "/api/app"


# --- against Azure: the bearer token, at the wire ---------------------------------------------------------

class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        Recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = json.dumps({"jobs": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class FixedToken:
    """A TokenCredential (azure-core's protocol: `get_token(*scopes)` → `.token`): Entra can't run here."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> Any:
        self.scopes.append(scopes)
        return type("AccessToken", (), {"token": "eyJ0eXAi.test.token", "expires_on": 0})()


def test_entra_scope_sends_the_bearer_token_to_the_app_only(recorder: str):
    credential = FixedToken()
    args = cli.build_parser().parse_args(["--base-url", recorder, "--entra-scope", "api://app-id/.default", "list"])
    client = cli.Client(recorder, identity=cli.identity_headers(args, credential))

    client.list_jobs()
    other_origin = recorder.replace("127.0.0.1", "localhost")
    try:
        client.status(f"{other_origin}/api/downloads/x")
    except cli.RequestFailed:
        pass

    assert credential.scopes == [("api://app-id/.default",)]
    assert Recorder.seen[0]["authorization"] == "Bearer eyJ0eXAi.test.token"
    assert len(Recorder.seen) == 2 and "authorization" not in Recorder.seen[1]


def test_a_failed_azure_sign_in_is_a_request_failure():
    class NoLogin:
        def get_token(self, *scopes: str, **_: Any) -> Any:
            raise RuntimeError("no az login")

    args = cli.build_parser().parse_args(["--entra-scope", "api://app-id/.default", "list"])
    with pytest.raises(cli.RequestFailed, match="could not sign in"):
        cli.identity_headers(args, NoLogin())
