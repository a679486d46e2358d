"""The devhost plays App Service Authentication when the app runs with `AUTH_MODE=entra`.

- It sets `WEBSITE_AUTH_ENABLED` (as App Service injects it), so the app trusts principal headers.
- `/.auth/login` (and `/.auth/login/aad`, the platform's Entra path): a form asking a user name
  (and whether to be an operator); posting it starts a cookie session and redirects to
  `post_login_redirect_uri` (a path on this host only) or the page. No password: local only.
- `/.auth/me`: the signed-in user, in the shape of the platform's answer (a one-element list with
  `provider_name`, `user_id`, `user_claims`); `401` without a session.
- `/.auth/logout`: ends the session, redirects like login.
- A request with a session gets the session user's `x-ms-client-principal*` headers (replacing
  any it carried); one without passes the headers it has through, which is how `cli --as NAME`
  signs in (the platform would strip them: locally, the developer is trusted).
"""

from __future__ import annotations

import base64
import html
import json
import os
import secrets
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from videojob.client.local_principal import local_object_id, principal_headers, valid_name

SESSION_COOKIE = "AppServiceAuthSession"
DEFAULT_REDIRECT = "/api/app"
PRINCIPAL_PREFIX = "x-ms-client-principal"

LOGIN_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in (devhost)</title></head>
<body><h1>Sign in</h1>
<p>The devhost stands in for Microsoft Entra ID: any name is a user (no password; local only).</p>
<form method="post" action="/.auth/login">
<input type="hidden" name="post_login_redirect_uri" value="{redirect}">
<label>User name <input id="user-name" name="name" required maxlength="64" autofocus></label>
<label><input id="operator" type="checkbox" name="operator" value="1"> operator (Downloads.Admin)</label>
<button id="sign-in" type="submit">Sign in</button>
</form></body></html>
"""


def entra_mode(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return (env.get("AUTH_MODE") or "").strip().lower() == "entra"


def play_the_platform(environ: MutableMapping[str, str] | None = None) -> bool:
    """In entra mode, say authentication is on as App Service does. True when it did."""
    env = os.environ if environ is None else environ
    if not entra_mode(env):
        return False
    env["WEBSITE_AUTH_ENABLED"] = "True"
    return True


@dataclass(frozen=True)
class LocalUser:
    name: str
    operator: bool


def _local_path(raw: str | None) -> str:
    """Redirect targets stay on this host: a path, never another origin (an open redirect)."""
    if not raw:
        return DEFAULT_REDIRECT
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not raw.startswith("/") or raw.startswith("//"):
        return DEFAULT_REDIRECT
    return raw


class LocalSignIn:
    def __init__(self) -> None:
        self.sessions: dict[str, LocalUser] = {}

    def user(self, request: web.Request) -> LocalUser | None:
        token = request.cookies.get(SESSION_COOKIE)
        return self.sessions.get(token) if token else None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/.auth/login", self.login_form),
            web.get("/.auth/login/aad", self.login_form),
            web.post("/.auth/login", self.login),
            web.get("/.auth/me", self.me),
            web.get("/.auth/logout", self.logout),
        ]

    async def login_form(self, request: web.Request) -> web.Response:
        redirect = _local_path(request.query.get("post_login_redirect_uri"))
        return web.Response(text=LOGIN_FORM.format(redirect=html.escape(redirect, quote=True)),
                            content_type="text/html", headers={"Cache-Control": "no-store"})

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        name = str(form.get("name") or "")
        if not valid_name(name):
            return web.Response(status=400, text="a user name is 1 to 64 printable characters")
        token = secrets.token_urlsafe(32)
        self.sessions[token] = LocalUser(name.strip(), form.get("operator") == "1")
        response = web.Response(status=302, headers={"Location": _local_path(
            str(form.get("post_login_redirect_uri") or ""))})
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax", path="/")
        return response

    async def me(self, request: web.Request) -> web.Response:
        user = self.user(request)
        if user is None:
            return web.json_response({"error": "not signed in"}, status=401)
        principal = json.loads(base64.b64decode(principal_headers(user.name, user.operator)["x-ms-client-principal"]))
        return web.json_response([{
            "provider_name": "aad",
            "user_id": user.name,
            "user_claims": principal["claims"],
        }], headers={"Cache-Control": "no-store"})

    async def logout(self, request: web.Request) -> web.Response:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            self.sessions.pop(token, None)
        response = web.Response(status=302, headers={"Location": _local_path(
            request.query.get("post_logout_redirect_uri"))})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    def request_headers(self, request: web.Request) -> dict[str, str]:
        """The headers the app sees: the session user's principal when signed in."""
        headers = dict(request.headers)
        user = self.user(request)
        if user is None:
            return headers
        headers = {k: v for k, v in headers.items() if not k.lower().startswith(PRINCIPAL_PREFIX)}
        headers.update(principal_headers(user.name, user.operator))
        return headers


__all__ = ["LocalSignIn", "local_object_id", "play_the_platform"]
