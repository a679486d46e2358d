"""Test media made with the real ffmpeg: small, a few seconds, low resolution (shared with `bench`)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def make_progressive(path: Path, *, seconds: int = 3, size: str = "320x240", video_bitrate: str | None = None) -> Path:
    """H.264 + AAC in MP4 (moov first): a test pattern and a tone."""
    rate = ["-b:v", video_bitrate, "-maxrate", video_bitrate, "-bufsize", video_bitrate] if video_bitrate else []
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=size={size}:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", *rate,
        "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(path),
    )  # fmt: skip
    return path


def make_large(path: Path, source: Path, min_bytes: int) -> Path:
    """A big valid MP4 by looping `source` without re-encoding (fast)."""
    loops = max(0, -(-min_bytes // source.stat().st_size) - 1)
    _ffmpeg("-stream_loop", str(loops), "-i", str(source), "-c", "copy", "-movflags", "+faststart", str(path))
    return path


def make_hls(source: Path, out_dir: Path) -> Path:
    """Muxed TS segments with a master playlist (ffmpeg writes no CODECS in it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _ffmpeg(
        "-i", str(source), "-c", "copy", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
        "-master_pl_name", "master.m3u8", "-hls_segment_filename", str(out_dir / "seg%d.ts"),
        str(out_dir / "index.m3u8"),
    )  # fmt: skip
    return out_dir / "master.m3u8"


def make_hls_separate_audio_no_codecs(source: Path, out_dir: Path) -> Path:
    """A master whose video variant has no CODECS and whose audio is a separate rendition:
    yt-dlp then takes the variant for complete and silently drops the audio."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _ffmpeg(
        "-i", str(source), "-map", "0:v", "-map", "0:a", "-c", "copy", "-f", "hls", "-hls_time", "1",
        "-hls_playlist_type", "vod", "-master_pl_name", "master.m3u8",
        "-var_stream_map", "v:0,agroup:aud a:0,agroup:aud",
        "-hls_segment_filename", str(out_dir / "s%v_%d.ts"), str(out_dir / "v%v.m3u8"),
    )  # fmt: skip
    return out_dir / "master.m3u8"


def make_dash(source: Path, out_dir: Path) -> Path:
    """Separate video and audio representations (fragmented MP4 segments)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _ffmpeg(
        "-i", str(source), "-map", "0:v", "-map", "0:a", "-c", "copy", "-f", "dash", "-seg_duration", "1",
        str(out_dir / "manifest.mpd"),
    )  # fmt: skip
    return out_dir / "manifest.mpd"


def make_html_without_media(path: Path) -> Path:
    path.write_text("<!doctype html><html><head><title>Nothing to see</title></head><body><p>Hi.</p></body></html>\n")
    return path


def make_noisy(path: Path, *, seconds: int = 4) -> Path:
    """Noise barely compresses: about 7 MB per second at 640x360, so big files come quickly."""
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds), "-vf", "noise=alls=60:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "8",
        "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(path),
    )  # fmt: skip
    return path
