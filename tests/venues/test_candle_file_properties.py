"""Any bytes in a candle file (CSV, .csv.gz, MEXC kline JSON, .json.gz) end in candles or a `DataError`
naming the file - never another exception (issue 23: binary files, fake gzip, deep JSON crashed)."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trader.domain.errors import DataError
from tui_trader.venues.candle_files import (
    candle_stamps,
    read_candle_series,
    read_candles,
)
from tui_trader.venues.paper.funding import read_funding_csv

SUFFIXES = (".csv", ".csv.gz", ".json", ".json.gz")
_DIR = Path(tempfile.mkdtemp(prefix="candle-props-"))

_number = st.one_of(st.integers(-10, 10**15).map(str), st.floats(allow_nan=True).map(repr),
                    st.sampled_from(["", "x", "1e400", "-0", " 5", "inf", "NaN", "1_0"]))
_csv_line = st.lists(_number, min_size=0, max_size=7).map(",".join)
_header = st.sampled_from(["timestamp_ms,open,high,low,close,volume", "timestamp_ms,open,high,low,close",
                           "\ufefftimestamp_ms,open,high,low,close", "ts,o,h,l,c", ""])
_csv_text = st.builds(lambda h, lines: "\n".join([h, *lines]) + "\n", _header, st.lists(_csv_line, max_size=8))
_json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=4),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
                           max_leaves=16)
_column = st.lists(st.one_of(st.integers(-2, 2**70), st.floats(allow_nan=True), st.text(max_size=3), st.none()),
                   max_size=5)
_kline = st.fixed_dictionaries({k: _column for k in ("time", "open", "high", "low", "close")},
                               optional={"vol": _column | _json_value})
_kline_doc = st.one_of(_kline, st.fixed_dictionaries({"success": st.booleans(), "code": _json_value, "data": _kline}),
                       _json_value)
_text = st.one_of(_csv_text, _kline_doc.map(json.dumps), st.text(max_size=200))
_content = st.one_of(st.binary(max_size=300), _text.map(str.encode))


def _file(content: bytes, suffix: str, compress: bool) -> Path:
    path = _DIR / f"BTC_USDT{suffix}"
    path.write_bytes(gzip.compress(content) if compress and suffix.endswith(".gz") else content)
    return path


def _read_all(fn, *args):
    try:
        return list(fn(*args))
    except DataError as exc:
        assert "BTC_USDT" in str(exc) or "MEXC" in str(exc), exc  # the message names the file
        return None


@settings(max_examples=250, deadline=None)
@given(_content, st.sampled_from(SUFFIXES), st.booleans())
def test_any_bytes_give_candles_or_a_data_error(content, suffix, compress):
    path = _file(content, suffix, compress)
    candles = _read_all(read_candles, path)
    if candles is not None:
        assert all(c.low <= min(c.open, c.close) and max(c.open, c.close) <= c.high for c in candles)
        assert [c.ts_ms for c in candles] == sorted({c.ts_ms for c in candles})
    _read_all(read_candle_series, [path])
    _read_all(candle_stamps, path)


@settings(max_examples=100, deadline=None)
@given(_content, st.booleans())
def test_any_bytes_give_funding_rows_or_a_data_error(content, compress):
    _read_all(read_funding_csv, _file(content, ".csv", compress))


_ROWS = b"timestamp_ms,open,high,low,close\n" + b"".join(b"%d,1,2,0.5,1.5\n" % (60_000 * i) for i in range(500))


@pytest.mark.parametrize("content, suffix, message", [
    (b"\xff\xfe\x00binary", ".csv", "not UTF-8 text"),
    (b"\xff\xfe\x00binary", ".json", "not UTF-8 text"),
    (b"timestamp_ms,open,high,low,close\n", ".csv.gz", "not a gzip file"),
    (b"{}", ".json.gz", "not a gzip file"),
    (gzip.compress(_ROWS)[:-12], ".csv.gz", "gzip file is cut short"),
    (b"[" * 100_000, ".json", "nested too deeply"),
    (json.dumps({"time": [1], "open": [1], "high": [1], "low": [1], "close": [1], "vol": 5}).encode(), ".json", "'vol'"),
    (json.dumps({"time": [1e400], "open": [1], "high": [1], "low": [1], "close": [1]}).encode(), ".json", "bar 0"),
], ids=["binary-csv", "binary-json", "csv-not-gzip", "json-not-gzip", "cut-gzip", "deep-json", "vol-number", "time-inf"])
def test_unreadable_files_name_the_file_and_the_problem(tmp_path, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        list(read_candles(path))
    assert str(path) in str(err.value)


def test_a_directory_is_not_a_candle_file(tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        list(read_candles(tmp_path / "d.csv"))
