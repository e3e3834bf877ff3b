"""The bench strategy ("bar pump-short") of `/work/shared/reference/bench_strategy.md`, written for clarity.

Not an engine and not timed as one: the trade list every engine in `bench/compare_engines.py` must
reproduce. Data: `load_csv_columns` reads an OHLCV CSV (plain or .gz; header
`timestamp_ms,open,high,low,close,volume`) into numpy columns, `tile` repeats them to N bars, and
`write_tiled_csv` puts them on disk for the engines that load from a file.

Indicators are whole-array numpy operations, each the spec's formula:

* `pump_pct[t]  = close[t] / min(close[t-60 .. t-1]) - 1`, t >= 60;
* `vol_surge[t] = mean(volume[t-4 .. t]) / mean(volume[t-64 .. t-5])`, t >= 64; a zero 60-bar sum
  meets the surge exactly when the 5-bar sum is > 0 (+inf), else not (NaN);
* `signal[t]    = t >= 64 and pump_pct >= 0.07 and vol_surge >= 3.0`.

A mean is the exact sum of its window rounded once, divided by the length (what `math.fsum` gives;
the engine's `VolumeSurge` does the same). numpy's window sums are pairwise, so they may be an ulp
off: the few bars whose surge lands within 1e-9 of the 3.0 threshold are recomputed with `math.fsum`.

The trades come from a plain per-bar loop, in the spec's order: an open short (entered at bar e at
price P) exits at `max(open, P * 1.005)` when `high >= P * 1.005` (the stop wins when both touch),
else at `min(open, P * 0.98)` when `low <= P * 0.98`, else at the close when `t - e >= 120`; then,
if flat and nothing exited on this bar, a signal enters short at the close. A position still open
at the end is not counted.
"""

from __future__ import annotations

import gzip
import hashlib
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

Columns = dict[str, np.ndarray]
Trade = tuple[int, int, str]

FIELDS = ("ts", "open", "high", "low", "close", "volume")
HEADER = "timestamp_ms,open,high,low,close,volume"
BAR_MS = 60_000

PUMP_BARS, PUMP_MIN = 60, 0.07
RECENT_BARS, BASE_BARS, SURGE_MIN = 5, 60, 3.0
FIRST_SIGNAL_BAR = RECENT_BARS + BASE_BARS - 1  # 64
SL_FACTOR, TP_FACTOR, MAX_HOLD_BARS = 1.005, 0.98, 120


class Fill(NamedTuple):
    """One closed short: the bars and prices of its entry and exit, and why it exited."""

    entry_bar: int
    exit_bar: int
    reason: str  # "SL", "TP" or "time"
    entry_price: float
    exit_price: float


# ---- data ----


def load_csv_columns(path: Path) -> Columns:
    """The OHLCV columns of a CSV file (plain or gzip): ts int64 (ms), the rest float64."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        header = fh.readline().strip()
        if header != HEADER:
            raise ValueError(f"{path}: header {header!r}, expected {HEADER!r}")
        table = np.loadtxt(fh, delimiter=",", dtype=np.float64, ndmin=2)
    columns: Columns = {name: np.ascontiguousarray(table[:, k]) for k, name in enumerate(FIELDS)}
    columns["ts"] = columns["ts"].astype(np.int64)  # ms timestamps < 2^53: exact as floats
    return columns


def tile(columns: Columns, n_bars: int) -> Columns:
    """`n_bars` bars: the source bars repeated in order (no price rescaling), timestamps regenerated
    one minute apart from the first bar's (gaps in the source are ignored)."""
    out: Columns = {name: np.resize(columns[name].astype(np.float64), n_bars) for name in FIELDS[1:]}
    out["ts"] = int(columns["ts"][0]) + BAR_MS * np.arange(n_bars, dtype=np.int64)
    return out


def write_tiled_csv(columns: Columns, path: Path) -> None:
    """The columns as a CSV with the source's header; floats in their shortest round-trip form
    (`repr`), so a reader gets the same float64 values back."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(HEADER + "\n")
        rows = zip(*(columns[name].tolist() for name in FIELDS))
        fh.writelines(f"{ts},{o!r},{h!r},{lo!r},{c!r},{v!r}\n" for ts, o, h, lo, c, v in rows)


# ---- indicators ----


def pump_pct(close: np.ndarray) -> np.ndarray:
    """close[t] / min(close[t-60 .. t-1]) - 1 (NaN for t < 60; a zero low gives +inf, or NaN at 0/0)."""
    out = np.full(len(close), np.nan)
    if len(close) > PUMP_BARS:
        low = np.lib.stride_tricks.sliding_window_view(close[:-1], PUMP_BARS).min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[PUMP_BARS:] = close[PUMP_BARS:] / low - 1.0
    return out


def vol_surge(volume: np.ndarray) -> np.ndarray:
    """mean(volume[t-4 .. t]) / mean(volume[t-64 .. t-5]) (NaN for t < 64); zero base: +inf when
    the 5-bar sum is > 0, else NaN."""
    n = len(volume)
    out = np.full(n, np.nan)
    if n <= FIRST_SIGNAL_BAR:
        return out
    windows = np.lib.stride_tricks.sliding_window_view
    recent_sum = windows(volume, RECENT_BARS).sum(axis=1)[BASE_BARS:]  # the window ending at t, t >= 64
    base_sum = windows(volume[: n - RECENT_BARS], BASE_BARS).sum(axis=1)  # the window ending at t - 5
    with np.errstate(divide="ignore", invalid="ignore"):
        surge = np.where(base_sum == 0, np.where(recent_sum > 0, np.inf, np.nan),
                         (recent_sum / RECENT_BARS) / (base_sum / BASE_BARS))
    # the bars this close to the threshold: the means from exact sums (pairwise sums may be an ulp off)
    for k in np.flatnonzero(np.abs(surge - SURGE_MIN) <= 1e-9 * SURGE_MIN).tolist():
        t = k + FIRST_SIGNAL_BAR
        recent = math.fsum(volume[t - RECENT_BARS + 1: t + 1].tolist())
        base = math.fsum(volume[t - FIRST_SIGNAL_BAR: t - RECENT_BARS + 1].tolist())
        surge[k] = (recent / RECENT_BARS) / (base / BASE_BARS)
    out[FIRST_SIGNAL_BAR:] = surge
    return out


def signal(columns: Columns) -> np.ndarray:
    """t >= 64 and pump_pct >= 0.07 and vol_surge >= 3.0 (NaN compares False)."""
    with np.errstate(invalid="ignore"):
        sig = (pump_pct(columns["close"]) >= PUMP_MIN) & (vol_surge(columns["volume"]) >= SURGE_MIN)
    sig[:FIRST_SIGNAL_BAR] = False
    return sig


# ---- the per-bar loop ----


def reference_fills(columns: Columns) -> list[Fill]:
    """Every closed short, in order, with prices."""
    sig = signal(columns).tolist()
    opens, highs, lows, closes = (columns[name].tolist() for name in ("open", "high", "low", "close"))
    fills: list[Fill] = []
    entry_bar, entry_price = -1, 0.0  # entry_bar -1: flat
    for t in range(len(sig)):
        exited = False
        if entry_bar >= 0:
            sl, tp = entry_price * SL_FACTOR, entry_price * TP_FACTOR
            exit_price, reason = 0.0, ""
            if highs[t] >= sl:
                exit_price, reason = max(opens[t], sl), "SL"
            elif lows[t] <= tp:
                exit_price, reason = min(opens[t], tp), "TP"
            elif t - entry_bar >= MAX_HOLD_BARS:
                exit_price, reason = closes[t], "time"
            if reason:
                fills.append(Fill(entry_bar, t, reason, entry_price, exit_price))
                entry_bar, exited = -1, True
        if entry_bar < 0 and not exited and sig[t]:
            entry_bar, entry_price = t, closes[t]
    return fills  # a position still open here is not counted


def reference_trades(columns: Columns) -> list[Trade]:
    """(entry_bar, exit_bar, reason) of every closed short, in order."""
    return [(f.entry_bar, f.exit_bar, f.reason) for f in reference_fills(columns)]


def fingerprint(trades: list[Trade]) -> str:
    """md5 over "entry_bar,exit_bar;" of every trade in order, first 12 hex digits."""
    return hashlib.md5("".join(f"{e},{x};" for e, x, *_ in trades).encode()).hexdigest()[:12]


def reasons(trades: list[Trade]) -> dict[str, int]:
    """Trades per exit reason: {"SL": n, "TP": n, "time": n}."""
    out = {"SL": 0, "TP": 0, "time": 0}
    for _, _, reason in trades:
        out[reason] += 1
    return out
