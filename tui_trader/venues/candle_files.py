"""Venues layer: streaming readers for recorded candles (CSV, gzip'd CSV, MEXC kline JSON).

CSV format (shared data README): header `timestamp_ms,open,high,low,close[,volume]`, one candle
per line, UTC epoch milliseconds (candle open time), strictly ascending. Files are read line by
line and never loaded whole, so a million-bar file costs no memory. Bad input raises `DataError`
naming the file, the line and the field.

Several files of one symbol (monthly downloads, say) are one series (`read_candle_series`): read
one after the other in the order of their first candle. Where a file starts before the previous
one ends, the candles of the overlap must be the ones already read - they are skipped once - and
anything else (a different candle, one the earlier file lacks) is a `DataError` naming both
files: replaying both would feed the same minutes twice. The rule's pieces (`series_order`,
`overlap_error`) are shared with the columnar cache (`candle_cache.py`), which applies it to arrays.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import math
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from tui_trader.domain.errors import DataError
from tui_trader.domain.time_format import utc_second

REQUIRED = ("timestamp_ms", "open", "high", "low", "close")


class Candle(NamedTuple):
    ts_ms: int  # open time
    open: float
    high: float
    low: float
    close: float
    volume: float


QUOTES = ("USDT", "USDC", "USD", "BTC", "ETH")  # quote currencies that mark a `BASE_QUOTE` pair in a file name


def symbol_from_filename(path: Path) -> str:
    """The symbol a file's name carries (`symbol_in_filename`), else its stem upper-cased."""
    return symbol_in_filename(path) or path.name.split(".")[0].upper()


def symbol_in_filename(path: Path) -> str | None:
    """A dashed pair (`bittrex_NXT-BTC_1m_2017...csv` -> `NXT_BTC`), else MEXC's own `BASE_QUOTE`
    (`mexc_BTC_USDT_2024-01.json` -> `BTC_USDT`); None when the name carries neither. Dates
    (`2024-01`) are not pairs."""
    parts = path.name.split(".")[0].split("_")
    for part in parts:
        pieces = part.split("-")
        if len(pieces) > 1 and all(p.isalnum() for p in pieces) and any(c.isalpha() for c in part):
            return part.replace("-", "_").upper()
    for base, quote in reversed(list(itertools.pairwise(parts))):  # the last pair: `mexc_ETH_BTC` is ETH_BTC
        if quote.upper() in QUOTES and base.isalnum() and any(c.isalpha() for c in base):
            return f"{base}_{quote}".upper()
    return None


@contextmanager
def open_text(path: Path) -> Iterator[io.TextIOBase]:
    """A data file as UTF-8 text (gunzipped when its name ends `.gz`). gzip and the decoder fail
    lazily, at some later read; those failures surface inside this block, so they are turned into
    a `DataError` naming the file here, once, for every reader (candles, stamps, funding)."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a file")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh:
            yield fh
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x}) - is it a candle file?") from None
    except gzip.BadGzipFile:
        raise DataError(f"{path}: not a gzip file (its name ends .gz)") from None
    except (EOFError, zlib.error) as exc:
        raise DataError(f"{path}: the gzip file is cut short or corrupt ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def is_kline_json(path: Path) -> bool:
    """A MEXC kline JSON file (`.json`, `.json.gz`), by name; anything else is read as CSV."""
    return path.name.removesuffix(".gz").endswith(".json")


def read_candles(path: Path | str) -> Iterator[Candle]:
    """Yield candles from a CSV (optionally .gz) or a MEXC kline JSON file, in file order."""
    path = Path(path)
    if is_kline_json(path):
        yield from _read_kline_json(path)
        return
    with open_text(path) as fh:
        yield from _read_csv(path, fh)


def candle_stamps(path: Path | str) -> Iterator[int]:
    """The open times of a CSV candle file, by a quick scan of the first field (lines that do not
    start with digits are skipped: the reader proper names them); for progress bars."""
    path = Path(path)
    with open_text(path) as fh:
        next(fh, None)
        for line in fh:
            head = line.split(",", 1)[0]
            if head.isdigit():
                yield int(head)


def read_candle_series(paths: Sequence[Path | str]) -> Iterator[Candle]:
    """One symbol's candles from several files as one series in time order (see the module
    docstring); a single file is just `read_candles`."""
    files = [Path(p) for p in paths]
    if len(files) == 1:
        yield from read_candles(files[0])
        return
    firsts = {path: next(iter(read_candles(path)), None) for path in files}
    files = series_order(files, {path: None if first is None else first.ts_ms for path, first in firsts.items()})
    last: Candle | None = None  # the newest candle of the series so far ...
    last_path = files[0]  # ... and the file it came from
    for path in files:
        candles = read_candles(path) if last is None else _after(read_candles(path), last, last_path, path)
        for candle in candles:
            yield candle
            last, last_path = candle, path


def series_order(files: Sequence[Path], first_ts_ms: Mapping[Path, int | None]) -> list[Path]:
    """The files of one series in the order they are read: by the open time of their first candle
    (`first_ts_ms`, None for a file without candles: those go last), ties in the order given."""
    return sorted(files, key=lambda path: (first_ts_ms[path] is None, first_ts_ms[path] or 0))


def overlap_error(path: Path, ts_ms: int, in_earlier: bool, last_path: Path) -> DataError:
    """The error for `path`'s candle of `ts_ms`, inside the series so far, that is not the one
    `last_path` (the file of the series' newest candle) holds: `in_earlier` - it has a candle of
    that time, which differs; else it has none."""
    when = utc_second(ts_ms) + " UTC"
    what = "differs from the one in" if in_earlier else "is not in"
    return DataError(f"{path}: the candle of {when} {what} {last_path.name}, which this file overlaps"
                     " (files of one symbol may overlap only where their candles are identical)")


def _after(candles: Iterator[Candle], last: Candle, last_path: Path, path: Path) -> Iterator[Candle]:
    """`path`'s candles after `last` (the series' newest, from `last_path`); those up to it must
    repeat `last_path`'s, compared in lockstep (nothing is held in memory)."""
    earlier: Iterator[Candle] | None = None
    theirs: Candle | None = None
    for mine in candles:
        if mine.ts_ms > last.ts_ms:
            yield mine
            yield from candles
            return
        if earlier is None:
            earlier = read_candles(last_path)
            theirs = next(earlier, None)
        while theirs is not None and theirs.ts_ms < mine.ts_ms:
            theirs = next(earlier, None)
        if theirs != mine:
            raise overlap_error(path, mine.ts_ms, theirs is not None and theirs.ts_ms == mine.ts_ms, last_path)


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
    with open_text(path) as fh:
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        except RecursionError:
            raise DataError(f"{path}: JSON nested too deeply to be a kline reply") from None
    if isinstance(doc, dict) and (doc.get("success") is False or doc.get("code", 0) not in (0, None)):
        raise DataError(f"{path}: an error reply from MEXC (code {doc.get('code')}: {doc.get('message') or doc.get('msg') or '-'}),"
                        " not klines")
    data = doc.get("data", doc) if isinstance(doc, dict) else None
    yield from kline_candles(data, str(path))


def kline_candles(data: object, where: str) -> Iterator[Candle]:
    """The candles of a `contract/kline` payload (column arrays, `time` in s), each checked; a
    `DataError` naming `where` (a file, a reply) and the bar for anything that is not a candle.
    One reader for kline files and the live history alike."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a kline object with 'time', 'open', 'high', 'low', 'close' arrays")
    try:
        cols = [data[k] for k in ("time", "open", "high", "low", "close")]
    except KeyError as exc:
        raise DataError(f"{where}: kline JSON lacks the {exc.args[0]!r} array") from None
    if not all(isinstance(c, list) for c in cols):
        raise DataError(f"{where}: kline 'time', 'open', 'high', 'low', 'close' must be arrays")
    vols = data.get("vol") or [0.0] * len(cols[0])
    if not isinstance(vols, list):
        raise DataError(f"{where}: kline 'vol' must be an array")
    if any(len(c) != len(cols[0]) for c in cols) or len(vols) != len(cols[0]):
        raise DataError(f"{where}: kline arrays have different lengths")
    prev = -1
    for i, (t, o, h, l, c, v) in enumerate(zip(*cols, vols)):
        try:
            # (a huge Decimal time goes through float: int(Decimal("1E+1000000")) alone takes 20 s)
            ts = int(t) if isinstance(t, int) else int(float(t))
            candle = Candle(ts * 1000, float(o), float(h), float(l), float(c), float(v))
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"{where}: bar {i} has a non-numeric or infinite value") from None
        if candle.ts_ms <= prev:
            raise DataError(f"{where}: bar {i} time {t} is not after the previous one")
        if not (0 <= candle.low <= min(candle.open, candle.close) and max(candle.open, candle.close) <= candle.high < math.inf
                and 0 <= candle.volume < math.inf):
            raise DataError(f"{where}: bar {i} (time {t}) is not a candle: open {o}, high {h}, low {l}, close {c}, vol {v}"
                            " (needs 0 <= low <= open, close <= high, all finite)")
        prev = candle.ts_ms
        yield candle


def detect_interval_s(path: Path | str, sample: int = 50, default: int | None = 60) -> int | None:
    """Smallest gap between the first `sample` candles, in seconds (60 for 1 m files); `default`
    for a file of fewer than two candles."""
    return interval_of((candle.ts_ms for candle in read_candles(path)), sample, default)


def interval_of(stamps: Iterable[int], sample: int = 50, default: int | None = 60) -> int | None:
    """`detect_interval_s`'s rule on open times (ms): the smallest gap between the first `sample`
    + 1 of them, in seconds, at least 1; `default` for fewer than two."""
    gaps = []
    prev = None
    for i, ts_ms in enumerate(stamps):
        if prev is not None:
            gaps.append(ts_ms - prev)
        prev = ts_ms
        if i >= sample:
            break
    if not gaps:
        return default
    return max(1, min(gaps) // 1000)
