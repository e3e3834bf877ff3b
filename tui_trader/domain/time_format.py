"""Domain layer: how times are written for people - always UTC, one place for every format.

Exchange times, candle times and the clock are epoch milliseconds; every screen, table, event and
message that shows one calls these, so a time reads the same everywhere (and never in local time).
"""

from __future__ import annotations

import time
from typing import Any

MISSING = "-"


def utc(ms: int | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """`ms` as UTC text in `fmt` (strftime); "-" for None."""
    return MISSING if ms is None else time.strftime(fmt, time.gmtime(ms / 1000))


def utc_minute(ms: int | None) -> str:
    """2026-12-07 10:31"""
    return utc(ms)


def utc_second(ms: int | None) -> str:
    """2026-12-07 10:31:05"""
    return utc(ms, "%Y-%m-%d %H:%M:%S")


def utc_short(ms: int | None) -> str:
    """12-07 10:31:05 (tables where the year is known)"""
    return utc(ms, "%m-%d %H:%M:%S")


def utc_hm(ms: int | None) -> str:
    """10:31"""
    return utc(ms, "%H:%M")


def iso_utc(ms: int | None) -> str:
    """2026-12-07T10:31:05Z ("" for None: report files)"""
    return "" if ms is None else utc(ms, "%Y-%m-%dT%H:%M:%SZ")


def duration_text(seconds: Any) -> str:
    """`191.25` -> `3m 11s`, `125220900` -> `1449d 07h`: the two largest units, for reading (exports keep seconds)."""
    if seconds is None:
        return MISSING
    total = round(float(seconds))
    parts = [(total // 86_400, "d"), (total // 3600 % 24, "h"), (total // 60 % 60, "m"), (total % 60, "s")]
    while len(parts) > 2 and parts[0][0] == 0:
        parts.pop(0)
    (a, ua), (b, ub) = parts[:2]
    return f"{a}{ua} {b:02d}{ub}" if a else f"{b}{ub}"
