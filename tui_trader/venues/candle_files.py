"""Venues layer: streaming readers for recorded candles (CSV, gzip'd CSV, MEXC kline JSON).

CSV format (shared data README): header `timestamp_ms,open,high,low,close[,volume]`, one candle
per line, UTC epoch milliseconds (candle open time), strictly ascending. Files are read line by
line and never loaded whole, so a million-bar file costs no memory. Bad input raises `DataError`
naming the file, the line and the field.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

from tui_trader.domain.errors import DataError

REQUIRED = ("timestamp_ms", "open", "high", "low", "close")


class Candle(NamedTuple):
    ts_ms: int  # open time
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class CandleFileInfo:
    path: Path
    symbol: str
    interval_s: int


def symbol_from_filename(path: Path) -> str:
    """`bittrex_NXT-BTC_1m_2017...csv` -> `NXT_BTC`; unknown shapes -> the stem upper-cased."""
    parts = path.name.split("_")
    for part in parts:
        if "-" in part and part.replace("-", "").isalnum():
            return part.replace("-", "_").upper()
    return path.stem.split(".")[0].upper()


def _open_text(path: Path) -> io.TextIOBase:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_candles(path: Path | str) -> Iterator[Candle]:
    """Yield candles from a CSV (optionally .gz) or a MEXC kline JSON file, in file order."""
    path = Path(path)
    name = path.name.removesuffix(".gz")
    if name.endswith(".json"):
        yield from _read_kline_json(path)
        return
    with _open_text(path) as fh:
        yield from _read_csv(path, fh)


def _read_csv(path: Path, fh: io.TextIOBase) -> Iterator[Candle]:
    header = fh.readline().strip().lstrip("\ufeff")
    cols = [c.strip() for c in header.split(",")]
    if tuple(cols[:5]) != REQUIRED or len(cols) > 6 or (len(cols) == 6 and cols[5] != "volume"):
        raise DataError(f"{path}:1: header is {header!r}; expected 'timestamp_ms,open,high,low,close[,volume]'")
    has_volume = len(cols) == 6
    ncols = len(cols)
    inf = math.inf
    prev_ts = -1
    for lineno, line in enumerate(fh, start=2):
        fields = line.split(",")
        if len(fields) == ncols:  # the common case: parse, then one chained check for everything
            try:
                ts, o, h, l, c = int(fields[0]), float(fields[1]), float(fields[2]), float(fields[3]), float(fields[4])
                v = float(fields[5]) if has_volume else 0.0
            except ValueError:
                pass
            else:
                if prev_ts < ts and 0 <= l <= o <= h < inf and l <= c <= h and 0 <= v < inf:
                    prev_ts = ts
                    yield Candle(ts, o, h, l, c, v)
                    continue
        elif not line.strip():
            continue
        _explain(path, lineno, cols, line, prev_ts)  # raises: the line is bad


def _explain(path: Path, lineno: int, cols: list[str], line: str, prev_ts: int) -> None:
    """Raise the `DataError` naming what is wrong with a line the fast check refused."""
    fields = line.strip().split(",")
    if len(fields) != len(cols):
        raise DataError(f"{path}:{lineno}: expected {len(cols)} fields, got {len(fields)}")
    try:
        ts = int(fields[0])
    except ValueError:
        raise DataError(f"{path}:{lineno}: field 'timestamp_ms' = {fields[0]!r} is not an integer") from None
    values = []
    for name, raw in zip(cols[1:], fields[1:]):
        try:
            v = float(raw)
        except ValueError:
            raise DataError(f"{path}:{lineno}: field {name!r} = {raw!r} is not a number") from None
        if not math.isfinite(v) or v < 0:
            raise DataError(f"{path}:{lineno}: field {name!r} = {raw!r} must be a finite number >= 0")
        values.append(v)
    o, h, l, c = values[:4]
    if h < l or h < max(o, c) or l > min(o, c):
        raise DataError(f"{path}:{lineno}: inconsistent candle (open {o}, high {h}, low {l}, close {c})")
    if ts <= prev_ts:
        raise DataError(f"{path}:{lineno}: timestamp {ts} is not after the previous one ({prev_ts})")
    raise DataError(f"{path}:{lineno}: bad candle line {line.strip()!r}")  # (the checks above cover every refusal)


def _read_kline_json(path: Path) -> Iterator[Candle]:
    """MEXC `contract/kline` reply: column arrays `time` (s), open, high, low, close, vol; envelope optional."""
    try:
        with _open_text(path) as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    data = doc.get("data", doc) if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a kline object with 'time', 'open', 'high', 'low', 'close' arrays")
    try:
        cols = [data[k] for k in ("time", "open", "high", "low", "close")]
    except KeyError as exc:
        raise DataError(f"{path}: kline JSON lacks the {exc.args[0]!r} array") from None
    vols = data.get("vol") or [0.0] * len(cols[0])
    if any(len(c) != len(cols[0]) for c in cols) or len(vols) != len(cols[0]):
        raise DataError(f"{path}: kline arrays have different lengths")
    prev = -1
    for i, (t, o, h, l, c, v) in enumerate(zip(*cols, vols)):
        try:
            candle = Candle(int(t) * 1000, float(o), float(h), float(l), float(c), float(v))
        except (TypeError, ValueError):
            raise DataError(f"{path}: bar {i} has a non-numeric value") from None
        if candle.ts_ms <= prev:
            raise DataError(f"{path}: bar {i} time {t} is not after the previous one")
        prev = candle.ts_ms
        yield candle


def detect_interval_s(path: Path | str, sample: int = 50) -> int:
    """Smallest gap between the first `sample` candles, in seconds (60 for 1 m files)."""
    gaps = []
    prev = None
    for i, candle in enumerate(read_candles(path)):
        if prev is not None:
            gaps.append(candle.ts_ms - prev)
        prev = candle.ts_ms
        if i >= sample:
            break
    if not gaps:
        return 60
    return max(1, min(gaps) // 1000)
