"""The strategy runner in bar mode: steps on closed candles of its interval only, never on old ones
(a backfill after a reconnect is history), and at its machines' deadlines - with a back-off when a
deadline step fails."""

from __future__ import annotations

from tui_trader.domain.events import CandleClosed, TradeTick
from tui_trader.domain.intents import OpenPosition
from tui_trader.domain.strategy.schema import strategy_from_dict
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock
from tui_trader.engine.strategy_runner import StrategyRunner

NOW = 1_700_000_040_000  # a minute boundary


def _runner(clock: SimClock, sink: list) -> StrategyRunner:
    strat = strategy_from_dict({
        "strategy_name": "b", "direction": "SHORT", "evaluation": "bar",
        "indicators": {"c": {"type": "bar_sma", "bars": 1}},
        "s1_signal": {"conditions": [{"indicator": "c", "operator": ">=", "value": 1.5}]},
        "z1_entry": {"conditions": [{"indicator": "c", "operator": ">=", "value": 1.5}],
                     "order": {"size_pct": 10, "leverage": 3, "stop_loss_pct": 5, "take_profit_pct": 5}},
        "global_limits": {"max_leverage": 3, "max_hold_s": 180},
    })
    return StrategyRunner(EventBus(), clock, strat, ["X_USDT"], None, sink.append)


def _close(open_ms: int, price: float, interval_s: int = 60) -> CandleClosed:
    return CandleClosed(open_ms + interval_s * 1000, "X_USDT", open_ms, interval_s, price, price, price, price, 1.0)


async def test_only_fresh_closes_of_its_interval_step_the_machine():
    clock, sink = SimClock(NOW), []
    runner = _runner(clock, sink)
    await runner.start()
    runner.bus.publish(TradeTick(NOW, "X_USDT", 2.0, 1.0, "buy"))  # ticks do not step a bar machine
    runner.bus.publish(_close(NOW - 300_000, 2.0, 300))  # another interval
    runner.bus.publish(_close(NOW - 600_000, 2.0))  # ten minutes old: a backfill, counted, not stepped
    assert sink == [] and runner.bars["X_USDT"].bars == 1
    runner.bus.publish(_close(NOW - 60_000, 2.0))  # the bar that just closed
    assert [type(i) for i in sink] == [OpenPosition] and runner.bars["X_USDT"].bars == 2


async def test_a_failing_deadline_step_is_retried_a_second_later_not_at_once():
    clock, sink = SimClock(NOW), []
    runner = _runner(clock, sink)
    await runner.start()
    runner.bus.publish(_close(NOW - 60_000, 2.0))  # entry sent: ENTRY_PENDING, a fill-timeout deadline
    machine = runner.machines["X_USDT"]
    calls = []

    def boom(now_ms, values):
        calls.append(now_ms)
        raise RuntimeError("intent sink down")

    machine.on_deadline = boom  # type: ignore[method-assign]
    deadline = machine.next_deadline_ms()
    assert deadline is not None
    clock.advance_to(deadline + 2_500)
    assert calls == [deadline, deadline + 1_000, deadline + 2_000]  # once a second, not a busy loop
