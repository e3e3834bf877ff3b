"""Metric edge cases on tiny hand-made inputs: drawdown depth and duration, exposure, undefined values."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tui_trader.backtest.metrics import YEAR_MS, cagr_pct, compute_metrics, exposure_pct, max_drawdown
from tui_trader.backtest.recorder import BacktestTrade

H = 3_600_000


def curve(*values):
    return [(i * H, D(v)) for i, v in enumerate(values)]


def test_drawdown_depth_and_longest_time_under_the_peak():
    dd, ms = max_drawdown(curve(100, 120, 90, 110, 120, 130, 125))
    assert dd == pytest.approx(25.0)  # 120 -> 90
    assert ms == 3 * H  # peak at 1 h, back to 120 at 4 h; the dip from 130 lasts 1 h to the end
    assert max_drawdown(curve(100, 100, 100)) == (0.0, 0)


def test_exposure_counts_overlaps_once_and_open_trades_until_the_end():
    a = BacktestTrade("A", "SHORT", entry_ms=0, exit_ms=2 * H)
    b = BacktestTrade("B", "SHORT", entry_ms=H, exit_ms=3 * H)
    c = BacktestTrade("C", "SHORT", entry_ms=8 * H)  # still open
    assert exposure_pct([a, b, c], 0, 10 * H) == pytest.approx(50.0)
    assert exposure_pct([], 0, 0) is None


def test_cagr_and_undefined_figures():
    assert cagr_pct(100, 121, 2 * YEAR_MS) == pytest.approx(10.0)
    assert cagr_pct(100, 50, 0) is None and cagr_pct(100, 0, YEAR_MS) == -100.0
    assert cagr_pct(100, 200, 60_000) is None  # a minute annualised overflows: undefined, not inf
    m = compute_metrics([], curve(100, 100), H)
    assert m["trades"] == 0 and m["win_rate_pct"] is None and m["sharpe"] is None and m["profit_factor"] is None
    assert m["net_pnl"] == 0 and m["exposure_pct"] == 0.0


def test_trade_figures():
    win = BacktestTrade("A", "SHORT", 0, contracts=D(1), entry_notional=D(100), exit_qty=D(1), exit_notional=D(90),
                        exit_ms=H, gross_pnl=D(10), fees=D(1))
    loss = BacktestTrade("A", "SHORT", 2 * H, contracts=D(1), entry_notional=D(100), exit_qty=D(1), exit_notional=D(103),
                         exit_ms=5 * H, gross_pnl=D(-3), fees=D(1), funding=D("0.5"), liquidated=True)
    m = compute_metrics([win, loss], curve(100, 109, 109, 109, 109, 104.5), H)
    assert (m["trades"], m["win_rate_pct"], m["liquidations"]) == (2, 50.0, 1)
    assert m["profit_factor"] == pytest.approx(9 / 4.5) and m["expectancy"] == D("2.25")
    assert m["avg_trade_duration_s"] == 2 * 3600 and m["fees_paid"] == D(2) and m["funding_paid"] == D("0.5")
    assert win.to_dict()["exit_price"] == "90" and loss.to_dict()["net_pnl"] == "-4.5"
