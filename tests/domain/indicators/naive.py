"""Naive reference indicators: recompute each window from the full input on every call.

O(window) per value and written as directly from strategy.md §2 as possible, so that the
incremental implementations can be checked against them.
"""

from __future__ import annotations

import csv
import gzip
import math
from bisect import bisect_right
import statistics
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data"  # slices shipped in the repo (tests/data/make_slices.py)
BUNDLED = Path(__file__).resolve().parents[3] / "tui_trader" / "data"


def path(name: str) -> Path:
    """The recording `name` (its original file name) as this repository ships it: a slice or the bundled copy."""
    for candidate in (DATA_DIR / f"{name}.gz", BUNDLED / f"{name}.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{name}: no slice in tests/data and no bundled copy")


def twpa(trades: list[tuple[int, float]], now: int, a_ms: int, b_ms: int, min_cov: float = 0.5) -> float | None:
    s, e = now - a_ms, now - b_ms
    num = den = 0.0
    first = max(0, bisect_right(trades, (s, math.inf)) - 1)  # the carry-in trade: skip older ones
    for i in range(first, len(trades)):
        t, p = trades[i]
        if t > e:
            break
        nxt = trades[i + 1][0] if i + 1 < len(trades) and trades[i + 1][0] <= e else e
        overlap = min(nxt, e) - max(t, s)
        if overlap > 0:
            num += p * overlap
            den += overlap
    if den <= 0 or den < min_cov * (e - s):
        return None
    return num / den


def pct(now: float | None, base: float | None) -> float | None:
    if now is None or base is None or base <= 0:
        return None
    return (now - base) / base * 100


def pump(trades, now, current=(10_000, 0), baseline=(60_000, 30_000)) -> float | None:
    return pct(twpa(trades, now, *current), twpa(trades, now, *baseline))


def velocity(trades, now, current=(10_000, 0), baseline=(20_000, 10_000)) -> float | None:
    change = pct(twpa(trades, now, *current), twpa(trades, now, *baseline))
    dt = ((baseline[0] + baseline[1]) - (current[0] + current[1])) / 2 / 1000
    return None if change is None else change / dt


def volume_in(trades: list[tuple[int, float]], start: int, end: int) -> float:
    """Volume of trades with start < t <= end."""
    lo = bisect_right(trades, (start, math.inf))
    return sum(v for t, v in trades[lo:] if t <= end)


def volume_surge(trades, now, current=(30_000, 0), baseline=(600_000, 30_000), bucket=30_000) -> float | None:
    if not trades or now - trades[0][0] < max(current[0], baseline[0]):
        return None
    cur = volume_in(trades, now - current[0], now - current[1]) / ((current[0] - current[1]) / 1000)
    rates = [volume_in(trades, now - e - bucket, now - e) / (bucket / 1000) for e in range(baseline[1], baseline[0], bucket)]
    base = statistics.median(rates)
    if base <= 0:
        base = sum(rates) / len(rates)
    return None if base <= 0 else cur / base


def candle_volume_surge(volumes: list[float], n: int = 10) -> float | None:
    if len(volumes) < n + 1:
        return None
    prev = volumes[-n - 1 : -1]
    base = statistics.median(prev)
    if base <= 0:
        base = sum(prev) / n
    return None if base <= 0 else volumes[-1] / base


def rsi(closes: list[float], period: int = 14) -> float | None:
    changes = [b - a for a, b in zip(closes, closes[1:])]
    if len(changes) < period:
        return None
    gain = sum(max(d, 0) for d in changes[:period]) / period
    loss = sum(max(-d, 0) for d in changes[:period]) / period
    for d in changes[period:]:
        gain = (gain * (period - 1) + max(d, 0)) / period
        loss = (loss * (period - 1) + max(-d, 0)) / period
    if loss == 0:
        return 50.0 if gain == 0 else 100.0
    return 100 - 100 / (1 + gain / loss)


def close_enough(a: float | None, b: float | None, tol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(1.0, abs(b))


def read_rows(name: str, limit: int | None = None) -> list[dict[str, str]]:
    with gzip.open(path(name), "rt", encoding="utf-8", newline="") as fh:
        rows = []
        for i, row in enumerate(csv.DictReader(fh)):
            if limit is not None and i >= limit:
                break
            rows.append(row)
    return rows


def replay_ticks(rows: list[dict[str, str]]) -> list[tuple[int, float, float]]:
    """Candles as the replay feed sends them: open, low/high, high/low, close at +0/15/30/45 s."""
    out = []
    for r in rows:
        o, h, lo, c = (float(r[k]) for k in ("open", "high", "low", "close"))
        vol = float(r.get("volume") or 0.0)
        prices = (o, lo, h, c) if c >= o else (o, h, lo, c)
        for k, p in enumerate(prices):
            out.append((int(r["timestamp_ms"]) + k * 15_000, p, vol / 4))
    return out


def spread(book: tuple[int, float, float] | None, now: int, max_age_ms: int = 5_000) -> float | None:
    if book is None:
        return None
    ts, bid, ask = book
    if now - ts > max_age_ms or not (bid > 0 and ask > bid) or math.isinf(ask):
        return None
    return (ask - bid) / ((ask + bid) / 2) * 100


def pnl(side_sign: int, entry: float | None, price: float | None) -> float | None:
    if entry is None or price is None or entry <= 0:
        return None
    return side_sign * (price - entry) / entry * 100
