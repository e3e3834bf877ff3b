"""MexcVenue (venue.py): the VenueClient port on the fake - validation, monitor-only, close lane, mapping."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from tui_trader.domain.events import ErrorRaised, OrderUpdated, PositionChanged
from tui_trader.domain.models import (
    ClientOrderId,
    MarginMode,
    Order,
    OrderSide,
    OrderState,
    OrderType,
    PositionId,
    Side,
)
from tui_trader.engine.ports import VenueClient
from tui_trader.venues.mexc import errors as E


def entry(cid: str = "e-1", **over) -> Order:
    base = dict(client_id=ClientOrderId(cid), symbol="BTC_USDT", side=OrderSide.OPEN_SHORT, type=OrderType.MARKET,
                qty_contracts=Decimal("50"), leverage=3)
    base.update(over)
    return Order(**base)


def close(cid: str = "c-1") -> Order:
    return Order(client_id=ClientOrderId(cid), symbol="BTC_USDT", side=OrderSide.CLOSE_SHORT, type=OrderType.MARKET,
                 qty_contracts=Decimal("50"), reduce_only=True, position_id=PositionId("9001"))


def short_position() -> dict:
    return {"positionId": 9001, "symbol": "BTC_USDT", "positionType": 2, "openType": 1, "state": 1, "holdVol": 50,
            "holdAvgPrice": 60000.5, "liquidatePrice": 79500.1, "im": 100.25, "leverage": 3, "realised": -0.0073}


def test_implements_the_port(venue):
    assert isinstance(venue, VenueClient) and venue.name == "mexc"


async def test_place_entry_sends_contracts_and_returns_submitted(fake, venue):
    placed = await venue.place_order(entry())
    assert placed.state is OrderState.SUBMITTED and placed.venue_order_id == str(fake.orders[0]["orderId"])
    assert fake.orders[0]["raw"] == '{"symbol":"BTC_USDT","vol":50,"leverage":3,"side":3,"type":5,"openType":1,"externalOid":"e-1"}'


async def test_limit_order_body_has_exact_price(fake, venue):
    await venue.place_order(entry(type=OrderType.LIMIT, price=Decimal("60000.10"), stop_loss_price=Decimal("61000.0")))
    assert '"price":60000.1' in fake.orders[0]["raw"] and '"type":1' in fake.orders[0]["raw"]
    assert '"stopLossPrice":61000' in fake.orders[0]["raw"]


@pytest.mark.parametrize(
    ("over", "field"),
    [({"leverage": 0}, "leverage"), ({"leverage": 201}, "leverage"), ({"leverage": 126}, "leverage"),
     ({"qty_contracts": Decimal("1.5")}, "vol"), ({"qty_contracts": Decimal("0")}, "vol"),
     ({"qty_contracts": Decimal("2000000")}, "vol"), ({"type": OrderType.LIMIT, "price": Decimal("60000.05")}, "price"),
     ({"type": OrderType.LIMIT}, "price"), ({"client_id": ClientOrderId("x" * 33)}, "externalOid")],
)
async def test_validation_before_any_request(fake, venue, over, field):
    with pytest.raises(E.ParameterError) as info:
        await venue.place_order(entry(**over))
    assert info.value.field == field and fake.calls["create"] == 0


async def test_1002_switches_symbol_to_monitor_only(fake, venue, bus):
    seen = []
    bus.subscribe(seen.append, [ErrorRaised])
    fake.not_allowed.add("BTC_USDT")
    with pytest.raises(E.ContractNotAllowed):
        await venue.place_order(entry("e-1"))
    assert "BTC_USDT" in venue.monitor_only and len(seen) == 1 and "monitor-only" in seen[0].message
    with pytest.raises(E.ContractNotAllowed):  # refused locally: no second request
        await venue.place_order(entry("e-2"))
    assert fake.calls["create"] == 1
    fake.not_allowed.clear()
    assert (await venue.place_order(close())).state is OrderState.SUBMITTED  # closes still attempted
    assert fake.calls["create"] == 2


async def test_reduce_only_close_goes_through_with_breaker_open(fake, venue):
    for _ in range(5):
        fake.fault("positions", "http500", times=3)
        with pytest.raises(E.ServerError):
            await venue.positions()
    assert venue.client.breaker.state == "open"
    with pytest.raises(E.BreakerOpen):
        await venue.place_order(entry())
    placed = await venue.place_order(close())
    assert placed.state is OrderState.SUBMITTED and len(fake.orders_with("c-1")) == 1
    assert '"side":2' in fake.orders[0]["raw"] and '"positionId":9001' in fake.orders[0]["raw"]
    assert '"reduceOnly"' not in fake.orders[0]["raw"]  # hedge mode rejects the field


async def test_close_with_position_gone_is_position_not_found(fake, venue):
    fake.fault("create", "code", code=2009)
    with pytest.raises(E.PositionNotFound):
        await venue.place_order(close())


async def test_positions_account_and_orders_mapping(fake, venue):
    fake.positions = [short_position(), dict(short_position(), positionId=9002, holdVol=0, positionType=1)]
    await venue.instrument("BTC_USDT")
    (pos,) = await venue.positions()
    assert pos.side is Side.SHORT and pos.contracts == Decimal(50) and pos.contract_size == Decimal("0.0001")
    assert pos.liquidation_price == Decimal("79500.1") and pos.entry_price == Decimal("60000.5") and pos.position_id == "9001"
    acct = await venue.account()
    assert acct.cash_balance == Decimal("1000.5") and acct.unrealized_pnl == Decimal("5.25") and acct.frozen == Decimal(10)
    await venue.place_order(entry("e-9"))
    got = await venue.get_order("BTC_USDT", ClientOrderId("e-9"))
    assert got is not None and got.state is OrderState.OPEN and got.venue_order_id == str(fake.orders[0]["orderId"])
    assert [o.client_id for o in await venue.open_orders()] == ["e-9"]
    assert (await venue.cancel_order("BTC_USDT", ClientOrderId("e-9"))).state is OrderState.CANCELLED
    assert await venue.get_order("BTC_USDT", ClientOrderId("nope")) is None


async def test_set_leverage_validates_and_uses_position_id_when_held(fake, venue):
    with pytest.raises(E.ParameterError):
        await venue.set_leverage("BTC_USDT", 150, MarginMode.ISOLATED)
    assert fake.leverage_calls == []
    fake.positions = [short_position()]
    await venue.set_leverage("BTC_USDT", 5, MarginMode.ISOLATED)
    assert fake.leverage_calls == [{"symbol": "BTC_USDT", "leverage": 5, "openType": 1, "positionType": 1},
                                   {"positionId": 9001, "leverage": 5}]


async def test_set_stop_loss_moves_the_position_tp_sl(fake, venue):
    fake.stop_orders = [{"id": 555, "symbol": "BTC_USDT", "positionType": 2, "stopLossPrice": 65000, "takeProfitPrice": 0}]
    await venue.set_stop_loss("BTC_USDT", Side.SHORT, Decimal("64000.5"), None)
    assert fake.stop_orders[0]["stopLossPrice"] == 64000.5
    with pytest.raises(E.ParameterError):
        await venue.set_stop_loss("BTC_USDT", Side.LONG, Decimal("50000"), None)


async def test_resync_publishes_positions_and_orders(fake, venue, bus):
    seen = []
    bus.subscribe(seen.append, [PositionChanged, OrderUpdated])
    fake.positions = [short_position()]
    await venue.place_order(entry("e-5"))
    await venue.resync()
    assert [type(e).__name__ for e in seen] == ["PositionChanged", "OrderUpdated"]


async def test_contract_not_trading_state_goes_monitor_only(fake, venue):
    fake.contracts["BTC_USDT"]["state"] = 4
    with pytest.raises(E.ContractNotAllowed):
        await venue.place_order(entry("e-1"))  # marked by the detail lookup; refused locally
    assert fake.calls["create"] == 0 and "BTC_USDT" in venue.monitor_only


async def test_close_sent_even_when_contract_lookup_fails(fake, venue):
    fake.fault("detail", "http500", times=3)
    placed = await venue.place_order(close())
    assert placed.state is OrderState.SUBMITTED and len(fake.orders_with("c-1")) == 1


async def test_factory_builds_the_graph(mexc_config, bus, clock):
    from tui_trader.domain.config import BreakerConfig, RetryConfig
    from tui_trader.venues.mexc.factory import build_mexc

    parts = build_mexc(mexc_config, RetryConfig(), BreakerConfig(), bus, clock, ["BTC_USDT"])
    assert parts.feed.resync == parts.venue.resync and parts.user_stream.signer is parts.venue.client.rest.signer
    await parts.venue.start()
    assert (await parts.venue.account()).cash_balance == Decimal("1000.5")
    await parts.venue.close()


async def test_ambiguous_timeout_through_the_venue_leaves_one_order(fake, venue):
    fake.fault("create", "hang_after")
    placed = await venue.place_order(entry("amb-1"))
    assert len(fake.orders_with("amb-1")) == 1 and placed.venue_order_id == str(fake.orders[0]["orderId"])
    assert placed.state is OrderState.OPEN  # adopted from the externalOid lookup


async def test_secret_never_logged_or_in_errors(fake, venue, caplog):
    from tests.venues.mexc.fake_exchange import SECRET

    caplog.set_level("DEBUG")
    fake.fault("create", "code", code=602, message="Signature verification failed!")
    with pytest.raises(E.AuthError) as info:
        await venue.place_order(entry("s-1"))
    assert SECRET not in caplog.text and SECRET not in str(info.value) and SECRET not in repr(venue.client.rest.signer)
    assert SECRET not in repr(venue.client.rest.config)


def history_order(oid: int, side: int, category: int, update_ms: int, deal_vol: int = 50, state: int = 3) -> dict:
    return {"orderId": oid, "symbol": "BTC_USDT", "externalOid": "", "vol": 50, "side": side, "orderType": 5,
            "openType": 1, "leverage": 3, "price": 0, "state": state, "dealVol": deal_vol, "dealAvgPrice": 79500.1,
            "takerFee": 0, "makerFee": 0, "profit": -100.25, "positionId": 9001, "category": category,
            "createTime": update_ms, "updateTime": update_ms}


async def test_closing_orders_are_the_filled_closes_of_the_side_since_the_positions_last_state(fake, venue):
    """What closed a position the console no longer sees: the order history's filled closes of that side
    after the position's last known state - not an older close, not the other side, not an entry."""
    await venue.instrument("BTC_USDT")
    fake.positions = [short_position()]
    (gone,) = await venue.positions()
    gone = replace(gone, updated_ms=2_000)
    fake.orders.extend([
        history_order(1, side=2, category=1, update_ms=1_000),  # an older close of the short: a past round trip
        history_order(2, side=4, category=2, update_ms=3_000),  # the long side's liquidation
        history_order(3, side=3, category=1, update_ms=3_000),  # an entry
        history_order(4, side=2, category=2, update_ms=3_500),  # this short's liquidation
        history_order(5, side=2, category=1, update_ms=3_600, deal_vol=0, state=4),  # a close that never filled
    ])
    (liquidation,) = await venue.closing_orders(gone)
    assert liquidation.venue_order_id == "4" and liquidation.reason == "LIQUIDATION"
    assert liquidation.realized_pnl == Decimal("-100.25") and liquidation.filled_contracts == 50
    fake.fault("history_orders", "http500", times=10)
    assert await venue.closing_orders(gone) == []  # unreadable: nothing, and no exception (the flat goes on)


# --- replies that parse but are not what the route answers: a MalformedReply naming the route, never "none" ------


def answering(venue, method: str, data) -> None:
    async def reply(*_args, **_kw):
        return data
    setattr(venue.client.rest, method, reply)


@pytest.mark.parametrize("data", [None, {}, ""])
async def test_an_order_lookup_is_not_found_only_when_mexc_says_so(venue, data):
    answering(venue, "get_order_by_external", data)
    assert await venue.get_order("BTC_USDT", ClientOrderId("e-1")) is None


@pytest.mark.parametrize("data, said", [([], "answered a list, not an order object"),
                                        ("x", "answered a str, not an order object"),
                                        ({"symbol": "BTC_USDT", "state": 3}, "malformed order object: side missing")])
async def test_an_order_lookup_answered_with_anything_else_is_a_malformed_reply(venue, data, said):
    answering(venue, "get_order_by_external", data)
    with pytest.raises(E.MalformedReply, match=said) as info:
        await venue.get_order("BTC_USDT", ClientOrderId("e-1"))
    assert "order/external/BTC_USDT/e-1" in str(info.value)


@pytest.mark.parametrize("data, said", [
    ({"symbol": "BTC_USDT", "positionType": 2, "holdVol": 7}, "open_positions answered an object without resultList"),
    ("x", "open_positions answered a str, not a list"),
    ([{"symbol": "BTC_USDT", "holdVol": 7}], "open_positions row 0: malformed position object: positionType missing"),
    ([short_position(), "x"], "open_positions row 1: a str, not an object"),
    ([dict(short_position(), holdVol=-5)], "holdVol: -5 is negative"),
])
async def test_a_positions_reply_that_cannot_be_read_is_a_malformed_reply_for_the_whole_of_it(venue, data, said):
    """A position left out of an audit would be reported flat: one bad row fails the whole reply."""
    answering(venue, "open_positions", data)
    with pytest.raises(E.MalformedReply, match=said):
        await venue.positions()


async def test_an_assets_reply_without_the_usdt_balance_is_no_zero_account(venue):
    answering(venue, "assets", [{"currency": "USDT", "positionMargin": 0}])
    with pytest.raises(E.MalformedReply, match="account/assets: malformed account object: cashBalance missing"):
        await venue.account()


@pytest.mark.parametrize("data", [{"rows": []}, "x", [{"symbol": "BTC_USDT", "state": 3}]])
async def test_an_order_history_that_cannot_be_read_is_said_and_none(venue, data, caplog):
    answering(venue, "history_orders", data)
    assert await venue.closing_orders(short := replace(await _a_short(venue), updated_ms=0)) == []
    assert f"order history {short.symbol} unreadable" in caplog.text


async def _a_short(venue):
    from tui_trader.venues.mexc import parse

    return parse.position(short_position(), Decimal("0.0001"))


async def test_a_gone_positions_close_is_booked_once_its_order_history_is_readable(fake, venue, bus):
    """The flat is reported at once; what closed it (a liquidation) follows when the history can be read."""
    seen = []
    bus.subscribe(seen.append, [PositionChanged, OrderUpdated])
    fake.positions = [short_position()]
    await venue.resync()
    fake.positions = []
    fake.orders.append(history_order(4, side=2, category=2, update_ms=venue.exchange_time_ms()))
    fake.fault("history_orders", "http500", times=3)  # every retry of the close lane
    seen.clear()
    await venue.resync()
    assert [(type(e).__name__, getattr(e, "reason", "")) for e in seen] == [("PositionChanged", "resync: closed")]
    seen.clear()
    await venue.resync()
    [late] = [e.order for e in seen if isinstance(e, OrderUpdated)]
    assert late.reason == "LIQUIDATION" and late.realized_pnl == Decimal("-100.25")
    seen.clear()
    await venue.resync()  # booked once
    assert not any(isinstance(e, OrderUpdated) for e in seen)


async def test_a_gone_positions_history_is_read_a_bounded_number_of_times_then_said(fake, venue, bus):
    from tui_trader.venues.mexc.venue import HISTORY_READS

    told = []
    bus.subscribe(told.append, [ErrorRaised])
    fake.positions = [short_position()]
    await venue.resync()
    fake.positions = []
    answering(venue, "history_orders", {"rows": []})
    for _ in range(HISTORY_READS + 3):
        await venue.resync()
    [said] = told
    assert said.level == "WARNING" and "BTC_USDT SHORT" in said.message and "not booked" in said.message
    assert venue._unbooked == []
