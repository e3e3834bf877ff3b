"""Bar-mode strategy files: what is accepted, and a clear line for each mistake."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tui_trader.domain.errors import StrategyError
from tui_trader.domain.models import Position, Side
from tui_trader.domain.strategy.machine import StrategyMachine
from tui_trader.domain.strategy.schema import strategy_from_dict
from tui_trader.domain.strategy.state import Phase


def _doc(**over):
    doc = {
        "strategy_name": "b", "direction": "SHORT", "evaluation": "bar",
        "indicators": {"pump": {"type": "bar_change_from_low", "bars": 3}},
        "s1_signal": {"conditions": [{"indicator": "pump", "operator": ">=", "value": 0.05}]},
        "z1_entry": {"conditions": [{"indicator": "pump", "operator": ">=", "value": 0.05}],
                     "order": {"size_pct": 10, "leverage": 3, "stop_loss_pct": 5, "take_profit_pct": 5}},
        "emergency_exit": {"cooldown_s": 0},
        "global_limits": {"normal_exit_cooldown_s": 0, "max_hold_s": 180, "max_leverage": 3},
    }
    doc.update(over)
    return doc


def test_a_bar_strategy_is_accepted_with_its_interval():
    s = strategy_from_dict(_doc(bar_interval="5m"))
    assert s.bar_mode and s.bar_interval_s == 300


@pytest.mark.parametrize(("over", "line"), [
    ({"indicators": {"pump": {"type": "pump_magnitude_pct"}}},
     "indicators.pump: 'pump_magnitude_pct' is a tick indicator; a strategy with evaluation = \"bar\""),
    ({"evaluation": "tick"}, "indicators.pump: 'bar_change_from_low' is a bar indicator: it needs evaluation = \"bar\""),
    ({"s1_signal": {"conditions": [{"indicator": "bar_sma", "operator": ">=", "value": 1}]}},
     "s1_signal.conditions[0].indicator: 'bar_sma' needs its own [indicators.<name>] table"),
    ({"s1_signal": {"conditions": [{"indicator": "price_velocity", "operator": ">=", "value": 1}]}},
     "s1_signal.conditions[0].indicator: 'price_velocity' is a tick indicator"),
    ({"indicators": {"pump": {"type": "bar_change_from_low", "bars": 0}}}, "indicators.pump.bars: 0 is outside 1..100000"),
    ({"indicators": {"pump": {"type": "bar_rolling", "stat": "median", "bars": 3}}}, "indicators.pump.stat: 'median'"),
    ({"bar_interval": "2m"}, "bar_interval: '2m' is not allowed"),
])
def test_each_mistake_is_one_clear_line(over, line):
    with pytest.raises(StrategyError) as err:
        strategy_from_dict(_doc(**over))
    assert line in str(err.value)


def test_a_bar_machine_decides_s1_and_z1_at_one_close_and_not_after_an_exit_in_that_bar():
    m = StrategyMachine(strategy_from_dict(_doc()), "X_USDT")
    intents = m.on_bar(60_000, {"pump": 0.06}, price=1.06, bar=1)
    assert [type(i).__name__ for i in intents] == ["OpenPosition"] and m.phase is Phase.ENTRY_PENDING
    assert m.next_deadline_ms() is not None  # the fill timeout: stepped between closes only at deadlines
    m.state.phase = Phase.POSITION_ACTIVE  # (as if filled at that close)
    m.state.entry_price, m.state.contracts = 1.06, 1.0
    gone = Position("X_USDT", Side.SHORT, Decimal(0), Decimal(1), Decimal("1.06"), 3, tag=m.tag)
    m.on_position_changed(90_000, gone, "SL")  # the venue's stop inside bar 2
    assert m.phase is Phase.MONITORING and m.state.exit_bar == 2
    assert m.on_bar(120_000, {"pump": 0.07}, price=1.07, bar=2) == [] and m.phase is Phase.MONITORING  # one order a bar
    assert [type(i).__name__ for i in m.on_bar(180_000, {"pump": 0.07}, price=1.07, bar=3)] == ["OpenPosition"]


def test_an_exit_decided_at_a_close_lets_the_next_bar_enter():
    """A time stop or E1 decided at bar N's close fills after it: it is bar N's exit, bar N+1 may enter."""
    m = StrategyMachine(strategy_from_dict(_doc()), "X_USDT")
    m.on_bar(60_000, {"pump": 0.06}, price=1.06, bar=1)
    m.state.phase, m.state.entry_price, m.state.contracts, m.state.t_open_ms = Phase.POSITION_ACTIVE, 1.06, 1.0, 60_000
    out = m.on_bar(240_000, {"pump": 0.0}, price=1.0, bar=4)  # max hold (180 s) reached at this close
    assert [type(i).__name__ for i in out] == ["ClosePosition"] and m.state.exit_bar == 4
    m.on_position_changed(240_000, Position("X_USDT", Side.SHORT, Decimal(0), Decimal(1), Decimal("1.06"), 3,
                                            tag=m.tag), "TIME")  # filled on the close trade, after the step
    assert [type(i).__name__ for i in m.on_bar(300_000, {"pump": 0.07}, price=1.07, bar=5)] == ["OpenPosition"]


def test_between_closes_a_bar_machine_enters_nothing():
    m = StrategyMachine(strategy_from_dict(_doc()), "X_USDT")
    assert m.on_deadline(60_000, {"pump": 0.5}) == [] and m.phase is Phase.MONITORING
    assert m.next_deadline_ms() is None


def test_a_cooldown_ends_at_the_first_close_after_it_and_is_no_step_of_its_own():
    """Bar mode: the cooldown after an exit gates S1, which is decided at closes only - so it takes
    effect at the first close at or after its end; it is no deadline (nothing steps between closes)."""
    m = StrategyMachine(strategy_from_dict(_doc(emergency_exit={"cooldown_s": 100})), "X_USDT")
    m.on_bar(60_000, {"pump": 0.06}, price=1.06, bar=1)
    m.state.phase, m.state.entry_price, m.state.contracts = Phase.POSITION_ACTIVE, 1.06, 1.0
    gone = Position("X_USDT", Side.SHORT, Decimal(0), Decimal(1), Decimal("1.06"), 3, tag=m.tag)
    m.on_position_changed(90_000, gone, "SL")  # in bar 2: cooldown until 190 000
    assert m.phase is Phase.MONITORING and m.next_deadline_ms() is None
    assert m.on_bar(120_000, {"pump": 0.07}, price=1.07, bar=2) == []  # the exit's bar
    assert m.on_bar(180_000, {"pump": 0.07}, price=1.07, bar=3) == []  # still cooling down
    assert [type(i).__name__ for i in m.on_bar(240_000, {"pump": 0.07}, price=1.07, bar=4)] == ["OpenPosition"]
