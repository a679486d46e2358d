"""How many segments a playlist or manifest would expand to, estimated before yt-dlp parses it (pure).

yt-dlp turns every segment into a dict (and, when downloading, a future) up front: a playlist of
a million segments, or a 1 KB DASH manifest whose `SegmentTemplate` spans years in one-second
segments, becomes gigabytes. The estimate errs high, never low:

- HLS: the number of `#EXTINF` tags.
- DASH: per `SegmentTimeline`, the sum of `1 + r` over its `S` elements; per `SegmentTemplate`
  or `SegmentList` with a `@duration`, the presentation's duration divided by that segment
  duration (with the largest `@timescale` in the document); each times the representations it
  applies to.

Anything else is 0.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from yt_dlp.utils import parse_duration


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _number(value: str | None) -> float | None:
    try:
        n = float(value) if value is not None else None
    except ValueError:
        return None
    return n if n is not None and math.isfinite(n) else None


def hls_fragments(body: bytes) -> int:
    return body.count(b"#EXTINF")


def dash_fragments(body: bytes) -> int:
    try:
        root = ET.fromstring(body)  # noqa: S314 - the parser yt-dlp reads it with; expat refuses entity bombs
    except ET.ParseError:
        return 0  # yt-dlp cannot parse it either
    parent_of = {child: parent for parent in root.iter() for child in parent}
    elements = list(root.iter())
    durations = [parse_duration(root.get("mediaPresentationDuration")) or 0.0]
    durations += [parse_duration(e.get("duration")) or 0.0 for e in elements if _local(e.tag) == "Period"]
    total_seconds = max(durations[0], sum(durations[1:]))
    timescales = [_number(e.get("timescale")) for e in elements]
    max_timescale = max([t for t in timescales if t and t > 0] or [1.0])

    def representations_under(segment_info: ET.Element) -> int:
        owner = parent_of.get(segment_info)
        if owner is None or _local(owner.tag) == "Representation":
            return 1
        return max(1, sum(1 for e in owner.iter() if _local(e.tag) == "Representation"))

    total = 0
    for e in elements:
        name = _local(e.tag)
        if name == "SegmentTimeline":
            repeats = sum(1 + max(0, int(_number(s.get("r")) or 0)) for s in e if _local(s.tag) == "S")
            owner = parent_of.get(e)
            total += repeats * (representations_under(owner) if owner is not None else 1)
        elif name in ("SegmentTemplate", "SegmentList"):
            duration = _number(e.get("duration"))
            if duration and duration > 0 and total_seconds > 0:
                total += math.ceil(total_seconds * max_timescale / duration) * representations_under(e)
    return total


def fragment_upper_bound(body: bytes) -> int:
    """Segments a playlist or manifest in `body` describes at most (0 for anything else)."""
    return max(hls_fragments(body), dash_fragments(body) if b"<MPD" in body else 0)
