"""Parity: a backtest and the console's paper mode replaying the same real file at full speed trade identically."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from decimal import Decimal

from tests.backtest.conftest import paper_settings
from tui_trader.app.wiring import build_core
from tui_trader.backtest.recorder import Recorder
from tui_trader.domain.events import FeedStateChanged
from tui_trader.engine.bus import EventBus


SLICES = Path(__file__).resolve().parents[1] / "data"


def _key(trades):
    return [(t.entry_ms, t.entry_price, t.exit_ms, t.exit_price, t.contracts, t.exit_reason) for t in trades]


async def test_backtest_and_full_speed_paper_replay_make_the_same_trades(tmp_path, real_slice, real_run):
    _, backtest = real_run
    bus = EventBus()
    trades = Recorder(bus, lambda: Decimal(0), 3_600_000)
    finished = asyncio.Event()
    bus.subscribe(lambda e: e.state == "finished" and finished.set(), [FeedStateChanged])
    core = build_core(paper_settings(tmp_path, real_slice), bus=bus)
    async with core:
        await finished.wait()
        await core.components["execution"].idle()
    assert len(backtest.trades) >= 3
    assert _key(trades.trades) == _key(backtest.trades)


def test_quiet_steps_change_nothing_bit_for_bit(real_slice, real_run, tmp_path):
    """The accelerator skips steps its bounds prove to be no-ops; with every step run the backtest is identical."""
    from tui_trader.backtest.runner import run_backtest

    _, quiet = real_run
    every = run_backtest(None, [real_slice], settings=paper_settings(tmp_path, real_slice), equity_every_ms=900_000,
                         fast_path=False)
    assert len(quiet.trades) >= 3
    assert [t.to_dict() for t in every.trades] == [t.to_dict() for t in quiet.trades]
    assert every.equity == quiet.equity
    assert every.metrics == quiet.metrics


@pytest.mark.slow  # a full-speed replay stepped every simulated second (CI runs it)
def test_quiet_steps_and_the_fast_path_change_nothing_over_a_whole_real_file():
    """The bundled BCC/BTC file (two weeks, 20 k bars, a dozen pump shorts): fast vs every step."""
    from tui_trader.backtest.runner import run_backtest
    from tui_trader.venues.replay import bundled_data_path

    data = [bundled_data_path("bittrex_BCC-BTC_1m_20171104-20171118.csv.gz")]
    fast = run_backtest(None, data)
    every = run_backtest(None, data, fast_path=False)
    assert len(fast.trades) >= 10
    assert [t.to_dict() for t in every.trades] == [t.to_dict() for t in fast.trades]
    assert every.equity == fast.equity and every.metrics == fast.metrics


VARIANTS = {  # S1 sections that exercise other blockers than the default's pump: candle-, book-, "any", LONG
    "rsi_first": ({"conditions": [{"indicator": "rsi", "operator": ">=", "value": 70.0},
                                  {"indicator": "velocity", "operator": ">=", "value": 0.03}]}, "SHORT"),
    "any_of_two": ({"match": "any", "conditions": [{"indicator": "pump", "operator": ">=", "value": 6.0},
                                                   {"indicator": "rsi", "operator": "<=", "value": 15.0}]}, "SHORT"),
    "spread_and_dump": ({"conditions": [{"indicator": "spread", "operator": "<=", "value": 0.5},
                                        {"indicator": "pump", "operator": "<=", "value": -3.0},
                                        {"indicator": "velocity", "operator": "<=", "value": -0.02}]}, "LONG"),
}
LONG_SECTIONS = {  # a dip buyer: O1 gives up once the dump is over, Z1 needs no momentum reversal
    "o1_cancel": {"timeout_s": 300, "cooldown_s": 300, "match": "any",
                  "conditions": [{"indicator": "pump", "operator": ">=", "value": 0.0}]},
    "z1_entry": {"conditions": [{"indicator": "rsi", "operator": "<=", "value": 70.0}],
                 "order": {"size_pct": 10.0, "leverage": 3, "stop_loss_pct": 5.0, "take_profit_pct": 25.0, "fill_timeout_s": 30}},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_quiet_steps_change_nothing_for_other_signal_shapes(variant, real_slice, tmp_path):
    import tomllib

    from tui_trader.backtest.runner import run_backtest
    from tui_trader.domain.strategy.schema import strategy_from_dict
    from tui_trader.engine.strategy_runner import bundled_strategy_path

    data = tomllib.loads(bundled_strategy_path().read_text())
    data["s1_signal"], data["direction"] = VARIANTS[variant]
    if data["direction"] == "LONG":
        data.update(LONG_SECTIONS)
    strategy = strategy_from_dict(data)
    fast = run_backtest(strategy, [real_slice], settings=paper_settings(tmp_path, real_slice))
    every = run_backtest(strategy, [real_slice], settings=paper_settings(tmp_path, real_slice), fast_path=False)
    assert [t.to_dict() for t in every.trades] == [t.to_dict() for t in fast.trades]
    assert every.equity == fast.equity and every.metrics == fast.metrics
    assert fast.trades, "the variant should trade on the slice, or it proves little"


def test_two_symbols_merged_trade_the_same_with_quiet_steps_and_every_step():
    """BCC/BTC and UNITTEST/BTC overlap in time: their ticks interleave in one stream. Two days with
    trades on both symbols, shipped vs every step run."""
    from tui_trader.backtest.runner import run_backtest
    from tui_trader.venues.replay import bundled_data_path

    data = [bundled_data_path("bittrex_BCC-BTC_1m_20171104-20171118.csv.gz"),
            SLICES / "freqtrade_UNITTEST-BTC_1m_20171104-20171114.csv.gz"]  # 2017-11-09 .. 11-12, tests/data
    window = {"date_from_ms": 1_510_272_000_000, "date_to_ms": 1_510_444_800_000}  # 2017-11-10 .. 2017-11-12 UTC
    fast = run_backtest(None, data, **window)
    every = run_backtest(None, data, **window, fast_path=False)
    assert {t.symbol for t in fast.trades} == {"BCC_BTC", "UNITTEST_BTC"}
    assert [t.to_dict() for t in every.trades] == [t.to_dict() for t in fast.trades]
    assert every.equity == fast.equity and every.metrics == fast.metrics
