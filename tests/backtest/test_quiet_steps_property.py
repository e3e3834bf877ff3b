"""The accelerator's proof (issue 22 item 2): it never leaves out a step whose evaluation would
change anything. Random candle series - a noisy walk with pumps and dumps, gaps longer than the
stale limit, a UTC midnight, one symbol or two (on the same minute grid or not), SHORT and LONG,
several thresholds - backtested with the accelerator and without (`fast_path=False`: every step
run, every tick published, as paper trading runs): the same machine transitions at the same
instants with the same reasons and values, the same orders, the same trades and equity."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_trader.backtest import runner as backtest_runner
from tui_trader.backtest.runner import run_backtest
from tui_trader.domain.events import Event, OrderUpdated, StrategyStateChanged
from tui_trader.domain.strategy.schema import Strategy, strategy_from_dict
from tui_trader.engine.bus import EventBus

START_MS = 1_609_534_800_000  # 2021-01-01 21:00 UTC: a day rolls over three hours in


class RecordingBus(EventBus):
    """The backtest's bus, keeping what the strategy decided and what became of its orders."""

    def __init__(self) -> None:
        super().__init__()
        self.decisions: list[tuple] = []
        runs.append(self)

    def publish(self, event: Event) -> None:
        if isinstance(event, StrategyStateChanged):
            self.decisions.append((event.ts_ms, event.symbol, event.state, event.reason, repr(event.detail)))
        elif isinstance(event, OrderUpdated):
            o = event.order
            self.decisions.append((event.ts_ms, o.client_id, o.state.value, str(o.filled_contracts),
                                   str(o.avg_fill_price)))
        super().publish(event)


runs: list[RecordingBus] = []


@st.composite
def markets(draw: st.DrawFn) -> dict:
    bars = draw(st.integers(120, 420))
    return {
        "seed": draw(st.integers(0, 2**32 - 1)),
        "bars": bars,
        "noise": draw(st.sampled_from([0.0003, 0.002, 0.008])),
        # (first bar, bars, total move): pumps and dumps over a few minutes
        "moves": draw(st.lists(st.tuples(st.integers(0, bars - 1), st.integers(1, 15), st.floats(-0.25, 0.4)),
                               max_size=4)),
        # (bar, minutes missing)
        "gaps": draw(st.lists(st.tuples(st.integers(0, bars - 1), st.integers(1, 40)), max_size=2)),
        # another symbol: none, aligned, half a minute off, 7 minutes off
        "second": draw(st.sampled_from([None, 0, 30_000, 420_000])),
    }


def write_series(market: dict, k: int, folder: Path, shift_ms: int = 0) -> Path:
    rnd = random.Random(market["seed"] + k)
    moves: dict[int, float] = {}
    for first, length, total in market["moves"]:
        for i in range(first, first + length):
            moves[i] = moves.get(i, 0.0) + total / length
    missing = {i for first, length in market["gaps"] for i in range(first, first + length)}
    rows, price = ["timestamp_ms,open,high,low,close,volume"], 100.0
    for i in range(market["bars"]):
        o = price
        price = max(1.0, price * (1 + moves.get(i, 0.0) + rnd.gauss(0.0, market["noise"])))
        h = max(o, price) * (1 + rnd.random() * market["noise"])
        lo = min(o, price) * (1 - rnd.random() * market["noise"])
        v = rnd.random() * 10 * (1 + 20 * abs(moves.get(i, 0.0)) / 0.01)  # volume surges with the move
        if i not in missing:
            rows.append(f"{START_MS + shift_ms + i * 60_000},{o!r},{h!r},{lo!r},{price!r},{v!r}")
    path = folder / f"prop_S{k}-USDT_1m.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def strategy(direction: str, pump: float, surge: float) -> Strategy:
    short = direction == "SHORT"
    up, down = (">=", "<=") if short else ("<=", ">=")
    sign = 1 if short else -1
    return strategy_from_dict({
        "strategy_name": "prop", "direction": direction,
        "indicators": {
            "pump": {"type": "pump_magnitude_pct", "current": [60, 0], "baseline": [600, 540]},
            "velocity": {"type": "price_velocity", "current": [10, 0], "baseline": [20, 10]},
            "vsurge": {"type": "volume_surge_ratio", "current": [60, 0], "baseline": [600, 60], "bucket_s": 30},
            "rsi": {"type": "rsi", "period": 5, "timeframe": "1m"},
            "spread": {"type": "spread_pct", "max_age_s": 5},
            "mri": {"type": "momentum_reversal", "velocity": "velocity", "min_peak": 0.01},
        },
        "s1_signal": {"conditions": [{"indicator": "pump", "operator": up, "value": sign * pump},
                                     {"indicator": "vsurge", "operator": ">=", "value": surge}]},
        "o1_cancel": {"timeout_s": 300, "cooldown_s": 120, "match": "any",
                      "conditions": [{"indicator": "pump", "operator": down, "value": sign * 0.5}]},
        "z1_entry": {"conditions": [{"indicator": "rsi", "operator": up, "value": 50},
                                    {"indicator": "spread", "operator": "<=", "value": 0.5}],
                     "order": {"size_pct": 10, "leverage": 3, "stop_loss_pct": 5, "take_profit_pct": 8,
                               "fill_timeout_s": 30}},
        "ze1_close": {"conditions": [{"indicator": "unrealized_pnl_pct", "operator": ">=", "value": 3}]},
        "emergency_exit": {"match": "any", "cooldown_s": 600,
                           "conditions": [{"indicator": "unrealized_pnl_pct", "operator": "<=", "value": -3},
                                          {"indicator": "mri", "operator": "<=" if short else ">=",
                                           "value": sign * -90}]},
        "global_limits": {"warmup_s": 0, "max_hold_s": 1800, "max_daily_trades": 3, "normal_exit_cooldown_s": 300},
    })


def backtest(strat: Strategy, data: list[Path], fast_path: bool):
    runs.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backtest_runner, "EventBus", RecordingBus)
        result = run_backtest(strat, data, fast_path=fast_path)
    (bus,) = runs
    return bus.decisions, result


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(market=markets(), direction=st.sampled_from(["SHORT", "LONG"]), pump=st.sampled_from([1.0, 3.0, 8.0]),
       surge=st.sampled_from([0.0, 1.5, 4.0]))
def test_the_accelerator_never_leaves_out_a_step_that_would_change_anything(tmp_path, market, direction, pump, surge):
    data = [write_series(market, 0, tmp_path)]
    if market["second"] is not None:
        data.append(write_series(market, 1, tmp_path, market["second"]))
    strat = strategy(direction, pump, surge)
    fast_decisions, fast = backtest(strat, data, fast_path=True)
    every_decisions, every = backtest(strat, data, fast_path=False)
    assert fast_decisions == every_decisions
    assert [t.to_dict() for t in fast.trades] == [t.to_dict() for t in every.trades]
    assert fast.equity == every.equity and fast.metrics == every.metrics and fast.bars == every.bars
    assert fast.errors == every.errors  # (a series that ends before the other leaves a position without prices)


def test_the_random_markets_make_the_strategy_decide(tmp_path):
    """The property is not vacuous: on such a market the strategy signals, enters and exits."""
    market = {"seed": 7, "bars": 300, "noise": 0.002, "moves": [(60, 5, 0.2), (150, 5, -0.15), (220, 3, 0.3)],
              "gaps": [(100, 20)], "second": None}
    decisions, result = backtest(strategy("SHORT", 3.0, 1.5), [write_series(market, 0, tmp_path)], fast_path=True)
    states = {d[2] for d in decisions if d[1] == "S0_USDT"}
    assert {"SIGNAL_DETECTED", "ENTRY_PENDING", "POSITION_ACTIVE", "MONITORING"} <= states and result.trades
