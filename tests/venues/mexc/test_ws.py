"""WebSocket feeds (ws_session/ws_public/ws_private) on the fake `/edge`: pushes, pings, drop, stall, resync, login."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest
from tui_trader.domain.events import CandleClosed, Event, FeedStateChanged, OrderUpdated, TradeTick
from tui_trader.venues.mexc.auth import Signer
from tui_trader.venues.mexc.ws_private import MexcUserStream
from tui_trader.venues.mexc.ws_public import MexcFeed


class Watcher:
    """Collects bus events; `until(pred)` waits on arrivals (no fixed sleeps)."""

    def __init__(self, bus) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        bus.subscribe(self._on)

    def _on(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def states(self, feed: str = "mexc") -> list[str]:
        return [e.state for e in self.events if isinstance(e, FeedStateChanged) and e.feed == feed]

    async def until(self, pred, timeout: float = 5.0) -> None:
        async def _loop() -> None:
            while not pred(self):
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(_loop(), timeout)


@pytest.fixture
async def running_feed(mexc_config, bus, clock, sleeps):
    resyncs: list[int] = []

    async def resync() -> None:
        resyncs.append(1)

    feed = MexcFeed(mexc_config, bus, clock, resync=resync, sleep=sleeps, symbols=["BTC_USDT"])
    watcher = Watcher(bus)
    task = asyncio.create_task(feed.run())
    await watcher.until(lambda w: "connected" in w.states())
    yield feed, watcher, resyncs
    await feed.shutdown()
    await asyncio.wait_for(task, 5)


def deal(price: float) -> dict:
    return {"channel": "push.deal", "symbol": "BTC_USDT", "ts": 1, "data": [{"p": price, "v": 1, "T": 1, "O": 1, "M": 2, "t": 2}]}


async def test_subscribes_plain_text_and_publishes_trades(fake, running_feed):
    feed, watcher, _ = running_feed
    await fake.wait_ws(lambda f: sum(1 for m in f.ws_received if m.get("method", "").startswith("sub.")) == 4)
    subs = [m for m in fake.ws_received if m.get("method", "").startswith("sub.")]
    assert {m["method"] for m in subs} == {"sub.deal", "sub.ticker", "sub.depth.full", "sub.kline"}
    assert all(m["gzip"] is False for m in subs)
    assert [m["param"] for m in subs if m["method"] == "sub.kline"] == [{"symbol": "BTC_USDT", "interval": "Min1"}]
    await fake.push(deal(60000.5))
    await fake.push(gzip.compress(json.dumps(deal(60001.5)).encode()))  # binary gzip frame
    await watcher.until(lambda w: len([e for e in w.events if isinstance(e, TradeTick)]) == 2)
    assert [e.price for e in watcher.events if isinstance(e, TradeTick)] == [60000.5, 60001.5]


async def test_kline_stream_closes_each_candle_once_when_the_next_window_starts(fake, running_feed):
    """push.kline repeats the candle in progress: a candle is closed (CandleClosed, its final values) by
    the first push of a later window; a late push of an older window and a repeat close nothing."""
    feed, watcher, _ = running_feed
    await fake.wait_ws(lambda f: any(m.get("method") == "sub.kline" for m in f.ws_received))
    t0 = 1_700_000_040
    await fake.push_kline("BTC_USDT", t0, 100.0, 101.0, 99.0, 100.5, 5)
    await fake.push_kline("BTC_USDT", t0, 100.0, 103.0, 99.0, 102.0, 9)  # same window, updated
    await fake.push_kline("BTC_USDT", t0 + 60, 102.0, 102.0, 102.0, 102.0, 1)  # the next window: t0 closes
    await fake.push({"channel": "push.kline", "symbol": "BTC_USDT",  # late, older window: ignored
                     "data": {"symbol": "BTC_USDT", "interval": "Min1", "t": t0, "o": 1, "h": 1, "l": 1, "c": 1, "q": 1}})
    await fake.push_kline("BTC_USDT", t0 + 60, 102.0, 104.0, 101.0, 103.0, 4)
    await fake.push_kline("BTC_USDT", t0 + 120, 103.0, 103.0, 103.0, 103.0, 2)  # t0 + 60 closes
    await fake.push({"channel": "push.kline", "symbol": "BTC_USDT", "data": {"t": "x"}})  # malformed: skipped
    await fake.push(deal(1.0))
    await watcher.until(lambda w: any(isinstance(e, TradeTick) for e in w.events))
    closed = [e for e in watcher.events if isinstance(e, CandleClosed)]
    assert [(e.open_ms, e.ts_ms, e.open, e.high, e.low, e.close, e.volume) for e in closed] == [
        (t0 * 1000, (t0 + 60) * 1000, 100.0, 103.0, 99.0, 102.0, 9.0),
        ((t0 + 60) * 1000, (t0 + 120) * 1000, 102.0, 104.0, 101.0, 103.0, 4.0)]
    assert all(e.interval_s == 60 and e.symbol == "BTC_USDT" for e in closed) and feed.bad_frames == 1


async def test_malformed_frames_skipped_feed_survives(fake, running_feed):
    feed, watcher, _ = running_feed
    await fake.wait_subscribed("push.deal", "BTC_USDT")  # "connected" is set once the subscriptions are sent
    await fake.push("{not json")
    await fake.push({"channel": "push.deal", "symbol": "BTC_USDT", "data": {"p": "NaN?", "v": 1, "T": 1}})
    await fake.push(deal(1.0))
    await watcher.until(lambda w: any(isinstance(e, TradeTick) for e in w.events))
    assert feed.bad_frames == 2 and feed.state == "connected"


async def test_text_ping_sent_periodically(fake, running_feed):
    await fake.wait_ws(lambda f: sum(1 for m in f.ws_received if m == {"method": "ping"}) >= 3)


async def test_reconnect_after_drop_with_resync(fake, running_feed, sleeps):
    feed, watcher, resyncs = running_feed
    await fake.close_ws()
    await watcher.until(lambda w: "resynced" in w.states())
    assert fake.ws_connects == 2 and resyncs == [1]
    states = watcher.states()
    assert states.index("reconnecting") < states.index("connected", 1) < states.index("resynced")
    assert len(sleeps.delays) == 1 and 0.005 <= sleeps.delays[0] <= 0.01  # jittered initial back-off
    await fake.wait_ws(lambda f: sum(1 for m in f.ws_received if m.get("method") == "sub.deal") == 2)  # resubscribed


async def test_reconnect_after_stall_with_resync(fake, running_feed):
    feed, watcher, resyncs = running_feed
    fake.ws_stalled = True  # no pushes, no pongs
    await watcher.until(lambda w: "stalled" in w.states())
    fake.ws_stalled = False
    await watcher.until(lambda w: "resynced" in w.states())
    assert fake.ws_connects >= 2 and resyncs


async def test_pongs_without_market_data_are_a_stall(fake, mexc_config, bus, clock):
    """Issue 19: pushes stopped while pongs kept coming, and nothing noticed (a pong counted as a message)."""
    cfg = mexc_config.model_copy(update={"ws_data_stall_s": 0.3})
    feed = MexcFeed(cfg, bus, clock, symbols=["BTC_USDT"])
    states: list[tuple[str, str]] = []
    bus.subscribe(lambda e: states.append((e.state, e.detail)) if isinstance(e, FeedStateChanged) else None)
    fake.ws_stall_pushes = True  # pongs answered, no data at all
    task = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(_until(lambda: any(s == "stalled" for s, _ in states)), 5.0)
        [why] = [d for s, d in states if s == "stalled"][:1]
        assert "no market data" in why and "pongs still answered" in why
        assert any(m == {"method": "ping"} for m in fake.ws_received)  # the pings were answered all along
        await fake.wait_ws(lambda f: f.ws_connects >= 2)  # and it reconnects
    finally:
        await feed.shutdown()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


def test_backoff_doubles_and_caps(mexc_config, bus, clock):
    import random

    cfg = mexc_config.model_copy(update={"ws_reconnect_initial_s": 1.0, "ws_reconnect_max_s": 30.0})
    feed = MexcFeed(cfg, bus, clock, symbols=[], rng=random.Random(3))
    delays = [feed.backoff_s(a) for a in range(8)]
    assert all(0.5 * min(2**a, 30) <= d <= min(2**a, 30) for a, d in enumerate(delays))
    assert max(delays) <= 30


async def test_private_login_and_order_push(fake, mexc_config, bus, clock, rest):
    watcher = Watcher(bus)
    stream = MexcUserStream(mexc_config, bus, clock, signer=rest.signer, symbols=["BTC_USDT"],
                            request_time_ms=rest.request_time_ms)
    task = asyncio.create_task(stream.run())
    try:
        await watcher.until(lambda w: "logged_in" in w.states("mexc-private"))
        filt = [m for m in fake.ws_received if m.get("method") == "personal.filter"]
        assert filt and filt[0]["param"]["filters"][0] == {"filter": "order", "rules": ["BTC_USDT"]}
        await fake.push({"channel": "push.personal.order", "ts": 5, "data": {
            "orderId": 7000000000000000009, "symbol": "BTC_USDT", "side": 3, "orderType": 5, "vol": 2, "state": 3,
            "dealVol": 2, "dealAvgPrice": 60000.5, "externalOid": "e-1"}})
        await watcher.until(lambda w: any(isinstance(e, OrderUpdated) for e in w.events))
    finally:
        await stream.shutdown()
        await asyncio.wait_for(task, 5)


async def test_private_login_refused_falls_back_to_polling(fake, mexc_config, bus, clock, rest):
    watcher = Watcher(bus)
    polls: list[int] = []

    async def poll() -> None:
        polls.append(1)

    stream = MexcUserStream(mexc_config, bus, clock, signer=Signer("mx0vTESTAPIKEY000001", "wrong"), symbols=["BTC_USDT"],
                            poll=poll, request_time_ms=rest.request_time_ms)
    task = asyncio.create_task(stream.run())
    try:
        await watcher.until(lambda w: "login_failed" in w.states("mexc-private"))
        first = len(polls)
        for _ in range(3):
            clock.advance(mexc_config.poll_interval_s)
            await asyncio.wait_for(_until(lambda: len(polls) > first), 5)
            first = len(polls)
        assert stream.login_refused and len(polls) >= 4
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _until(pred) -> None:
    while not pred():
        await asyncio.sleep(0)


async def test_no_keys_means_polling_only(mexc_config, bus, clock):
    cfg = mexc_config.model_copy(update={"api_key": None, "api_secret": None})
    polls: list[int] = []
    stream = MexcUserStream(cfg, bus, clock, signer=None, symbols=[], poll=lambda: polls.append(1))
    task = asyncio.create_task(stream.run())
    await asyncio.wait_for(_until(lambda: polls), 5)
    assert stream.state == "polling"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_frames_of_an_unused_kind_are_counted_and_warned_about_once_per_kind(fake, running_feed, caplog):
    feed, watcher, _ = running_feed
    await fake.wait_subscribed("push.deal", "BTC_USDT")
    caplog.set_level("DEBUG", logger="tui_trader.venues.mexc.ws_session")
    for frame in ({"channel": "brand.new", "data": {}}, {"channel": "brand.new", "data": {}}, {"data": {"p": 1}},
                  deal(1.0)):  # (the fake sends a push.* channel only to its subscribers)
        await fake.push(frame)
    await watcher.until(lambda w: any(isinstance(e, TradeTick) for e in w.events))
    said = [(r.levelname, r.getMessage()) for r in caplog.records if "skipped" in r.getMessage()]
    assert [level for level, _ in said] == ["WARNING", "DEBUG", "WARNING"], said
    assert "brand.new" in said[0][1] and "without a channel" in said[2][1]
    assert feed.bad_frames == 3 and feed.state == "connected"


def test_the_signer_scrubs_its_key_and_secret_from_any_text():
    from tests.venues.mexc.fake_exchange import API_KEY, SECRET

    signer = Signer(API_KEY, SECRET)
    text = signer.scrub(f"apiKey={API_KEY} sig of {SECRET}; again {API_KEY}")
    assert API_KEY not in text and SECRET not in text and text.count("<api key>") == 2 and "<secret>" in text
    assert signer.scrub("nothing secret") == "nothing secret"


async def test_a_login_refusal_echoing_the_key_is_said_without_it(mexc_config, bus, clock, caplog):
    from tests.venues.mexc.fake_exchange import API_KEY, SECRET

    watcher = Watcher(bus)
    stream = MexcUserStream(mexc_config, bus, clock, signer=Signer(API_KEY, SECRET), symbols=["BTC_USDT"])
    stream.on_control({"channel": "rs.login", "data": f"apiKey {API_KEY} not allowed from this IP"})
    [refused] = [e for e in watcher.events if isinstance(e, FeedStateChanged) and e.state == "login_failed"]
    assert "<api key> not allowed" in refused.detail and API_KEY not in refused.detail and API_KEY not in caplog.text
