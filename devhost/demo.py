"""`make demo`: the whole pipeline on this machine, from a generated clip to a verified blob.

    python -m devhost.demo [--url URL]

Starts Azurite and the devhost, serves a sample clip made with ffmpeg on loopback (or submits
`--url`), submits it with the client CLI (progress on the terminal), prints the output and the
blob URL, downloads the blob and checks its sha256 and size, and stops everything it started.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from devhost import media, stack
from videojob.contract.setting_values import DEFAULT_ALLOWED_HOSTS
from videojob.domain.settings import read_local_settings

SAMPLE_NAME = "sample.mp4"
SAMPLE_SECONDS = 5
SAMPLE_SIZE, SAMPLE_BITRATE = "1280x720", "6M"  # about 4 MB: the worker reads 1 MiB at a time
SAMPLE_BYTES_PER_SECOND = 1.5 * 1024 * 1024  # slow enough to watch the progress bar move


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def allowed_hosts_with(host: str) -> str:
    """The configured ALLOWED_HOSTS plus the demo URL's host (the demo chose that URL)."""
    configured = os.environ.get("ALLOWED_HOSTS") or read_local_settings("local.settings.json").get("ALLOWED_HOSTS")
    hosts = [h.strip() for h in (configured or ",".join(DEFAULT_ALLOWED_HOSTS)).split(",") if h.strip()]
    return ",".join(hosts if host.lower() in hosts else [*hosts, host.lower()])


def verify_blob(connection_string: str, blob: dict) -> str:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection_string)
    data = service.get_blob_client(blob["container"], blob["name"]).download_blob().readall()
    digest = hashlib.sha256(data).hexdigest()
    if digest != blob["sha256"] or len(data) != blob["sizeBytes"]:
        raise RuntimeError(f"blob check failed: {len(data)} bytes, sha256 {digest}; the job reported "
                           f"{blob['sizeBytes']} bytes, sha256 {blob['sha256']}")
    return digest


def submit(base_url: str, url: str) -> tuple[int, dict | None]:
    """Run the client CLI: its progress goes straight to the terminal, its JSON comes back here."""
    cmd = [sys.executable, "-m", "videojob.client.cli", "--base-url", base_url, "--poll", "0.5"]
    cmd += ["submit", url, "--wait"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    print(proc.stdout, end="", flush=True)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except ValueError:
        return proc.returncode, None


def run(url: str | None, workdir: Path) -> int:
    started = time.monotonic()
    state = workdir / "state"
    clips = workdir / "media"
    if url is None:
        try:
            media.require_ffmpeg()
        except media.FfmpegMissing as e:
            say(str(e))
            return 1
        say(f"making a {SAMPLE_SECONDS} s sample clip with ffmpeg")
        media.make_clip(clips / SAMPLE_NAME, seconds=SAMPLE_SECONDS, size=SAMPLE_SIZE, video_bitrate=SAMPLE_BITRATE)
    else:
        clips.mkdir(parents=True, exist_ok=True)
    with stack.run_azurite() as azurite, media.serve_directory(clips, SAMPLE_BYTES_PER_SECOND) as server:
        target = url or server.url(SAMPLE_NAME)
        say(f"Azurite (blob) on 127.0.0.1:{azurite.port}")
        env = stack.devhost_env(azurite, {
            "ALLOWED_HOSTS": allowed_hosts_with(urlsplit(target).hostname or ""),
            "PROGRESS_INTERVAL_SECONDS": os.environ.get("PROGRESS_INTERVAL_SECONDS", "1"),
        })
        devhost = stack.Devhost(stack.free_port(7071), state, workdir / "devhost.log")
        try:
            devhost.start(env)
            say(f"devhost on {devhost.base_url} (log: {devhost.log_path})")
            say(f"web page: {devhost.base_url}/api/app (paste a link, watch it download; open while this runs)")
            say(f"submitting {target}")
            code, result = submit(devhost.base_url, target)
            if code != 0 or not isinstance(result, dict) or "blob" not in result:
                say(f"the job did not complete (exit {code}); devhost log tail:")
                print(devhost.log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
                return 1
            blob = result["blob"]
            digest = verify_blob(azurite.connection_string, blob)
            say(f"blob verified: {blob['sizeBytes']} bytes, sha256 {digest}")
            say(f"blob URL: {blob['url']}")
            say(f"demo finished in {time.monotonic() - started:.1f} s (Azurite runs in memory: the blob goes "
                "with it; `make serve` keeps the stack up)")
            print(blob["url"])
            return 0
        finally:
            devhost.stop()
            left = stack.stop_local_containers(state)
            if left:
                say(f"stopped {left} worker process(es) still running")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devhost.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="submit this URL instead of the generated sample clip (needs internet)")
    p.add_argument("--keep", action="store_true", help="keep the demo's working directory")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="devhost-demo-"))
    try:
        return run(args.url, workdir)
    except KeyboardInterrupt:
        say("interrupted; everything the demo started is stopped")
        return 130
    except stack.StackError as e:
        say(f"cannot start the local stack: {e}")
        return 1
    finally:
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
