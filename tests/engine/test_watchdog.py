"""Liquidation watchdog: distance and band both sides, hysteresis, repeats, auto-close on the paper venue
(exactly one close, through injected failures with the entry breaker open), stale data, partial close."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest

from tests.engine.harness import SYM, Stack
from tui_trader.domain.config import WatchdogConfig
from tui_trader.domain.errors import OrderRejected, Retryable
from tui_trader.domain.events import (
    ErrorRaised, LiquidationWarning, MarkPriceTick, OrderUpdated, PositionChanged, PositionLiquidated, TradeTick,
)
from tui_trader.domain.intents import OpenPosition
from tui_trader.domain.liquidation import Band
from tui_trader.domain.models import ClientOrderId, Instrument, OrderState, Position, Side
from tui_trader.engine.bus import EventBus
from tui_trader.engine.cache import Cache
from tui_trader.engine.clock import SimClock
from tui_trader.engine.watchdog import LiquidationWatchdog

T0 = 1_700_000_000_000
INSTR_ABC = Instrument("ABC_USDT", contract_size=D(1), price_unit=D("0.01"), vol_unit=D(1), min_vol=D(1),
                       max_vol=D(10**6), maintenance_margin_rate=D("0.01"))


class FakeExecution:
    """Records close intents; each returns a future the test resolves."""

    def __init__(self) -> None:
        self.closes = []
        self.futures = []

    def close(self, intent):
        fut = asyncio.get_running_loop().create_future()
        self.closes.append(intent)
        self.futures.append(fut)
        return fut


class Rig:
    def __init__(self, **cfg) -> None:
        self.bus, self.clock = EventBus(), SimClock(T0)
        self.cache = Cache(self.bus)
        self.execution = FakeExecution()
        self.wd = LiquidationWatchdog(self.bus, self.clock, self.cache, self.execution, WatchdogConfig(**cfg))
        self.events = []
        self.bus.subscribe(self.events.append)

    def position(self, side, liq, entry=100.0, contracts=10, symbol="ABC_USDT"):
        pos = Position(symbol, side, D(contracts), D(1), D(str(entry)), 5, margin=D(200),
                       liquidation_price=D(str(liq)) if liq else None, position_id="P1", tag="strat:ABC")
        self.cache.apply_position(pos)
        self.bus.publish(PositionChanged(self.clock.now_ms(), pos))
        return pos

    def mark(self, price, symbol="ABC_USDT", dt_s=0.1):
        self.clock.advance(dt_s)
        self.bus.publish(MarkPriceTick(self.clock.now_ms(), symbol, price))

    def warnings(self):
        return [e for e in self.events if isinstance(e, LiquidationWarning)]


@pytest.mark.parametrize("side, liq, price, distance, band", [
    (Side.SHORT, 110.0, 100.0, 10.0, Band.YELLOW),
    (Side.SHORT, 110.0, 91.0, 20.879, Band.GREEN),
    (Side.SHORT, 110.0, 101.0, 8.911, Band.RED),
    (Side.SHORT, 110.0, 111.0, -0.901, Band.LIQUIDATED),
    (Side.LONG, 90.0, 100.0, 10.0, Band.YELLOW),
    (Side.LONG, 90.0, 115.0, 21.739, Band.GREEN),
    (Side.LONG, 90.0, 99.0, 9.091, Band.RED),
    (Side.LONG, 90.0, 89.0, -1.124, Band.LIQUIDATED),
])
async def test_distance_and_band_for_long_and_short(side, liq, price, distance, band):
    r = Rig(autoclose_enabled=False)
    r.position(side, liq)
    r.mark(price)
    w = r.wd.watches[("ABC_USDT", side)]
    assert w.band is band
    if band is not Band.GREEN:
        [ev] = r.warnings()
        assert ev.distance_pct == pytest.approx(distance, abs=1e-3) and ev.band == band.value
        assert ev.liquidation_price == liq and ev.price_source == "mark" and ev.tag == "strat:ABC"
        assert ev.level == ("CRITICAL" if band.severity >= 2 else "WARNING")


async def test_hysteresis_one_event_per_real_change():
    r = Rig(autoclose_enabled=False)  # short, liq 110: red below 10 %, i.e. above 100.0
    r.position(Side.SHORT, 110.0)
    r.mark(80.0)  # 37.5 %: green, nothing crossed
    assert r.warnings() == []
    r.mark(95.0)  # 15.8 %
    for _ in range(20):  # hovering around the red edge (d 9.9 .. 10.1 %)
        r.mark(100.1)
        r.mark(99.9)
    levels = [(e.band, e.level) for e in r.warnings()]
    # 30 and 20 % crossed + yellow at once, then red once; no flapping back to yellow
    assert levels == [("yellow", "WARNING"), ("red", "CRITICAL")]
    r.mark(99.2)  # 10.89 %: not yet 11 %
    assert len(r.warnings()) == 2
    r.mark(99.0)  # 11.1 %: leaves red (and re-crosses the 10 % threshold upward)
    assert [(e.band, e.level) for e in r.warnings()[2:]] == [("yellow", "INFO")]
    r.mark(99.9)  # 10.1 %: yellow already, threshold 10 not crossed again
    assert len(r.warnings()) == 3


async def test_threshold_crossings_30_20_10_while_green_and_yellow():
    r = Rig(autoclose_enabled=False, warning_thresholds_pct=[30, 25, 10])
    r.position(Side.LONG, 70.0)
    r.mark(110.0)  # 36.4 %
    r.mark(99.0)  # 29.3 %: crossed 30, still green
    r.mark(95.0)  # 26.3 %
    r.mark(92.0)  # 23.9 %: crossed 25
    r.mark(86.0)  # 18.6 %: yellow
    assert [(round(e.distance_pct), e.band) for e in r.warnings()] == [(29, "green"), (24, "green"), (19, "yellow")]


async def test_warning_repeats_at_most_once_per_repeat_s_from_the_last_sent():
    r = Rig(autoclose_enabled=False, repeat_s=60)
    r.position(Side.SHORT, 110.0)
    r.mark(101.0)  # red
    assert len(r.warnings()) == 1
    for _ in range(58):
        r.mark(101.0, dt_s=1.0)
    assert len(r.warnings()) == 1
    r.mark(101.0, dt_s=3.0)  # 61 s after the first
    assert len(r.warnings()) == 2 and r.warnings()[-1].level == "CRITICAL"


async def test_last_price_is_used_flagged_when_the_fair_price_is_old():
    r = Rig(autoclose_enabled=False, mark_max_age_s=3)
    r.position(Side.SHORT, 110.0)
    r.mark(80.0)
    r.clock.advance(1)
    r.bus.publish(TradeTick(r.clock.now_ms(), "ABC_USDT", 101.0, 1.0))  # mark fresh: ignored
    assert r.warnings() == []
    r.clock.advance(3)
    r.bus.publish(TradeTick(r.clock.now_ms(), "ABC_USDT", 101.0, 1.0))
    [ev] = r.warnings()
    assert ev.price_source == "last" and ev.band == "red"


async def test_autoclose_sends_one_liq_close_with_a_deterministic_short_id():
    r = Rig()
    r.position(Side.SHORT, 110.0)
    r.mark(95.0)
    r.mark(101.0)
    r.mark(102.0)
    r.mark(105.0)
    [intent] = r.execution.closes
    assert intent.reason == "LIQ" and intent.side is Side.SHORT and intent.qty_contracts is None
    assert intent.tag == "strat:ABC" and len(intent.client_id) <= 32
    assert [e.level for e in r.warnings()][-1:] == ["AUTOCLOSE"]
    assert r.wd.closes_sent == 1


async def test_a_long_that_cannot_be_liquidated_is_never_closed():
    r = Rig()
    pos = Position("ABC_USDT", Side.LONG, D(10), D(1), D(100), 1, margin=D(2000))  # margin above the notional
    r.bus.publish(PositionChanged(r.clock.now_ms(), pos))
    assert r.wd.watches[("ABC_USDT", Side.LONG)].liq is None
    for p in (100.0, 50.0, 0.5):
        r.mark(p)
    assert r.warnings() == [] and r.execution.closes == []


async def test_formula_used_when_the_venue_reports_no_liquidation_price():
    r = Rig()
    r.position(Side.SHORT, None, entry=100.0)  # 5x, margin 200 / 10 coins, mmr 1 % + fee 0.06 %
    w = r.wd.watches[("ABC_USDT", Side.SHORT)]
    assert w.liq == pytest.approx(118.7413, abs=1e-3)  # (100 + 20) / 1.0106 (mark form, nearer)


async def test_an_absurd_formula_never_overrules_the_exchanges_liquidation_price():
    """Issue 19: positions parsed with contract_size 1 (BTC is 0.0001) put the formula's liquidation next
    to entry; being 'more conservative' it won, and every position was auto-closed after each restart."""
    r = Rig()
    r.wd._instruments["ABC_USDT"] = INSTR_ABC  # the formula is only used with the contract known
    pos = Position("ABC_USDT", Side.SHORT, D(10), D(1), D(100), 3, margin=D("0.5"),  # margin from the true size
                   liquidation_price=D(133), position_id="P1", tag="strat:ABC")
    r.cache.apply_position(pos)
    r.bus.publish(PositionChanged(r.clock.now_ms(), pos))
    w = r.wd.watches[("ABC_USDT", Side.SHORT)]
    assert w.liq == 133.0  # the exchange's value, not the formula's ~100.05
    r.mark(100.2)
    assert r.execution.closes == []
    assert any("not sane" in e.message for e in r.events if isinstance(e, ErrorRaised))


async def test_a_more_conservative_but_sane_formula_still_wins():
    r = Rig()
    r.wd._instruments["ABC_USDT"] = INSTR_ABC
    pos = Position("ABC_USDT", Side.SHORT, D(10), D(1), D(100), 5, margin=D(200), liquidation_price=D(125),
                   position_id="P1", tag="strat:ABC")
    r.cache.apply_position(pos)
    r.bus.publish(PositionChanged(r.clock.now_ms(), pos))
    w = r.wd.watches[("ABC_USDT", Side.SHORT)]
    assert 115 < w.liq < 125  # the formula (~118.7), nearer the market, within the sane bound


# --- on the paper venue ------------------------------------------------------------------


def watch(s: Stack, **cfg) -> LiquidationWatchdog:
    return LiquidationWatchdog(s.bus, s.clock, s.cache, s.execution, WatchdogConfig(**cfg), venue=s.venue)


async def open_short(s: Stack, lev=3):
    await s.tick(2.0)
    s.execution.submit(OpenPosition(0, "strat:XYZ", SYM, Side.SHORT, ClientOrderId("s-1-O"), 10.0, lev))
    await s.execution.idle()
    await s.tick(2.0)
    pos = s.cache.position(SYM, Side.SHORT)
    assert pos is not None and pos.liquidation_price is not None
    return pos


def reduce_only_sent(s: Stack):
    return [e.order for e in s.of(OrderUpdated) if e.order.reduce_only and e.order.state is OrderState.OPEN]


async def test_price_spike_on_paper_gives_exactly_one_close_and_ends_flat():
    async with Stack() as s:
        wd = watch(s)
        pos = await open_short(s)  # 1 500 contracts at 2.0, liq ~2.6387 (31.9 %)
        sent = []
        original = s.venue.place_order

        async def spy(order):
            sent.append(order)
            return await original(order)

        s.venue.place_order = spy
        for price in (2.1, 2.3, 2.45, 2.47, 2.5, 2.5):  # 2.45: 7.7 % from liquidation
            await s.tick(price, dt_ms=200)
        assert [o.reason for o in sent] == ["LIQ"] and sent[0].reduce_only
        assert sent[0].qty_contracts == pos.contracts
        assert s.cache.position(SYM, Side.SHORT) is None and wd.watches == {}
        assert not s.of(PositionLiquidated)
        assert [e.level for e in s.of(LiquidationWarning)] == ["WARNING", "WARNING", "AUTOCLOSE"]


async def test_close_is_retried_through_venue_failures_while_the_entry_breaker_is_open():
    async with Stack() as s:
        watch(s)
        await open_short(s)
        original = s.venue.place_order
        failures = {"close": 0}

        async def breaker_open(order):
            if not order.reduce_only:
                raise Retryable("breaker open")  # every entry refused: the entry breaker is open
            if failures["close"] < 3:
                failures["close"] += 1
                raise Retryable("connection reset")
            return await original(order)

        s.venue.place_order = breaker_open
        s.execution.submit(OpenPosition(0, "strat:XYZ", SYM, Side.LONG, ClientOrderId("s-2-O"), 1.0, 3, max_per_symbol=2))
        await s.tick(2.45, dt_ms=200)  # crosses the threshold: close attempt 1 fails
        for _ in range(8):  # back-off 0.5, 1, 2 s on the simulated clock, then the fill
            await s.tick(2.45, dt_ms=1000)
        assert s.cache.position(SYM, Side.SHORT) is None
        [entry] = [e.order for e in s.of(OrderUpdated) if e.order.client_id == "s-2-O"]
        assert entry.state is OrderState.REJECTED and "breaker open" in entry.reason
        legs = [e.order.client_id for e in s.of(OrderUpdated) if e.order.reduce_only and e.order.state is OrderState.REJECTED]
        assert len(legs) == 3 and len(set(legs)) == 3  # a new leg id after each definitive failure
        assert failures["close"] == 3


async def test_permanent_close_failure_is_loud_and_not_resent_every_tick():
    async with Stack() as s:
        wd = watch(s)
        await open_short(s)
        calls = []

        async def refuse(order):
            calls.append(order)
            raise OrderRejected("API trading not allowed", code=1002)

        s.venue.place_order = refuse
        await s.tick(2.45, dt_ms=200)
        await asyncio.sleep(0)
        for _ in range(3):
            await s.tick(2.46, dt_ms=200)
        assert len(calls) == 1
        critical = [e.message for e in s.of(ErrorRaised) if e.level == "CRITICAL"]
        assert any("CLOSE FAILED" in m for m in critical) and any("AUTO-CLOSE" in m for m in critical)
        assert wd.watches[(SYM, Side.SHORT)].failed


async def test_a_failed_auto_close_is_tried_again_after_ten_seconds_while_the_position_is_held():
    """Unchanged positions are no longer re-published by every audit (issue 20's quiet store), which used to
    re-arm a failed close by accident: the watchdog re-arms it itself, FAILED_RETRY_S later."""
    async with Stack() as s:
        wd = watch(s)
        await open_short(s)
        calls = []
        place = s.venue.place_order

        async def refuse_once(order):
            calls.append(order)
            if len(calls) == 1:
                raise OrderRejected("API trading not allowed", code=1002)
            return await place(order)

        s.venue.place_order = refuse_once
        await s.tick(2.45, dt_ms=200)
        await asyncio.sleep(0)
        for _ in range(9):  # 9 s held in the red: not re-sent on every tick
            await s.tick(2.46)
        assert len(calls) == 1 and wd.watches[(SYM, Side.SHORT)].failed
        for _ in range(3):
            await s.tick(2.46)
        assert len(calls) == 2  # tried again, and this time it goes
        await s.execution.idle()
        assert s.cache.position(SYM, Side.SHORT) is None


@pytest.mark.parametrize("on_stale", ["alert", "close"])
async def test_stale_prices_on_a_red_position_escalate(on_stale):
    async with Stack() as s:
        watch(s, autoclose_distance_pct=5.0, on_stale=on_stale, max_stale_data_s=10)
        await open_short(s)
        await s.tick(2.45, dt_ms=200)  # red (7.7 %), above the 5 % auto-close
        assert reduce_only_sent(s) == []
        s.clock.advance(9)
        await s.execution.idle()
        assert not [e for e in s.of(ErrorRaised) if "STALE" in e.message] and reduce_only_sent(s) == []
        s.clock.advance(2)  # 11 s without a price
        await s.execution.idle()
        if on_stale == "alert":
            [alert] = [e for e in s.of(ErrorRaised) if "STALE" in e.message]
            assert alert.level == "CRITICAL" and SYM in alert.message and reduce_only_sent(s) == []
        else:
            [order] = reduce_only_sent(s)
            assert order.reason == "STALE"
            await s.tick(2.45)
            assert s.cache.position(SYM, Side.SHORT) is None


@pytest.mark.parametrize(("distance", "closes"), [(15.0, True), (30.0, False)])
async def test_blind_a_yellow_position_is_closed_a_green_one_alerted(distance, closes):
    """Issue 19: stale escalation applied only to red positions; a green one 3.6 % from liquidation at 25x
    was liquidated with no price at all. Now yellow or red -> on_stale (close); green -> CRITICAL alert."""
    async with Stack() as s:
        wd = watch(s, max_stale_data_s=10)
        await open_short(s)
        liq = wd.watches[(SYM, Side.SHORT)].liq
        await s.tick(round(liq / (1 + distance / 100), 4), dt_ms=200)
        assert wd.watches[(SYM, Side.SHORT)].band.value == ("yellow" if distance < 20 else "green")
        s.clock.advance(11)  # 11 s without any price (stream nor REST: the paper venue has no fair_price)
        await s.execution.idle()
        stale = [e for e in s.of(ErrorRaised) if "STALE" in e.message]
        if closes:
            [order] = reduce_only_sent(s)
            assert order.reason == "STALE" and stale == []
        else:
            assert reduce_only_sent(s) == [] and stale and stale[0].level == "CRITICAL"


async def test_partial_close_reduces_first_then_closes_all_if_still_below():
    async with Stack() as s:
        watch(s, partial_close=True)
        pos = await open_short(s)
        await s.tick(2.45, dt_ms=200)
        [first] = reduce_only_sent(s)
        assert 0 < first.qty_contracts < pos.contracts
        await s.tick(2.45, dt_ms=200)  # partial fill; paper releases margin pro rata: still 7.7 %
        await s.tick(2.45, dt_ms=200)  # -> full close of the rest
        await s.tick(2.45, dt_ms=200)
        orders = reduce_only_sent(s)
        assert len(orders) == 2 and orders[1].qty_contracts == pos.contracts - first.qty_contracts
        assert s.cache.position(SYM, Side.SHORT) is None


def test_replayed_bars_are_not_stale_between_their_own_ticks():
    from tui_trader.domain.config import Settings
    from tui_trader.engine.trading import replay_settings

    s = Settings()
    assert replay_settings(s, 60, 4).watchdog.max_stale_data_s == 30.0  # ticks 15 s apart
    assert replay_settings(s, 60, 1).watchdog.max_stale_data_s == 120.0
    assert replay_settings(s, 1, 4) is s  # fast data: the configured limit stands


async def test_a_close_cancelled_at_stop_is_not_started_again():
    """Stopping cancels execution's close sequences; the watchdog took that for a finished close, re-checked the
    still-held position and started a new one, again and again (seen at the end of bench/watchdog.py)."""
    async with Stack() as s:
        watch(s)
        await open_short(s)
        calls, hang = [], asyncio.Event()

        async def hung(order):
            calls.append(order)
            await hang.wait()

        s.venue.place_order = hung
        ts = s.clock.now_ms() + 200
        s.clock.advance_to(ts)
        s.bus.publish(MarkPriceTick(ts, SYM, 2.45))  # (not s.tick: it waits for the hung send)
        for _ in range(3):
            await asyncio.sleep(0)
        assert len(calls) == 1 and s.execution.is_closing(SYM, Side.SHORT)
        await s.execution.cancel_all_tasks()
        for _ in range(3):
            await asyncio.sleep(0)
        assert len(calls) == 1 and not s.execution.is_closing(SYM, Side.SHORT)


async def test_a_position_never_priced_is_blind_since_it_is_watched_not_since_1970():
    """A position adopted at start before any price: the stale alert counts from when it was watched (it said
    'no price for 1796668102 s' one second after start)."""
    r = Rig(max_stale_data_s=10)
    r.position(Side.SHORT, 110.0)
    for _ in range(9):
        r.clock.advance(1.0)
    assert [e for e in r.events if isinstance(e, ErrorRaised)] == []  # 9 s: not blind yet
    for _ in range(3):
        r.clock.advance(1.0)
    [alert] = [e for e in r.events if isinstance(e, ErrorRaised) and "STALE" in e.message]
    assert alert.message.startswith("STALE PRICES: no price for ABC_USDT for 11 s")
