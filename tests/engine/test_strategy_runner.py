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


async def test_quiet_steps_are_skipped_and_the_run_is_unchanged(tmp_path: Path, monkeypatch):
    """Two hours of real NXT candles around a pump, with and without quiet steps: the same states at
    the same instants and the same intents, from a fraction of the steps."""
    from tui_trader.domain.strategy.machine import StrategyMachine
    from tui_trader.engine import strategy_runner

    start, part = PUMP_START, nxt_pump_candles(tmp_path)
    steps = [0]
    on_tick = StrategyMachine.on_tick

    def counted(self, *a, **k):
        steps[0] += 1
        return on_tick(self, *a, **k)

    monkeypatch.setattr(StrategyMachine, "on_tick", counted)

    async def run(horizon_s: float):
        monkeypatch.setattr(strategy_runner, "QUIET_HORIZON_S", horizon_s)
        steps[0] = 0
        strategy = tomllib.loads(bundled_strategy_path().read_text())
        rig = Rig(strategy=strategy, start_ms=start)
        rig.runner = StrategyRunner(rig.bus, rig.clock, strategy_from_dict(strategy), ["NXT_BTC"], rig.store, rig.intents.append)
        await rig.start()
        await ReplayFeed(rig.bus, rig.clock, part, symbol="NXT_BTC", speed=0, data_clock=rig.clock).run()
        states = [(e.ts_ms, e.state, e.reason) for e in rig.states.drain()]
        await rig.stop()
        return states, rig.intents, steps[0]

    every_states, every_intents, every_steps = await run(0.0)
    quiet_states, quiet_intents, quiet_steps = await run(30.0)
    assert any(reason == "Z1" for _, _, reason in every_states)
    assert quiet_states == every_states
    assert quiet_intents == every_intents
    assert quiet_steps * 3 < every_steps, (quiet_steps, every_steps)


async def test_absorb_takes_ticks_only_while_monitoring_and_ignores_their_echo():
    rig = Rig()
    await rig.start()
    runner, ind = rig.runner, rig.runner.indicators[SYM]
    assert not runner.absorb_trade(SYM, T0, 1.0, 1.0)  # no step yet: nothing known about quiet
    rig.trade(1.0)  # the first trade steps the machine and sets its quiet
    n = len(ind.prices)
    rig.clock.advance(1)
    assert runner.absorb_trade(SYM, rig.clock.now_ms(), 1.0, 1.0) and runner.absorb_book(SYM, rig.clock.now_ms(), 0.99, 1.01)
    assert len(ind.prices) == n + 1 and runner.now_ms(SYM) == rig.clock.now_ms()
    echo = TradeTick(rig.clock.now_ms(), SYM, 1.0, 1.0)
    runner.already_has(echo)
    rig.bus.publish(echo)  # the feed re-publishing it for the venue and the cache
    assert len(ind.prices) == n + 1
    rig.bus.publish(TradeTick(rig.clock.now_ms(), SYM, 1.0, 1.0))  # an equal but new event counts
    assert len(ind.prices) == n + 2
    rig.pump()  # S1, then Z1: no longer monitoring
    assert rig.machine.phase is not Phase.MONITORING
    assert not runner.absorb_trade(SYM, rig.clock.now_ms(), 1.2, 1.0) and not runner.absorb_book(SYM, rig.clock.now_ms(), 1.19, 1.21)
    await rig.stop()


async def test_a_quiet_tick_taken_whole_records_what_book_then_trade_would():
    rigs = [Rig(), Rig()]
    for rig in rigs:
        await rig.start()
        rig.trade(1.0)  # a step: quiet, with a trade band around 1.0
        rig.clock.advance(2)
    t = rigs[0].clock.now_ms()
    one, two = (rig.runner for rig in rigs)
    assert one.absorb_quiet_tick(SYM, t, 1.01, 2.0, 1.0, 1.02)
    assert two.absorb_book(SYM, t, 1.0, 1.02) and two.absorb_trade(SYM, t, 1.01, 2.0)
    for attr in ("_seen", "_last_now"):
        assert getattr(one, attr) == getattr(two, attr)
    a, b = one.indicators[SYM], two.indicators[SYM]
    assert (a.prices.__dict__, a.volumes.__dict__, a.last_event_ms) == (b.prices.__dict__, b.volumes.__dict__, b.last_event_ms)
    assert one.quiet_end(SYM) == two.quiet_end(SYM)
    _, high, _ = one.cover(SYM)
    assert not one.absorb_quiet_tick(SYM, t + 1, high * 1.5, 1.0, 1.0, 1.02)  # outside the band: one by one
    assert len(a.prices) == len(b.prices)  # (nothing recorded by the refusal)
    for rig in rigs:
        await rig.stop()


async def test_cover_promises_a_band_only_while_quiet_and_batched_ticks_keep_it():
    rig = Rig()
    await rig.start()
    runner, ind = rig.runner, rig.runner.indicators[SYM]
    assert runner.cover(SYM) is None  # no step yet: nothing known
    rig.trade(1.0)
    cover = runner.cover(SYM)
    assert cover is not None
    low, high, until = cover
    assert low < 1.0 < high < 1.05 and until > rig.clock.now_ms()  # S1 needs +5 %: a trade at 1.05 could fire it
    t = rig.clock.now_ms()
    n = len(ind.prices)
    runner.absorb_ticks(SYM, [t + 1, t + 2, t + 3], [1.0, high, 1.0], [1.0, 2.0, 1.0], 0.99, 1.01)
    assert len(ind.prices) == n + 3 and ind.last_price == 1.0 and runner.now_ms(SYM) == t + 3
    assert runner.cover(SYM) == (low, high, until)  # the promise stands: nothing it covered changed it
    rig.pump()
    assert rig.machine.phase is not Phase.MONITORING and runner.cover(SYM) is None
    await rig.stop()


async def test_quiet_timer_follows_event_time_when_it_runs_ahead_of_the_clock():
    """Live data stamped ahead of the local clock: the timer converts the quiet's end to clock time."""
    from tui_trader.engine import strategy_runner

    rig = Rig(start_ms=T0)
    await rig.start()
    ahead = 3_600_000  # the data's clock is an hour ahead of ours
    rig.bus.publish(TradeTick(T0 + ahead, SYM, 1.0, 1.0))  # steps; "jump" cannot fire: quiet
    quiet = rig.runner.quiet_end(SYM)
    assert quiet > T0 + ahead
    assert rig.runner._timer_due <= quiet - ahead + 1_000  # due on our clock, not an hour late
    steps = []
    runner, requiet = rig.runner, rig.runner._requiet
    runner.step = lambda symbol: steps.append(runner.now_ms(symbol))  # watch the timer's steps ...
    runner._requiet = lambda symbol: steps.append(runner.now_ms(symbol)) or requiet(symbol)  # ... and quiet renewals
    rig.clock.advance((quiet - ahead - T0) / 1000 - 2)
    assert steps == []  # still quiet: no-op steps skipped
    rig.clock.advance(3)
    assert steps and quiet <= steps[0] < quiet + 2_000  # the quiet's end is acted on on time
    assert runner.quiet_end(SYM) > steps[0]  # (a new quiet from there: nothing can fire yet)
    assert strategy_runner.QUIET_HORIZON_S > 0
    await rig.stop()


async def test_cover_renews_a_quiet_that_ends_too_soon_and_keeps_it_when_s1_is_within_reach():
    rig = Rig()
    await rig.start()
    runner = rig.runner
    rig.trade(1.0)
    _, _, until = runner.cover(SYM)
    rig.clock.advance((until - rig.clock.now_ms()) / 1000 - 5)  # 5 s before the quiet ends: no step yet
    assert runner.cover(SYM, need_ms=until - 10_000)[2] == until  # long enough: left alone
    renewed = runner.cover(SYM, need_ms=until + 60_000)[2]
    assert renewed > until and runner._timer_due >= until  # a longer quiet, and the timer sleeps on
    deps = runner._quiet[SYM].deps
    rig.clock.advance(2)
    rig.machine.quiet_until = lambda now, *args: now  # from here on, S1 is within reach
    assert runner.cover(SYM, need_ms=renewed + 60_000) == (deps.low, deps.high, renewed)  # the proven quiet stands
    assert runner._timer_due >= renewed  # and the timer sleeps until it ends
    await rig.stop()


async def test_a_quiet_that_ends_is_renewed_without_a_step_except_on_a_new_day():
    day = 86_400_000
    midnight = (T0 // day + 1) * day
    rig = Rig(start_ms=midnight - 10_000)
    await rig.start()
    rig.trade(1.0)  # steps; "jump" cannot fire on a flat market: quiet, but only up to midnight
    assert rig.runner.quiet_end(SYM) == midnight and rig.machine.state.day == midnight // day - 1
    steps, step = [], rig.runner.step
    rig.runner.step = lambda symbol: steps.append(rig.runner.now_ms(symbol)) or step(symbol)
    rig.clock.advance(11)
    assert steps == [midnight] and rig.machine.state.day == midnight // day  # the new day's step ran
    renewed = rig.runner.quiet_end(SYM)
    assert renewed > midnight + 1_000
    rig.clock.advance((renewed - midnight) / 1000 + 5)
    assert steps == [midnight]  # that quiet's end: a new quiet, no step
    assert rig.runner.quiet_end(SYM) > renewed
    await rig.stop()


async def test_a_market_that_stays_quiet_earns_longer_quiets_and_a_move_takes_them_back():
    from tui_trader.engine.strategy_runner import MAX_REACH, QUIET_HORIZON_S

    day, horizon = 86_400_000, round(QUIET_HORIZON_S * 1000)
    rig = Rig(start_ms=(T0 // day + 1) * day + 1_000)  # just after midnight: no day roll within reach
    await rig.start()
    runner = rig.runner
    steps, step = [], runner.step
    runner.step = lambda symbol: steps.append(runner.now_ms(symbol)) or step(symbol)
    first = rig.clock.now_ms()
    rig.trade(1.0)  # steps: S1 ("jump" >= 5 %) cannot fire on a flat market
    lengths = [runner.quiet_end(SYM) - first]
    for _ in range(4):  # each quiet runs its course and is renewed at its end, without a step
        rig.clock.advance((runner.quiet_end(SYM) - rig.clock.now_ms()) / 1000 + 0.5)
        lengths.append(runner.quiet_end(SYM) - runner.now_ms(SYM))
    assert steps == [first] and MAX_REACH == 4
    assert [round(n / horizon, 2) for n in lengths] == [1.0, 1.0, 2.0, 4.0, 4.0]  # a little less: the grid second
    low, high, _ = runner.cover(SYM)
    assert high < 1.03 < 1.05  # a trade at 1.03 leaves the band; S1 still cannot fire (+3 %)
    rig.trade(1.03)
    assert steps == [first] and 0 < runner.quiet_end(SYM) - rig.clock.now_ms() <= horizon  # the market moved: one horizon again
    await rig.stop()


async def test_a_replay_evaluates_s1_between_events_instead_of_stepping_and_trades_the_same():
    """With no bounds to help (patched away), every second is stepped - unless the replay says
    when the next event comes: then S1 is evaluated each second and only a second where it fires
    is stepped. The transitions, their times and the intents are the same."""
    runs = []
    for hinted in (False, True):
        rig = Rig()
        await rig.start()
        runner = rig.runner
        if hinted:
            runner.next_event_ms = lambda: T0 + 3_600_000  # the replay: no market event before then
        rig.machine.quiet_until = lambda now, *args: now  # S1 always "within reach"
        steps, step = [], runner.step
        runner.step = lambda symbol: steps.append(runner.now_ms(symbol)) or step(symbol)
        for _ in range(10):
            rig.trade(1.0)
            rig.clock.advance(1)
        rig.bus.publish(TradeTick(rig.clock.now_ms(), SYM, 1.2, 1.0))  # no book: Z1 (spread) cannot follow
        rig.clock.advance(20)
        runs.append((steps, [(e.ts_ms, e.state, e.reason) for e in rig.states.drain()], list(rig.intents)))
        await rig.stop()
    (every, every_states, every_intents), (hinted, hinted_states, hinted_intents) = runs
    assert hinted_states == every_states and hinted_intents == every_intents
    signal_ms = next(ts for ts, state, _ in every_states if state == "SIGNAL_DETECTED")
    assert signal_ms == T0 + 11_000  # 1 s after the 1.2 print
    assert signal_ms in hinted  # the second S1 fires is stepped ...
    assert not [t for t in hinted if T0 + 10_000 < t < signal_ms]  # ... the quiet ones before it are not
    assert len(hinted) < len(every)


async def test_a_replay_evaluates_an_open_position_between_events_and_exits_at_the_same_second():
    """An open short, no market data after the fill: its steps only check E1 / ZE1 / SL / TP /
    time. With the replay's hint they are evaluated, not run, until the time exit is due."""
    strategy = {**FAST, "global_limits": {"warmup_s": 0, "max_hold_s": 40, "max_stale_data_s": 3600}}
    runs = []
    for hinted in (False, True):
        rig = Rig(strategy=strategy)
        await rig.start()
        runner = rig.runner
        if hinted:
            runner.next_event_ms = lambda: T0 + 3_600_000
        rig.pump()
        rig.order(rig.intents[0].client_id, OrderState.FILLED, filled=5, price=1.2)
        assert rig.machine.phase is Phase.POSITION_ACTIVE
        steps, step = [], runner.step
        runner.step = lambda symbol: steps.append(runner.now_ms(symbol)) or step(symbol)
        rig.clock.advance(60)
        closes = [(i.ts_ms, i.reason) for i in rig.intents if isinstance(i, ClosePosition)]
        runs.append((steps, closes, [(e.ts_ms, e.state, e.reason) for e in rig.states.drain()]))
        await rig.stop()
    (every, every_closes, every_states), (hinted, hinted_closes, hinted_states) = runs
    assert [reason for _, reason in every_closes] == ["TIME"]
    assert hinted_closes == every_closes and hinted_states == every_states
    exit_ms = every_closes[0][0]
    assert hinted == [t for t in every if t >= exit_ms]  # no step before the exit second; from there on the same
    assert len([t for t in every if t < exit_ms]) > 30


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
