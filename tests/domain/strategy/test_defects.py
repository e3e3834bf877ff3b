"""The original system's defects (strategy.md §6) cannot happen here."""

from __future__ import annotations

import json

from tests.domain.strategy.helpers import (
    CALM,
    DRY,
    PUMP,
    T0,
    drive,
    order,
    position,
    strategy,
)
from tui_trader.domain.intents import ClosePosition, OpenPosition
from tui_trader.domain.models import OrderState
from tui_trader.domain.strategy.exits import close_retry_delay_s
from tui_trader.domain.strategy.machine import StrategyMachine
from tui_trader.domain.strategy.state import Phase

S = 1_000
BOTH = PUMP | {"velocity": 0.3}  # with a 0.6 peak: S1 still true (pump, vsurge, velocity >= 0.1) and Z1 true


def test_d1_repeated_s1_while_entering_gives_one_entry():
    m = StrategyMachine(strategy(), "NXT_USDT")
    m.on_tick(T0, PUMP, price=1.0)
    intents = []
    for k in range(1, 60):  # S1 and Z1 keep holding for a minute, the fill is slow
        intents += m.on_tick(T0 + k * 100, BOTH, price=1.07)
    opens = [i for i in intents if isinstance(i, OpenPosition)]
    assert len(opens) == 1 and m.phase is Phase.ENTRY_PENDING
    m.on_order_update(T0 + 7 * S, order(m, opens[0].client_id, OrderState.FILLED, filled=56, price=1.07))
    for k in range(20):  # and none while the position runs either
        intents += m.on_tick(T0 + 8 * S + k * S, BOTH, price=1.07)
    assert len([i for i in intents if isinstance(i, OpenPosition)]) == 1
    assert m.phase is Phase.POSITION_ACTIVE


def test_s1_sends_no_order():
    m = StrategyMachine(strategy(), "NXT_USDT")
    assert m.on_tick(T0, PUMP, price=1.0) == []
    assert m.phase is Phase.SIGNAL_DETECTED


def test_d2_d4_close_fails_twice_then_succeeds():
    m = StrategyMachine(strategy(), "NXT_USDT")
    t = drive(m, "EXIT_PENDING")
    ids = [m.state.exit_client_id]
    for failure in (1, 2):
        m.on_order_update(t, order(m, ids[-1], OrderState.REJECTED, reason="1001 system busy", close=True))
        assert m.phase is Phase.EXIT_PENDING  # never "exited" on a failed close
        t += round(close_retry_delay_s(failure) * 1000)
        (retry,) = m.on_tick(t, CALM, price=0.85)
        assert isinstance(retry, ClosePosition) and retry.reason == "ZE1"
        ids.append(retry.client_id)
    assert ids == ["pump_short-NXT-1-X", "pump_short-NXT-1-X2", "pump_short-NXT-1-X3"]
    m.on_order_update(t + 100, order(m, ids[-1], OrderState.FILLED, filled=56, close=True))
    assert m.phase is Phase.EXIT_PENDING  # filled is not flat: wait for the position report
    m.on_position_changed(t + 200, position(m, 0))
    assert m.phase is Phase.MONITORING and m.state.contracts == 0 and m.state.exit_client_id == ""
    assert m.on_tick(t + 300, PUMP, price=1.0) == [] and m.phase is Phase.MONITORING  # cooldown after the exit


def test_retry_backoff_is_capped():
    assert [close_retry_delay_s(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]


def test_exit_without_any_answer_is_resent():
    m = StrategyMachine(strategy(), "NXT_USDT")
    t = drive(m, "EXIT_PENDING")
    assert m.on_tick(t + 29 * S, CALM, price=0.85) == []
    (again,) = m.on_tick(t + 30 * S, CALM, price=0.85)
    assert again.client_id == "pump_short-NXT-1-X2"


def test_d3_e1_during_cooldown_closes_at_once():
    m = StrategyMachine(strategy(), "NXT_USDT")
    t = drive(m, "ENTRY_PENDING")
    m.on_tick(t + 10 * S, CALM, price=1.07)  # fill timeout -> cancel
    m.on_order_update(t + 11 * S, order(m, m.state.entry_client_id, OrderState.CANCELLED))
    assert m.phase is Phase.MONITORING and m.state.cooldown_until_ms > t + 300 * S  # in cooldown
    m.on_position_changed(t + 12 * S, position(m, 56))  # the entry filled after all
    assert m.phase is Phase.POSITION_ACTIVE
    intents = m.on_tick(t + 13 * S, DRY, price=1.07)
    assert [i.reason for i in intents if isinstance(i, ClosePosition)] == ["E1"]
    # a failed E1 close is retried after 0.5 s, not after the 300 s / 1800 s cooldown
    m.on_order_update(t + 13 * S, order(m, m.state.exit_client_id, OrderState.REJECTED, reason="timeout", close=True))
    assert [type(i) for i in m.on_tick(t + 13 * S + 500, CALM, price=1.07)] == [ClosePosition]
    m.on_position_changed(t + 14 * S, position(m, 0))
    assert m.phase is Phase.MONITORING
    assert m.state.cooldown_until_ms == t + 14 * S + 1800 * S  # the E1 cooldown starts at flat


def test_d7_signal_expires():
    m = StrategyMachine(strategy(), "NXT_USDT")
    m.on_tick(T0, PUMP, price=1.0)
    m.on_tick(T0 + 299 * S, PUMP, price=1.0)
    assert m.phase is Phase.SIGNAL_DETECTED
    m.on_tick(T0 + 300 * S, PUMP, price=1.0)
    assert m.phase is Phase.MONITORING and m.state.reason == "TIMEOUT"


def test_state_round_trips_through_json_and_the_position_is_not_forgotten():
    m = StrategyMachine(strategy(), "NXT_USDT")
    t = drive(m, "POSITION_ACTIVE")
    saved = json.loads(json.dumps(m.to_dict()))
    restored = StrategyMachine.from_dict(strategy(), "NXT_USDT", saved)
    assert restored.phase is Phase.POSITION_ACTIVE and restored.state == m.state
    (close,) = [i for i in restored.on_tick(t + S, CALM, price=1.124) if isinstance(i, ClosePosition)]
    assert close.reason == "E1" and close.client_id == "pump_short-NXT-1-X"


def test_entry_pending_survives_restart_and_its_fill_is_recognised():
    m = StrategyMachine(strategy(), "NXT_USDT")
    t = drive(m, "ENTRY_PENDING")
    restored = StrategyMachine.from_dict(strategy(), "NXT_USDT", json.loads(json.dumps(m.to_dict())))
    restored.on_order_update(t + S, order(restored, m.state.entry_client_id, OrderState.FILLED, filled=56, price=1.07))
    assert restored.phase is Phase.POSITION_ACTIVE and restored.state.entry_price == 1.07


def test_entry_with_no_answer_at_all_is_written_off_and_a_late_fill_adopted():
    m = StrategyMachine(strategy(), "NXT_USDT")
    t = drive(m, "ENTRY_PENDING")
    ft = int(strategy().z1_entry.order.fill_timeout_s * S)  # the bundled file's fill timeout
    cancels = m.on_tick(t + ft, CALM, price=1.07) + m.on_tick(t + 2 * ft, CALM, price=1.07)
    assert [i.reason for i in cancels] == ["FILL_TIMEOUT", "FILL_TIMEOUT"] and m.phase is Phase.ENTRY_PENDING
    m.on_tick(t + 4 * ft, CALM, price=1.07)
    assert m.phase is Phase.MONITORING and m.state.reason == "ENTRY_UNCONFIRMED"
    m.on_position_changed(t + 5 * ft, position(m, 56))
    assert m.phase is Phase.POSITION_ACTIVE
