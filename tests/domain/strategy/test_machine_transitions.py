"""Every row of the transition table (strategy.md §4.3), driven through the machine's entry points."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pytest

from tests.domain.strategy.helpers import CALM, DRY, FADE, PUMP, T0, drive, order, position, strategy
from tui_trader.domain.intents import CancelOrders, ClosePosition, OpenPosition
from tui_trader.domain.models import OrderState, Side
from tui_trader.domain.strategy.machine import StrategyMachine
from tui_trader.domain.strategy.state import Phase

S = 1_000


@dataclass
class Row:
    name: str
    start: str
    act: Callable[[StrategyMachine, int], list]
    end: Phase
    intents: list[tuple[type, str]] = field(default_factory=list)  # (class, reason)
    cooldown_s: float | None = None  # expected cooldown_until - now of the last step


def _entry_id(m: StrategyMachine) -> str:
    return m.state.entry_client_id


def _exit_id(m: StrategyMachine) -> str:
    return m.state.exit_client_id


def _timeout_then_cancelled(m: StrategyMachine, t: int) -> list:
    ft = int(m.strategy.z1_entry.order.fill_timeout_s * S)
    out = m.on_tick(t + ft, CALM | {"pump": 8.0}, price=1.07)
    assert [type(i) for i in out] == [CancelOrders]
    return out + m.on_order_update(t + ft + S, order(m, _entry_id(m), OrderState.CANCELLED, filled=20, price=1.07))


def _e1_while_entering(m: StrategyMachine, t: int) -> list:
    out = m.on_tick(t + S, DRY, price=1.07)
    return out + m.on_order_update(t + 2 * S, order(m, _entry_id(m), OrderState.FILLED, filled=56, price=1.07))


def _close_rejected_then_retry(m: StrategyMachine, t: int) -> list:
    first = _exit_id(m)
    assert m.on_order_update(t + S, order(m, first, OrderState.REJECTED, reason="510 too frequent", close=True)) == []
    assert m.on_tick(t + S + 499, CALM, price=0.85) == []  # back-off 0.5 s not over
    out = m.on_tick(t + S + 500, CALM, price=0.85)
    assert out[0].client_id == first + "2"
    return out


def _upgrade_then_flat(m: StrategyMachine, t: int) -> list:
    m.on_tick(t + S, DRY, price=0.85)  # E1 while the ZE1 close is out
    return m.on_position_changed(t + 2 * S, position(m, 0))


ROWS = [
    Row("1 S1 -> signal, no order", "MONITORING", lambda m, t: m.on_tick(t, PUMP, price=1.0), Phase.SIGNAL_DETECTED),
    Row("2 S1 blocked by limits", "MONITORING", lambda m, t: m.on_tick(t, PUMP, price=1.0, entries_allowed=False), Phase.MONITORING),
    Row("3 O1 cancels", "SIGNAL_DETECTED", lambda m, t: m.on_tick(t + S, CALM | {"pump": 1.0}, price=1.0), Phase.MONITORING, cooldown_s=300),
    Row("4 entry window timeout", "SIGNAL_DETECTED", lambda m, t: m.on_tick(t + 300 * S, PUMP, price=1.0), Phase.MONITORING, cooldown_s=300),
    Row("5 Z1 opens", "SIGNAL_DETECTED", lambda m, t: m.on_tick(t + S, FADE, price=1.07), Phase.ENTRY_PENDING, [(OpenPosition, "Z1")]),
    Row("6 Z1 blocked", "SIGNAL_DETECTED", lambda m, t: m.on_tick(t + S, FADE, price=1.07, entries_allowed=False), Phase.MONITORING, cooldown_s=300),
    Row("7 filled", "ENTRY_PENDING", lambda m, t: m.on_order_update(t, order(m, _entry_id(m), OrderState.FILLED, filled=56, price=1.07)), Phase.POSITION_ACTIVE),
    Row("7b position reported", "ENTRY_PENDING", lambda m, t: m.on_position_changed(t, position(m, 56)), Phase.POSITION_ACTIVE),
    Row("8 rejected", "ENTRY_PENDING", lambda m, t: m.on_order_update(t + S, order(m, _entry_id(m), OrderState.REJECTED, reason="2005 balance")), Phase.MONITORING, cooldown_s=300),
    Row("8b other order ignored", "ENTRY_PENDING", lambda m, t: m.on_order_update(t, order(m, "someone-else", OrderState.REJECTED)), Phase.ENTRY_PENDING),
    Row("10 fill timeout, partial", "ENTRY_PENDING", _timeout_then_cancelled, Phase.POSITION_ACTIVE, [(CancelOrders, "FILL_TIMEOUT")]),
    Row("11 E1 while entering", "ENTRY_PENDING", _e1_while_entering, Phase.EXIT_PENDING, [(CancelOrders, "E1"), (CancelOrders, "E1"), (ClosePosition, "E1")]),
    Row("12 TP hit on the venue", "POSITION_ACTIVE", lambda m, t: m.on_position_changed(t, position(m, 0), "TP"), Phase.MONITORING, cooldown_s=300),
    Row("12b SL hit on the venue", "POSITION_ACTIVE", lambda m, t: m.on_position_changed(t, position(m, 0), "SL"), Phase.MONITORING, cooldown_s=1800),
    Row("14 E1 closes", "POSITION_ACTIVE", lambda m, t: m.on_tick(t + S, CALM, price=1.124), Phase.EXIT_PENDING, [(CancelOrders, "E1"), (ClosePosition, "E1")]),
    Row("14b E1 beats ZE1", "POSITION_ACTIVE", lambda m, t: m.on_tick(t + S, DRY, price=0.85), Phase.EXIT_PENDING, [(CancelOrders, "E1"), (ClosePosition, "E1")]),
    Row("15 ZE1 closes", "POSITION_ACTIVE", lambda m, t: m.on_tick(t + S, CALM, price=0.85), Phase.EXIT_PENDING, [(ClosePosition, "ZE1")]),
    Row("15b nothing fires", "POSITION_ACTIVE", lambda m, t: m.on_tick(t + S, CALM, price=1.0), Phase.POSITION_ACTIVE),
    Row("16 max hold", "POSITION_ACTIVE", lambda m, t: m.on_tick(t + 7200 * S, CALM, price=1.0), Phase.EXIT_PENDING, [(ClosePosition, "TIME")]),
    Row("18 flat after ZE1", "EXIT_PENDING", lambda m, t: m.on_position_changed(t + S, position(m, 0)), Phase.MONITORING, cooldown_s=300),
    Row("18b filled is not flat", "EXIT_PENDING", lambda m, t: m.on_order_update(t + S, order(m, _exit_id(m), OrderState.FILLED, filled=56, close=True)), Phase.EXIT_PENDING),
    Row("19 close fails, retried", "EXIT_PENDING", _close_rejected_then_retry, Phase.EXIT_PENDING, [(ClosePosition, "ZE1")]),
    Row("20 position does not exist", "EXIT_PENDING", lambda m, t: m.on_order_update(t + S, order(m, _exit_id(m), OrderState.REJECTED, reason="code 2009: position does not exist", close=True)), Phase.MONITORING, cooldown_s=300),
    Row("21 E1 upgrades a ZE1 exit", "EXIT_PENDING", _upgrade_then_flat, Phase.MONITORING, cooldown_s=1800),
    Row("adopt a tagged position", "MONITORING", lambda m, t: m.on_position_changed(t, position(m, 5)), Phase.POSITION_ACTIVE),
    Row("ignore another tag", "MONITORING", lambda m, t: m.on_position_changed(t, position(StrategyMachine(strategy(), "BTC_USDT"), 5)), Phase.MONITORING),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_transition(row: Row):
    m = StrategyMachine(strategy(), "NXT_USDT")
    t = drive(m, row.start)
    assert m.phase.value == row.start
    intents = row.act(m, t)
    assert m.phase is row.end
    assert [(type(i), i.reason) for i in intents] == row.intents
    if row.cooldown_s is not None:
        last = m.transitions[-1].ts_ms
        assert m.state.cooldown_until_ms - last == row.cooldown_s * 1000


def test_open_intent_carries_order_settings_and_idempotent_ids():
    m = StrategyMachine(strategy(), "NXT_USDT")
    m.on_tick(T0, PUMP, price=1.0)
    (intent,) = m.on_tick(T0 + S, FADE, price=1.07)
    assert isinstance(intent, OpenPosition)
    assert (intent.side, intent.size_pct, intent.leverage, intent.stop_loss_pct, intent.take_profit_pct) == (Side.SHORT, 10.0, 3, 5.0, 25.0)
    assert intent.client_id == "pump_short-NXT-1-O" and intent.tag == "pump_short:NXT_USDT" and intent.ref_price == 1.07


def test_cooldown_gates_s1_until_it_expires():
    m = StrategyMachine(strategy(), "NXT_USDT")
    t = drive(m, "SIGNAL_DETECTED")
    m.on_tick(t + S, CALM | {"pump": 1.0}, price=1.0)  # O1 -> cooldown 300 s
    assert m.on_tick(t + 2 * S, PUMP, price=1.0) == [] and m.phase is Phase.MONITORING
    assert m.s1_blocked == 1
    m.on_tick(t + S + 300 * S, PUMP, price=1.0)
    assert m.phase is Phase.SIGNAL_DETECTED and m.state.signal_seq == 2


def test_warmup_blocks_s1():
    m = StrategyMachine(strategy(global_limits={"warmup_s": 60}), "NXT_USDT")
    m.on_tick(T0, PUMP, price=1.0)
    assert m.phase is Phase.MONITORING
    m.on_tick(T0 + 60 * S, PUMP, price=1.0)
    assert m.phase is Phase.SIGNAL_DETECTED


def test_software_stop_loss_and_take_profit_when_no_section_fires():
    for price, reason in ((1.07 * 1.0501, "SL"), (1.07 * 0.7499, "TP")):
        m = StrategyMachine(strategy(emergency_exit={"conditions": []}, ze1_close={"conditions": []}), "NXT_USDT")
        t = drive(m, "POSITION_ACTIVE")
        (close,) = m.on_tick(t + S, CALM, price=price)
        assert isinstance(close, ClosePosition) and close.reason == reason
        m.on_position_changed(t + 2 * S, position(m, 0))
        assert m.state.cooldown_until_ms == t + 2 * S + (1800 if reason == "SL" else 300) * S


def test_z1_without_any_price_sends_nothing():
    m = StrategyMachine(strategy(), "NXT_USDT")
    m.on_tick(T0, PUMP)
    assert m.on_tick(T0 + S, FADE) == [] and m.phase is Phase.SIGNAL_DETECTED


def test_undefined_values_never_fire():
    m = StrategyMachine(strategy(), "NXT_USDT")
    m.on_tick(T0, {"pump": None, "vsurge": float("nan"), "velocity": 0.6}, price=1.0)
    assert m.phase is Phase.MONITORING and m.s1_blocked == 0


def test_daily_trade_limit_blocks_s1():
    m = StrategyMachine(strategy(global_limits={"warmup_s": 0, "max_daily_trades": 1}), "NXT_USDT")
    t = drive(m, "ENTRY_PENDING")
    m.on_order_update(t, order(m, m.state.entry_client_id, OrderState.REJECTED))
    m.on_tick(t + 400 * S, PUMP, price=1.0)
    assert m.phase is Phase.MONITORING and m.s1_blocked == 1


def test_a_disabled_strategy_never_enters():
    """Issue 19: `enabled = false` was accepted and ignored. Now it blocks entries (S1 and Z1; exits untouched)."""
    off = StrategyMachine(strategy(enabled=False), "NXT_USDT")
    off.on_tick(T0, PUMP, price=1.0)
    assert off.on_tick(T0 + S, FADE, price=1.07) == [] and off.phase is Phase.MONITORING
    on = StrategyMachine(strategy(), "NXT_USDT")
    on.on_tick(T0, PUMP, price=1.0)
    assert [type(i) for i in on.on_tick(T0 + S, FADE, price=1.07)] == [OpenPosition]
