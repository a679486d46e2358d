"""ffmpeg and ffprobe read downloaded bytes as the container formats we expect, and nothing else.

A downloaded "video" can be an HLS playlist, a DASH manifest or a concat script naming
`file:///...` (or `http://...`) inputs. An unrestricted ffmpeg follows them: a merge, remux or
audio extraction copies a local file into the output, ffprobe "verifies" a text file by the
media it names, and their connections escape the address guard. So every invocation that
reads downloaded data opens its inputs with

- `-protocol_whitelist file`: the input itself, a local file, and no network or other protocol;
- `-format_whitelist <ALLOWED_DEMUXERS>`: only media containers, none of the demuxers that
  open further inputs (`hls`, `dash`, `concat`, `image2`, `webm_dash_manifest`, ...). The MOV
  demuxer's external data references (`enable_drefs`) are off by default.

yt-dlp's FFmpeg postprocessors (merger, remuxer, audio extraction, fixups) and its own ffprobe
calls all start their processes through one name, `Popen` in `yt_dlp.postprocessor.ffmpeg`;
`restrict_ytdlp_ffmpeg` puts the restriction there, process-wide. No public option does it:
`postprocessor_args` places input options only under per-postprocessor keys (`merger+ffmpeg_i`,
`videoremuxer+ffmpeg_i`, ...: no default applies to inputs, so every postprocessor yt-dlp adds
or renames would escape), and never reaches ffprobe (`get_audio_codec` and
`get_metadata_object` run it with fixed arguments). `verify` uses `INPUT_RESTRICTIONS` itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

ALLOWED_DEMUXERS: tuple[str, ...] = ("mov", "matroska", "mpegts", "mp3", "aac", "ogg", "flac", "wav")
"""ffmpeg demuxer names (a demuxer named `mov,mp4,m4a,...` matches `mov`): what sites deliver
media in (MP4/M4A, WebM/MKV, HLS's MPEG-TS, plain audio)."""

INPUT_RESTRICTIONS: tuple[str, ...] = (
    "-protocol_whitelist", "file", "-format_whitelist", ",".join(ALLOWED_DEMUXERS),
)  # fmt: skip
"""Input options, placed before each `-i` of ffmpeg or anywhere before ffprobe's input."""


def is_allowed_format(format_name: str | None) -> bool:
    """ffprobe's `format_name` (e.g. `mov,mp4,m4a,3gp,3g2,mj2`) is one of `ALLOWED_DEMUXERS`."""
    return bool(format_name) and any(part in ALLOWED_DEMUXERS for part in str(format_name).split(","))


def restricted_command(argv: Sequence[str]) -> list[str]:
    """`argv` with `INPUT_RESTRICTIONS` for every input it opens (pure).

    ffmpeg: before each `-i`. ffprobe: after the program name when it is given a file (yt-dlp
    names local files `file:...`). Anything else (`-version`, other programs) is left alone.
    """
    args = [str(a) for a in argv]
    if not args:
        return args
    program = os.path.basename(args[0]).lower().removesuffix(".exe")
    if program == "ffmpeg":
        out: list[str] = [args[0]]
        for arg in args[1:]:
            if arg == "-i":
                out.extend(INPUT_RESTRICTIONS)
            out.append(arg)
        return out
    if program == "ffprobe" and any(a.startswith("file:") for a in args[1:]):
        return [args[0], *INPUT_RESTRICTIONS, *args[1:]]
    return args


_lock = threading.Lock()


def restrict_ytdlp_ffmpeg() -> None:
    """Process-wide, idempotent: yt-dlp's FFmpeg postprocessors start ffmpeg/ffprobe restricted."""
    from yt_dlp.postprocessor import ffmpeg as ytdlp_ffmpeg

    with _lock:
        current = ytdlp_ffmpeg.Popen
        if getattr(current, "restricts_inputs", False):
            return

        class RestrictedPopen(current):  # type: ignore[misc, valid-type]
            restricts_inputs = True

            def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
                if isinstance(args, (list, tuple)):
                    args = restricted_command(args)
                super().__init__(args, *rest, **kwargs)

        ytdlp_ffmpeg.Popen = RestrictedPopen
