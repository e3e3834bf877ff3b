"""What a backtest makes of its files: one symbol split over several (overlapping) files is the
one series, and a range holding no candle is a clear error, not an empty 'finished' run."""

from __future__ import annotations

import pytest

from tui_trader.app.backtest_cli import count_bars
from tui_trader.app.cli import main
from tui_trader.backtest.runner import run_backtest
from tui_trader.domain.errors import DataError
from tui_trader.venues.candle_files import read_candles

HEADER = "timestamp_ms,open,high,low,close,volume\n"


def write(path, candles):
    path.write_text(HEADER + "".join(f"{c.ts_ms},{c.open!r},{c.high!r},{c.low!r},{c.close!r},{c.volume!r}\n" for c in candles))
    return path


def test_one_symbol_in_overlapping_files_backtests_as_the_one_file(real_slice, tmp_path):
    bars = list(read_candles(real_slice))
    half = len(bars) // 2
    first = write(tmp_path / "p1_NXT-BTC_1m.csv", bars[: half + 90])  # 90 minutes in both files
    second = write(tmp_path / "p2_NXT-BTC_1m.csv", bars[half:])
    whole = run_backtest(None, [real_slice])
    split = run_backtest(None, [second, first])
    assert whole.metrics["trades"] > 0
    assert split.symbols == whole.symbols == ["NXT_BTC"]
    assert split.bars == whole.bars == len(bars)
    assert (split.trades, split.equity, split.metrics) == (whole.trades, whole.equity, whole.metrics)
    assert count_bars([second, first], None, None) == len(bars)
    assert count_bars([second, first], bars[half].ts_ms, None) == len(bars) - half


def test_the_bar_count_comes_from_the_candle_cache_when_it_holds_the_files(real_slice, tmp_path, monkeypatch):
    """The progress bar's total: the same count from the cache's stamps (no text scan) as from the scan."""
    from tui_trader.app import backtest_cli
    from tui_trader.venues.candle_cache import load_columns

    bars = list(read_candles(real_slice))
    half = len(bars) // 2
    first = write(tmp_path / "p1_NXT-BTC_1m.csv", bars[: half + 90])
    second = write(tmp_path / "p2_NXT-BTC_1m.csv", bars[half:])
    other = write(tmp_path / "x_ABC-BTC_1m.csv", bars[:100])
    files, cache = [second, first, other], tmp_path / "candles"
    ranges = [(None, None), (bars[half].ts_ms, None), (None, bars[half + 50].ts_ms),
              (bars[10].ts_ms, bars[half + 200].ts_ms), (bars[-1].ts_ms + 1, None)]
    scanned = [count_bars(files, lo, hi) for lo, hi in ranges]
    assert scanned[0] == len(bars) + 100
    for path in files:
        load_columns(path, cache)  # imported (`tui-trader data import`, or a bar-mode run's first use)

    def no_scan(path):
        raise AssertionError(f"{path} scanned as text")

    monkeypatch.setattr(backtest_cli, "candle_stamps", no_scan)
    assert [count_bars(files, lo, hi, cache) for lo, hi in ranges] == scanned


def test_a_range_with_no_candle_is_an_error_and_nothing_is_saved(real_slice, tmp_path, capsys):
    db = tmp_path / "runs.sqlite"
    after_the_data = list(read_candles(real_slice))[-1].ts_ms + 60_000
    with pytest.raises(DataError, match=r"nothing to test: no candle in bittrex_NXT-BTC_1m_slice.csv from 20\d\d-"):
        run_backtest(None, [real_slice], date_from_ms=after_the_data, store_path=db)
    assert not db.exists()
    empty = write(tmp_path / "empty_NXT-BTC_1m.csv", [])
    assert main(["backtest", "--data", str(empty)]) == 2
    assert "nothing to test: no candle in empty_NXT-BTC_1m.csv" in " ".join(capsys.readouterr().err.split())
