"""The fake MEXC account itself: fills, positions, liquidation, history routes, private pushes, faults."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.venues.mexc.fake_exchange import API_KEY, SECRET, FakeMexc

PRV = "/api/v1/private"


def _sign(text: str) -> str:
    return hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()


async def call(session: aiohttp.ClientSession, fake: FakeMexc, method: str, path: str,
               params: dict[str, Any] | None = None, body: Any = None) -> dict[str, Any]:
    """A signed private request built here, independently of the client under test."""
    req_time = str(fake.now_ms())
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in sorted((params or {}).items()))
    payload = json.dumps(body, separators=(",", ":")) if method == "POST" else query
    headers = {"ApiKey": API_KEY, "Request-Time": req_time, "Signature": _sign(API_KEY + req_time + payload),
               "Content-Type": "application/json"}
    url = f"{fake.url}{PRV}/{path}" + (f"?{query}" if query else "")
    async with session.request(method, url, data=payload if method == "POST" else None, headers=headers) as r:
        return await r.json()


async def create(session, fake, side: int, vol: int, kind: int = 5, price: Any = None, lev: int = 10,
                 oid: str = "x-1", symbol: str = "BTC_USDT") -> dict[str, Any]:
    body: dict[str, Any] = {"symbol": symbol, "vol": vol, "side": side, "type": kind, "openType": 1, "leverage": lev,
                            "externalOid": oid}
    if price is not None:
        body["price"] = price
    return await call(session, fake, "POST", "order/create", body=body)


async def test_market_open_fills_and_creates_a_position(fx, session):
    fx.set_price("BTC_USDT", 60000)
    got = await create(session, fx, side=3, vol=100, lev=10)
    assert got["success"] is True
    (order,) = fx.orders
    assert order["state"] == 3 and order["dealVol"] == 100 and order["dealAvgPrice"] == 60000
    pos = fx.position("BTC_USDT", 2)
    assert pos is not None and pos["state"] == 1 and pos["holdVol"] == 100 and pos["holdAvgPrice"] == 60000
    assert pos["im"] == pytest.approx(100 * 0.0001 * 60000 / 10)
    assert pos["liquidatePrice"] == pytest.approx(60000 * (1 + 0.1 - 0.004))  # entry form, f = 0
    (deal,) = fx.deals
    assert deal["fee"] == pytest.approx(0.0006 * 100 * 0.0001 * 60000) and deal["externalOid"] == "x-1"
    assert pos["realised"] == pytest.approx(-deal["fee"])
    listed = await call(session, fx, "GET", "position/open_positions", {"symbol": "BTC_USDT"})
    assert [p["positionId"] for p in listed["data"]] == [pos["positionId"]]


async def test_volume_weighted_average_and_long_liquidation_price(fx, session):
    fx.set_price("ETH_USDT", 3000)
    await create(session, fx, side=1, vol=10, lev=5, symbol="ETH_USDT")
    fx.set_price("ETH_USDT", 3300)
    await create(session, fx, side=1, vol=30, lev=5, oid="x-2", symbol="ETH_USDT")
    pos = fx.position("ETH_USDT", 1)
    assert pos is not None and pos["holdVol"] == 40 and pos["holdAvgPrice"] == pytest.approx(3225)
    assert pos["liquidatePrice"] == pytest.approx(3225 * (1 - 0.2 + 0.004))
    assert fx.peak_hold_vol[("ETH_USDT", 1)] == 40


async def test_close_flattens_and_records_realised_profit(fx, session):
    fx.set_price("BTC_USDT", 60000)
    await create(session, fx, side=3, vol=100)
    pid = fx.position("BTC_USDT", 2)["positionId"]  # type: ignore[index]
    fx.set_price("BTC_USDT", 59000)
    await create(session, fx, side=2, vol=100, oid="x-1c")
    assert fx.position("BTC_USDT", 2) is None
    (closed,) = fx.closed_positions
    fees = 0.0006 * 100 * 0.0001 * (60000 + 59000)
    assert closed["positionId"] == pid and closed["state"] == 3 and closed["holdVol"] == 0
    assert closed["realised"] == pytest.approx(100 * 0.0001 * 1000 - fees)
    assert fx.deals[-1]["profit"] == pytest.approx(10.0)
    assert (await call(session, fx, "GET", "position/open_positions"))["data"] == []
    await create(session, fx, side=3, vol=5, oid="x-3")
    assert fx.position("BTC_USDT", 2)["positionId"] != pid  # type: ignore[index]


async def test_reduce_only_close_fills_at_most_the_held_volume(fx, session):
    await create(session, fx, side=1, vol=40)
    await create(session, fx, side=4, vol=100, oid="x-1c")
    closing = fx.orders_with("x-1c")[0]
    assert closing["state"] == 3 and closing["dealVol"] == 40 and fx.position("BTC_USDT", 1) is None
    assert fx.peak_hold_vol[("BTC_USDT", 1)] == 40
    again = await create(session, fx, side=4, vol=10, oid="x-1d")
    assert again["code"] == 2009 and fx.orders_with("x-1d") == []


async def test_limit_rests_then_fills_when_the_price_crosses(fx, session):
    fx.set_price("BTC_USDT", 60000)
    await create(session, fx, side=3, vol=10, kind=1, price=61000)
    (order,) = fx.orders
    assert order["state"] == 2 and fx.position("BTC_USDT", 2) is None
    opened = await call(session, fx, "GET", "order/list/open_orders/BTC_USDT")
    assert [o["orderId"] for o in opened["data"]] == [order["orderId"]]
    fx.set_price("BTC_USDT", 60999.9)
    assert order["state"] == 2
    fx.gap("BTC_USDT", 61200)
    assert order["state"] == 3 and order["dealAvgPrice"] == 61000
    assert fx.position("BTC_USDT", 2)["holdAvgPrice"] == 61000  # type: ignore[index]
    assert fx.deals[-1]["taker"] is False and fx.deals[-1]["fee"] == pytest.approx(0.0002 * 10 * 0.0001 * 61000)
    assert (await call(session, fx, "GET", "order/list/open_orders/BTC_USDT"))["data"] == []


async def test_ramp_raises_volume_and_fills_on_the_way(fx, session):
    fx.set_price("BTC_USDT", 60000)
    await create(session, fx, side=3, vol=10, kind=1, price=60500)
    before = fx.volume24["BTC_USDT"]
    await fx.ramp("BTC_USDT", 61000, seconds=0.05, steps=5)
    assert fx.orders[0]["state"] == 3 and fx.volume24["BTC_USDT"] > before
    ticker = await session.get(f"{fx.url}/api/v1/contract/ticker", params={"symbol": "BTC_USDT"})
    data = (await ticker.json())["data"]
    assert data["lastPrice"] == 61000 and data["volume24"] == int(fx.volume24["BTC_USDT"])


async def test_gap_through_the_liquidation_price_liquidates(fx, session):
    fx.set_price("BTC_USDT", 60000)
    await create(session, fx, side=3, vol=100, lev=10)
    await create(session, fx, side=2, vol=100, kind=1, price=50000, oid="x-tp")  # resting close
    pos = fx.position("BTC_USDT", 2)
    assert pos is not None and pos["frozenVol"] == 100
    fx.gap("BTC_USDT", 65000)
    assert fx.position("BTC_USDT", 2) is not None and fx.liquidations == []
    fx.gap("BTC_USDT", 66000)
    assert fx.position("BTC_USDT", 2) is None
    (liq,) = fx.liquidations
    assert liq["positionId"] == pos["positionId"] and liq["liquidatePrice"] == pytest.approx(65760)
    assert fx.closed_positions[-1]["state"] == 3
    assert fx.deals[-1]["profit"] == pytest.approx(-pos["im"])
    tp = fx.orders_with("x-tp")[0]
    assert tp["state"] == 4 and tp["errorCode"] == 5


async def test_history_deals_and_deal_details_routes(fx, session):
    await create(session, fx, side=3, vol=10)
    await create(session, fx, side=2, vol=10, oid="x-1c")
    await create(session, fx, side=1, vol=3, kind=1, price=1000, oid="x-rest")
    hist = (await call(session, fx, "GET", "order/list/history_orders",
                       {"symbol": "BTC_USDT", "page_num": 1, "page_size": 20}))["data"]
    assert [o["externalOid"] for o in hist] == ["x-rest", "x-1c", "x-1"]
    filled = (await call(session, fx, "GET", "order/list/history_orders",
                         {"symbol": "BTC_USDT", "states": "3", "page_num": 1, "page_size": 1}))["data"]
    assert [o["externalOid"] for o in filled] == ["x-1c"]
    deals = (await call(session, fx, "GET", "order/list/order_deals", {"symbol": "BTC_USDT"}))["data"]
    assert [d["side"] for d in deals] == [2, 3] and all("raw" not in d for d in deals)
    oid = fx.orders_with("x-1")[0]["orderId"]
    details = (await call(session, fx, "GET", f"order/deal_details/{oid}"))["data"]
    assert len(details) == 1 and details[0]["vol"] == 10 and {"price", "fee", "profit", "taker"} <= set(details[0])
    assert (await call(session, fx, "GET", "order/deal_details/1"))["code"] == 2040


async def _login(session: aiohttp.ClientSession, fake: FakeMexc) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(fake.ws_url)
    t = str(fake.now_ms())
    await ws.send_json({"method": "login", "param": {"apiKey": API_KEY, "reqTime": t, "signature": _sign(API_KEY + t)}})
    assert (await asyncio.wait_for(ws.receive_json(), 5))["data"] == "success"
    return ws


async def _frames(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    return [await asyncio.wait_for(ws.receive_json(), 5) for _ in range(count)]


async def test_logged_in_socket_gets_order_deal_position_pushes_in_order(fx, session):
    anon = await session.ws_connect(fx.ws_url)
    ws = await _login(session, fx)
    await create(session, fx, side=3, vol=7)
    frames = await _frames(ws, 5)
    assert [f["channel"] for f in frames] == ["push.personal.order", "push.personal.order.deal",
                                              "push.personal.position", "push.personal.order", "push.personal.asset"]
    assert [frames[0]["data"]["state"], frames[3]["data"]["state"]] == [2, 3]
    assert frames[1]["data"]["vol"] == 7 and frames[2]["data"]["holdVol"] == 7 and frames[2]["data"]["state"] == 1
    await create(session, fx, side=2, vol=7, oid="x-1c")
    closing = await _frames(ws, 5)
    assert closing[2]["channel"] == "push.personal.position" and closing[2]["data"]["state"] == 3
    await fx.settle()
    await anon.send_json({"method": "ping"})
    assert (await asyncio.wait_for(anon.receive_json(), 5))["channel"] == "pong"  # no private frame before it
    await anon.close()
    await ws.close()


async def test_push_loss_and_stall_keep_pongs_but_drop_pushes(fx, session):
    ws = await _login(session, fx)
    fx.push_loss = True
    await create(session, fx, side=3, vol=1)
    fx.push_loss, fx.ws_stall_pushes = False, True
    await create(session, fx, side=3, vol=1, oid="x-2")
    await fx.settle()
    await ws.send_json({"method": "ping"})
    assert (await asyncio.wait_for(ws.receive_json(), 5))["channel"] == "pong"
    assert fx.private_pushes == [] and fx.position("BTC_USDT", 2)["holdVol"] == 2  # type: ignore[index]
    await ws.close()


async def test_hold_before_past_the_recv_window_is_513_and_places_nothing(fx, session):
    fx.fault("create", "hold_before", hold_s=0.3)
    pending = asyncio.create_task(create(session, fx, side=3, vol=1))
    await fx.wait_until(lambda f: f.held == 1)
    fx.server_offset_ms += fx.recv_window_ms + 1  # the window runs out while the request waits
    got = await asyncio.wait_for(pending, 5)
    assert got["code"] == 513 and fx.orders == [] and fx.deals == []


async def test_hold_after_places_and_fills_before_answering(fx, session):
    fx.fault("create", "hold_after", hold_s=0.3)
    pending = asyncio.create_task(create(session, fx, side=3, vol=2))
    await fx.wait_until(lambda f: f.held == 1)
    assert fx.orders[0]["state"] == 3 and not pending.done()
    assert (await asyncio.wait_for(pending, 5))["success"] is True


async def test_drop_after_still_fills(fx, session):
    fx.fault("create", "drop_after")
    with pytest.raises(aiohttp.ClientError):
        await create(session, fx, side=3, vol=4)
    assert fx.position("BTC_USDT", 2)["holdVol"] == 4  # type: ignore[index]


async def test_external_oid_dedupe_switch(fx, session):
    await create(session, fx, side=3, vol=1, oid="dup")
    await create(session, fx, side=3, vol=1, oid="dup")
    assert len(fx.orders_with("dup")) == 2 and fx.position("BTC_USDT", 2)["holdVol"] == 2  # type: ignore[index]
    fx.dedupe_external_oid = True
    assert (await create(session, fx, side=3, vol=1, oid="dup"))["code"] == 603
    assert len(fx.orders_with("dup")) == 2


async def test_rate_limit_not_allowed_and_503(fx, session):
    fx.rate_limited.add("BTC_USDT")
    assert (await create(session, fx, side=3, vol=1))["code"] == 510
    fx.rate_limited.clear()
    fx.not_allowed.add("BTC_USDT")
    assert (await create(session, fx, side=3, vol=1))["code"] == 1002
    assert fx.orders == []
    fx.fault("fair", "http503")
    async with session.get(f"{fx.url}/api/v1/contract/fair_price/BTC_USDT") as r:
        assert r.status == 503 and "503" in await r.text()


async def test_prices_and_legacy_defaults(fake, rest):
    assert (await rest.fair_price("BTC_USDT"))["fairPrice"] == Decimal("60001.1")
    fake.set_price("BTC_USDT", Decimal("61000.5"))
    assert (await rest.fair_price("BTC_USDT"))["fairPrice"] == Decimal("61000.5")
    assert (await rest.ticker("ETH_USDT"))["lastPrice"] == Decimal(3000)


# --- partial fills (partial_fill_vol, market_remainder) ------------------------------------------------------


def _sum(rows: list[dict[str, Any]], key: str) -> Decimal:
    return sum((Decimal(str(r[key])) for r in rows), Decimal(0))


async def test_partial_fills_a_market_entry_in_steps_with_pushes_and_rest_in_step(fx, session):
    ws = await _login(session, fx)
    fx.partial_fill_vol = 20
    fx.set_price("BTC_USDT", 60000)
    await create(session, fx, side=3, vol=50, oid="x-p")
    (order,) = fx.orders
    seen = []
    for price in (60000, 60100, 60200):
        if price != 60000:
            fx.set_price("BTC_USDT", price)  # a price step: the market order's rest matches again
        got = (await call(session, fx, "GET", "order/external/BTC_USDT/x-p"))["data"]
        pos = fx.position("BTC_USDT", 2)
        seen.append((got["dealVol"], got["state"], got["remainVol"], pos["holdVol"] if pos else None))
    assert seen == [(20, 2, 30, 20), (40, 2, 10, 40), (50, 3, 0, 50)]
    fx.set_price("BTC_USDT", 60300)  # complete: nothing more
    deals = fx.deals
    assert [d["vol"] for d in deals] == [20, 20, 10] and _sum(deals, "vol") == order["dealVol"] == 50
    assert [d["price"] for d in deals] == [60000, 60100, 60200] and all(d["taker"] for d in deals)
    assert len({d["id"] for d in deals}) == 3
    assert Decimal(str(order["takerFee"])) == _sum(deals, "fee")
    assert Decimal(str(order["dealAvgPrice"])) == Decimal(60000 * 20 + 60100 * 20 + 60200 * 10) / 50
    pos = fx.position("BTC_USDT", 2)
    assert pos is not None and Decimal(str(pos["holdAvgPrice"])) == Decimal(str(order["dealAvgPrice"]))
    assert fx.cash == Decimal("1000.5") - _sum(deals, "fee")
    fetched = (await call(session, fx, "GET", f"order/get/{order['orderId']}"))["data"]
    hist = (await call(session, fx, "GET", "order/list/history_orders", {"symbol": "BTC_USDT"}))["data"]
    assert fetched == hist[0] == {k: v for k, v in order.items() if k != "raw" and not k.startswith("_")}
    details = (await call(session, fx, "GET", f"order/deal_details/{order['orderId']}"))["data"]
    assert [d["id"] for d in details] == [d["id"] for d in deals]
    # each step: deal, position, order, asset (after the create's 'new' order push)
    frames = await _frames(ws, 1 + 3 * 4)
    channels = [f["channel"].removeprefix("push.personal.") for f in frames]
    assert channels == ["order"] + ["order.deal", "position", "order", "asset"] * 3
    orders = [f["data"] for f in frames if f["channel"] == "push.personal.order"]
    assert [(o["state"], o["dealVol"], o["version"]) for o in orders] == [(2, 0, 1), (2, 20, 2), (2, 40, 3), (3, 50, 4)]
    assert [f["data"]["holdVol"] for f in frames if f["channel"] == "push.personal.position"] == [20, 40, 50]
    fees = [Decimal(str(o["takerFee"])) for o in orders[1:]]
    assert fees == [_sum(deals[:n], "fee") for n in (1, 2, 3)]  # cumulative
    await ws.close()


async def test_partial_market_remainder_cancel_ends_state_4_with_the_part_filled(fx, session):
    ws = await _login(session, fx)
    fx.partial_fill_vol, fx.market_remainder = 20, "cancel"
    await create(session, fx, side=1, vol=50, oid="x-c")
    (order,) = fx.orders
    assert (order["state"], order["dealVol"], order["errorCode"], order["remainVol"]) == (4, 20, 21, 0)
    fx.set_price("BTC_USDT", 60100)
    assert order["dealVol"] == 20 and [d["vol"] for d in fx.deals] == [20]
    assert fx.position("BTC_USDT", 1)["holdVol"] == 20  # type: ignore[index]
    got = (await call(session, fx, "GET", "order/external/BTC_USDT/x-c"))["data"]
    assert (got["state"], got["dealVol"]) == (4, 20)
    assert (await call(session, fx, "GET", "order/list/open_orders/BTC_USDT"))["data"] == []
    frames = await _frames(ws, 5)  # new, then one step: deal, position, and a single cancelled order push
    assert [f["channel"].removeprefix("push.personal.") for f in frames] == ["order", "order.deal", "position",
                                                                             "order", "asset"]
    assert (frames[3]["data"]["state"], frames[3]["data"]["dealVol"]) == (4, 20)
    await ws.close()


async def test_partial_close_books_profit_per_step_and_a_cancelled_rest_leaves_the_position(fx, session):
    fx.set_price("BTC_USDT", 60000)
    await create(session, fx, side=3, vol=50, oid="x-o")  # whole: the knob is off
    fx.partial_fill_vol = 20
    fx.set_price("BTC_USDT", 59000)
    await create(session, fx, side=2, vol=50, oid="x-x")
    closing = fx.orders_with("x-x")[0]
    pos = fx.position("BTC_USDT", 2)
    assert closing["state"] == 2 and pos is not None and pos["holdVol"] == 30 and pos["frozenVol"] == 30
    fx.market_remainder = "cancel"
    fx.set_price("BTC_USDT", 58000)  # the rest: one more step, then cancelled
    pos = fx.position("BTC_USDT", 2)
    assert (closing["state"], closing["dealVol"]) == (4, 40) and pos is not None
    assert pos["holdVol"] == 10 and pos["frozenVol"] == 0 and pos["closeVol"] == 40
    closes = [d for d in fx.deals if d["side"] == 2]
    assert [(d["vol"], d["profit"]) for d in closes] == [(20, 2), (20, 4)]  # (60000 - p) x 20 x 0.0001
    assert Decimal(str(closing["profit"])) == _sum(closes, "profit") and _sum(closes, "vol") == closing["dealVol"]
    assert fx.cash == Decimal("1000.5") + _sum(closes, "profit") - _sum(fx.deals, "fee")
    fx.market_remainder = "rest"
    await create(session, fx, side=2, vol=30, oid="x-x2")  # more than held: completes with what is left
    last = fx.orders_with("x-x2")[0]
    assert (last["state"], last["dealVol"]) == (3, 10) and fx.position("BTC_USDT", 2) is None


async def test_partial_limit_fills_at_its_price_a_step_per_crossing_price(fx, session):
    fx.partial_fill_vol = 4
    fx.set_price("BTC_USDT", 60000)
    await create(session, fx, side=3, vol=10, kind=1, price=61000)
    (order,) = fx.orders
    await fx.ramp("BTC_USDT", 61500, seconds=0.01, steps=5)  # 60300 ... 61500: crosses on two steps
    assert (order["state"], order["dealVol"]) == (2, 8)
    fx.set_price("BTC_USDT", 61200)
    assert (order["state"], order["dealVol"], order["dealAvgPrice"]) == (3, 10, 61000)
    assert [(d["vol"], d["price"], d["taker"]) for d in fx.deals] == [(4, 61000, False)] * 2 + [(2, 61000, False)]
    assert Decimal(str(order["makerFee"])) == _sum(fx.deals, "fee")
