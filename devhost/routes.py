"""Route templates of HTTP triggers (`downloads/{id}/cancel`, `{name:int}`, `{name?}`, `{*rest}`)."""

from __future__ import annotations

import re
from functools import lru_cache

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(\??)\}")


@lru_cache(maxsize=256)
def compile_route(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PARAM.finditer(template):
        out.append(re.escape(template[pos:m.start()]))
        catch_all, name, optional = m.groups()
        body = ".*" if catch_all else "[^/]+"
        out.append(f"(?P<{name}>{body}){'?' if optional else ''}")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out), re.IGNORECASE)


def match_route(template: str, path: str) -> dict[str, str] | None:
    """Route parameters if `path` (no leading slash) matches the template, else None."""
    m = compile_route(template.strip("/")).fullmatch(path.strip("/"))
    if m is None:
        return None
    return {k: v for k, v in m.groupdict().items() if v is not None}
