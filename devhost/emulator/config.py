"""Settings for the devhost process, merged the way the Functions host does it.

`local.settings.json` ("Values") is created from the sample when missing, with a fresh random
CALLBACK_SIGNING_KEY and NOTIFY_SIGNING_KEY (the sample leaves both empty); an existing file
without one of them gets it added. Environment variables win over the file.
The merged values are put into this process's environment before the app is imported, which
is what the real host does for its worker.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlsplit

from videojob.domain.settings import read_local_settings

SIGNING_KEY = "CALLBACK_SIGNING_KEY"  # noqa: S105 (a setting name)
NOTIFY_KEY = "NOTIFY_SIGNING_KEY"
GENERATED_KEYS = (SIGNING_KEY, NOTIFY_KEY)
CALLBACK_BASE_URL = "CALLBACK_BASE_URL"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def ensure_local_settings(path: Path, sample: Path) -> bool:
    """Create `path` from `sample` (with new signing keys) if needed; True if it was written."""
    if path.exists():
        doc = json.loads(path.read_text(encoding="utf-8"))
        if all((doc.get("Values") or {}).get(k) for k in GENERATED_KEYS):
            return False
    else:
        doc = json.loads(sample.read_text(encoding="utf-8"))
    values = doc.setdefault("Values", {})
    for key in GENERATED_KEYS:
        if not values.get(key):
            values[key] = secrets.token_urlsafe(48)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    os.replace(tmp, path)
    return True


def _is_loopback(url: str) -> bool:
    try:
        return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS
    except ValueError:
        return False


def apply_settings(path: Path, port: int, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put local.settings.json values into the environment (environment wins) and point a
    loopback CALLBACK_BASE_URL at this devhost's port unless the environment set it."""
    env = os.environ if environ is None else environ
    values = read_local_settings(path)
    callback_from_env = CALLBACK_BASE_URL in env
    for name, value in values.items():
        env.setdefault(name, value)
    if not callback_from_env and _is_loopback(env.get(CALLBACK_BASE_URL) or "http://127.0.0.1"):
        env[CALLBACK_BASE_URL] = f"http://127.0.0.1:{port}"
    return values


def host_json(root: Path) -> dict:
    p = root / "host.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


def route_prefix(host: dict) -> str:
    http = (host.get("extensions") or {}).get("http") or {}
    return str(http.get("routePrefix", "api"))


def default_version(host: dict) -> str | None:
    """`extensions.durableTask.defaultVersion`: the version of instances started without one."""
    durable = (host.get("extensions") or {}).get("durableTask") or {}
    value = durable.get("defaultVersion")
    return None if value is None else str(value)


def hub_name(host: dict) -> str:
    durable = (host.get("extensions") or {}).get("durableTask") or {}
    return str(durable.get("hubName") or "TestHubName")
