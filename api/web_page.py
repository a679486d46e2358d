"""`GET /api/app`: the web page (`web/app.html`), served by the function app itself.

The page is one file with its style and script inline; the Content-Security-Policy allows exactly
those two blocks (by hash) and requests to this origin, nothing else: no other script, no inline
event handlers, no frames, no form posts elsewhere. The page holds no secret, so the route is
anonymous; the API routes it calls keep their function keys.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import azure.functions as func

from videojob.domain.settings import auth_mode

from .blueprint import bp

PAGE_PATH = Path(__file__).resolve().parent.parent / "web" / "app.html"
AUTH_MODE_META = '<meta name="auth-mode" content="key">'
"""The page's own statement of `AUTH_MODE`, replaced when served (entra: it signs people in)."""
_INLINE_BLOCK = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


@dataclass(frozen=True)
class Page:
    html: bytes
    content_security_policy: str


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def page_for(html: str) -> Page:
    """The page and a policy allowing its one inline `<style>` and one inline `<script>`."""
    blocks: dict[str, list[str]] = {"script": [], "style": []}
    for tag, body in _INLINE_BLOCK.findall(html):
        blocks[tag].append(_sha256_source(body))
    if len(blocks["script"]) != 1 or len(blocks["style"]) != 1:
        raise ValueError("the page must have exactly one inline <script> and one inline <style>")
    policy = "; ".join((
        "default-src 'none'",
        f"script-src {blocks['script'][0]}",
        f"style-src {blocks['style'][0]}",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ))
    return Page(html.encode(), policy)


@cache
def page(mode: str = "key") -> Page:
    html = PAGE_PATH.read_text(encoding="utf-8")
    if AUTH_MODE_META not in html:
        raise ValueError(f"the page must declare {AUTH_MODE_META}")
    return page_for(html.replace(AUTH_MODE_META, f'<meta name="auth-mode" content="{mode}">'))


@bp.route(route="app", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def web_app(req: func.HttpRequest) -> func.HttpResponse:
    """`GET /api/app`: paste a link, watch it download; recent jobs."""
    p = page(auth_mode())
    return func.HttpResponse(
        p.html,
        status_code=200,
        mimetype="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": p.content_security_policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )
