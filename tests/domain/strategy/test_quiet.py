"""`StrategyMachine.quiet_until`: how long steps without new data provably change nothing."""

from __future__ import annotations

import math

from tests.domain.strategy.helpers import CALM, T0, drive, strategy
from tui_trader.domain.strategy.machine import DAY_MS, StrategyMachine

H = 30_000
ANY = (-math.inf, math.inf)


def _bounds(**ranges):
    return lambda name: ranges.get(name, ANY)


def test_monitoring_is_quiet_while_one_s1_condition_cannot_hold():
    m = StrategyMachine(strategy(), "NXT_USDT")
    m.on_tick(T0, CALM, price=1.0)
    assert m.quiet_until(T0, _bounds(pump=(1.0, 6.9)), H) == T0 + H  # S1 needs pump >= 7
    assert m.quiet_until(T0, _bounds(velocity=(-0.2, 0.05)), H) == T0 + H  # ... and velocity >= 0.1
    assert m.quiet_until(T0, _bounds(pump=None), H) == T0 + H  # undefined throughout: false throughout


def test_monitoring_steps_on_when_s1_may_fire():
    m = StrategyMachine(strategy(), "NXT_USDT")
    m.on_tick(T0, CALM, price=1.0)
    assert m.quiet_until(T0, _bounds(), H) == T0  # nothing bounded: every step counts
    assert m.quiet_until(T0, _bounds(pump=(6.0, 7.0)), H) == T0  # 7.0 reachable
    # the margin: a bound a hair under the threshold (float rounding of the sums) is not trusted
    assert m.quiet_until(T0, _bounds(pump=(6.0, 7.0 - 1e-12)), H) == T0


def test_quiet_ends_at_the_utc_day_roll():
    m = StrategyMachine(strategy(), "NXT_USDT")
    late = (T0 // DAY_MS + 1) * DAY_MS - 10_000
    m.on_tick(late, CALM, price=1.0)
    assert m.quiet_until(late, _bounds(pump=(0.0, 1.0)), H) == late + 10_000


def test_other_phases_are_never_quiet():
    for phase in ("SIGNAL_DETECTED", "ENTRY_PENDING", "POSITION_ACTIVE", "EXIT_PENDING"):
        m = StrategyMachine(strategy(), "NXT_USDT")
        t = drive(m, phase)
        assert m.phase.value == phase
        assert m.quiet_until(t, _bounds(pump=(0.0, 1.0), velocity=(0.0, 0.0)), H) == t, phase


def test_match_any_needs_every_condition_impossible():
    s = strategy(s1_signal={"match": "any", "conditions": [
        {"indicator": "pump", "operator": ">=", "value": 7.0}, {"indicator": "rsi", "operator": "<=", "value": 20.0}]})
    m = StrategyMachine(s, "NXT_USDT")
    m.on_tick(T0, CALM, price=1.0)
    assert m.quiet_until(T0, _bounds(pump=(0.0, 1.0)), H) == T0  # rsi unbounded: may hold
    assert m.quiet_until(T0, _bounds(pump=(0.0, 1.0), rsi=(50.0, 50.0)), H) == T0 + H


def test_while_a_firing_s1_would_be_blocked_every_step_is_a_no_op_whatever_the_market():
    from tests.domain.strategy.helpers import PUMP

    S = 1000

    m = StrategyMachine(strategy(), "NXT_USDT")
    t = drive(m, "SIGNAL_DETECTED")
    m.on_tick(t + S, CALM | {"pump": 1.0}, price=1.0)  # O1 -> MONITORING, cooldown 300 s
    cool = m.state.cooldown_until_ms
    assert cool == t + S + 300 * S and m.entry_blocked_until(t + 2 * S) == cool
    assert m.quiet_until(t + 2 * S, _bounds(), H) == cool  # nothing bounded, still quiet: past the horizon too
    assert m.step_changes_nothing(t + 2 * S, PUMP, 1.0)  # S1 would fire - and be blocked
    assert m.entry_blocked_until(cool) == cool and m.quiet_until(cool, _bounds(), H) == cool  # over: steps count again
    assert not m.step_changes_nothing(cool, PUMP, 1.0)
    day_end = (cool // DAY_MS + 1) * DAY_MS
    m.state.cooldown_until_ms = day_end + 3_600_000  # a cooldown into the next day: the day roll still steps
    assert m.quiet_until(t + 2 * S, _bounds(), H) == day_end
    assert m.entry_blocked_until(day_end) == day_end and not m.step_changes_nothing(day_end, CALM, 1.0)


def test_the_days_trade_limit_and_the_warm_up_block_until_they_end():
    from tests.domain.strategy.helpers import PUMP

    S = 1000

    m = StrategyMachine(strategy(global_limits={"warmup_s": 60}), "NXT_USDT")
    m.on_tick(T0, CALM, price=1.0)
    assert m.entry_blocked_until(T0 + S) == T0 + 60 * S and m.quiet_until(T0 + S, _bounds(), H) == T0 + 60 * S
    limited = StrategyMachine(strategy(global_limits={"warmup_s": 0, "max_daily_trades": 1}), "NXT_USDT")
    limited.on_tick(T0, CALM, price=1.0)
    limited.state.entries_today = 1
    day_end = (T0 // DAY_MS + 1) * DAY_MS
    assert limited.entry_blocked_until(T0 + S) == day_end and limited.step_changes_nothing(T0 + S, PUMP, 1.0)
