"""The benchmark's baseline as its own process: `python -m bench.baseline_transfer URL FILE NAME`.

What anyone would write without the worker: a plain HTTP download to disk, then
`upload_blob(max_concurrency=4)` of that file. The connection string and container come from
`BASELINE_CONNECTION_STRING` and `BASELINE_CONTAINER`. It is run exactly like the worker (a fresh
interpreter, spawn to exit), so both sides pay for starting Python and importing the SDK. It
prints the two transfers' own times (the raw download and the raw upload, nothing else) as
`transfer: download_s=<s> upload_s=<s>`.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import urllib.request

from azure.storage.blob import BlobClient

MiB = 1024 * 1024


def transfer(url: str, path: str, connection_string: str, container: str, name: str) -> tuple[float, float]:
    """(download seconds, upload seconds)."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as out:  # noqa: S310 - loopback
        shutil.copyfileobj(response, out, MiB)
    downloaded = time.perf_counter()
    blob = BlobClient.from_connection_string(connection_string, container, name)
    uploading = time.perf_counter()  # the client is built, the SDK imported: the upload alone from here
    with open(path, "rb") as data:
        blob.upload_blob(data, overwrite=True, max_concurrency=4)
    uploaded = time.perf_counter()
    os.unlink(path)
    return downloaded - started, uploaded - uploading


if __name__ == "__main__":
    url, path, name = sys.argv[1:4]
    env = os.environ
    download_s, upload_s = transfer(url, path, env["BASELINE_CONNECTION_STRING"], env["BASELINE_CONTAINER"], name)
    print(f"transfer: download_s={download_s:.3f} upload_s={upload_s:.3f}", flush=True)
