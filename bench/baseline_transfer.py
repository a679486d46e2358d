"""The benchmark's baseline as its own process: `python -m bench.baseline_transfer URL FILE NAME`.

What anyone would write without the worker: a plain HTTP download to disk, then
`upload_blob(max_concurrency=4)` of that file. The connection string and container come from
`BASELINE_CONNECTION_STRING` and `BASELINE_CONTAINER`. It is run exactly like the worker (a fresh
interpreter, spawn to exit), so both sides pay for starting Python and importing the SDK.
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.request

from azure.storage.blob import BlobClient

MiB = 1024 * 1024


def transfer(url: str, path: str, connection_string: str, container: str, name: str) -> None:
    with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as out:  # noqa: S310 - loopback
        shutil.copyfileobj(response, out, MiB)
    blob = BlobClient.from_connection_string(connection_string, container, name)
    with open(path, "rb") as data:
        blob.upload_blob(data, overwrite=True, max_concurrency=4)
    os.unlink(path)


if __name__ == "__main__":
    url, path, name = sys.argv[1:4]
    transfer(url, path, os.environ["BASELINE_CONNECTION_STRING"], os.environ["BASELINE_CONTAINER"], name)
