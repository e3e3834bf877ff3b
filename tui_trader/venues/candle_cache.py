"""Venues layer: the columnar candle cache - a candle file parsed and checked once, then loaded in milliseconds.

`load_columns(path, cache_dir)` gives a file's candles as six numpy columns (`CandleColumns`). The
first time, the file is read by the streaming reader (`read_candles`: every check it makes happens,
and a bad file is its `DataError`, with nothing cached) and the columns are written to
`<cache_dir>/<sha256 of the file>.npz`; later runs load that instead (1 000 000 bars: 24-34 ms here,
against 1.2-1.9 s to parse the CSV). CSV (.gz too) and MEXC kline JSON stay the input formats;
the cache is a by-product that can be deleted at any time. The default `cache_dir` is
`<data_dir>/candles` (`default_cache_dir`); None reads without caching.

Why numpy's .npz and not Parquet: Parquet needs pyarrow (about 100 MB installed) for data that is
six fixed-width columns; numpy is there already (textual-plot depends on it) and an .npz holds
the int64/float64 arrays as they are in memory, so loading is a copy with no conversion.

Keyed by content: the key is the SHA-256 of the file's bytes (a .gz: of the compressed bytes). On
a 1 000 000-bar CSV (64 MB) SHA-256 takes 45-50 ms here (the CPU has SHA instructions), BLAKE2b
72-80 ms, so SHA-256 (also what `sha256sum` prints). That is more than a load, so a small stat
index (`index.json` in the cache dir: resolved path -> size, mtime_ns, ctime_ns, inode, checksum)
skips the hash while none of the four changed. A file rewritten with all four unchanged is
missed; as the ctime cannot be set back without moving the system clock, that takes deliberate
effort. `rehash=True` (what `tui-trader data import` does) hashes anyway; deleting `index.json`
does it once for every file.

Trusted only when checked: an entry is used when its arrays are exactly the expected ones (names,
dtypes, one dimension, one length) and it carries this layout's `FORMAT_VERSION`, the checksum and
format (csv, json, .gz) of the file it stands for and a fingerprint of `candle_files.py` (the
reader whose checks it replaces: when the reader changes, every file is parsed once again). The
zip's CRC-32 of every array is verified as it is read, so a flipped bit is noticed too. Anything
else - truncated, corrupt, another version - is parsed again (with a warning when it is damaged),
never trusted and never a crash; so is a file that changed while it was parsed (then not cached).
Entries are written to a temporary file and renamed into place (no fsync: a torn entry after a
power cut is just rebuilt), so concurrent runs (a grid's workers) at worst write the same entry
twice.

Unlike the streaming readers, columns hold the whole file in memory: 48 bytes a bar. One check is
new: an open time beyond int64 milliseconds (year 292 million) is a `DataError`.

Several files of one symbol: `load_series_columns` applies `read_candle_series`' rule (its pieces
`series_order` and `overlap_error`, the same messages) to the columns. Each file is read whole
before the series is assembled, so where a set of files has several problems, the one reported
first may differ from the streaming reader's.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import starmap
from pathlib import Path
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from tui_trader.domain.errors import DataError
from tui_trader.venues import candle_files
from tui_trader.venues.candle_files import (
    Candle,
    interval_of,
    is_kline_json,
    overlap_error,
    read_candles,
    series_order,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # the .npz layout: raise it when what is stored, or how it is derived, changes
CACHE_SUBDIR = "candles"
INDEX_NAME = "index.json"
COLUMNS = ("ts", "open", "high", "low", "close", "volume")
PRICES = COLUMNS[1:]
_META = ("version", "checksum", "kind", "reader")
_ROW = np.dtype([("ts", np.int64)] + [(name, np.float64) for name in PRICES])
_CHUNK = 65_536  # bars converted to Python objects at a time by `candles()`
_INTERVAL_SAMPLE = 64  # open times handed to `interval_of` (it reads the first 51, as detect_interval_s does)

Int64s = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
StatKey = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class CandleColumns:
    """A file's candles as columns (read-only arrays, one entry a bar, in time order)."""

    ts: Int64s  # open times, epoch ms
    open: Floats
    high: Floats
    low: Floats
    close: Floats
    volume: Floats
    source: Path  # the file (a series: its first file in time order)
    checksum: str  # SHA-256 of the file's bytes, hex (a series: of its files' checksums, in series order); "": no cache
    interval_s: int  # detect_interval_s' answer: the smallest gap of the first bars (60 for fewer than two)
    cache_path: Path | None = None  # the .npz holding them; None: not cached (no cache dir, a series, a failed write)
    from_cache: bool = False  # loaded from the cache (False: parsed by this call)

    def __len__(self) -> int:
        return len(self.ts)

    def candles(self) -> Iterator[Candle]:
        """The bars as `Candle` tuples, equal bit for bit to `read_candles`', for streaming consumers."""
        for lo in range(0, len(self), _CHUNK):
            columns = (getattr(self, name)[lo:lo + _CHUNK].tolist() for name in COLUMNS)
            yield from starmap(Candle, zip(*columns, strict=True))

    def rows(self, start: int | None = None, stop: int | None = None) -> CandleColumns:
        """Bars `start` to `stop` (Python slice rules), as views: no copy."""
        cut = slice(start, stop)
        return replace(self, **{name: getattr(self, name)[cut] for name in COLUMNS})

    def between(self, from_ms: int | None = None, until_ms: int | None = None) -> CandleColumns:
        """The bars opening at or after `from_ms` and before `until_ms` (None: no bound), as views."""
        lo = 0 if from_ms is None else int(np.searchsorted(self.ts, from_ms, side="left"))
        hi = len(self) if until_ms is None else int(np.searchsorted(self.ts, until_ms, side="left"))
        return self.rows(lo, max(lo, hi))


@overload
def default_cache_dir(data_dir: Path) -> Path: ...
@overload
def default_cache_dir(data_dir: None) -> None: ...
def default_cache_dir(data_dir: Path | None) -> Path | None:
    """The cache beside the database: `<data_dir>/candles` (`data_dir`: the settings' data dir); None
    for no data dir (a run that stores nothing), which reads without caching."""
    return None if data_dir is None else data_dir / CACHE_SUBDIR


def load_columns(path: Path | str, cache_dir: Path | None, *, rehash: bool = False) -> CandleColumns:
    """A candle file's columns: from `cache_dir` when it holds this file's bytes, else parsed by
    `read_candles` (a bad file: its `DataError`, nothing cached) and cached. `cache_dir` None: parse
    only (and no checksum: it keys the cache, nothing else). `rehash`: hash the file even when its stat
    is the one indexed."""
    path = Path(path)
    if cache_dir is None:
        return _built(path, _columns(path), "", None, from_cache=False)
    kind = _kind(path)
    index = _Index(cache_dir / INDEX_NAME)
    try:
        stat = _stat_key(path)
        checksum = None if rehash else index.checksum(path, stat)
        hashed = checksum is None
        if checksum is None:
            checksum = file_sha256(path)
    except OSError as exc:  # missing, a directory, unreadable: the reader says it in its own words
        _columns(path)
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    npz = cache_dir / f"{checksum}.npz"
    arrays = _read_npz(npz, path, checksum, kind)
    from_cache = cached = arrays is not None
    if arrays is None:
        arrays = _columns(path)
        try:
            unchanged = _stat_key(path) == stat
        except OSError:
            unchanged = False
        if not unchanged:
            log.warning("%s changed while it was read: its candles are not cached", path)
            return _built(path, arrays, checksum, None, from_cache=False)
        cached = _write_npz(npz, arrays, checksum, kind)
    if hashed and cached:
        index.record(path, stat, checksum)
    return _built(path, arrays, checksum, npz if cached else None, from_cache=from_cache)


def cached_columns(path: Path | str, cache_dir: Path | None) -> CandleColumns | None:
    """The file's columns only when the cache already holds them for its bytes as last seen (its stat
    indexed, the entry sound) - never parsing nor hashing; else None. For a quick look (the progress
    bar's bar count), where a miss falls back on a text scan."""
    if cache_dir is None:
        return None
    path = Path(path)
    try:
        checksum = _Index(cache_dir / INDEX_NAME).checksum(path, _stat_key(path))
    except OSError:
        return None
    if checksum is None:
        return None
    kind = _kind(path)
    npz = cache_dir / f"{checksum}.npz"
    arrays = _read_npz(npz, path, checksum, kind)
    return None if arrays is None else _built(path, arrays, checksum, npz, from_cache=True)


def load_series_columns(paths: Sequence[Path | str], cache_dir: Path | None, *, rehash: bool = False) -> CandleColumns:
    """Several files of one symbol as one series, by `read_candle_series`' rule (the files in the
    order of their first candle, an overlap only where the candles are identical and then taken
    once, else its `DataError` naming both files); one file is `load_columns`."""
    files = [Path(p) for p in paths]
    if not files:
        raise ValueError("load_series_columns needs at least one file")
    loaded = {path: load_columns(path, cache_dir, rehash=rehash) for path in files}
    if len(files) == 1:
        return loaded[files[0]]
    order = series_order(files, {path: int(c.ts[0]) if len(c) else None for path, c in loaded.items()})
    parts: list[CandleColumns] = []
    last: CandleColumns | None = None  # the columns of the file the series' newest bar came from ...
    last_path = order[0]  # ... and that file
    for path in order:
        mine = loaded[path]
        start = 0 if last is None else _past_overlap(mine, path, last, last_path)
        if start < len(mine):
            parts.append(mine.rows(start))
            last, last_path = mine, path
    arrays = [np.concatenate([getattr(p, name) for p in parts]) if parts else _empty(name) for name in COLUMNS]
    digest = "" if cache_dir is None else hashlib.sha256(  # (no cache: no checksums to combine, as for one file)
        "\n".join(["series", *(loaded[p].checksum for p in order)]).encode()).hexdigest()
    from_cache = all(c.from_cache for c in loaded.values())
    return _built(order[0], arrays, digest, None, from_cache=from_cache)


def _past_overlap(mine: CandleColumns, path: Path, last: CandleColumns, last_path: Path) -> int:
    """How many of `mine`'s first bars open at or before `last`'s newest; each must be the bar of
    its time in `last` (`read_candle_series`' `_after`, on arrays), else `overlap_error`."""
    n = int(np.searchsorted(mine.ts, last.ts[-1], side="right"))
    at = np.searchsorted(last.ts, mine.ts[:n], side="left")  # < len(last): every ts here is <= last.ts[-1]
    present = last.ts[at] == mine.ts[:n]
    same = present.copy()
    for name in PRICES:
        same &= getattr(last, name)[at] == getattr(mine, name)[:n]
    bad = np.flatnonzero(~same)
    if len(bad):
        i = int(bad[0])
        raise overlap_error(path, int(mine.ts[i]), bool(present[i]), last_path)
    return n


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@functools.cache
def reader_fingerprint() -> str:
    """A digest of `candle_files.py`, the reader whose checks a cache entry stands for."""
    try:
        return hashlib.sha256(Path(candle_files.__file__).read_bytes()).hexdigest()[:16]
    except OSError:
        return "unknown"


def _kind(path: Path) -> str:
    """The file's format as `read_candles` and `open_text` tell it (an entry is for one format)."""
    return ("json" if is_kline_json(path) else "csv") + (".gz" if path.suffix == ".gz" else "")


def _stat_key(path: Path) -> StatKey:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _columns(path: Path) -> list[Any]:
    """Parse and check the file with `read_candles` into contiguous columns."""
    try:
        rows = np.fromiter(read_candles(path), dtype=_ROW)
    except OverflowError:  # an open time beyond int64: name the bar
        for i, candle in enumerate(read_candles(path), start=1):
            if not -(2**63) <= candle.ts_ms < 2**63:
                raise DataError(f"{path}: candle {i} opens at {candle.ts_ms} ms, beyond any time (int64 ms)") from None
        raise
    return [np.ascontiguousarray(rows[name]) for name in COLUMNS]


def _empty(name: str) -> Any:
    return np.empty(0, dtype=_ROW[name])


def _built(source: Path, arrays: list[Any], checksum: str, cache: Path | None, *, from_cache: bool) -> CandleColumns:
    for array in arrays:
        array.flags.writeable = False
    ts, open_, high, low, close, volume = arrays
    interval = interval_of(ts[:_INTERVAL_SAMPLE].tolist(), default=60) or 60
    return CandleColumns(ts, open_, high, low, close, volume, source=source, checksum=checksum, interval_s=interval,
                         cache_path=cache, from_cache=from_cache)


def _read_npz(npz: Path, source: Path, checksum: str, kind: str) -> list[Any] | None:
    """The columns of a cache entry when it is sound and stands for this file's bytes, else None
    (logged: a warning when the entry is damaged)."""
    try:
        # (the file opened here: np.load leaves its own open when the zip is refused)
        with npz.open("rb") as fh, np.load(fh, allow_pickle=False) as entry:
            if sorted(entry.files) != sorted(_META + COLUMNS):
                raise ValueError(f"holds arrays {sorted(entry.files)}")
            meta = (int(entry["version"]), str(entry["checksum"]), str(entry["kind"]), str(entry["reader"]))
            if meta != (FORMAT_VERSION, checksum, kind, reader_fingerprint()):
                log.info("%s: made for %s (version, checksum, format, reader); parsing %s again", npz, meta, source)
                return None
            arrays = [entry[name] for name in COLUMNS]
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        log.warning("%s: damaged cache entry of %s (%s); parsing the file again", npz, source, exc)
        return None
    dtypes = [np.dtype(np.int64)] + [np.dtype(np.float64)] * len(PRICES)
    if any(a.ndim != 1 or a.dtype != d or len(a) != len(arrays[0]) for a, d in zip(arrays, dtypes, strict=True)):
        shapes = ", ".join(f"{name} {a.dtype}{a.shape}" for name, a in zip(COLUMNS, arrays, strict=True))
        log.warning("%s: damaged cache entry of %s (columns %s); parsing the file again", npz, source, shapes)
        return None
    return arrays


def _write_npz(npz: Path, arrays: list[Any], checksum: str, kind: str) -> bool:
    """Write a cache entry atomically (a temporary file renamed into place); False when it cannot be
    written (logged: the columns are still returned, just not cached)."""
    stored: dict[str, Any] = {"version": np.int64(FORMAT_VERSION), "checksum": np.str_(checksum), "kind": np.str_(kind),
                              "reader": np.str_(reader_fingerprint()), **dict(zip(COLUMNS, arrays, strict=True))}
    try:
        npz.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(npz, lambda fh: np.savez(fh, **stored))
    except OSError as exc:
        log.warning("%s: cannot write the candle cache (%s); the candles are read but not cached", npz, exc)
        return False
    return True


def _atomic_write(target: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:24]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _Index:
    """`index.json`: resolved path -> [size, mtime_ns, ctime_ns, inode, checksum], so an unchanged
    file is not hashed again. Unreadable: empty (a warning); not writable: not kept (a warning)."""

    VERSION = 1

    def __init__(self, path: Path) -> None:
        self.path = path

    def checksum(self, file: Path, stat: StatKey) -> str | None:
        entry = self._load().get(str(file.resolve()))
        return entry[4] if entry is not None and tuple(entry[:4]) == stat else None

    def record(self, file: Path, stat: StatKey, checksum: str) -> None:
        files = self._load()
        name, entry = str(file.resolve()), [*stat, checksum]
        if files.get(name) == entry:
            return
        files[name] = entry
        kept = {known: value for known, value in files.items() if os.path.exists(known)}  # forget deleted files
        doc = {"version": self.VERSION, "files": kept}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(self.path, lambda fh: fh.write(json.dumps(doc, indent=0).encode()))
        except OSError as exc:
            log.warning("%s: cannot write the candle cache index (%s)", self.path, exc)

    def _load(self) -> dict[str, list[Any]]:
        try:
            doc = json.loads(self.path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("%s: unreadable candle cache index (%s); files are hashed again", self.path, exc)
            return {}
        files = doc.get("files") if isinstance(doc, dict) and doc.get("version") == self.VERSION else None
        if not isinstance(files, dict):
            log.warning("%s: not a candle cache index of version %s; files are hashed again", self.path, self.VERSION)
            return {}
        return {name: entry for name, entry in files.items() if _index_entry(entry)}


def _index_entry(entry: object) -> bool:
    return (isinstance(entry, list) and len(entry) == 5 and all(type(v) is int for v in entry[:4])
            and isinstance(entry[4], str) and len(entry[4]) == 64 and set(entry[4]) <= set("0123456789abcdef"))
