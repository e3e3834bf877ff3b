"""StrategyRunner: bus in, intents out, state persisted and restored, steps on a simulated clock."""

from __future__ import annotations

import asyncio
import csv
import gzip
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import settle
from tui_trader.domain.events import BookTick, OrderUpdated, PositionChanged, StrategyStateChanged, TradeTick
from tui_trader.domain.intents import ClosePosition, OpenPosition
from tui_trader.domain.models import ClientOrderId, Order, OrderSide, OrderState, OrderType, Position, Side
from tui_trader.domain.strategy.schema import strategy_from_dict
from tui_trader.domain.strategy.state import Phase
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock
from tui_trader.engine.core import Service
from tui_trader.engine.strategy_runner import StrategyRunner, bundled_strategy_path, load_strategy
from tui_trader.venues.replay import ReplayFeed, bundled_data_path

T0 = 1_600_000_000_000
SYM = "ABC_USDT"
PUMP_START, PUMP_END = 1512245400000, 1512255600000  # 2017-12-02 20:10 .. 23:00 UTC, around an NXT pump


def nxt_pump_candles(tmp_path: Path) -> Path:
    """The two hours of bundled NXT candles (identical to the original recording) around the pump, as a CSV."""
    with gzip.open(bundled_data_path("bittrex_NXT-BTC_1m_20171130-20171210.csv.gz"), "rt", newline="") as fh:
        rows = list(csv.reader(fh))
    part = tmp_path / "bittrex_NXT-BTC_1m_part.csv"
    kept = [rows[0]] + [r for r in rows[1:] if PUMP_START <= int(r[0]) < PUMP_END]
    part.write_text("\n".join(",".join(r) for r in kept) + "\n")
    return part

FAST = {  # a small strategy on short windows so a few ticks drive it
    "strategy_name": "fast",
    "direction": "SHORT",
    "indicators": {"jump": {"type": "pump_magnitude_pct", "current": [2, 0], "baseline": [10, 5]}},
    "s1_signal": {"conditions": [{"indicator": "jump", "operator": ">=", "value": 5}]},
    "o1_cancel": {"timeout_s": 60, "cooldown_s": 120, "conditions": [{"indicator": "jump", "operator": "<=", "value": -50}]},
    "z1_entry": {
        "conditions": [{"indicator": "spread_pct", "operator": "<=", "value": 0.5}],
        "order": {"size_pct": 10, "leverage": 3, "stop_loss_pct": 5, "take_profit_pct": 25},
    },
    "ze1_close": {"conditions": [{"indicator": "unrealized_pnl_pct", "operator": ">=", "value": 8}]},
    "emergency_exit": {"conditions": [{"indicator": "unrealized_pnl_pct", "operator": "<=", "value": -4}]},
    "global_limits": {"warmup_s": 0},
}


class MemoryState:
    def __init__(self) -> None:
        self.data: dict[str, dict] = {}
        self.puts = 0

    async def put_state(self, key: str, value: dict) -> None:
        self.puts += 1
        self.data[key] = value

    async def get_state(self, key: str) -> dict | None:
        return self.data.get(key)


class Rig:
    def __init__(self, store: MemoryState | None = None, strategy: dict = FAST, start_ms: int = T0) -> None:
        self.bus, self.clock = EventBus(), SimClock(start_ms)
        self.store = store if store is not None else MemoryState()
        self.intents: list = []
        self.states = self.bus.subscribe_queue("test", types=[StrategyStateChanged])
        self.runner = StrategyRunner(self.bus, self.clock, strategy_from_dict(strategy), [SYM], self.store, self.intents.append)
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.runner.run())
        await settle()

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.runner.shutdown()

    def trade(self, price: float, qty: float = 1.0, symbol: str = SYM) -> None:
        now = self.clock.now_ms()
        self.bus.publish(TradeTick(now, symbol, price, qty))
        self.bus.publish(BookTick(now, symbol, price * 0.999, price * 1.001))

    @property
    def machine(self):
        return self.runner.machines[SYM]

    def order(self, cid: str, state: OrderState, reason: str = "", filled: float = 0, price: float | None = None) -> None:
        o = Order(ClientOrderId(cid), SYM, OrderSide.OPEN_SHORT, OrderType.MARKET, Decimal(5), state=state, reason=reason,
                  filled_contracts=Decimal(str(filled)), avg_fill_price=None if price is None else Decimal(str(price)), tag=self.machine.tag)  # fmt: skip
        self.bus.publish(OrderUpdated(self.clock.now_ms(), o))

    def position(self, contracts: float, entry: float = 1.2) -> None:
        pos = Position(SYM, Side.SHORT, Decimal(str(contracts)), Decimal(1), Decimal(str(entry)), 3, tag=self.machine.tag)
        self.bus.publish(PositionChanged(self.clock.now_ms(), pos))

    def pump(self, book: bool = True) -> None:
        """10 s flat at 1.0, then 1.2: S1 on the next 1 s step, Z1 (fresh book) on the one after."""
        for _ in range(10):
            self.trade(1.0) if book else self.bus.publish(TradeTick(self.clock.now_ms(), SYM, 1.0, 1.0))
            self.clock.advance(1)
        self.trade(1.2) if book else self.bus.publish(TradeTick(self.clock.now_ms(), SYM, 1.2, 1.0))
        self.clock.advance(1)  # TWPA[2 s, 0] holds 1.2 for half its window: +10 % -> S1
        self.clock.advance(1)  # one transition per step: Z1 on the next


async def test_runner_is_a_core_service_and_ignores_other_symbols():
    rig = Rig()
    assert isinstance(rig.runner, Service) and rig.runner.name == "strategy:fast"
    await rig.start()
    for _ in range(12):
        rig.trade(1.0, symbol="OTHER_USDT")
        rig.clock.advance(1)
    rig.trade(2.0, symbol="OTHER_USDT")
    assert rig.intents == [] and "OTHER_USDT" not in rig.runner.indicators
    await rig.stop()


async def test_pump_to_entry_to_close_through_the_bus_and_persisted():
    rig = Rig()
    await rig.start()
    rig.pump()
    (entry,) = rig.intents
    assert isinstance(entry, OpenPosition) and entry.client_id == "fast-ABC-1-O" and entry.tag == "fast:ABC_USDT"
    rig.order(entry.client_id, OrderState.FILLED, filled=5, price=1.2)
    assert rig.machine.phase is Phase.POSITION_ACTIVE
    await settle()
    assert rig.store.data["strategy:fast:ABC_USDT"]["state"]["phase"] == "POSITION_ACTIVE"
    rig.clock.advance(1)
    rig.trade(1.1)  # short from 1.2: +8.3 % -> ZE1
    close = rig.intents[-1]
    assert isinstance(close, ClosePosition) and close.reason == "ZE1" and close.client_id == "fast-ABC-1-X"
    rig.position(0)
    seen = [(e.state, e.reason) for e in rig.states.drain()]
    assert seen == [("MONITORING", "start"), ("SIGNAL_DETECTED", "S1"), ("ENTRY_PENDING", "Z1"), ("POSITION_ACTIVE", "FILLED"),
                    ("EXIT_PENDING", "ZE1"), ("MONITORING", "ZE1")]  # fmt: skip
    await settle()
    assert rig.store.data["strategy:fast:ABC_USDT"]["state"]["phase"] == "MONITORING"
    await rig.stop()


async def test_restart_restores_a_running_position_and_keeps_guarding_it():
    store = MemoryState()
    first = Rig(store)
    await first.start()
    first.pump()
    first.order(first.intents[0].client_id, OrderState.FILLED, filled=5, price=1.2)
    await settle()
    await first.stop()

    second = Rig(store, start_ms=first.clock.now_ms() + 60_000)
    await second.start()
    assert second.machine.phase is Phase.POSITION_ACTIVE and second.machine.state.entry_price == 1.2
    assert [e.reason for e in second.states.drain()] == ["restored"]
    second.trade(1.25)  # -4.2 % against the short -> E1
    assert [(type(i).__name__, i.reason) for i in second.intents] == [("CancelOrders", "E1"), ("ClosePosition", "E1")]
    await second.stop()


async def test_timer_steps_expire_the_signal_without_market_events():
    rig = Rig()
    await rig.start()
    rig.pump(book=False)  # S1, but no book: no Z1
    assert rig.machine.phase is Phase.SIGNAL_DETECTED
    rig.clock.advance(58)
    assert rig.machine.phase is Phase.SIGNAL_DETECTED
    rig.clock.advance(1)  # the entry window (60 s) closes on a 1 s timer step
    assert rig.machine.phase is Phase.MONITORING and rig.machine.state.reason == "TIMEOUT"
    await rig.stop()


async def test_failed_close_is_retried_by_the_timer_until_flat():
    rig = Rig()
    await rig.start()
    rig.pump()
    rig.order(rig.intents[0].client_id, OrderState.FILLED, filled=5, price=1.2)
    rig.clock.advance(1)
    rig.trade(1.25)  # E1
    first = rig.intents[-1]
    assert first.reason == "E1"
    rig.order(first.client_id, OrderState.REJECTED, reason="1001 busy")
    rig.clock.advance(1)  # the 0.5 s back-off ends; the next 1 s timer step re-sends
    retry = rig.intents[-1]
    assert isinstance(retry, ClosePosition) and retry.client_id == "fast-ABC-1-X2"
    rig.order(retry.client_id, OrderState.REJECTED, reason="2009 position does not exist")
    assert rig.machine.phase is Phase.MONITORING
    assert rig.machine.state.cooldown_until_ms == rig.runner.now_ms(SYM) + 1_800_000
    await rig.stop()


async def test_shutdown_flushes_pending_state():
    rig = Rig()
    await rig.runner.start()  # no writer task running
    rig.pump()
    assert rig.store.puts == 0
    await rig.runner.shutdown()
    assert rig.store.data["strategy:fast:ABC_USDT"]["state"]["phase"] == "ENTRY_PENDING"


def test_bundled_strategy_path_loads():
    assert load_strategy(bundled_strategy_path()).strategy_name == "pump_short"
    assert load_strategy().strategy_name == "pump_short"


async def test_default_strategy_enters_on_replayed_pump_candles(tmp_path: Path):
    """ReplayFeed -> bus -> runner on two hours of NXT candles around a pump: S1 and an entry."""
    start, part = PUMP_START, nxt_pump_candles(tmp_path)
    strategy = tomllib.loads(bundled_strategy_path().read_text())
    rig = Rig(strategy=strategy, start_ms=start)
    rig.runner = StrategyRunner(rig.bus, rig.clock, strategy_from_dict(strategy), ["NXT_BTC"], rig.store, rig.intents.append)
    await rig.start()
    await ReplayFeed(rig.bus, rig.clock, part, symbol="NXT_BTC", speed=0).run()
    reasons = [e.reason for e in rig.states.drain()]
    assert "S1" in reasons and "Z1" in reasons
    assert any(isinstance(i, OpenPosition) and i.symbol == "NXT_BTC" for i in rig.intents)
    await rig.stop()


async def test_event_time_comes_from_market_data_not_the_wall_clock():
    rig = Rig(start_ms=T0 + 86_400_000)  # the clock is a day ahead of the (replayed) data
    await rig.start()
    rig.position(5, entry=1.2)  # a tagged position reported before any market data: adopted
    assert rig.machine.phase is Phase.POSITION_ACTIVE
    rig.bus.publish(TradeTick(T0, SYM, 1.2, 1.0))
    assert rig.runner.now_ms(SYM) == T0
    rig.clock.advance(2)  # timer steps advance event time with the clock
    assert rig.runner.now_ms(SYM) == T0 + 2_000
    rig.bus.publish(TradeTick(T0 + 3_000, SYM, 1.25, 1.0))  # E1 evaluated at data time
    assert [i.reason for i in rig.intents if isinstance(i, ClosePosition)] == ["E1"]
    assert rig.machine.transitions == [] and rig.machine.state.exit_client_id == "fast-ABC-1-X"
    await rig.stop()


async def test_a_failed_state_write_is_kept_and_written_later():
    class Flaky(MemoryState):
        fail = True

        async def put_state(self, key: str, value: dict) -> None:
            if self.fail:
                raise OSError("disk full")
            await super().put_state(key, value)

    store = Flaky()
    rig = Rig(store)
    await rig.runner.start()
    rig.pump()
    with pytest.raises(OSError):
        await rig.runner.flush()
    store.fail = False
    await rig.start()  # the service restarted by the core writes the queued state first
    assert store.data["strategy:fast:ABC_USDT"]["state"]["phase"] == "ENTRY_PENDING"
    await rig.stop()
