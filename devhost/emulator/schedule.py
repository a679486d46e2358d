"""NCRONTAB schedules (six fields: second minute hour day month day-of-week), as timer triggers use."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_NAMES = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
    "sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
}


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    def matches_day(self, t: datetime) -> bool:
        return t.month in self.months and t.day in self.days and (t.weekday() + 1) % 7 in self.weekdays

    def next_after(self, t: datetime) -> datetime:
        """The first matching second strictly after `t`."""
        c = t.replace(microsecond=0) + timedelta(seconds=1)
        for _ in range(366 * 24 * 60 * 2):
            if not self.matches_day(c):
                c = (c + timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif c.hour not in self.hours:
                c = (c + timedelta(hours=1)).replace(minute=0, second=0)
            elif c.minute not in self.minutes:
                c = (c + timedelta(minutes=1)).replace(second=0)
            elif c.second not in self.seconds:
                c = c + timedelta(seconds=1)
            else:
                return c
        raise ScheduleError("the schedule never fires")


def _value(token: str) -> int:
    token = token.lower()
    if token in _NAMES:
        return _NAMES[token]
    if not token.isdigit():
        raise ScheduleError(f"{token!r} is not a number")
    return int(token)


def _field(text: str, lo: int, hi: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"(\*|[^/-]+(?:-[^/]+)?)(?:/(\d+))?", part)
        if not m:
            raise ScheduleError(f"cannot parse {part!r}")
        span, step = m.group(1), int(m.group(2) or 1)
        if step < 1:
            raise ScheduleError("a step must be at least 1")
        if span == "*":
            start, end = lo, hi
        elif "-" in span:
            a, b = span.split("-", 1)
            start, end = _value(a), _value(b)
        else:
            start = _value(span)
            end = hi if m.group(2) else start
        if hi == 6 and end == 7:  # Sunday written as 7
            end, values = 6, values | {0}
        if not lo <= start <= end <= hi:
            raise ScheduleError(f"{part!r} is outside {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse_schedule(expression: str) -> Schedule:
    fields = expression.split()
    if len(fields) != 6:
        raise ScheduleError(f"expected 6 fields (second minute hour day month day-of-week) in {expression!r}")
    return Schedule(*(_field(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES, strict=True)))


def resolve_setting_reference(expression: str, environ: Mapping[str, str] | None = None) -> str:
    """`%NAME%` is read from the app settings, as the host does for binding expressions."""
    env = os.environ if environ is None else environ
    m = re.fullmatch(r"%([A-Za-z0-9_]+)%", expression.strip())
    if not m:
        return expression
    value = env.get(m.group(1))
    if not value:
        raise ScheduleError(f"setting {m.group(1)} is not set")
    return value
