"""The fake MEXC routes WebSocket pushes as MEXC does: public ones by subscription, private ones to logins.

Each socket here is a plain aiohttp client, independent of the client code under test. What a socket
was sent is read up to the pong of a ping sent after the pushes: the fake answers a socket's messages
in order, so anything pushed to it before the ping arrives before the pong.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import aiohttp
import pytest

from tests.venues.mexc.test_fake_exchange import _login, create

BTC, ETH = "BTC_USDT", "ETH_USDT"


def deal(symbol: str, price: float) -> dict[str, Any]:
    return {"channel": "push.deal", "symbol": symbol, "ts": 1, "data": [{"p": price, "v": 1, "T": 1, "O": 1, "M": 2}]}


def ticker(symbol: str) -> dict[str, Any]:
    return {"channel": "push.ticker", "symbol": symbol, "ts": 1, "data": {"symbol": symbol, "lastPrice": 1.0}}


def kline(symbol: str, interval: str, t_s: int) -> dict[str, Any]:
    return {"channel": "push.kline", "symbol": symbol, "ts": 1,
            "data": {"symbol": symbol, "interval": interval, "t": t_s, "o": 1, "h": 1, "l": 1, "c": 1, "q": 1}}


async def send(ws: aiohttp.ClientWebSocketResponse, method: str, **param: Any) -> None:
    """Send a (un)subscription and read its `rs.` reply."""
    await ws.send_json({"method": method, "param": param, "gzip": False})
    reply = await asyncio.wait_for(ws.receive_json(), 5)
    assert reply["channel"] == f"rs.{method}" and reply["data"] == "success"


async def pushed(ws: aiohttp.ClientWebSocketResponse) -> list[tuple[str, str | None]]:
    """(channel, symbol) of every push the socket was sent before the pong of a ping sent now."""
    await ws.send_json({"method": "ping"})
    got: list[tuple[str, str | None]] = []
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        frame = json.loads(gzip.decompress(msg.data) if msg.type is aiohttp.WSMsgType.BINARY else msg.data)
        if frame["channel"] == "pong":
            return got
        got.append((frame["channel"], frame.get("symbol")))


async def test_a_public_push_reaches_only_the_sockets_subscribed_to_its_channel_and_symbol(fx, session):
    btc, eth, idle = [await session.ws_connect(fx.ws_url) for _ in range(3)]
    await send(btc, "sub.deal", symbol=BTC)
    await send(eth, "sub.deal", symbol=ETH)
    await send(eth, "sub.ticker", symbol=ETH)
    await fx.push(deal(BTC, 60000.5))
    await fx.push(deal(ETH, 3000.5))
    await fx.push(ticker(BTC))  # nobody asked for BTC's ticker
    await fx.push(ticker(ETH))
    await fx.push(gzip.compress(json.dumps(deal(BTC, 60001.5)).encode()))  # binary gzip: routed by its content
    assert await pushed(btc) == [("push.deal", BTC), ("push.deal", BTC)]
    assert await pushed(eth) == [("push.deal", ETH), ("push.ticker", ETH)]
    assert await pushed(idle) == []  # subscribed to nothing: no public push at all
    for ws in (btc, eth, idle):
        await ws.close()


async def test_after_unsubscribing_nothing_more_arrives(fx, session):
    ws = await session.ws_connect(fx.ws_url)
    await send(ws, "sub.deal", symbol=BTC)
    await send(ws, "sub.depth.full", symbol=BTC, limit=20)
    await send(ws, "sub.kline", symbol=BTC, interval="Min1")
    await fx.push(deal(BTC, 1.0))
    await fx.push({"channel": "push.depth.full", "symbol": BTC, "ts": 1, "data": {"asks": [], "bids": [], "version": 1}})
    await fx.push(kline(BTC, "Min1", 60))
    await fx.push(kline(BTC, "Min5", 300))  # another interval than the one subscribed
    assert await pushed(ws) == [("push.deal", BTC), ("push.depth.full", BTC), ("push.kline", BTC)]
    await send(ws, "unsub.deal", symbol=BTC)
    await send(ws, "usub.depth.full", symbol=BTC)  # MEXC's docs spell this one `usub.`
    await send(ws, "unsub.kline", symbol=BTC, interval="Min1")
    await fx.push(deal(BTC, 2.0))
    await fx.push({"channel": "push.depth.full", "symbol": BTC, "ts": 1, "data": {"asks": [], "bids": [], "version": 2}})
    await fx.push(kline(BTC, "Min1", 120))
    assert await pushed(ws) == []
    await ws.close()


async def test_the_logged_in_socket_gets_no_public_push_and_the_public_one_no_private_push(fx, session):
    public = await session.ws_connect(fx.ws_url)
    await send(public, "sub.deal", symbol=BTC)
    private = await _login(session, fx)
    await fx.push(deal(BTC, 60000.5))
    await create(session, fx, side=3, vol=1)  # a fill: order, deal, position, order, asset on the private stream
    await fx.settle()
    assert [c for c, _ in await pushed(private)] == ["push.personal.order", "push.personal.order.deal",
                                                      "push.personal.position", "push.personal.order",
                                                      "push.personal.asset"]
    assert await pushed(public) == [("push.deal", BTC)]
    await public.close()
    await private.close()


async def test_wait_subscribed_returns_on_the_subscription_and_times_out_with_what_is_subscribed(fx, session):
    ws = await session.ws_connect(fx.ws_url)
    waiting = asyncio.create_task(fx.wait_subscribed("push.deal", BTC, timeout=5.0))
    await send(ws, "sub.ticker", symbol=BTC)
    assert not waiting.done()
    await send(ws, "sub.deal", symbol=BTC)
    await asyncio.wait_for(waiting, 5)
    with pytest.raises(TimeoutError, match=r"no socket subscribed to push\.deal ETH_USDT within 0\.05 s"
                                           r" \(subscribed: push\.deal BTC_USDT, push\.ticker BTC_USDT\)"):
        await fx.wait_subscribed("deal", ETH, timeout=0.05)
    await ws.close()
    await fx.wait_ws(lambda f: not f.ws_clients)
    with pytest.raises(TimeoutError, match=r"\(subscribed: nothing\)"):  # a closed socket's subscriptions go with it
        await fx.wait_subscribed("push.deal", BTC, timeout=0.05)
