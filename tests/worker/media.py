"""Test media made with the real ffmpeg: small, a few seconds, low resolution (shared with `bench`)."""

from __future__ import annotations

import json
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


# -- hostile "media": what a site can send instead of media --------------------------------------


SECRET_SIZE = (160, 120)
SECRET_SAMPLE_RATE = 22050
"""What sets the secret apart from every served clip, and survives a remux or an audio copy."""


def make_secret(path: Path, marker: str) -> Path:
    """A local media file the worker must never read (container chosen by `path`'s extension):
    `SECRET_SIZE` video, `SECRET_SAMPLE_RATE` audio, and `marker` in its metadata."""
    w, h = SECRET_SIZE
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=size={w}x{h}:rate=25",
        "-f", "lavfi", "-i", f"sine=frequency=880:sample_rate={SECRET_SAMPLE_RATE}",
        "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-metadata", f"title={marker}", "-metadata", f"comment={marker}", str(path),
    )  # fmt: skip
    return path


def carries_secret(data: bytes, marker: str, scratch: Path) -> bool:
    """`data` holds the secret's marker, or streams with the secret's properties."""
    if marker.encode() in data:
        return True
    scratch.write_bytes(data)
    # Restricted like the worker's own probe: an unrestricted ffprobe would follow a playlist
    # to the secret itself and find it here.
    out = subprocess.run(
        ["ffprobe", "-v", "quiet", "-protocol_whitelist", "file", "-format_whitelist", "mov,matroska,mp3,aac",
         "-print_format", "json", "-show_streams", str(scratch)],
        capture_output=True, check=False,
    )  # fmt: skip
    streams = json.loads(out.stdout or b"{}").get("streams") or []
    return any(
        (s.get("width"), s.get("height")) == SECRET_SIZE or s.get("sample_rate") == str(SECRET_SAMPLE_RATE)
        for s in streams
    )


def make_local_file_hls(path: Path, target: Path) -> Path:
    """An HLS media playlist (whatever `path`'s extension claims) whose one segment is a local file."""
    path.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:3.0,\nfile://{target}\n#EXT-X-ENDLIST\n"
    )
    return path


def make_audio_only(source: Path, path: Path) -> Path:
    _ffmpeg("-i", str(source), "-vn", "-c", "copy", str(path))
    return path


def make_local_file_dash(path: Path, video: Path, audio: Path) -> Path:
    """A DASH manifest (whatever `path`'s extension claims) whose video and audio are local files."""

    def adaptation(mime: str, target: Path) -> str:
        return (
            f'<AdaptationSet mimeType="{mime}"><Representation id="{mime}" bandwidth="100000">'
            f"<BaseURL>file://{target}</BaseURL><SegmentBase/></Representation></AdaptationSet>"
        )

    path.write_text(
        '<?xml version="1.0"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT3S"'
        ' minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011"><Period>'
        f"{adaptation('video/mp4', video)}{adaptation('audio/mp4', audio)}</Period></MPD>\n"
    )
    return path


def make_huge_duration_dash(path: Path, seconds: int = 10_000_000) -> Path:
    """About 1 KB that expands to `seconds` one-second segments per representation when parsed."""
    path.write_text(
        '<?xml version="1.0"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"'
        f' mediaPresentationDuration="PT{seconds}S" minBufferTime="PT2S"'
        ' profiles="urn:mpeg:dash:profile:isoff-live:2011"><Period>'
        '<AdaptationSet mimeType="video/mp4" segmentAlignment="true">'
        '<SegmentTemplate timescale="1" duration="1" initialization="init.mp4" media="seg$Number$.m4s"'
        ' startNumber="1"/>'
        '<Representation id="v" bandwidth="100000" codecs="avc1.42c01e" width="320" height="240"/>'
        "</AdaptationSet>"
        '<AdaptationSet mimeType="audio/mp4"><SegmentTemplate timescale="1" duration="1"'
        ' initialization="ainit.mp4" media="aseg$Number$.m4s" startNumber="1"/>'
        '<Representation id="a" bandwidth="64000" codecs="mp4a.40.2" audioSamplingRate="44100"/>'
        "</AdaptationSet></Period></MPD>\n"
    )
    return path


def make_many_segment_hls(path: Path, segments: int = 1_000_000) -> Path:
    """A VOD media playlist of `segments` one-second segments (about 20 bytes each)."""
    with path.open("w") as f:
        f.write("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n")
        f.writelines(f"#EXTINF:1,\ns{i}.ts\n" for i in range(segments))
        f.write("#EXT-X-ENDLIST\n")
    return path


def gzip_bomb(expanded_bytes: int = 1024**3) -> bytes:
    """An HTML page of `expanded_bytes` that is about a thousandth of that gzipped."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    head = b"<!doctype html><html><head><title>bomb</title></head><body>"
    parts = [packer.compress(head)]
    block = b" " * (1024 * 1024)
    for _ in range(expanded_bytes // len(block)):
        parts.append(packer.compress(block))
    parts.append(packer.flush())
    return b"".join(parts)
