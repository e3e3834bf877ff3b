"""Several files of one symbol are one series: in time order, an overlap only where the candles are
identical (each replayed once), anything else a DataError naming both files."""

from __future__ import annotations

import pytest

from tui_trader.domain.errors import DataError
from tui_trader.venues.candle_files import read_candle_series, read_candles
from tui_trader.venues.replay import bundled_data_path, series_interval_s

HEADER = "timestamp_ms,open,high,low,close,volume\n"


@pytest.fixture(scope="module")
def real():
    """The first 3,000 real bars of the bundled NXT/BTC file."""
    out = []
    for candle in read_candles(bundled_data_path()):
        out.append(candle)
        if len(out) == 3000:
            return out


def write(path, candles):
    path.write_text(HEADER + "".join(f"{c.ts_ms},{c.open!r},{c.high!r},{c.low!r},{c.close!r},{c.volume!r}\n" for c in candles))
    return path


def test_files_in_any_order_make_the_one_series(tmp_path, real):
    a, b, c = write(tmp_path / "a.csv", real[:1000]), write(tmp_path / "b.csv", real[1000:2000]), write(tmp_path / "c.csv", real[2000:])
    empty = write(tmp_path / "empty.csv", [])
    assert list(read_candle_series([c, empty, a, b])) == real


def test_an_identical_overlap_is_replayed_once(tmp_path, real):
    a, b = write(tmp_path / "a.csv", real[:1800]), write(tmp_path / "b.csv", real[1200:])
    inside = write(tmp_path / "inside.csv", real[300:900])  # wholly inside a: adds nothing
    assert list(read_candle_series([b, inside, a])) == real


def test_a_differing_overlap_names_both_files_and_the_candle(tmp_path, real):
    changed = real[1500]._replace(high=real[1500].high * 1.01)
    a, b = write(tmp_path / "a.csv", real[:1800]), write(tmp_path / "b.csv", [*real[1200:1500], changed, *real[1501:]])
    with pytest.raises(DataError) as err:
        list(read_candle_series([a, b]))
    message = str(err.value)
    assert str(b) in message and "a.csv" in message and "differs from the one in" in message
    assert "2017-12-01 10:53:00 UTC" in message  # real[1500] opens at 1512125580 s


def test_a_candle_the_earlier_file_lacks_is_refused(tmp_path, real):
    a = write(tmp_path / "a.csv", [*real[:1400], *real[1401:1800]])  # a gap at real[1400]
    b = write(tmp_path / "b.csv", real[1200:])
    with pytest.raises(DataError, match="is not in a.csv"):
        list(read_candle_series([a, b]))


def test_the_files_of_a_symbol_must_share_one_interval(tmp_path, real):
    one_minute = write(tmp_path / "x_NXT-BTC_1m.csv", real[:10])
    five_minutes = write(tmp_path / "y_NXT-BTC_5m.csv", real[100:200:5])
    single = write(tmp_path / "z_NXT-BTC_1m.csv", real[500:501])  # one candle: no interval of its own
    assert series_interval_s([one_minute, single], "NXT_BTC") == 60
    with pytest.raises(DataError, match=r"different candle intervals \(x_NXT-BTC_1m.csv 60 s, y_NXT-BTC_5m.csv 300 s\)"):
        series_interval_s([one_minute, five_minutes, single], "NXT_BTC")
