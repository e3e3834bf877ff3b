"""The backtest's quiet-step accelerator (`backtest/quiet_steps.py`): `QuietSteps` on the strategy
runner (steps its bounds prove to be no-ops are left out; ticks handed over), `QuietTicks` on the
replay (held prices, whole candles in stretches and slots). Moved here from the runner's and the
replay's tests when the machinery left the live engine (issue 22 item 2)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.engine.test_strategy_runner import (
    FAST,
    PUMP_START,
    SYM,
    T0,
    Rig,
    nxt_pump_candles,
)
from tests.venues.test_replay import write_csv
from tui_trader.backtest import quiet_steps
from tui_trader.backtest.quiet_steps import (
    MAX_REACH,
    QUIET_HORIZON_S,
    QuietStepAccelerator,
    QuietSteps,
)
from tui_trader.backtest.quiet_ticks import QuietTicks
from tui_trader.domain.events import (
    BookTick,
    CandleClosed,
    CandlesClosed,
    MarkPriceTick,
    TradeTick,
)
from tui_trader.domain.intents import ClosePosition
from tui_trader.domain.models import OrderState
from tui_trader.domain.strategy.schema import strategy_from_dict
from tui_trader.domain.strategy.state import Phase
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock
from tui_trader.engine.strategy_runner import (
    StrategyRunner,
    bundled_strategy_path,
    load_strategy,
)
from tui_trader.venues.replay import ReplayFeed


def watched(runner: StrategyRunner) -> list[int]:
    """Note the event time of each of the runner's steps (then step)."""
    steps: list[int] = []
    step = runner.step
    runner.step = lambda symbol: steps.append(runner.now_ms(symbol)) or step(symbol)  # type: ignore[method-assign]
    return steps


def quiet(rig: Rig, horizon_s: float = QUIET_HORIZON_S) -> QuietSteps:
    """The accelerator's runner side on the rig's runner (no feed: nothing is taken off the bus)."""
    return QuietStepAccelerator(rig.runner, horizon_s=horizon_s).attach().steps


def test_the_accelerator_refuses_bar_mode_a_zero_horizon_and_a_feed_without_the_flat_gate(tmp_path):
    bar = load_strategy(bundled_strategy_path("bar_pump_short.toml"))
    assert bar.bar_mode
    with pytest.raises(ValueError, match="bar mode"):
        QuietStepAccelerator(StrategyRunner(EventBus(), SimClock(0), bar, ["ABC_BTC"], None, print))
    with pytest.raises(ValueError, match="horizon"):
        QuietStepAccelerator(Rig().runner, horizon_s=0)
    with pytest.raises(ValueError, match="flat"):
        QuietStepAccelerator(Rig().runner, ReplayFeed(EventBus(), SimClock(0), write_csv(tmp_path)))


# --- the runner side ---------------------------------------------------------------------------


async def test_quiet_steps_are_skipped_and_the_run_is_unchanged(tmp_path: Path, monkeypatch):
    """Two hours of real NXT candles around a pump, with and without quiet steps: the same states at
    the same instants and the same intents, from a fraction of the steps."""
    from tui_trader.domain.strategy.machine import StrategyMachine

    start, part = PUMP_START, nxt_pump_candles(tmp_path)
    steps = [0]
    on_tick = StrategyMachine.on_tick

    def counted(self, *a, **k):
        steps[0] += 1
        return on_tick(self, *a, **k)

    monkeypatch.setattr(StrategyMachine, "on_tick", counted)

    async def run(horizon_s: float | None):
        steps[0] = 0
        strategy = tomllib.loads(bundled_strategy_path().read_text())
        rig = Rig(strategy=strategy, start_ms=start)
        rig.runner = StrategyRunner(rig.bus, rig.clock, strategy_from_dict(strategy), ["NXT_BTC"], rig.store,
                                    rig.intents.append)
        if horizon_s is not None:
            quiet(rig, horizon_s)
        await rig.start()
        await ReplayFeed(rig.bus, rig.clock, part, symbol="NXT_BTC", speed=0, data_clock=rig.clock).run()
        states = [(e.ts_ms, e.state, e.reason) for e in rig.states.drain()]
        await rig.stop()
        return states, rig.intents, steps[0]

    every_states, every_intents, every_steps = await run(None)
    quiet_states, quiet_intents, quiet_steps = await run(30.0)
    assert any(reason == "Z1" for _, _, reason in every_states)
    assert quiet_states == every_states
    assert quiet_intents == every_intents
    assert quiet_steps * 3 < every_steps, (quiet_steps, every_steps)


async def test_absorb_takes_ticks_only_while_monitoring_and_ignores_their_echo():
    rig = Rig()
    gate = quiet(rig)
    await rig.start()
    runner, ind = rig.runner, rig.runner.indicators[SYM]
    assert not gate.absorb_trade(SYM, T0, 1.0, 1.0)  # no step yet: nothing known about quiet
    rig.trade(1.0)  # the first trade steps the machine and sets its quiet
    n = len(ind.prices)
    rig.clock.advance(1)
    now = rig.clock.now_ms()
    assert gate.absorb_trade(SYM, now, 1.0, 1.0) and gate.absorb_book(SYM, now, 0.99, 1.01)
    assert len(ind.prices) == n + 1 and runner.now_ms(SYM) == rig.clock.now_ms()
    echo = TradeTick(rig.clock.now_ms(), SYM, 1.0, 1.0)
    gate.note_echo(echo)
    rig.bus.publish(echo)  # the feed re-publishing it for the venue and the cache
    assert len(ind.prices) == n + 1
    rig.bus.publish(TradeTick(rig.clock.now_ms(), SYM, 1.0, 1.0))  # an equal but new event counts
    assert len(ind.prices) == n + 2
    rig.pump()  # S1, then Z1: no longer monitoring
    assert rig.machine.phase is not Phase.MONITORING
    now = rig.clock.now_ms()
    assert not gate.absorb_trade(SYM, now, 1.2, 1.0) and not gate.absorb_book(SYM, now, 1.19, 1.21)
    await rig.stop()


async def test_a_quiet_tick_taken_whole_records_what_book_then_trade_would():
    rigs = [Rig(), Rig()]
    one, two = (quiet(rig) for rig in rigs)
    for rig in rigs:
        await rig.start()
        rig.trade(1.0)  # a step: quiet, with a trade band around 1.0
        rig.clock.advance(2)
    t = rigs[0].clock.now_ms()
    assert one.absorb_quiet_tick(SYM, t, 1.01, 2.0, 1.0, 1.02)
    assert two.absorb_book(SYM, t, 1.0, 1.02) and two.absorb_trade(SYM, t, 1.01, 2.0)
    assert one.runner.event_time(SYM) == two.runner.event_time(SYM) == t
    for rig in rigs:
        rig.clock.advance(0.5)
    assert one.runner.now_ms(SYM) == two.runner.now_ms(SYM) == t + 500
    a, b = one.runner.indicators[SYM], two.runner.indicators[SYM]
    assert (a.prices.__dict__, a.volumes.__dict__, a.last_event_ms) == (
        b.prices.__dict__, b.volumes.__dict__, b.last_event_ms)
    assert one.quiet_end(SYM) == two.quiet_end(SYM)
    _, high, _ = one.cover(SYM)
    assert not one.absorb_quiet_tick(SYM, t + 1, high * 1.5, 1.0, 1.0, 1.02)  # outside the band: one by one
    assert len(a.prices) == len(b.prices)  # (nothing recorded by the refusal)
    for rig in rigs:
        await rig.stop()


async def test_cover_promises_a_band_only_while_quiet_and_batched_ticks_keep_it():
    rig = Rig()
    gate = quiet(rig)
    await rig.start()
    runner, ind = rig.runner, rig.runner.indicators[SYM]
    assert gate.cover(SYM) is None  # no step yet: nothing known
    rig.trade(1.0)
    cover = gate.cover(SYM)
    assert cover is not None
    low, high, until = cover
    assert low < 1.0 < high < 1.05 and until > rig.clock.now_ms()  # S1 needs +5 %: a trade at 1.05 could fire it
    t = rig.clock.now_ms()
    n = len(ind.prices)
    gate.absorb_ticks(SYM, [t + 1, t + 2, t + 3], [1.0, high, 1.0], [1.0, 2.0, 1.0], 0.99, 1.01)
    assert len(ind.prices) == n + 3 and ind.last_price == 1.0 and runner.now_ms(SYM) == t + 3
    assert gate.cover(SYM) == (low, high, until)  # the promise stands: nothing it covered changed it
    rig.pump()
    assert rig.machine.phase is not Phase.MONITORING and gate.cover(SYM) is None
    await rig.stop()


async def test_quiet_timer_follows_event_time_when_it_runs_ahead_of_the_clock():
    """Data stamped ahead of the local clock: the timer converts the quiet's end to clock time."""
    rig = Rig(start_ms=T0)
    gate = quiet(rig)
    await rig.start()
    ahead = 3_600_000  # the data's clock is an hour ahead of ours
    rig.bus.publish(TradeTick(T0 + ahead, SYM, 1.0, 1.0))  # steps; "jump" cannot fire: quiet
    end = gate.quiet_end(SYM)
    assert end > T0 + ahead
    assert rig.runner.timer_due_ms <= end - ahead + 1_000  # due on our clock, not an hour late
    steps = []
    runner, requiet = rig.runner, gate._requiet
    runner.step = lambda symbol: steps.append(runner.now_ms(symbol))  # watch the timer's steps ...
    gate._requiet = lambda symbol: steps.append(runner.now_ms(symbol)) or requiet(symbol)  # ... and quiet renewals
    rig.clock.advance((end - ahead - T0) / 1000 - 2)
    assert steps == []  # still quiet: no-op steps skipped
    rig.clock.advance(3)
    assert steps and end <= steps[0] < end + 2_000  # the quiet's end is acted on on time
    assert gate.quiet_end(SYM) > steps[0]  # (a new quiet from there: nothing can fire yet)
    assert quiet_steps.QUIET_HORIZON_S > 0
    await rig.stop()


async def test_cover_renews_a_quiet_that_ends_too_soon_and_keeps_it_when_s1_is_within_reach():
    rig = Rig()
    gate = quiet(rig)
    await rig.start()
    runner = rig.runner
    rig.trade(1.0)
    _, _, until = gate.cover(SYM)
    rig.clock.advance((until - rig.clock.now_ms()) / 1000 - 5)  # 5 s before the quiet ends: no step yet
    assert gate.cover(SYM, need_ms=until - 10_000)[2] == until  # long enough: left alone
    renewed = gate.cover(SYM, need_ms=until + 60_000)[2]
    assert renewed > until and runner.timer_due_ms >= until  # a longer quiet, and the timer sleeps on
    deps = gate.quiets[SYM].deps
    rig.clock.advance(2)
    rig.machine.quiet_until = lambda now, *args: now  # from here on, S1 is within reach
    assert gate.cover(SYM, need_ms=renewed + 60_000) == (deps.low, deps.high, renewed)  # the proven quiet stands
    assert runner.timer_due_ms >= renewed  # and the timer sleeps until it ends
    await rig.stop()


async def test_a_quiet_that_ends_is_renewed_without_a_step_except_on_a_new_day():
    day = 86_400_000
    midnight = (T0 // day + 1) * day
    rig = Rig(start_ms=midnight - 10_000)
    gate = quiet(rig)
    await rig.start()
    rig.trade(1.0)  # steps; "jump" cannot fire on a flat market: quiet, but only up to midnight
    assert gate.quiet_end(SYM) == midnight and rig.machine.state.day == midnight // day - 1
    steps = watched(rig.runner)
    rig.clock.advance(11)
    assert steps == [midnight] and rig.machine.state.day == midnight // day  # the new day's step ran
    renewed = gate.quiet_end(SYM)
    assert renewed > midnight + 1_000
    rig.clock.advance((renewed - midnight) / 1000 + 5)
    assert steps == [midnight]  # that quiet's end: a new quiet, no step
    assert gate.quiet_end(SYM) > renewed
    await rig.stop()


async def test_a_market_that_stays_quiet_earns_longer_quiets_and_a_move_takes_them_back():
    day, horizon = 86_400_000, round(QUIET_HORIZON_S * 1000)
    rig = Rig(start_ms=(T0 // day + 1) * day + 1_000)  # just after midnight: no day roll within reach
    gate = quiet(rig)
    await rig.start()
    runner = rig.runner
    steps = watched(runner)
    first = rig.clock.now_ms()
    rig.trade(1.0)  # steps: S1 ("jump" >= 5 %) cannot fire on a flat market
    lengths = [gate.quiet_end(SYM) - first]
    for _ in range(4):  # each quiet runs its course and is renewed at its end, without a step
        rig.clock.advance((gate.quiet_end(SYM) - rig.clock.now_ms()) / 1000 + 0.5)
        lengths.append(gate.quiet_end(SYM) - runner.now_ms(SYM))
    assert steps == [first] and MAX_REACH == 4
    assert [round(n / horizon, 2) for n in lengths] == [1.0, 1.0, 2.0, 4.0, 4.0]  # a little less: the grid second
    _, high, _ = gate.cover(SYM)
    assert high < 1.03  # a trade at 1.03 leaves the band; S1 ("jump" >= 5 %) still cannot fire (+3 %)
    rig.trade(1.03)
    assert steps == [first]
    assert 0 < gate.quiet_end(SYM) - rig.clock.now_ms() <= horizon  # the market moved: one horizon again
    await rig.stop()


async def test_a_replay_evaluates_s1_between_events_instead_of_stepping_and_trades_the_same():
    """With no bounds to help (patched away), every second is stepped - unless the replay says
    when the next event comes: then S1 is evaluated each second and only a second where it fires
    is stepped. The transitions, their times and the intents are the same."""
    runs = []
    for hinted in (False, True):
        rig = Rig()
        gate = quiet(rig)
        await rig.start()
        runner = rig.runner
        if hinted:
            gate.next_event_ms = lambda: T0 + 3_600_000  # the replay: no market event before then
        rig.machine.quiet_until = lambda now, *args: now  # S1 always "within reach"
        steps = watched(runner)
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
        gate = quiet(rig)
        await rig.start()
        runner = rig.runner
        if hinted:
            gate.next_event_ms = lambda: T0 + 3_600_000
        rig.pump()
        rig.order(rig.intents[0].client_id, OrderState.FILLED, filled=5, price=1.2)
        assert rig.machine.phase is Phase.POSITION_ACTIVE
        steps = watched(runner)
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


# --- the feed side ---------------------------------------------------------------------------


class _Absorber:
    """Takes trades priced <= `limit` (and every book while `books`), like a quiet strategy runner."""

    def __init__(self, limit: float, books: bool = True) -> None:
        self.limit, self.books = limit, books
        self.absorbed: list[tuple] = []
        self.echoes: list[tuple] = []  # re-published events announced by the feed

    def absorb_trade(self, symbol, ts_ms, price, qty):
        if price > self.limit:
            return False
        self.absorbed.append(("trade", ts_ms, price))
        return True

    def absorb_book(self, symbol, ts_ms, bid, ask):
        if not self.books:
            return False
        self.absorbed.append(("book", ts_ms))
        return True

    together = False  # take book and trade in one call when both fit?

    def absorb_quiet_tick(self, symbol, ts_ms, price, qty, bid, ask):
        if not (self.together and self.books and price <= self.limit):
            return False
        self.absorbed += [("book", ts_ms), ("trade", ts_ms, price)]
        return True

    def note_echo(self, ev):
        self.echoes.append((ev.type, ev.ts_ms))

    whole = False  # take whole candles (cover / absorb_ticks)?
    until = 10**12  # the quiet's end, for `cover`

    def cover(self, symbol, need_ms):
        return (float("-inf"), self.limit, self.until) if self.whole else None

    def absorb_ticks(self, symbol, times, prices, qtys, bid, ask):
        self.absorbed.append(("candles", tuple(times), tuple(prices)))


def filtered(feed: ReplayFeed, absorber: _Absorber, flat: bool = True) -> QuietTicks:
    """The accelerator's feed side on `feed`, handing ticks to the fake absorber."""
    feed.tick_filter = ticks = QuietTicks(feed, absorber, lambda: flat)
    return ticks


async def test_fast_path_keeps_absorbed_ticks_off_the_bus_and_hands_on_the_latest(tmp_path):
    """Candle 1 ticks 10, 9, 12, 11; candle 2 ticks 11, 11.5, 8, 9. Trades <= 11 are absorbed."""
    bus, clock = EventBus(), SimClock(0)
    out = bus.subscribe_queue("t", types=[BookTick, TradeTick, MarkPriceTick, CandleClosed])
    absorber = _Absorber(limit=11.0)
    feed = ReplayFeed(bus, clock, write_csv(tmp_path), speed=0, data_clock=clock)
    ticks = filtered(feed, absorber)
    await feed.run()
    events = [(e.type, e.ts_ms, getattr(e, "price", None)) for e in out.drain()]
    trades = [(ts, p) for kind, ts, p in events if kind == "trade"]
    # 10 and 9 absorbed; 12 is not: the latest absorbed (9 at 75 s) goes out first, as an echo, then 12
    assert trades[:2] == [(75_000, 9.0), (90_000, 12.0)]
    assert ("trade", 75_000) in absorber.echoes and ("trade", 90_000) not in absorber.echoes
    assert ("trade", 60_000, 10.0) in absorber.absorbed and ("trade", 75_000, 9.0) in absorber.absorbed
    assert sum(1 for kind, *_ in events if kind == "candle") == 2  # always published
    # 11.5 (candle 2, second tick) is refused too; after it 8 and 9 are absorbed and stay unpublished...
    assert (135_000, 11.5) in trades and (150_000, 8.0) not in trades
    # ... until something needs them: a step of the runner publishes them first
    assert ticks.held
    ticks.flush_held()
    last = [(e.type, e.ts_ms, getattr(e, "price", None)) for e in out.drain()]
    assert ("trade", 165_000, 9.0) in last and ("mark_price", 165_000, 9.0) in last and not ticks.held


async def test_fast_path_takes_book_and_trade_together_with_the_same_outcome(tmp_path):
    outcomes = []
    for together in (False, True):
        bus, clock = EventBus(), SimClock(0)
        out = bus.subscribe_queue("t", types=[BookTick, TradeTick, MarkPriceTick, CandleClosed])
        absorber = _Absorber(limit=11.0)
        absorber.together = together
        feed = ReplayFeed(bus, clock, write_csv(tmp_path), speed=0, data_clock=clock)
        ticks = filtered(feed, absorber)
        await feed.run()
        events = [(e.type, e.ts_ms, getattr(e, "price", None)) for e in out.drain()]
        outcomes.append((events, sorted(absorber.absorbed), dict(ticks.held)))
    assert outcomes[0] == outcomes[1]


async def test_fast_path_is_off_while_the_gate_is_closed(tmp_path):
    bus, clock = EventBus(), SimClock(0)
    out = bus.subscribe_queue("t", types=[TradeTick])
    absorber = _Absorber(limit=100.0)
    absorber.whole = True
    feed = ReplayFeed(bus, clock, write_csv(tmp_path), speed=0, data_clock=clock)
    filtered(feed, absorber, flat=False)
    await feed.run()
    assert len(out.drain()) == 8 and absorber.absorbed == []


async def test_fast_path_takes_a_whole_candle_when_no_timer_is_due_before_its_close(tmp_path):
    bus, clock = EventBus(), SimClock(0)
    out = bus.subscribe_queue("t", types=[TradeTick, CandleClosed, CandlesClosed])
    absorber = _Absorber(limit=12.0)
    absorber.whole = True
    fired = []
    clock.call_later(130, lambda: fired.append(clock.now_ms()))  # due inside candle 2 (120 .. 180 s)
    feed = ReplayFeed(bus, clock, write_csv(tmp_path), speed=0, data_clock=clock)
    ticks = filtered(feed, absorber)
    await feed.run()
    # candle 1 (range 9..12) in one piece; candle 2 tick by tick, so the timer fires at its own time
    assert absorber.absorbed[0] == ("candles", (60_000, 75_000, 90_000, 105_000), (10.0, 9.0, 12.0, 11.0))
    assert ("trade", 120_000, 11.0) in absorber.absorbed and fired == [130_000]
    events = [(e.type, e.ts_ms) for e in out.drain()]
    assert events == [("candles", 120_000), ("candle", 180_000)]  # closes always go out; every tick was absorbed
    assert ticks.held["ABC_BTC"][1][:2] == (165_000, 9.0)  # the latest trade, held until something needs it
    assert feed.candles_published == 2


STRETCH_CSV = "timestamp_ms,open,high,low,close,volume\n" + "".join(
    f"{60_000 * i},10,{h},9,10,{4 * i}\n" for i, h in enumerate([11, 11, 11, 13, 11, 11, 11, 11], start=1))


async def test_fast_path_takes_consecutive_candles_in_one_stretch_up_to_the_band_and_the_quiet_end(tmp_path):
    """Candles 1-3 and 5-6 stay inside the band (high 11 <= 12), candle 4 breaks it (13), and the
    quiet ends before candle 7 closes: two stretches, each one absorber call and one close event."""
    bus, clock = EventBus(), SimClock(0)
    out = bus.subscribe_queue("t", types=[TradeTick, CandleClosed, CandlesClosed])
    absorber = _Absorber(limit=12.0)
    absorber.whole, absorber.until = True, 7 * 60_000 + 1  # candle 6 closes at 420 s, candle 7 at 480 s
    feed = ReplayFeed(bus, clock, write_csv(tmp_path, STRETCH_CSV), speed=0, data_clock=clock)
    filtered(feed, absorber)
    await feed.run()
    stretches = [a for a in absorber.absorbed if a[0] == "candles"]
    assert [len(times) for _, times, _ in stretches] == [12, 8]
    assert stretches[0][1][:5] == (60_000, 75_000, 90_000, 105_000, 120_000)
    assert stretches[1][1][0] == 300_000 and stretches[1][2][:4] == (10.0, 9.0, 11.0, 10.0)
    drained = out.drain()
    closes = [(e.type, e.ts_ms) for e in drained if e.type in ("candle", "candles")]
    assert closes == [("candles", 240_000), ("candle", 300_000), ("candles", 420_000), ("candle", 480_000),
                      ("candle", 540_000)]
    first = next(e for e in drained if isinstance(e, CandlesClosed))
    assert first.interval_s == 60 and [c[0] for c in first.candles] == [60_000, 120_000, 180_000]
    assert [c[5] for c in first.candles] == [4.0, 8.0, 12.0]  # volumes ride along (candle-driven indicators)
    assert feed.candles_published == 8 and feed.cursor_ms == 480_000
    assert clock.now_ms() >= 540_000


async def test_two_sources_go_over_in_slots_only_while_both_candles_open_together(tmp_path):
    """AAA and BBB open candles at the same instants (slots), except BBB skips 240 s and opens
    one at 330 s instead: a tick of it falls inside the 300 s slot, so that slot goes tick by
    tick. Closes come out per run of one symbol, in the order they would have come."""
    a = write_csv(tmp_path, "timestamp_ms,open,high,low,close,volume\n"
                  + "".join(f"{60_000 * i},10,11,9,10,1\n" for i in range(1, 7)), "x_AAA-USDT_1m.csv")
    b_opens = (60_000, 120_000, 180_000, 330_000, 390_000, 450_000, 510_000)
    b = write_csv(tmp_path, "timestamp_ms,open,high,low,close,volume\n"
                  + "".join(f"{t},10,11,9,10,1\n" for t in b_opens), "x_BBB-USDT_1m.csv")
    bus, clock = EventBus(), SimClock(0)
    out = bus.subscribe_queue("t", types=[TradeTick, CandleClosed, CandlesClosed])
    absorber = _Absorber(limit=12.0)
    absorber.whole = True
    feed = ReplayFeed(bus, clock, sources=[(a, None), (b, None)], speed=0, data_clock=clock)
    filtered(feed, absorber)
    await feed.run()
    stretches = [(times[0], len(times)) for kind, times, _ in (x for x in absorber.absorbed if x[0] == "candles")]
    # slots at 60, 120 and 180 s for both (BBB: 3 candles), AAA's 240 s candle alone (BBB's next
    # event is at 330 s: none inside that minute); from 300 to 450 s the two overlap within a
    # minute: tick by tick; BBB's last two candles alone (AAA has ended)
    assert sorted(stretches) == [(60_000, 12), (60_000, 16), (450_000, 8)]
    assert ("trade", 300_000, 10.0) in absorber.absorbed and ("trade", 330_000, 10.0) in absorber.absorbed
    events = [e for e in out.drain() if isinstance(e, (CandleClosed, CandlesClosed))]
    closes = [(e.ts_ms, e.symbol) for e in events if isinstance(e, CandleClosed)]
    closes += [(c[0] + 60_000, e.symbol) for e in events if isinstance(e, CandlesClosed) for c in e.candles]
    firsts = [(e.ts_ms if isinstance(e, CandleClosed) else e.candles[0][0] + 60_000) for e in events]
    assert firsts == sorted(firsts)  # the closes come in time order, runs of one symbol each
    assert sorted(closes) == sorted([(60_000 * i + 60_000, "AAA_USDT") for i in range(1, 7)]
                                    + [(t + 60_000, "BBB_USDT") for t in b_opens])
    assert feed.candles_published == 13


async def test_aligned_sources_go_over_in_slots_closes_first_at_each_instant(tmp_path):
    """Two files on the same minute grid: at each instant both previous candles close before
    either next one opens, so every candle of both goes in a slot."""
    rows = "timestamp_ms,open,high,low,close,volume\n" + "".join(f"{60_000 * i},10,11,9,10,1\n" for i in range(1, 7))
    a, b = write_csv(tmp_path, rows, "x_AAA-USDT_1m.csv"), write_csv(tmp_path, rows, "x_BBB-USDT_1m.csv")
    seen = []
    for absorbing in (False, True):
        bus, clock = EventBus(), SimClock(0)
        out = bus.subscribe_queue("t", types=[CandleClosed, CandlesClosed])
        absorber = _Absorber(limit=12.0)
        absorber.whole = absorbing
        feed = ReplayFeed(bus, clock, sources=[(a, None), (b, None)], speed=0, data_clock=clock)
        filtered(feed, absorber)
        await feed.run()
        closes = [(e.ts_ms, e.symbol) if isinstance(e, CandleClosed) else (c[0] + 60_000, e.symbol)
                  for e in out.drain() for c in (e.candles if isinstance(e, CandlesClosed) else [None])]
        seen.append((closes, absorber))
    (plain, _), (fast, absorber) = seen
    assert fast == plain == sorted(plain)  # the same closes in the same order: per instant AAA then BBB
    assert sorted(len(times) for kind, times, _ in (x for x in absorber.absorbed if x[0] == "candles")) == [24, 24]
