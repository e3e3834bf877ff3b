"""Hand-computed backtests: one short each, every price, fee and funding figure worked out below.

Position: 20 contracts (10 % of 10 000 USDT as margin x leverage 2 / price 100), sold at 100 at
T0 + 15 s; taker fee 0.06 % on both legs; SL 105, TP 90 on the exchange side, filled at their
trigger when a candle's path goes through it, at the open when the candle gaps past it.
"""

from __future__ import annotations

from decimal import Decimal as D

from tests.backtest.scenarios import MIN, T0, run, strategy
from tui_trader.domain.liquidation import LiqForm, liquidation_price
from tui_trader.domain.models import Side
from tui_trader.venues.candle_files import Candle
from tui_trader.venues.replay import candle_ticks

ENTRY_FEE = D("1.2")  # 20 x 100 x 0.0006
FLAT = (100, 100, 100, 100)


def only_trade(result):
    assert result.status == "finished" and not result.errors
    assert len(result.trades) == 1
    t = result.trades[0]
    assert (t.side, t.entry_ms, t.entry_price, t.contracts) == ("SHORT", T0 + 15_000, D(100), D(20))
    return t


def test_winning_short_closed_by_ze1_at_the_next_tick(tmp_path):
    # bar 1 falls to 94 (+6 % >= ZE1's 5 %): the market close fills at the next tick, the close 95
    r = run(tmp_path, [(100, 100, 94, 95), FLAT], strategy(ze1='{ indicator = "unrealized_pnl_pct", operator = ">=", value = 5.0 }'))
    t = only_trade(r)
    assert (t.exit_ms, t.exit_price, t.exit_reason) == (T0 + MIN + 45_000, D(95), "ZE1")
    assert t.gross_pnl == D(100)  # (100 - 95) x 20
    assert t.fees == ENTRY_FEE + D("1.14")  # 20 x 95 x 0.0006
    assert t.net_pnl == D("97.66")
    assert r.metrics["net_pnl"] == D("97.66") and r.metrics["win_rate_pct"] == 100.0


def test_losing_short_closed_by_e1(tmp_path):
    # short path of a rising bar: high 104 first (-4 % <= E1's -3 %), the close fills at the low 101
    r = run(tmp_path, [(102, 104, 101, 103), FLAT], strategy(e1='{ indicator = "unrealized_pnl_pct", operator = "<=", value = -3.0 }'))
    t = only_trade(r)
    assert (t.exit_ms, t.exit_price, t.exit_reason) == (T0 + MIN + 30_000, D(101), "E1")
    assert t.gross_pnl == D(-20)
    assert t.net_pnl == D(-20) - ENTRY_FEE - D("1.212")  # 20 x 101 x 0.0006
    assert r.metrics["win_rate_pct"] == 0.0 and r.metrics["profit_factor"] == 0.0


def test_stop_loss_crossed_on_the_way_up_fills_at_its_trigger(tmp_path):
    # the short's path 100 -> 107 goes through the 105 stop: it triggers at 105, as a trigger order
    # on a real market does, not at the candle's high (strategy.md §7: trigger orders on last price)
    r = run(tmp_path, [(100, 107, 99, 101), FLAT])
    t = only_trade(r)
    assert (t.exit_ms, t.exit_price, t.exit_reason) == (T0 + MIN + 15_000, D(105), "SL")
    assert t.net_pnl == D(-100) - ENTRY_FEE - D("1.26")  # 20 x 105 x 0.0006


def test_stop_loss_gapped_through_fills_at_the_open(tmp_path):
    # the candle opens at 106, beyond the 105 stop: nothing traded between, it fills at the open
    r = run(tmp_path, [(106, 108, 104, 105), FLAT])
    t = only_trade(r)
    assert (t.exit_ms, t.exit_price, t.exit_reason) == (T0 + MIN, D(106), "SL")
    assert t.net_pnl == D(-120) - ENTRY_FEE - D("1.272")  # 20 x 106 x 0.0006


def test_take_profit_crossed_on_the_way_down_fills_at_its_target(tmp_path):
    # 100 -> 88 goes through the 90 target: filled at 90, not at the low (no profit the order never made)
    r = run(tmp_path, [(100, 100, 88, 89), FLAT])
    t = only_trade(r)
    assert (t.exit_ms, t.exit_price, t.exit_reason) == (T0 + MIN + 30_000, D(90), "TP")
    assert t.net_pnl == D(200) - ENTRY_FEE - D("1.08")  # 20 x 90 x 0.0006


def test_take_profit_gapped_through_fills_at_the_open(tmp_path):
    r = run(tmp_path, [(89, 89, 87, 88), FLAT])
    t = only_trade(r)
    assert (t.exit_ms, t.exit_price, t.exit_reason) == (T0 + MIN, D(89), "TP")
    assert t.net_pnl == D(220) - ENTRY_FEE - D("1.068")  # 20 x 89 x 0.0006


def test_stop_and_target_in_one_bar_take_the_stop_first(tmp_path):
    bar = (100, 107, 88, 104)  # rising: the conventional order would visit the low (TP) first
    assert candle_ticks(Candle(0, *bar, 0)) == (100, 88, 107, 104)
    r = run(tmp_path, [bar, FLAT])
    t = only_trade(r)
    assert (t.exit_ms, t.exit_price, t.exit_reason) == (T0 + MIN + 15_000, D(105), "SL")
    assert t.net_pnl < 0


def test_liquidation_loses_the_isolated_margin(tmp_path):
    # leverage 10: 100 contracts, margin 1000, liquidation near 108.9; the high 109.2 passes it but
    # not the 9.5 % stop (109.5)
    liq = liquidation_price(Side.SHORT, D(100), D(100), D(1000), D("0.01"), D("0.0006"), LiqForm.CONSERVATIVE)
    assert D("108.5") < liq < D("109.2")
    r = run(tmp_path, [(100, 109.2, 100, 100), FLAT], strategy(leverage=10, stop_loss_pct=9.5))
    assert len(r.trades) == 1
    t = r.trades[0]
    assert (t.entry_price, t.contracts, t.exit_ms, t.exit_reason, t.liquidated) == (D(100), D(100), T0 + MIN + 15_000, "LIQUIDATION", True)
    assert t.exit_price == liq
    assert t.gross_pnl == D(-1000) and t.fees == D(6)  # no fee on the liquidation itself
    assert r.metrics["liquidations"] == 1 and r.metrics["net_pnl"] == D(-1006)


def test_funding_charged_from_a_series(tmp_path):
    funding = tmp_path / "funding.csv"
    funding.write_text(f"timestamp_ms,funding_rate\n{T0 + 5 * MIN + 7},0.001\n")  # settlement time with exchange jitter
    r = run(tmp_path, [FLAT] * 7, funding_file=funding)
    t = r.trades[0]
    assert not t.closed
    assert t.funding == D("-2.000")  # a short receives 20 x 100 x 0.001 at a positive rate
    assert r.metrics["funding_paid"] == D("-2.000") and r.metrics["open_trades"] == 1
    assert r.equity[-1] == (T0 + 8 * MIN, D(10_000) - ENTRY_FEE + 2)


def test_two_files_merged_trade_both_symbols(tmp_path):
    from tests.backtest.scenarios import SETTINGS, candles
    from tui_trader.backtest.runner import run_backtest

    a = candles(tmp_path, [(100, 100, 88, 89), FLAT], name="x_AAA-USDT_1m.csv")  # target hit
    b = candles(tmp_path, [(100, 107, 99, 101), FLAT], name="x_BBB-USDT_1m.csv")  # stop hit
    r = run_backtest(strategy(), [a, b], settings=SETTINGS, equity_every_ms=MIN)
    assert r.symbols == ["AAA_USDT", "BBB_USDT"] and r.bars == 6
    got = sorted((t.symbol, t.entry_price, t.exit_price, t.exit_reason) for t in r.trades)
    assert [g[1:] for g in got] == [(D(100), D(90), "TP"), (D(100), D(105), "SL")]
    assert all(t.contracts == 20 for t in r.trades)  # both sized at the same step, before either filled
    assert r.metrics["net_pnl"] == sum(t.net_pnl for t in r.trades)


def test_each_symbol_is_charged_its_own_funding_series(tmp_path):
    import pytest

    from tests.backtest.scenarios import SETTINGS, candles
    from tui_trader.backtest.runner import run_backtest
    from tui_trader.domain.errors import DataError

    a = candles(tmp_path, [FLAT] * 7, name="x_AAA-USDT_1m.csv")
    b = candles(tmp_path, [FLAT] * 7, name="x_BBB-USDT_1m.csv")
    fa, fb = tmp_path / "AAA-USDT_funding.csv", tmp_path / "BBB-USDT_funding.csv"
    fa.write_text(f"timestamp_ms,funding_rate\n{T0 + 5 * MIN},0.001\n")
    fb.write_text(f"timestamp_ms,funding_rate\n{T0 + 5 * MIN},-0.002\n")
    r = run_backtest(strategy(), [a, b], settings=SETTINGS, equity_every_ms=MIN, funding_file=[fb, fa])
    paid = {t.symbol: t.funding for t in r.trades}
    assert paid == {"AAA_USDT": D("-2.000"), "BBB_USDT": D("4.000")}  # 20 x 100 x rate, a short receives a positive rate
    assert r.metrics["funding_paid"] == D("2.000")
    with pytest.raises(DataError, match="funding.csv: its name names no symbol"):  # whose rates?
        run_backtest(strategy(), [a, b], settings=SETTINGS, funding_file=tmp_path / "funding.csv")
    with pytest.raises(DataError, match=r"AAA-USDT_funding.csv: its name says AAA_USDT, which the run does not trade \(BBB_USDT\)"):
        run_backtest(strategy(), [b], settings=SETTINGS, funding_file=fa)  # another symbol's rates: not charged on this one
