"""The columnar candle cache: a file parsed and checked once (by the streaming reader), then loaded
from `<cache>/<sha256>.npz` - bit for bit the same candles, the same errors, never a damaged entry."""

from __future__ import annotations

import gzip
import json
import logging
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trader.domain.errors import DataError
from tui_trader.venues import candle_cache
from tui_trader.venues.candle_cache import (
    default_cache_dir,
    file_sha256,
    load_columns,
    load_series_columns,
)
from tui_trader.venues.candle_files import (
    Candle,
    detect_interval_s,
    read_candle_series,
    read_candles,
)
from tui_trader.venues.replay import bundled_data_path

DATA = Path(__file__).resolve().parents[1] / "data"
CANDLE_FILES = ["bittrex_BCC-BTC_1m_20171104-20171118.csv.gz", "freqtrade_UNITTEST-BTC_1m_20171104-20171114.csv.gz",
                "ftx_BTC-PERP_1m_20211231-20220201.csv.gz", "xrp-usdt-perp_5m_20211115-20211121.csv.gz"]
HEADER = "timestamp_ms,open,high,low,close,volume\n"
KLINES = {"success": True, "code": 0, "data": {"time": [60, 120, 240], "open": [1, 2.5, 0.1], "high": [2, 3, 0.3],
                                                "low": [0.5, 1.5, 0.1], "close": [2, 2.5, 0.2], "vol": [10, 0, 1e-9]}}


def bits(candles):
    """Candles with every float as its 8 bytes: equal only when bit for bit equal (-0.0 is not 0.0)."""
    return [(c.ts_ms, *(struct.pack("<d", v) for v in c[1:])) for c in candles]


def write_csv(path: Path, candles) -> Path:
    path.write_text(HEADER + "".join(f"{c.ts_ms},{c.open!r},{c.high!r},{c.low!r},{c.close!r},{c.volume!r}\n"
                                     for c in candles))
    return path


@pytest.fixture(scope="module")
def real():
    """The first 400 real bars of the bundled NXT/BTC file."""
    out = []
    for candle in read_candles(bundled_data_path()):
        out.append(candle)
        if len(out) == 400:
            return out


@pytest.mark.parametrize("name", CANDLE_FILES)
def test_a_round_trip_is_the_streaming_reader_bit_for_bit(tmp_path, name):
    path = DATA / name
    expected = list(read_candles(path))
    first = load_columns(path, tmp_path)
    again = load_columns(path, tmp_path)
    assert (first.from_cache, again.from_cache) == (False, True)
    for cols in (first, again):
        got = list(cols.candles())
        assert bits(got) == bits(expected) and got == expected
        assert all(type(c.ts_ms) is int and type(c.close) is float for c in got[:5])
        assert len(cols) == len(expected) and cols.interval_s == detect_interval_s(path)
        assert cols.checksum == file_sha256(path) and cols.source == path
        assert cols.cache_path == tmp_path / f"{cols.checksum}.npz"
        assert cols.ts.dtype == np.int64 and cols.close.dtype == np.float64 and not cols.ts.flags.writeable


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_mexc_kline_json_round_trips(tmp_path, suffix):
    path = tmp_path / f"mexc_BTC_USDT_2024-01{suffix}"
    raw = json.dumps(KLINES).encode()
    path.write_bytes(gzip.compress(raw) if suffix.endswith(".gz") else raw)
    expected = list(read_candles(path))
    assert len(expected) == 3
    for _ in range(2):
        cols = load_columns(path, tmp_path / "cache")
        assert bits(cols.candles()) == bits(expected) and cols.interval_s == 60


def test_the_second_load_neither_parses_nor_hashes(tmp_path, monkeypatch):
    path = DATA / CANDLE_FILES[0]
    expected = list(read_candles(path))
    load_columns(path, tmp_path)

    def refuse(*args):
        raise AssertionError("parsed or hashed again")

    monkeypatch.setattr(candle_cache, "read_candles", refuse)
    monkeypatch.setattr(candle_cache, "file_sha256", refuse)  # the stat index knows the file
    cols = load_columns(path, tmp_path)
    assert cols.from_cache and list(cols.candles()) == expected
    with pytest.raises(AssertionError, match="hashed again"):
        load_columns(path, tmp_path, rehash=True)  # `data import` hashes anyway


def test_a_touched_file_is_hashed_again_but_not_parsed(tmp_path, monkeypatch, real):
    path = write_csv(tmp_path / "a.csv", real)
    first = load_columns(path, tmp_path / "cache")
    st_ = path.stat()
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000_000))
    monkeypatch.setattr(candle_cache, "read_candles", lambda p: (_ for _ in ()).throw(AssertionError("parsed")))
    again = load_columns(path, tmp_path / "cache")
    assert again.from_cache and again.checksum == first.checksum


def test_a_changed_file_gets_a_new_checksum_and_entry(tmp_path, real):
    cache = tmp_path / "cache"
    path = write_csv(tmp_path / "a.csv", real[:100])
    first = load_columns(path, cache)
    write_csv(path, real[100:200])
    second = load_columns(path, cache)
    assert second.checksum != first.checksum and not second.from_cache
    assert list(second.candles()) == real[100:200]
    assert sorted(cache.glob("*.npz")) == sorted([first.cache_path, second.cache_path])
    # rewritten in place with the same size and the mtime set back: the ctime still tells
    path.write_text(HEADER + "60000,1,2,0.5,1.5,3\n120000,1,2,0.5,1.5,4\n")
    third = load_columns(path, cache)
    st_ = path.stat()
    path.write_text(HEADER + "60000,1,2,0.5,1.5,3\n120000,1,2,0.5,1.5,5\n")
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st_.st_size, st_.st_mtime_ns)
    fourth = load_columns(path, cache)
    assert fourth.checksum == file_sha256(path) != third.checksum and fourth.volume.tolist() == [3.0, 5.0]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "npy", "wrong dtype", "short column", "pickle"])
def test_a_damaged_entry_is_rebuilt_with_a_warning(tmp_path, caplog, damage):
    path = DATA / CANDLE_FILES[0]
    expected = list(read_candles(path))
    entry = load_columns(path, tmp_path).cache_path
    assert entry is not None
    good = entry.read_bytes()
    meta = {"version": np.int64(candle_cache.FORMAT_VERSION), "checksum": np.str_(entry.stem),
            "kind": np.str_("csv.gz"), "reader": np.str_(candle_cache.reader_fingerprint())}
    columns = {name: np.zeros(3) for name in candle_cache.PRICES}
    if damage == "truncated":
        entry.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        entry.write_bytes(good[:100] + bytes(b ^ 0x5A for b in good[100:2000]) + good[2000:])
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "npy":
        with entry.open("wb") as fh:
            np.save(fh, np.zeros(3))
    elif damage == "wrong dtype":
        np.savez(entry, **meta, ts=np.zeros(3), **columns)
    elif damage == "short column":
        np.savez(entry, **meta, ts=np.zeros(3, dtype=np.int64), **{**columns, "low": np.zeros(2)})
    else:
        np.savez(entry, **meta, ts=np.array([object()] * 3), **columns)
    with caplog.at_level(logging.WARNING, logger=candle_cache.__name__):
        cols = load_columns(path, tmp_path)
    assert not cols.from_cache and bits(cols.candles()) == bits(expected)
    assert "damaged cache entry" in caplog.text
    assert entry.read_bytes() == good  # rebuilt: the next load is from the cache again
    assert load_columns(path, tmp_path).from_cache


def test_an_entry_made_by_another_reader_is_parsed_again(tmp_path, monkeypatch, caplog):
    path = DATA / CANDLE_FILES[0]
    monkeypatch.setattr(candle_cache, "reader_fingerprint", lambda: "an older reader")
    load_columns(path, tmp_path)
    monkeypatch.undo()
    with caplog.at_level(logging.WARNING, logger=candle_cache.__name__):
        cols = load_columns(path, tmp_path)
    assert not cols.from_cache and caplog.text == ""  # no damage: just made by another version
    assert load_columns(path, tmp_path).from_cache


BAD_CSV = [
    ("timestamp_ms,open,high,low,close\n60000,1,2,0.5,1.5\n120000,1,2,oops,1\n",
     "field 'low' = 'oops' is not a number"),
    ("timestamp_ms,open,high,low,close\n60000,1,2,0.5,1.5\n60000,1,2,0.5,1.5\n", "is not after the previous one"),
    ("ts,o,h,l,c\n60000,1,2,0.5,1.5\n", "header is"),
    ("timestamp_ms,open,high,low,close\n60000,1,2,1.5,1.5\n", "inconsistent candle"),
]


@pytest.mark.parametrize(("text", "problem"), BAD_CSV)
def test_a_bad_file_is_the_readers_data_error_and_nothing_is_cached(tmp_path, text, problem):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError) as streaming:
        list(read_candles(path))
    with pytest.raises(DataError) as columnar:
        load_columns(path, tmp_path / "cache")
    assert str(columnar.value) == str(streaming.value) and problem in str(columnar.value)
    assert not list((tmp_path / "cache").glob("*.npz")) and not (tmp_path / "cache" / "index.json").exists()


def test_a_missing_file_or_a_directory_is_the_readers_data_error(tmp_path):
    for path in (tmp_path / "nope.csv", tmp_path):
        with pytest.raises(DataError) as streaming:
            list(read_candles(path))
        with pytest.raises(DataError) as columnar:
            load_columns(path, tmp_path / "cache")
        assert str(columnar.value) == str(streaming.value)


def test_a_time_beyond_int64_is_a_data_error(tmp_path):
    path = tmp_path / "far.csv"
    path.write_text(HEADER + f"60000,1,2,0.5,1.5,3\n{2**63},1,2,0.5,1.5,3\n")
    assert len(list(read_candles(path))) == 2
    with pytest.raises(DataError, match=r"far.csv: candle 2 opens at 9223372036854775808 ms, beyond any time"):
        load_columns(path, tmp_path / "cache")


def test_no_cache_dir_parses_only_and_an_unwritable_one_still_reads(tmp_path, caplog, real):
    (tmp_path / "only").mkdir()
    path = write_csv(tmp_path / "only" / "a.csv", real)
    cols = load_columns(path, None)
    assert cols.cache_path is None and not cols.from_cache and list(cols.candles()) == real
    assert [p.name for p in path.parent.iterdir()] == ["a.csv"]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger=candle_cache.__name__):
        cols = load_columns(path, blocker / "candles")
    assert cols.cache_path is None and list(cols.candles()) == real and "cannot write the candle cache" in caplog.text


def test_a_damaged_index_means_hashing_again(tmp_path, caplog, real):
    path = write_csv(tmp_path / "a.csv", real)
    cache = tmp_path / "cache"
    load_columns(path, cache)
    elsewhere = f'{{"version": 1, "files": {{"{path.resolve()}": [1, 2, 3, 4, "../{"0" * 61}"]}}}}'
    for text in ("{not json", "[" * 100_000, '{"version": 1, "files": []}', '{"version": 1, "files": {"x": [1, 2]}}',
                 elsewhere):
        (cache / "index.json").write_text(text)
        with caplog.at_level(logging.WARNING, logger=candle_cache.__name__):
            assert load_columns(path, cache).from_cache
        assert json.loads((cache / "index.json").read_text())["files"][str(path.resolve())][4] == file_sha256(path)


def test_rows_and_between_are_views_of_the_range(tmp_path, real):
    cols = load_columns(write_csv(tmp_path / "a.csv", real), tmp_path / "cache")
    assert list(cols.rows(10, 20).candles()) == real[10:20] and list(cols.rows(-3).candles()) == real[-3:]
    lo, hi = real[50].ts_ms, real[60].ts_ms
    assert list(cols.between(lo, hi).candles()) == [c for c in real if lo <= c.ts_ms < hi]
    assert list(cols.between(lo - 1, lo).candles()) == [] and len(cols.between(hi, lo)) == 0
    assert len(cols.between()) == len(real) and np.shares_memory(cols.between(lo).close, cols.close)


def test_default_cache_dir_is_beside_the_database(tmp_path):
    assert default_cache_dir(tmp_path) == tmp_path / "candles"
    assert default_cache_dir(None) is None  # no data dir: read without caching


# --- several files of one symbol: read_candle_series' rule -----------------------------------------


def same_outcome(paths: list[Path], cache_dir: Path | None) -> list[Candle] | str:
    """`load_series_columns` gives what `read_candle_series` gives: the same candles, or the same error."""
    try:
        expected: list[Candle] | str = list(read_candle_series(paths))
    except DataError as exc:
        expected = str(exc)
    try:
        got: list[Candle] | str = list(load_series_columns(paths, cache_dir).candles())
    except DataError as exc:
        got = str(exc)
    assert got == expected
    return got


def test_series_in_any_order_with_an_identical_overlap_taken_once(tmp_path, real):
    a, b = write_csv(tmp_path / "a.csv", real[:180]), write_csv(tmp_path / "b.csv", real[120:])
    inside = write_csv(tmp_path / "inside.csv", real[30:90])
    empty = write_csv(tmp_path / "empty.csv", [])
    assert same_outcome([b, empty, inside, a], tmp_path / "cache") == real
    cols = load_series_columns([b, empty, inside, a], tmp_path / "cache")
    assert cols.source == a and cols.interval_s == 60 and cols.cache_path is None and cols.from_cache
    assert load_series_columns([a], tmp_path / "cache").checksum == file_sha256(a)
    assert same_outcome([empty, write_csv(tmp_path / "empty2.csv", [])], None) == []


def test_series_refuses_a_differing_or_missing_candle_naming_both_files(tmp_path, real):
    changed = real[150]._replace(high=real[150].high * 1.01)
    a = write_csv(tmp_path / "a.csv", real[:180])
    b = write_csv(tmp_path / "b.csv", [*real[120:150], changed, *real[151:]])
    message = same_outcome([a, b], tmp_path / "cache")
    assert isinstance(message, str) and "differs from the one in a.csv" in message and str(b) in message
    gap = write_csv(tmp_path / "gap.csv", [*real[:140], *real[141:180]])
    message = same_outcome([gap, write_csv(tmp_path / "c.csv", real[120:])], tmp_path / "cache")
    assert isinstance(message, str) and "is not in gap.csv" in message


_slices = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60), st.sampled_from(["", "gap", "high"])),
                   min_size=2, max_size=5)


@settings(max_examples=60, deadline=None)
@given(slices=_slices)
def test_series_matches_the_streaming_rule_on_any_files(real, slices):
    """Overlapping, nested, empty, gapped and altered slices: the same candles or the same error."""
    base = real[:60]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, (start, stop, change) in enumerate(slices):
            part = list(base[min(start, stop):max(start, stop)])
            if change and len(part) > 2:
                k = len(part) // 2
                altered = part[k] if change == "gap" else part[k]._replace(high=9.0)
                part = [*part[:k], *([] if change == "gap" else [altered]), *part[k + 1:]]
            paths.append(write_csv(Path(tmp) / f"f{i}.csv", part))
        same_outcome(paths, None)
