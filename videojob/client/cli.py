"""A small client for the video downloader API (standard library only, so it runs anywhere Python does).

    python -m videojob.client.cli submit URL [--format audio] [--wait]
    python -m videojob.client.cli status ID_OR_STATUS_URL [--wait]
    python -m videojob.client.cli cancel ID
    python -m videojob.client.cli delete ID   # a finished job's history and files (GET/DELETE /api/downloads/{id})
    python -m videojob.client.cli list [--top N] [--status running|completed|failed] [--since ISO] [--all]
                                [--continuation-token T] [--json]

Works against the devhost (default http://127.0.0.1:7071) and a deployed app: `--base-url`
(env VIDEO_DOWNLOADER_URL) and `--key` (env VIDEO_DOWNLOADER_KEY, sent as `x-functions-key`).
With `AUTH_MODE=entra`: `--as NAME [--operator]` signs in to the devhost (its principal
headers), `--entra-scope SCOPE` (env VIDEO_DOWNLOADER_ENTRA_SCOPE, e.g. `api://<client id>/.default`)
signs in to Azure with azure-identity (the Azure CLI's login, else a device code) and sends the
bearer token App Service Authentication accepts.
Progress goes to stderr; the final JSON goes to stdout. Exit status: 0 completed, 1 the job
failed or was terminated, 2 the request itself failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import quote, urlencode, urlsplit

from videojob.domain.instances import ACTIVE_RUNTIME_STATUSES, RuntimeStatus

DEFAULT_BASE_URL = "http://127.0.0.1:7071"
STATUS_PATH = "/runtime/webhooks/durabletask/instances/"
EXIT_OK, EXIT_JOB_FAILED, EXIT_REQUEST_FAILED = 0, 1, 2


class RequestFailed(Exception):
    def __init__(self, status: int | None, message: str, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Client:
    base_url: str
    key: str | None = None
    timeout: float = 30.0
    identity: Mapping[str, str] = field(default_factory=dict)
    """Headers naming the caller (entra mode): sent to the app's own origin only."""

    def _same_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base_url)
        return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())

    def _request(self, method: str, url: str, body: bytes | None = None, content_type: str | None = None,
                 with_key: bool = True) -> tuple[int, Any, dict[str, str]]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if with_key and self.key:
            headers["x-functions-key"] = self.key
        if self.identity and self._same_origin(url):
            headers.update(self.identity)
        req = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 (http/https only)
        if not url.startswith(("http://", "https://")):
            raise RequestFailed(None, f"not an http(s) URL: {url}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (checked above)
                return resp.status, _decode(resp.read()), dict(resp.headers)
        except urllib.error.HTTPError as e:
            return e.code, _decode(e.read()), dict(e.headers or {})
        except (urllib.error.URLError, OSError) as e:
            raise RequestFailed(None, f"cannot reach {url}: {getattr(e, 'reason', e)}") from e

    def api(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/api/{path.lstrip('/')}"

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        status, body, _ = self._request("POST", self.api("downloads"), json.dumps(request).encode(), "application/json")
        if status != 202 or not isinstance(body, dict):
            raise RequestFailed(status, _error_text(status, body), body)
        return body

    def status(self, id_or_url: str) -> tuple[int, dict[str, Any]]:
        if id_or_url.startswith(("http://", "https://")):
            url, with_key = id_or_url, False  # a statusQueryGetUri carries its own credentials
        elif self.identity:  # entra mode: the app's own status route
            url, with_key = self.api(f"downloads/{quote(id_or_url, safe='')}"), True
        else:
            url, with_key = f"{self.base_url.rstrip('/')}{STATUS_PATH}{quote(id_or_url, safe='')}", True
        status, body, _ = self._request("GET", url, with_key=with_key)
        if status not in (200, 202) or not isinstance(body, dict):
            raise RequestFailed(status, _error_text(status, body, "no such job" if status == 404 else None), body)
        return status, body

    def list_jobs(self, top: int | None = None, continuation_token: str | None = None, *,
                  status: str | None = None, since: str | None = None) -> dict[str, Any]:
        pairs = (("top", top), ("status", status), ("since", since), ("continuationToken", continuation_token))
        query = {k: v for k, v in pairs if v is not None}
        url = self.api("downloads") + (f"?{urlencode(query)}" if query else "")
        status, body, _ = self._request("GET", url)
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
            raise RequestFailed(status, _error_text(status, body), body)
        return body

    def delete(self, instance_id: str) -> Any:
        status, body, _ = self._request("DELETE", self.api(f"downloads/{quote(instance_id, safe='')}"))
        if status != 200:
            raise RequestFailed(status, _error_text(status, body, "no such job" if status == 404 else None), body)
        return body

    def cancel(self, instance_id: str) -> tuple[int, Any]:
        status, body, _ = self._request("POST", self.api(f"downloads/{quote(instance_id, safe='')}/cancel"))
        if status != 202:
            raise RequestFailed(status, _error_text(status, body), body)
        return status, body


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _error_text(status: int | None, body: Any, fallback: str | None = None) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return f"HTTP {status}: {err.get('code')}: {err.get('message')}"
    return f"HTTP {status}: {fallback or (body if isinstance(body, str) and body else 'request failed')}"


# -- progress -------------------------------------------------------------------------------------

def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.0f} {units[i]}" if i == 0 else f"{n:.1f} {units[i]}"


def human_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def render_progress(status: dict[str, Any], width: int = 24) -> str:
    """One line from a status payload: phase, bar, percent, bytes, speed, ETA."""
    custom = status.get("customStatus")
    custom = custom if isinstance(custom, dict) else {}
    phase = custom.get("phase") or str(status.get("runtimeStatus") or "pending").lower()
    percent = custom.get("percent")
    parts = [f"{phase:<12}"]
    if isinstance(percent, (int, float)):
        filled = max(0, min(width, int(width * percent / 100)))
        parts.append(f"[{'#' * filled}{'-' * (width - filled)}] {percent:5.1f}%")
    else:
        parts.append(f"[{'-' * width}]   ---%")
    done, total = custom.get("downloadedBytes"), custom.get("totalBytes")
    if done is not None or total is not None:
        parts.append(f"{human_bytes(done)}/{human_bytes(total)}")
    if custom.get("speedBps") is not None:
        parts.append(f"{human_bytes(custom['speedBps'])}/s")
    parts.append(f"ETA {human_duration(custom.get('etaSeconds'))}")
    return "  ".join(parts)


class ProgressPrinter:
    """Updates one line in place on a terminal; prints a line per change otherwise."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""

    def show(self, line: str) -> None:
        if line == self.last:
            return
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last = line

    def close(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()


def wait_for(client: Client, status_url: str, poll: float, view: ProgressPrinter,
             sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    while True:
        _, body = client.status(status_url)
        view.show(render_progress(body))
        if body.get("runtimeStatus") not in ACTIVE_RUNTIME_STATUSES:
            view.close()
            return body
        sleep(poll)


def error_of(status: dict[str, Any]) -> dict[str, Any]:
    """The job's error: customStatus.error when the orchestrator set it, else from the output text."""
    custom = status.get("customStatus")
    if isinstance(custom, dict) and isinstance(custom.get("error"), dict):
        return custom["error"]
    output = status.get("output")
    text = output if isinstance(output, str) else json.dumps(output)
    if status.get("runtimeStatus") == RuntimeStatus.TERMINATED:
        return {"code": "terminated", "message": text or "terminated"}
    # "Orchestrator function 'x' failed: <code>: <message>"
    tail = text.split(" failed: ", 1)[-1] if text else ""
    code, sep, message = tail.partition(": ")
    return {"code": code if sep and " " not in code else "failed", "message": message if sep else tail}


def final_result(status: dict[str, Any], out: TextIO, err: TextIO) -> int:
    if status.get("runtimeStatus") == RuntimeStatus.COMPLETED:
        print(json.dumps(status.get("output"), indent=2), file=out)
        return EXIT_OK
    error = error_of(status)
    print(f"job {status.get('instanceId')} {str(status.get('runtimeStatus')).lower()}: "
          f"{error.get('code')}: {error.get('message')}", file=err)
    summary = {"instanceId": status.get("instanceId"), "runtimeStatus": status.get("runtimeStatus"),
               "error": error, "customStatus": status.get("customStatus")}
    print(json.dumps(summary, indent=2), file=out)
    return EXIT_JOB_FAILED


def _cell(value: Any, width: int) -> str:
    text = " ".join(str(value).split()) if value is not None else ""  # no control characters or newlines
    return text if len(text) <= width else text[: width - 1] + "…"


def render_jobs_table(jobs: list[dict[str, Any]], width: int | None = None) -> str:
    """The job list as a table: id, kind, status, phase, percent, created, then title or URL (cut
    to fit `width` columns when given)."""
    header = ("ID", "KIND", "STATUS", "PHASE", "%", "CREATED", "TITLE / URL")
    rows = [header]
    for job in jobs:
        percent = job.get("percent")
        rows.append((
            job.get("id"), job.get("kind"), job.get("runtimeStatus"), job.get("phase"),
            f"{percent:.0f}" if isinstance(percent, (int, float)) else "",
            str(job.get("createdTime") or "")[:19].replace("T", " "),
            job.get("title") or job.get("url"),
        ))
    cells = [[_cell(v, 40) for v in row[:-1]] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    rest = max(20, width - sum(widths) - 2 * len(widths)) if width else 4096
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(cell_row, widths, strict=True)) + "  " + _cell(row[-1], rest)
        for cell_row, row in zip(cells, rows, strict=True)
    ).rstrip() + "\n"


# -- command line ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m videojob.client.cli", description="Client for the video downloader API."
    )
    p.add_argument("--base-url", default=os.environ.get("VIDEO_DOWNLOADER_URL", DEFAULT_BASE_URL),
                   help="the app's base URL (env VIDEO_DOWNLOADER_URL; default %(default)s)")
    p.add_argument("--key", default=os.environ.get("VIDEO_DOWNLOADER_KEY"),
                   help="function key, sent as x-functions-key (env VIDEO_DOWNLOADER_KEY)")
    p.add_argument("--as", dest="as_user", metavar="NAME",
                   help="devhost with AUTH_MODE=entra: act as this local user (its principal headers)")
    p.add_argument("--operator", action="store_true", help="with --as: the user holds Downloads.Admin")
    p.add_argument("--entra-scope", default=os.environ.get("VIDEO_DOWNLOADER_ENTRA_SCOPE"),
                   help="Azure with AUTH_MODE=entra: sign in with azure-identity for this scope, e.g. "
                        "api://<client id>/.default (env VIDEO_DOWNLOADER_ENTRA_SCOPE)")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between status polls (default %(default)s)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit", help="start a download")
    s.add_argument("url")
    s.add_argument("--format", choices=("video", "audio"), default="video")
    s.add_argument("--audio-format", choices=("m4a", "mp3"))
    s.add_argument("--max-height", type=int)
    s.add_argument("--deadline", type=int, dest="deadline_seconds", help="job deadline in seconds")
    s.add_argument("--wait", action="store_true", help="follow the job and print its output")
    st = sub.add_parser("status", help="show a job's status (ID, or the statusQueryGetUri for a deployed app)")
    st.add_argument("id")
    st.add_argument("--wait", action="store_true")
    c = sub.add_parser("cancel", help="cancel a running job")
    c.add_argument("id")
    d = sub.add_parser("delete", help="remove a finished job: its history and its files")
    d.add_argument("id")
    ls = sub.add_parser("list", help="recent jobs, newest first (batch items under their batch)")
    ls.add_argument("--top", type=int, default=20, help="jobs per page, 1-100 (default %(default)s)")
    ls.add_argument("--status", choices=("running", "completed", "failed"), help="only jobs in this state")
    ls.add_argument("--since", help="only jobs created at or after this ISO 8601 date or time (UTC without a zone)")
    ls.add_argument("--continuation-token", help="the next page, with the same filters (printed on stderr)")
    ls.add_argument("--all", action="store_true", help="follow every page")
    ls.add_argument("--json", action="store_true", help="print the answer(s) as JSON instead of a table")
    return p


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"url": args.url, "format": args.format}
    if args.audio_format:
        body["audioFormat"] = args.audio_format
    if args.max_height is not None:
        body["maxHeight"] = args.max_height
    if args.deadline_seconds is not None:
        body["deadlineSeconds"] = args.deadline_seconds
    return body


def list_command(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    jobs: list[dict[str, Any]] = []
    token = args.continuation_token
    while True:
        page = client.list_jobs(args.top, token, status=args.status, since=args.since)
        jobs += page["jobs"]
        token = page.get("continuationToken")
        if not (args.all and token):
            break
    if args.json:
        print(json.dumps({"jobs": jobs, **({"continuationToken": token} if token else {})}, indent=2), file=out)
    else:
        width = shutil.get_terminal_size().columns if out.isatty() else None
        print(render_jobs_table(jobs, width), end="", file=out)
    if token and not args.json:
        print(f"more: --continuation-token {token}", file=err)
    return EXIT_OK


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        client = Client(args.base_url, args.key, identity=identity_headers(args))
        if args.command == "submit":
            started = client.submit(request_body(args))
            if not args.wait:
                print(json.dumps(started, indent=2), file=out)
                return EXIT_OK
            print(f"job {started['id']} submitted", file=err)
            final = wait_for(client, started["statusQueryGetUri"], args.poll, ProgressPrinter(err))
            return final_result(final, out, err)
        if args.command == "status":
            if args.wait:
                return final_result(wait_for(client, args.id, args.poll, ProgressPrinter(err)), out, err)
            _, body = client.status(args.id)
            print(json.dumps(body, indent=2), file=out)
            return EXIT_OK
        if args.command == "list":
            return list_command(client, args, out, err)
        if args.command == "delete":
            print(json.dumps(client.delete(args.id), indent=2), file=out)
            return EXIT_OK
        if args.command == "cancel":
            _, body = client.cancel(args.id)
            print(json.dumps(body, indent=2) if body is not None else "cancel requested", file=out)
            return EXIT_OK
    except RequestFailed as e:
        print(f"error: {e}", file=err)
        return EXIT_REQUEST_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted (the job keeps running; `status ID` follows it again)", file=err)
        return 130
    return EXIT_REQUEST_FAILED


def identity_headers(args: argparse.Namespace, credential: Any = None) -> dict[str, str]:
    """Who the CLI says it is: a devhost user (`--as`), an Entra bearer token (`--entra-scope`), or
    nobody (function keys)."""
    if args.as_user:
        from videojob.client.local_principal import principal_headers, valid_name

        if not valid_name(args.as_user):
            raise RequestFailed(None, "--as takes a user name of 1 to 64 printable characters")
        return principal_headers(args.as_user, args.operator)
    if args.entra_scope:
        return {"Authorization": f"Bearer {entra_token(args.entra_scope, credential)}"}
    return {}


def entra_token(scope: str, credential: Any = None) -> str:
    """An access token for `scope` from azure-identity (imported here: the worker image shares this
    module and has no azure-identity): the Azure CLI's login when there is one, else a device code
    sign-in. The token is never printed."""
    if credential is None:
        try:
            from azure.identity import AzureCliCredential, ChainedTokenCredential, DeviceCodeCredential
        except ImportError as e:
            raise RequestFailed(None, "--entra-scope needs azure-identity (pip install azure-identity)") from e
        credential = ChainedTokenCredential(AzureCliCredential(), DeviceCodeCredential())
    try:
        return credential.get_token(scope).token
    except Exception as e:  # azure-identity's errors: no login, a cancelled device code, ...
        raise RequestFailed(None, f"could not sign in for {scope}: {type(e).__name__}") from e


if __name__ == "__main__":
    sys.exit(main())
