"""The byte cap holds on the wire (issue 19): what the server sends for a job stays within
`JOB_MAX_BYTES` plus a small margin, also when yt-dlp fetches HLS fragments concurrently, and
also for one long stream whose kernel buffers could hold megabytes. Measured at the server
(`media_server.SentCounter`: bytes its sockets accepted through a 32 KiB send buffer)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import Azurite
from tests.worker.callback_receiver import CallbackReceiver
from tests.worker.conftest import FAST, worker_env
from tests.worker.media_server import MediaServer, serve_media
from videojob.contract import container_env as E
from worker.runner import main
from worker.traffic import wire_margin

MiB = 1024 * 1024
CAP = 20 * MiB
FRAGMENTS = 6000
FRAGMENT_BYTES = 10 * 1024  # 6,000 of them: about 59 MiB, three times the cap


@pytest.fixture(scope="module")
def counted_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wire")
    (root / "seg.ts").write_bytes(os.urandom(FRAGMENT_BYTES))
    with (root / "many.m3u8").open("w") as f:
        f.write("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n")
        f.writelines(f"#EXTINF:1,\nseg.ts?n={i}\n" for i in range(FRAGMENTS))
        f.write("#EXT-X-ENDLIST\n")
    (root / "long.mp4").write_bytes(os.urandom(64 * MiB))
    return root


@pytest.fixture
def counted(counted_root: Path) -> Iterator[MediaServer]:
    with serve_media(counted_root, count_sent=True) as server:
        yield server


@pytest.mark.parametrize(
    ("path", "concurrent"),
    [("many.m3u8", 4), ("many.m3u8", 16), ("nolength/many.m3u8", 4), ("nolength/long.mp4", 4)],
    ids=["hls-4-concurrent", "hls-16-concurrent", "hls-no-length-4-concurrent", "one-stream-no-length"],
)
def test_the_byte_cap_holds_on_the_wire(
    path: str,
    concurrent: int,
    counted: MediaServer,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    workspace: Path,
) -> None:
    env = worker_env(
        job_id=uuid.uuid4().hex, url=counted.url(path), callbacks=callbacks, azurite=azurite,
        **{E.JOB_MAX_BYTES: str(CAP)},
    )  # fmt: skip
    tuning = FAST.__class__(**{**FAST.__dict__, "concurrent_fragments": concurrent})

    assert main(env, tuning=tuning) == 1
    assert counted.counter is not None
    sent = counted.counter.sent
    print(f"{path} ({concurrent} concurrent): the server sent {sent / MiB:.2f} MiB for a {CAP / MiB:.0f} MiB cap")
    event = callbacks.accepted()[-1]
    assert (event["state"], event["error"]["code"]) == ("failed", "too_large"), event
    playlist = (counted.root / "many.m3u8").stat().st_size if "m3u8" in path else 0  # a page: not media
    margin = wire_margin(concurrent)
    assert sent <= CAP + playlist + margin, (
        f"{sent / MiB:.2f} MiB on the wire for a {CAP / MiB:.0f} MiB cap (margin {margin / MiB:.2f} MiB)"
    )
    assert list(workspace.iterdir()) == []


def test_the_cap_holds_on_the_wire_even_when_the_progress_hooks_see_nothing(
    counted: MediaServer,
    callbacks: CallbackReceiver,
    azurite: Azurite,
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """yt-dlp's hooks may under-report a concurrent fragment download: the socket count alone must
    hold the cap. Before, the wire limit (cap + 32 MiB) failed every read, yt-dlp skipped the
    fragment (`skip_unavailable_fragments`) and asked for the next, and the server sent all of them."""
    import worker.downloader

    monkeypatch.setattr(worker.downloader, "check_hook_against_budget", lambda status, budget: None)
    env = worker_env(
        job_id=uuid.uuid4().hex, url=counted.url("many.m3u8"), callbacks=callbacks, azurite=azurite,
        **{E.JOB_MAX_BYTES: str(CAP)},
    )  # fmt: skip

    main(env, tuning=FAST)

    assert counted.counter is not None
    sent = counted.counter.sent
    print(f"hooks blind: the server sent {sent / MiB:.2f} MiB for a {CAP / MiB:.0f} MiB cap")
    playlist = (counted.root / "many.m3u8").stat().st_size
    margin = wire_margin(FAST.concurrent_fragments)
    assert sent <= CAP + playlist + margin, f"{sent / MiB:.2f} MiB on the wire for a {CAP / MiB:.0f} MiB cap"
    event = callbacks.accepted()[-1]
    assert (event["state"], event["error"]["code"]) == ("failed", "too_large"), event
    assert list(workspace.iterdir()) == []
