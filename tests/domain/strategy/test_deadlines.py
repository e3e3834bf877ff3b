"""A bar-mode machine is stepped between closes only at `next_deadline_ms`: each due time must be the
one its phase handler acts on - nothing one ms before, something at it - and late steps must not
push the entry's give-up further out (`domain/strategy/deadlines.py`, one source for both)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trader.domain.intents import CancelOrders
from tui_trader.domain.models import Position, Side
from tui_trader.domain.strategy.deadlines import ENTRY_GIVE_UP_TIMEOUTS, ms
from tui_trader.domain.strategy.machine import StrategyMachine
from tui_trader.domain.strategy.schema import strategy_from_dict
from tui_trader.domain.strategy.state import Phase

T0 = 60_000
seconds = st.integers(10_000, 600_000).map(lambda k: k / 10_000)  # 1 .. 60 s to 0.1 ms: fractional ms too


def machine(signal_s: float = 60.0, fill_s: float = 10.0, hold_s: float = 180.0, z1: float = 0.05) -> StrategyMachine:
    doc = {
        "strategy_name": "b", "direction": "SHORT", "evaluation": "bar",
        "indicators": {"pump": {"type": "bar_change_from_low", "bars": 3}},
        "s1_signal": {"conditions": [{"indicator": "pump", "operator": ">=", "value": 0.05}]},
        "o1_cancel": {"timeout_s": signal_s},
        "z1_entry": {"conditions": [{"indicator": "pump", "operator": ">=", "value": z1}],
                     "order": {"size_pct": 10, "leverage": 3, "stop_loss_pct": 5, "take_profit_pct": 5,
                               "fill_timeout_s": fill_s}},
        "global_limits": {"max_hold_s": hold_s, "max_leverage": 3},
    }  # fmt: skip
    return StrategyMachine(strategy_from_dict(doc), "X_USDT")


def acts(m: StrategyMachine, now: int) -> bool:
    """Did a deadline step at `now` do anything (an intent or a transition)?"""
    m.drain_transitions()
    out = m.on_deadline(now, {"pump": 0.0})
    return bool(out) or bool(m.drain_transitions())


def exactly_due(m: StrategyMachine) -> int:
    due = m.next_deadline_ms()
    assert due is not None
    assert not acts(m, due - 1), f"{m.phase.name}: acted 1 ms before its deadline {due}"
    assert acts(m, due), f"{m.phase.name}: stepped at its deadline {due}, did nothing"
    return due


@settings(max_examples=60, deadline=None)
@given(signal_s=seconds)
def test_a_signal_times_out_at_its_deadline(signal_s):
    m = machine(signal_s=signal_s, z1=0.5)  # S1 fires, Z1 does not
    m.on_bar(T0, {"pump": 0.06}, price=1.06, bar=1)
    assert m.phase is Phase.SIGNAL_DETECTED
    assert exactly_due(m) == T0 + ms(signal_s) and m.phase is Phase.MONITORING


@settings(max_examples=60, deadline=None)
@given(fill_s=seconds, hold_s=seconds)
def test_max_hold_and_close_resend_act_at_their_deadlines(fill_s, hold_s):
    m = machine(fill_s=fill_s, hold_s=hold_s)
    m.on_bar(T0, {"pump": 0.06}, price=1.06, bar=1)
    m.state.phase, m.state.entry_price, m.state.contracts, m.state.t_open_ms = Phase.POSITION_ACTIVE, 1.06, 1.0, T0
    assert exactly_due(m) == T0 + ms(hold_s) and m.phase is Phase.EXIT_PENDING  # the TIME close went out
    sent = m.state.exit_sent_ms
    assert exactly_due(m) > sent and m.phase is Phase.EXIT_PENDING  # no flat report: re-sent under a new leg
    assert m.state.exit_leg == 2


@settings(max_examples=60, deadline=None)
@given(fill_s=seconds, late=st.floats(0.0, 0.24))
def test_an_unanswered_entry_is_cancelled_then_written_off_on_time_even_when_steps_run_late(fill_s, late):
    m = machine(fill_s=fill_s)
    m.on_bar(T0, {"pump": 0.06}, price=1.06, bar=1)
    assert m.phase is Phase.ENTRY_PENDING
    sent, timeout = m.state.t_sent_ms, ms(fill_s)
    d = int(late * timeout)  # each deadline step runs d ms late (a busy loop, a slow venue reply)
    assert exactly_due(m) == sent + timeout  # the first cancel
    cancels, now = 1, sent + timeout
    while m.phase is Phase.ENTRY_PENDING:
        due = m.next_deadline_ms()
        assert due is not None and due > now
        now = due + d
        out = m.on_deadline(now, {"pump": 0.0})
        cancels += sum(isinstance(i, CancelOrders) for i in out)
        assert cancels <= ENTRY_GIVE_UP_TIMEOUTS
    assert m.phase is Phase.MONITORING and m.state.entry_client_id == ""
    assert now <= sent + ENTRY_GIVE_UP_TIMEOUTS * timeout + d  # written off one step late at most, not four


def test_a_late_fill_after_the_write_off_is_adopted_with_its_max_hold_deadline():
    m = machine()
    m.on_bar(T0, {"pump": 0.06}, price=1.06, bar=1)
    m.on_deadline(T0 + ENTRY_GIVE_UP_TIMEOUTS * 10_000, {"pump": 0.0})
    assert m.phase is Phase.MONITORING and m.next_deadline_ms() is None
    pos = Position("X_USDT", Side.SHORT, Decimal(1), Decimal(1), Decimal("1.06"), 3, tag=m.tag)
    m.on_position_changed(T0 + 50_000, pos, "")
    assert m.phase is Phase.POSITION_ACTIVE
    opened = m.state.t_open_ms
    assert exactly_due(m) == opened + 180_000 and m.phase is Phase.EXIT_PENDING
