"""Route templates of HTTP triggers (`downloads/{id}/cancel`, `{name:int}`, `{name?}`, `{*rest}`)."""

from __future__ import annotations

import re
from functools import lru_cache

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(\??)\}")


@lru_cache(maxsize=256)
def compile_route(template: str) -> re.Pattern[str]:
    out = []
    for i, segment in enumerate(template.strip("/").split("/")):
        sep = "/" if i else ""
        whole = _PARAM.fullmatch(segment)
        if whole and (whole.group(1) or whole.group(3)):  # `{*rest}` or `{name?}`: the segment may be absent
            body = ".*" if whole.group(1) else "[^/]+"
            out.append(f"(?:{sep}(?P<{whole.group(2)}>{body}))?")
            continue
        pattern, pos = [], 0
        for m in _PARAM.finditer(segment):
            pattern.append(re.escape(segment[pos:m.start()]))
            pattern.append(f"(?P<{m.group(2)}>[^/]+)")
            pos = m.end()
        pattern.append(re.escape(segment[pos:]))
        out.append(re.escape(sep) + "".join(pattern))
    return re.compile("".join(out), re.IGNORECASE)


def match_route(template: str, path: str) -> dict[str, str] | None:
    """Route parameters if `path` (no leading slash) matches the template, else None."""
    m = compile_route(template.strip("/")).fullmatch(path.strip("/"))
    if m is None:
        return None
    return {k: v for k, v in m.groupdict().items() if v is not None}
