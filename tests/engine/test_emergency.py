"""Emergency close: 50 positions flat with reduce-only orders only, entry orders cancelled, progress
events, HALTED until reset; one position; joining a running close; retries through failures."""

from __future__ import annotations

from decimal import Decimal as D

from tests.conftest import settle
from tests.engine.harness import Stack
from tui_trader.domain.config import RiskConfig
from tui_trader.domain.errors import Retryable
from tui_trader.domain.events import EmergencyCloseProgress, OrderUpdated, PositionChanged, TradingStateChanged
from tui_trader.domain.intents import ClosePosition, OpenPosition
from tui_trader.domain.models import ClientOrderId, Instrument, Order, OrderSide, OrderState, OrderType, Side
from tui_trader.engine.emergency import EmergencyClose
from tui_trader.engine.risk import RiskGuard, TradingState

SYMBOLS = [f"C{i:02d}_USDT" for i in range(25)]
INSTRUMENTS = {s: Instrument(s, price_unit=D("0.0001"), maintenance_margin_rate=D("0.01")) for s in SYMBOLS}


class Rig:
    def __init__(self, s: Stack, with_risk: bool = True) -> None:
        self.s = s
        self.risk = RiskGuard(s.bus, s.clock, RiskConfig(max_open_positions=100), None, cache=s.cache) if with_risk else None
        s.execution.risk = self.risk
        self.em = EmergencyClose(s.bus, s.clock, s.execution, s.venue, s.cache, risk=self.risk)
        self.sent: list[Order] = []
        original = s.venue.place_order

        async def spy(order):
            self.sent.append(order)
            return await original(order)

        s.venue.place_order = spy

    async def open(self, symbol, side, contracts=100, price=1.0, tag="strat"):
        s = self.s
        pos, _ = s.venue.ledger.open(INSTRUMENTS[symbol], side, D(contracts), D(str(price)), 3, D(0), s.clock.now_ms(), tag)
        s.execution.report(PositionChanged(s.clock.now_ms(), s.venue.ledger.snapshot(pos, None, s.clock.now_ms())))
        await s.execution.idle()

    async def tick_all(self, symbols=SYMBOLS, price=1.0):
        s = self.s
        s.clock.advance(0.2)
        for sym in symbols:
            await s.tick(price, symbol=sym, dt_ms=0)

    async def drive(self, task, symbols=SYMBOLS, rounds=20):
        for _ in range(rounds):
            await settle()
            await self.s.execution.idle()
            if task.done():
                return await task
            await self.tick_all(symbols)
        raise AssertionError("emergency close did not finish")

    def stages(self):
        return [e.stage for e in self.s.of(EmergencyCloseProgress)]


async def test_close_all_of_50_positions_ends_flat_with_only_reduce_only_orders():
    async with Stack(balance="1000000", instruments=INSTRUMENTS) as s:
        r = Rig(s)
        await r.tick_all()
        for sym in SYMBOLS:
            await r.open(sym, Side.LONG)
            await r.open(sym, Side.SHORT, tag="other")
        assert len(s.cache.positions) == 50
        resting = Order(ClientOrderId("entry-1"), SYMBOLS[0], OrderSide.OPEN_SHORT, OrderType.LIMIT, D(10), price=D("1.5"), leverage=3)
        await s.venue.place_order(resting)
        r.sent.clear()

        flat = await r.drive(r.em.request_close_all("MANUAL"))
        assert flat is True
        assert s.cache.positions == {} and await s.venue.positions() == []
        assert len(r.sent) == 50 and all(o.reduce_only and o.side.is_close for o in r.sent)
        assert len({o.client_id for o in r.sent}) == 50 and all(len(o.client_id) <= 32 for o in r.sent)
        assert s.venue.orders["entry-1"].state is OrderState.CANCELLED
        stages = r.stages()  # the cancels run beside the closes, not before them
        assert stages[0] == "started" and stages[-1] == "done"
        assert sorted(stages[1:-1]) == ["cancelled_orders", "closing"]
        progress = s.of(EmergencyCloseProgress)
        assert progress[0].open_positions == 50 and progress[-1].open_positions == 0
        assert any(p.stage == "cancelled_orders" and "1 order(s) cancelled" in p.detail for p in progress)
        assert [e.state for e in s.of(TradingStateChanged)] == ["REDUCING", "HALTED"]


async def test_after_close_all_entries_stay_refused_until_reset():
    async with Stack(balance="100000", instruments=INSTRUMENTS) as s:
        r = Rig(s)
        await r.tick_all(SYMBOLS[:1])
        await r.open(SYMBOLS[0], Side.SHORT)
        await r.drive(r.em.request_close_all(), SYMBOLS[:1])
        s.execution.submit(OpenPosition(0, "strat", SYMBOLS[0], Side.SHORT, ClientOrderId("after-1"), 1.0, 3))
        await s.execution.idle()
        [refused] = [e.order for e in s.of(OrderUpdated) if e.order.client_id == "after-1"]
        assert refused.state is OrderState.REJECTED and "HALTED" in refused.reason
        r.risk.reset("user reset")
        assert r.risk.state is TradingState.ACTIVE and not s.execution.entries_blocked
        s.execution.submit(OpenPosition(0, "strat", SYMBOLS[0], Side.SHORT, ClientOrderId("after-2"), 1.0, 3))
        await s.execution.idle()
        assert s.venue.orders["after-2"].state is OrderState.OPEN


async def test_without_a_risk_guard_entries_stay_blocked():
    async with Stack(balance="100000", instruments=INSTRUMENTS) as s:
        r = Rig(s, with_risk=False)
        await r.tick_all(SYMBOLS[:1])
        await r.open(SYMBOLS[0], Side.LONG)
        assert await r.drive(r.em.request_close_all(), SYMBOLS[:1])
        assert s.execution.entries_blocked


async def test_close_one_closes_only_that_position_and_unblocks_entries_after():
    async with Stack(balance="100000", instruments=INSTRUMENTS) as s:
        r = Rig(s)
        await r.tick_all(SYMBOLS[:2])
        await r.open(SYMBOLS[0], Side.LONG)
        await r.open(SYMBOLS[1], Side.SHORT)
        task = r.em.request_close_one(SYMBOLS[0], Side.LONG)
        await settle()
        assert s.execution.entries_blocked
        assert await r.drive(task, SYMBOLS[:2])
        assert list(s.cache.positions) == [(SYMBOLS[1], Side.SHORT)]
        assert [(o.symbol, o.reduce_only) for o in r.sent] == [(SYMBOLS[0], True)]
        assert not s.execution.entries_blocked and r.risk.state is TradingState.ACTIVE
        assert r.stages()[-1] == "done" and s.of(EmergencyCloseProgress)[0].scope == f"{SYMBOLS[0]}:LONG"


async def test_a_second_request_joins_and_a_running_close_is_joined():
    async with Stack(balance="100000", instruments=INSTRUMENTS) as s:
        r = Rig(s)
        await r.tick_all(SYMBOLS[:1])
        await r.open(SYMBOLS[0], Side.SHORT)
        liq = s.execution.close(ClosePosition(0, "strat", SYMBOLS[0], Side.SHORT, ClientOrderId("liq-1"), "LIQ"))
        first = r.em.request_close_all("MANUAL")
        assert r.em.request_close_all("SIGUSR1") is first
        assert await r.drive(first, SYMBOLS[:1])
        assert liq.done() and [o.client_id for o in r.sent] == ["liq-1"]


async def test_close_all_repeats_through_venue_failures_until_flat():
    async with Stack(balance="100000", instruments=INSTRUMENTS) as s:
        r = Rig(s)
        await r.tick_all(SYMBOLS[:3])
        for sym in SYMBOLS[:3]:
            await r.open(sym, Side.LONG)
        spy = s.venue.place_order
        fails = {"n": 0}

        async def flaky(order):
            if fails["n"] < 4:
                fails["n"] += 1
                raise Retryable("HTTP 502")
            return await spy(order)

        s.venue.place_order = flaky
        task = r.em.request_close_all()
        for _ in range(40):
            await settle()
            await s.execution.idle()
            if task.done():
                break
            s.clock.advance(0.5)
            await r.tick_all(SYMBOLS[:3])
        assert await task and s.cache.positions == {}
        assert all(o.reduce_only for o in r.sent) and fails["n"] == 4
