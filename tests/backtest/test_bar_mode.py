"""Bar mode end to end (issue 22): the bench strategy's trades are the spec's; a backtest and a paper
session replaying the same file trade identically; the bar replay's fast path (bars left out while
nothing can happen) changes no trade - on the real file and on random series (hypothesis) - and
its pre-screen keeps every bar where the engine's S1 fires."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backtest.conftest import paper_replay_trades
from tui_trader.app.wiring import build_core
from tui_trader.backtest.bar_screen import s1_may_fire
from tui_trader.backtest.runner import run_backtest
from tui_trader.domain.config import PaperConfig, ReplayConfig, Settings, StoreConfig
from tui_trader.domain.errors import DataError
from tui_trader.domain.indicators.bar_set import BarIndicatorSet
from tui_trader.domain.strategy.conditions import section_fires
from tui_trader.domain.strategy.schema import strategy_from_dict
from tui_trader.engine.strategy_runner import bundled_strategy_path, load_strategy
from tui_trader.venues.candle_cache import load_columns
from tui_trader.venues.replay import bundled_data_path

ROOT = Path(__file__).resolve().parents[2]
BCC = bundled_data_path("bittrex_BCC-BTC_1m_20171104-20171118.csv.gz")
BENCH = bundled_strategy_path("bar_pump_short.toml")


def _bench_reference():
    spec = importlib.util.spec_from_file_location("bench_reference", ROOT / "bench" / "bench_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_settings(tmp: Path | None = None, data: Path | None = None) -> Settings:
    """The benchmark's terms (as bench/compare_engines.py): no spread or slippage, the watchdog's auto-close
    at 3 % (10x starts 8.9 % from liquidation), no daily-loss or drawdown kill switch."""
    st_ = Settings()
    update: dict = {
        "replay": st_.replay.model_copy(update={"spread_bps": 0.0}),
        "paper": st_.paper.model_copy(update={"slippage_bps": 0.0, "latency_ms": 0}),
        "watchdog": st_.watchdog.model_copy(update={"autoclose_distance_pct": 3.0, "red_band_pct": 5.0,
                                                    "yellow_band_pct": 8.0}),
        "risk": st_.risk.model_copy(update={"daily_loss_limit_pct": 100.0, "max_drawdown_pct": 100.0}),
    }
    if tmp is not None and data is not None:  # the paper console on the same file
        update.update(data_dir=tmp, store=StoreConfig(path=tmp / "paper.sqlite"),
                      replay=ReplayConfig(file=data, speed=0, spread_bps=0.0),
                      strategy=st_.strategy.model_copy(update={"file": BENCH}))
        update["paper"] = PaperConfig(latency_ms=0, slippage_bps=0.0)
    return st_.model_copy(update=update)


def _bars(result, ts: np.ndarray) -> list[tuple[int, int, str]]:
    """(entry bar, exit bar, reason) of each closed trade: entries fill at their bar's close, a time stop
    at its bar's close, SL / TP inside their bar."""
    out = []
    for t in result.trades:
        if t.exit_ms is None:
            continue
        entry = int(np.searchsorted(ts, t.entry_ms - 60_000))
        at = t.exit_ms - 60_000 if t.exit_reason == "TIME" else t.exit_ms
        out.append((entry, int(np.searchsorted(ts, at, side="right")) - 1, "time" if t.exit_reason == "TIME" else t.exit_reason))
    return out


@pytest.fixture(scope="module")
def bcc_run():
    return run_backtest(BENCH, [BCC], settings=bench_settings())


def test_the_bench_strategy_makes_the_spec_trades_on_the_real_file(bcc_run):
    ref = _bench_reference()
    cols = ref.load_csv_columns(BCC)
    want = ref.reference_trades(cols)
    assert len(want) == 56
    assert _bars(bcc_run, cols["ts"]) == want
    assert bcc_run.bars == 19_170


def test_the_fast_path_changes_nothing_on_the_real_file(bcc_run):
    every = run_backtest(BENCH, [BCC], settings=bench_settings(), fast_path=False)
    assert [t.to_dict() for t in every.trades] == [t.to_dict() for t in bcc_run.trades]
    assert every.equity == bcc_run.equity and every.metrics == bcc_run.metrics and every.bars == bcc_run.bars


async def test_a_paper_session_replaying_the_file_trades_as_the_backtest(tmp_path, bcc_run):
    trades = await paper_replay_trades(bench_settings(tmp_path, BCC))
    key = [(t.entry_ms, t.entry_price, t.exit_ms, t.exit_price, t.contracts, t.exit_reason) for t in trades]
    assert len(key) == 56
    assert key == [(t.entry_ms, t.entry_price, t.exit_ms, t.exit_price, t.contracts, t.exit_reason)
                   for t in bcc_run.trades]


def test_a_strategy_on_bars_of_another_interval_is_refused(tmp_path):
    five = tmp_path / "x_5m.csv"
    five.write_text("timestamp_ms,open,high,low,close,volume\n" + "".join(
        f"{i * 300_000},1,1,1,1,1\n" for i in range(10)))
    with pytest.raises(DataError, match=r"x_5m.csv holds 300 s candles; bar_pump_short is evaluated on 1m bars"):
        run_backtest(BENCH, [five], settings=bench_settings())


# --- the fast path on random series ------------------------------------------------------------

def _strategy(pump: float, surge: float, sl: float, tp: float, hold_bars: int, any_: bool):
    return strategy_from_dict({
        "strategy_name": "rand", "direction": "SHORT", "evaluation": "bar",
        "indicators": {
            "pump": {"type": "bar_change_from_low", "bars": 8},
            "vs": {"type": "bar_volume_surge", "recent": 2, "base": 6},
            "lo": {"type": "bar_rolling", "stat": "min", "field": "low", "bars": 4, "offset": 1},
            "rsi": {"type": "bar_rsi", "period": 3},
        },
        "s1_signal": {"match": "any" if any_ else "all", "conditions": [
            {"indicator": "pump", "operator": ">=", "value": pump},
            {"indicator": "vs", "operator": ">=", "value": surge},
            {"indicator": "lo", "operator": ">", "value": 0.5}]},
        "o1_cancel": {"timeout_s": 60, "cooldown_s": 0},
        "z1_entry": {"conditions": [{"indicator": "rsi", "operator": ">=", "value": 0.0}],
                     "order": {"size_pct": 10, "leverage": 3, "stop_loss_pct": sl, "take_profit_pct": tp}},
        "emergency_exit": {"cooldown_s": 0},
        "global_limits": {"normal_exit_cooldown_s": 0, "max_hold_s": 60 * hold_bars, "max_daily_trades": 10_000,
                          "daily_loss_limit_pct": 100, "max_leverage": 3},
    })


def _series(seed: int, n: int, path: Path) -> Path:
    rnd = random.Random(seed)
    price, rows = 1.0, ["timestamp_ms,open,high,low,close,volume"]
    for i in range(n):
        o = price
        price = max(0.2, price * (1 + rnd.choice((-1, 1)) * rnd.random() * rnd.choice((0.002, 0.01, 0.05))))
        h, lo = max(o, price) * (1 + rnd.random() * 0.01), min(o, price) * (1 - rnd.random() * 0.01)
        v = rnd.choice((0.0, rnd.random() * 10, rnd.random() * 100))
        rows.append(f"{i * 60_000},{o!r},{h!r},{lo!r},{price!r},{v!r}")
    path.write_text("\n".join(rows) + "\n")
    return path


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), pump=st.sampled_from([0.005, 0.01, 0.03]), surge=st.sampled_from([0.5, 1.5, 3.0]),
       sl=st.sampled_from([0.3, 1.0, 5.0]), tp=st.sampled_from([0.5, 2.0, 10.0]), hold=st.sampled_from([1, 3, 30]),
       any_=st.booleans())
def test_the_fast_path_never_changes_a_trade(tmp_path, seed, pump, surge, sl, tp, hold, any_):
    data = _series(seed, 400, tmp_path / f"r{seed}.csv")
    strat = _strategy(pump, surge, sl, tp, hold, any_)
    fast = run_backtest(strat, [data], settings=bench_settings())
    every = run_backtest(strat, [data], settings=bench_settings(), fast_path=False)
    assert [t.to_dict() for t in fast.trades] == [t.to_dict() for t in every.trades]
    assert fast.equity == every.equity and fast.bars == every.bars == 400


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), pump=st.sampled_from([0.0, 0.005, 0.02]), surge=st.sampled_from([0.0, 1.0, 2.5]),
       any_=st.booleans())
def test_the_screen_keeps_every_bar_where_s1_fires(tmp_path, seed, pump, surge, any_):
    strat = _strategy(pump, surge, 1.0, 2.0, 3, any_)
    cols = load_columns(_series(seed, 300, tmp_path / f"s{seed}.csv"), None)
    may = s1_may_fire(strat, cols)
    bars = BarIndicatorSet.for_strategy(strat)
    fired = 0
    for i in range(len(cols)):
        bars.on_bar(int(cols.ts[i]), float(cols.open[i]), float(cols.high[i]), float(cols.low[i]),
                    float(cols.close[i]), float(cols.volume[i]))
        if section_fires(strat.s1_signal, {**bars.values(), "unrealized_pnl_pct": None}):
            fired += 1
            assert may[i], f"bar {i}: S1 fires, the screen left it out"
    assert may.sum() >= fired


def test_the_shipped_bench_file_is_a_bar_strategy():
    strat = load_strategy(BENCH)
    assert strat.bar_mode and strat.bar_interval_s == 60
    assert [c.indicator for c in strat.s1_signal.conditions] == ["pump", "vsurge"]


def test_the_paper_console_refuses_a_bar_strategy_on_candles_of_another_interval(tmp_path):
    five = tmp_path / "x_5m.csv"
    five.write_text("timestamp_ms,open,high,low,close,volume\n" + "".join(
        f"{i * 300_000},1,1,1,1,1\n" for i in range(10)))
    with pytest.raises(DataError, match=r"x_5m.csv holds 300 s candles; bar_pump_short is evaluated on 1m bars"):
        build_core(bench_settings(tmp_path, five))


def test_a_run_whose_entries_are_all_refused_says_why():
    """The bench file at 10x under the default watchdog (auto-close at 10 %): every entry is refused - the
    run says how many and why, instead of an empty result."""
    result = run_backtest(BENCH, [BCC])
    assert result.trades == []
    assert result.errors == [("104 orders refused, the first: Z1: liquidation 8.91 % from entry at 10x (maintenance"
                              " margin 1.00 %): below the 12.0 % an entry needs (min_entry_liq_distance_pct 5 %,"
                              " auto-close threshold + margin 12 %)")]


def test_a_time_stop_at_a_close_lets_the_next_bar_enter(tmp_path):
    """S1 true on bars 10-22, a 3-bar max hold: each time stop fills at its bar's close and the next bar enters
    (the reference's rule: one order a bar, the exit belongs to the bar it was decided at)."""
    data = tmp_path / "steps_X-USDT_1m.csv"
    closes = [1.6 if 10 <= i <= 22 else 1.0 for i in range(40)]
    data.write_text("timestamp_ms,open,high,low,close,volume\n" + "".join(
        f"{i * 60_000},{c},{c},{c},{c},1\n" for i, c in enumerate(closes)))
    strat = strategy_from_dict({
        "strategy_name": "steps", "direction": "SHORT", "evaluation": "bar",
        "indicators": {"c": {"type": "bar_sma", "bars": 1}},
        "s1_signal": {"conditions": [{"indicator": "c", "operator": ">=", "value": 1.5}]},
        "o1_cancel": {"timeout_s": 60, "cooldown_s": 0},
        "z1_entry": {"conditions": [{"indicator": "c", "operator": ">=", "value": 1.5}],
                     "order": {"size_pct": 10, "leverage": 3, "stop_loss_pct": 20, "take_profit_pct": 50}},
        "emergency_exit": {"cooldown_s": 0},
        "global_limits": {"normal_exit_cooldown_s": 0, "max_hold_s": 180, "max_leverage": 3},
    })
    ts = np.array([i * 60_000 for i in range(40)])
    for fast in (True, False):
        result = run_backtest(strat, [data], settings=bench_settings(), fast_path=fast)
        assert _bars(result, ts) == [(10, 13, "time"), (14, 17, "time"), (18, 21, "time"), (22, 25, "time")]


def test_the_paper_console_refuses_to_loop_a_bar_strategy(tmp_path):
    settings = bench_settings(tmp_path, BCC)
    settings = settings.model_copy(update={"replay": settings.replay.model_copy(update={"loop": True})})
    with pytest.raises(DataError, match=r"replay.loop: a bar strategy \(bar_pump_short\) counts each candle once"):
        build_core(settings)
