"""Paper venue: MEXC-like fills, fees, slippage, rounding, reduce-only, SL/TP, funding, liquidation."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tui_trader.domain.config import FeesConfig, PaperConfig
from tui_trader.domain.errors import OrderRejected, PositionNotFound
from tui_trader.domain.events import (
    AccountUpdated, BookTick, FundingCharged, MarkPriceTick, OrderFilled, PositionChanged, PositionLiquidated, TradeTick,
)
from tui_trader.domain.models import ClientOrderId, Instrument, Order, OrderSide, OrderState, OrderType, Side
from tui_trader.engine.bus import EventBus
from tui_trader.venues.paper.funding import FundingSchedule
from tui_trader.venues.paper.venue import PaperVenue

SYM = "BTC_USDT"
BTC = Instrument(SYM, contract_size=D("0.0001"), price_unit=D("0.1"), vol_unit=D(1), min_vol=D(1), max_vol=D(1_000_000),
                 max_leverage=125, maintenance_margin_rate=D("0.004"))


def make(balance="10000", slippage=5.0, latency=0, funding=None, liq_fee=0.0006):
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    venue = PaperVenue(bus, paper=PaperConfig(slippage_bps=slippage, latency_ms=latency), fees=FeesConfig(liquidation_fee_rate=liq_fee),
                       starting_balance=D(balance), instruments={SYM: BTC}, funding=funding)
    return bus, venue, events


def tick(bus, ts, price, mark=None, book=False):
    if book:
        bus.publish(BookTick(ts, SYM, price - 0.5, price + 0.5))
    bus.publish(TradeTick(ts, SYM, price, 1.0))
    bus.publish(MarkPriceTick(ts, SYM, mark if mark is not None else price))


def order(cid, side, qty, **kw):
    return Order(ClientOrderId(cid), SYM, side, kw.pop("type", OrderType.MARKET), D(qty), leverage=kw.pop("leverage", 10), **kw)


async def test_market_order_fills_at_next_tick_with_slippage_and_taker_fee():
    bus, venue, events = make()
    tick(bus, 1_000, 60_000.0)
    placed = await venue.place_order(order("o1", OrderSide.OPEN_SHORT, "10000"))
    assert placed.state is OrderState.OPEN  # not filled on the stale price
    tick(bus, 2_000, 60_010.0)
    fill = next(e.fill for e in events if isinstance(e, OrderFilled))
    # sell: 60 010 x (1 - 5 bp) = 59 979.995 -> rounded down to the 0.1 price unit
    assert fill.price == D("59979.9")
    assert fill.fee == D("10000") * D("0.0001") * D("59979.9") * D("0.0006")
    assert fill.qty_contracts == D(10000) and fill.ts_ms == 2_000
    [pos] = await venue.positions()
    assert pos.side is Side.SHORT and pos.entry_price == D("59979.9") and pos.margin == D("5997.99")
    acct = await venue.account()
    assert acct.cash_balance == D(10000) - fill.fee
    assert acct.available == acct.cash_balance - D("5997.99")


async def test_buy_fills_at_ask_when_book_is_fresh_and_rounds_up():
    bus, venue, events = make(slippage=0)
    tick(bus, 1_000, 100.0, book=True)
    await venue.place_order(order("o1", OrderSide.OPEN_LONG, "10", leverage=2))
    tick(bus, 2_000, 100.03, book=True)  # ask 100.53 -> ceil to 100.6
    fill = next(e.fill for e in events if isinstance(e, OrderFilled))
    assert fill.price == D("100.6")


async def test_latency_delays_fill_in_event_time():
    bus, venue, events = make(latency=500)
    tick(bus, 1_000, 100.0)
    await venue.place_order(order("o1", OrderSide.OPEN_LONG, "10", leverage=2))
    tick(bus, 1_400, 101.0)
    assert not [e for e in events if isinstance(e, OrderFilled)]
    tick(bus, 1_500, 102.0)
    assert [e.fill.ts_ms for e in events if isinstance(e, OrderFilled)] == [1_500]


async def test_round_trip_pnl_reconciles_to_the_cent():
    bus, venue, events = make(slippage=0)
    tick(bus, 0, 100.0)
    await venue.place_order(order("o", OrderSide.OPEN_SHORT, "5000", leverage=5))
    tick(bus, 1, 100.0)
    await venue.place_order(order("c", OrderSide.CLOSE_SHORT, "5000", reduce_only=True))
    tick(bus, 2, 90.0)
    fills = [e.fill for e in events if isinstance(e, OrderFilled)]
    assert fills[1].realized_pnl == D("5")  # (100 - 90) x 5000 x 0.0001
    acct = await venue.account()
    fees = sum(f.fee for f in fills)
    assert acct.equity == D(10000) + D(5) - fees
    assert acct.position_margin == 0 and acct.available == acct.equity
    flat = [e.position for e in events if isinstance(e, PositionChanged)][-1]
    assert flat.contracts == 0


async def test_reduce_only_never_grows_or_flips():
    bus, venue, events = make(slippage=0)
    tick(bus, 0, 100.0)
    with pytest.raises(PositionNotFound):
        await venue.place_order(order("c0", OrderSide.CLOSE_LONG, "1", reduce_only=True))
    with pytest.raises(OrderRejected, match="reduce-only"):
        await venue.place_order(order("x", OrderSide.OPEN_LONG, "1", reduce_only=True))
    await venue.place_order(order("o", OrderSide.OPEN_LONG, "100", leverage=2))
    tick(bus, 1, 100.0)
    await venue.place_order(order("c", OrderSide.CLOSE_LONG, "250", reduce_only=True))  # more than held
    tick(bus, 2, 100.0)
    closes = [e.fill for e in events if isinstance(e, OrderFilled) and e.fill.client_id == "c"]
    assert closes[0].qty_contracts == D(100)
    assert await venue.positions() == []


async def test_rounding_validation():
    bus, venue, _ = make()
    with pytest.raises(OrderRejected, match="multiple of 1"):
        await venue.place_order(order("a", OrderSide.OPEN_LONG, "1.5"))
    with pytest.raises(OrderRejected, match="multiple of 0.1"):
        await venue.place_order(order("b", OrderSide.OPEN_LONG, "1", type=OrderType.LIMIT, price=D("100.05")))
    with pytest.raises(OrderRejected, match="leverage 126"):
        await venue.place_order(order("c", OrderSide.OPEN_LONG, "1", leverage=126))


async def test_duplicate_client_id_returns_existing_order():
    bus, venue, events = make()
    tick(bus, 0, 100.0)
    first = await venue.place_order(order("dup", OrderSide.OPEN_LONG, "10", leverage=2))
    second = await venue.place_order(order("dup", OrderSide.OPEN_LONG, "99", leverage=2))
    assert second == first
    tick(bus, 1, 100.0)
    assert len([e for e in events if isinstance(e, OrderFilled)]) == 1


async def test_limit_order_fills_when_crossed_with_maker_fee():
    bus, venue, events = make()
    tick(bus, 0, 100.0)
    await venue.place_order(order("l", OrderSide.OPEN_LONG, "1000", type=OrderType.LIMIT, price=D("99.0"), leverage=2))
    assert (await venue.account()).frozen == D("4.95")
    tick(bus, 1, 99.5)
    assert not [e for e in events if isinstance(e, OrderFilled)]
    tick(bus, 2, 98.7)
    fill = next(e.fill for e in events if isinstance(e, OrderFilled))
    assert fill.price == D("99.0") and fill.liquidity == "maker" and fill.fee == D("9.9") * D("0.0002")
    assert (await venue.account()).frozen == 0


async def test_stop_loss_triggers_on_last_price():
    bus, venue, events = make(slippage=0)
    tick(bus, 0, 100.0)
    await venue.place_order(order("o", OrderSide.OPEN_SHORT, "1000", leverage=3, stop_loss_price=D("105.0"), take_profit_price=D("75.0")))
    tick(bus, 1, 100.0)
    tick(bus, 2, 104.9)
    assert await venue.positions()
    tick(bus, 3, 105.2)
    assert await venue.positions() == []
    last = [e.position for e in events if isinstance(e, PositionChanged)][-1]
    assert last.contracts == 0
    assert [e for e in events if isinstance(e, PositionChanged)][-1].reason == "SL"


def fills_of(events, reason):
    return [e.fill for e in events if isinstance(e, OrderFilled) and reason in e.fill.client_id]


async def test_a_real_trade_past_the_stop_fills_the_stop_at_that_trade():
    # live and paper-live trades carry no path: the stop fills where the market printed (105.2 + book)
    bus, venue, events = make(slippage=5)
    tick(bus, 0, 100.0)
    await venue.place_order(order("o", OrderSide.OPEN_SHORT, "1000", leverage=3, stop_loss_price=D("105.0")))
    tick(bus, 1, 100.0)
    tick(bus, 3, 105.2, book=True)
    [fill] = fills_of(events, "-SL-")
    assert fill.price == D("105.8")  # ask 105.7 x (1 + 5 bp) = 105.75285 -> up to 105.8


async def test_a_replayed_path_through_the_stop_fills_at_the_trigger_with_spread_and_slippage():
    # a candle's path 100.4 -> 107 (TradeTick.from_price) went through 105: a trigger order triggers
    # there; the buy pays the book's half spread around it (0.5 at 107 -> the same ratio) and the slippage
    bus, venue, events = make(slippage=5)
    tick(bus, 0, 100.0)
    await venue.place_order(order("o", OrderSide.OPEN_SHORT, "1000", leverage=3, stop_loss_price=D("105.0"),
                                  take_profit_price=D("90.0")))
    tick(bus, 1, 100.0)
    bus.publish(BookTick(2, SYM, 106.5, 107.5))
    bus.publish(TradeTick(2, SYM, 107.0, 1.0, "buy", 100.4))
    [fill] = fills_of(events, "-SL-")
    want = D(105) * (D("107.5") / D(107)) * (1 + D("0.0005"))  # 105.5433..
    assert fill.price == D("105.6") and D("105.5") < want <= D("105.6")
    assert await venue.positions() == []


async def test_a_path_that_started_past_the_trigger_fills_at_the_tick():
    # the path began beyond the target (the tick before it already past): no crossing on the way
    bus, venue, events = make(slippage=0)
    tick(bus, 0, 100.0)
    await venue.place_order(order("o", OrderSide.OPEN_SHORT, "1000", leverage=3, take_profit_price=D("95.0")))
    tick(bus, 1, 100.0)
    bus.publish(TradeTick(2, SYM, 94.0, 1.0, "sell", 94.5))
    [fill] = fills_of(events, "-TP-")
    assert fill.price == D("94.0")


async def test_liquidation_when_mark_crosses_and_margin_is_lost():
    bus, venue, events = make(slippage=0, liq_fee=0)
    tick(bus, 0, 60_000.0)
    await venue.place_order(order("o", OrderSide.OPEN_SHORT, "10000", leverage=10))
    tick(bus, 1, 60_000.0)
    [pos] = await venue.positions()
    assert pos.liquidation_price.quantize(D("0.01")) == D("65737.05")  # reference §6.1
    tick(bus, 2, 66_000.0, mark=65_700.0)  # last through, mark not yet: no liquidation
    assert await venue.positions()
    tick(bus, 3, 66_000.0, mark=65_740.0)
    assert await venue.positions() == []
    [liq] = [e for e in events if isinstance(e, PositionLiquidated)]
    assert liq.margin_lost == D("6000")
    acct = await venue.account()
    open_fee = next(e.fill.fee for e in events if isinstance(e, OrderFilled))
    assert acct.cash_balance == D(10000) - open_fee - D(6000)


async def test_funding_charged_at_each_settlement_from_series():
    h8 = 8 * 3_600_000
    schedule = FundingSchedule(D("0.0001"), 8, series=[(h8 + 17, D("0.0005")), (2 * h8 + 7, D("-0.0002"))])
    bus, venue, events = make(slippage=0, funding=schedule)
    tick(bus, h8 - 10_000, 100.0)
    await venue.place_order(order("o", OrderSide.OPEN_SHORT, "10000", leverage=2))
    tick(bus, h8 - 5_000, 100.0)
    tick(bus, h8 + 1, 100.0)
    tick(bus, 2 * h8 + 1, 110.0)
    tick(bus, 3 * h8 + 1, 100.0)  # beyond the series: constant
    funding = [e for e in events if isinstance(e, FundingCharged)]
    # short receives a positive rate: amount paid = -1 x coins x mark x rate (coins = 1)
    assert [(e.ts_ms, e.amount) for e in funding] == [
        (h8, D("-1") * D(100) * D("0.0005")),
        (2 * h8, D("-1") * D(110) * D("-0.0002")),
        (3 * h8, D("-1") * D(100) * D("0.0001")),
    ]
    assert venue.ledger.funding_paid == sum(e.amount for e in funding)


async def test_insufficient_balance_rejects_at_fill():
    bus, venue, events = make(balance="100", slippage=0)
    tick(bus, 0, 60_000.0)
    await venue.place_order(order("big", OrderSide.OPEN_LONG, "10000", leverage=2))
    tick(bus, 1, 60_000.0)
    assert (await venue.get_order(SYM, ClientOrderId("big"))).state is OrderState.REJECTED
    assert await venue.positions() == []
    assert any(isinstance(e, AccountUpdated) for e in events) is False


async def test_snapshot_restore_round_trip_continues_identically():
    from tui_trader.venues.paper.snapshot import restore, snapshot
    import json

    def scenario_tail(bus):
        tick(bus, 3, 95.0)
        tick(bus, 4, 90.0)

    bus, venue, events = make(slippage=5)
    tick(bus, 0, 100.0)
    await venue.place_order(order("o", OrderSide.OPEN_SHORT, "3000", leverage=5, stop_loss_price=D("110.0"), take_profit_price=D("91.0")))
    tick(bus, 1, 100.0)
    await venue.place_order(order("l", OrderSide.OPEN_SHORT, "100", type=OrderType.LIMIT, price=D("120.0"), leverage=5))
    tick(bus, 2, 99.0)
    snap = json.loads(json.dumps(snapshot(venue)))
    scenario_tail(bus)
    expected = (await venue.account(), [f.fill for f in [e for e in events if isinstance(e, OrderFilled)]][-1])

    bus2, fresh, events2 = make(slippage=5)
    restore(fresh, snap)
    assert (await fresh.account()).cash_balance == D(snap["cash"])
    scenario_tail(bus2)
    got = (await fresh.account(), [e.fill for e in events2 if isinstance(e, OrderFilled)][-1])
    assert got == expected  # same TP fill, same fill id, same balances
    assert [o.client_id for o in await fresh.open_orders()] == ["l"]
