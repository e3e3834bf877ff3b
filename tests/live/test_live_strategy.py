"""The bundled strategy trades live (issue 20, item 3). Before: its Z1 needs RSI, computed from closed
candles, and the live feed made none; its S1 needs 1 800 s of warm-up and nothing loaded history, so
`pump_short` could never open a position on MEXC.

Here the console starts against the fake with 45 minutes of 1-minute candles on the exchange, loads
them at start (RSI defined before the first live message), then the real public socket carries
deals, the ticker and the kline stream through a pump: flat for a minute, +20 % in 60 s on 20x
volume, then a hold. The strategy must enter (a reduce-nothing OPEN_SHORT filled at the exchange)
inside the pump, minutes after start - not after a 30-minute warm-up - with RSI defined from
history and from candles the stream closed.
"""

from __future__ import annotations

import asyncio

from tests.live.filling_fake import SHORT
from tests.live.rig import SYM, LiveRig
from tui_trader.domain.events import CandleClosed, StartupChecked, TradeTick
from tui_trader.domain.strategy.warmup import warmup_s
from tui_trader.engine.strategy_runner import load_strategy
from tui_trader.venues.mexc.candles import MARGIN_CANDLES

HISTORY_MIN = 45
BASE = 60000.0


def _history(fake, minute0_s: int) -> None:
    """45 closed candles zig-zagging +-0.05 % around 60 000 (600 contracts a minute), and the candle in
    progress (the loader must leave that one to the stream)."""
    bars = []
    for i in range(HISTORY_MIN, 0, -1):
        o = BASE + (30.0 if i % 2 else -30.0)
        c = BASE - (30.0 if i % 2 else -30.0)
        bars.append((minute0_s - 60 * i, o, max(o, c) + 5, min(o, c) - 5, c, 600.0))
    bars.append((minute0_s, BASE, BASE, BASE, BASE, 10.0))
    fake.klines[SYM] = bars


async def test_bundled_strategy_live_loads_history_and_enters_within_a_pump(fake, tmp_path):
    strategy = load_strategy()  # tui_trader/data/pump_short.toml, as shipped
    rig = LiveRig(fake, tmp_path / "live.sqlite", strategy=strategy, feed=True, history=True)
    start_ms = rig.clock.now_ms()
    minute0 = start_ms // 60_000 * 60
    _history(fake, minute0)
    await rig.start()
    try:
        runner = rig.stack.runner
        assert runner is not None
        [loaded] = [e for e in rig.of(StartupChecked) if e.check == "history"]
        needed = int(runner.history_s() // 60) + MARGIN_CANDLES  # the strategy's longest window (30 min) and a margin
        assert loaded.status == "ok" and f"{needed} 1 m candles" in loaded.detail and needed < HISTORY_MIN
        rsi = runner.indicators[SYM].indicators["rsi"]
        assert rsi.value(start_ms) is not None  # defined from history, before any live message
        await fake.wait_ws(lambda f: any(m.get("method") == "sub.kline" for m in f.ws_received))

        candle: list[float] = []  # the stream's candle in progress: open, high, low, close, volume
        window = [minute0]

        async def second(price: float, volume: float) -> None:
            now = rig.clock.now_ms()
            fake.set_price(SYM, price)
            if now // 60_000 * 60 != window[0] or not candle:
                window[0] = now // 60_000 * 60
                candle[:] = [price, price, price, price, 0.0]
            candle[1], candle[2], candle[3] = max(candle[1], price), min(candle[2], price), price
            candle[4] += volume
            seen = len(rig.of(TradeTick))
            await fake.push({"channel": "push.deal", "symbol": SYM, "ts": now,
                             "data": [{"p": price, "v": volume, "T": 1, "O": 1, "M": 2, "t": now}]})
            await fake.push({"channel": "push.ticker", "symbol": SYM, "ts": now,
                             "data": {"symbol": SYM, "fairPrice": price, "bid1": price - 0.5, "ask1": price + 0.5}})
            await fake.push_kline(SYM, window[0], *candle)
            deadline = asyncio.get_running_loop().time() + 5
            while len(rig.of(TradeTick)) == seen:  # the socket delivered this second's deal
                assert asyncio.get_running_loop().time() < deadline, "the public socket delivered nothing"
                await asyncio.sleep(0.005)
            rig.advance(1.0)
            await rig.idle_or_waiting()

        def entries() -> list[dict]:
            return [o for o in fake.orders if o["side"] == 3 and o["externalOid"]]

        for _ in range(60):
            await second(BASE, 10.0)
        assert not entries()
        pump_start = rig.clock.now_ms()
        for s in range(1, 61):
            await second(BASE * (1 + 0.2 * s / 60), 200.0)
        rsi_at_entry = None
        for _ in range(300):  # O1's entry window
            await second(BASE * 1.2, 100.0)
            if entries():
                rsi_at_entry = rsi.value(rig.clock.now_ms())
                break
        [entry] = entries()
        entered_ms = entry["createTime"]
        assert pump_start < entered_ms <= pump_start + (60 + 300) * 1000
        assert entered_ms - start_ms < warmup_s(strategy) * 1000  # warmed up by history, not by waiting 30 min
        assert entry["state"] == 3 and fake.position(SYM, SHORT) is not None  # filled: the exchange holds the short
        assert rsi_at_entry is not None and rsi_at_entry >= 30
        closed = [e for e in rig.of(CandleClosed) if e.symbol == SYM]
        assert len(closed) >= 2 and all(e.open_ms >= minute0 * 1000 for e in closed)  # the stream's own candles
        assert {e.open_ms for e in closed} == set(range(closed[0].open_ms, closed[-1].open_ms + 1, 60_000))
    finally:
        await rig.stop()


async def test_a_reconnect_leaves_no_hole_and_no_stale_candle_in_the_live_series(fake, tmp_path):
    """The socket drops for 2.5 minutes: the candle in progress at the drop is not closed with the values it
    had then, and the candles closed meanwhile come from REST on reconnect - the series stays whole."""
    rig = LiveRig(fake, tmp_path / "live.sqlite", strategy=load_strategy(), feed=True, history=True)
    minute0 = rig.clock.now_ms() // 60_000 * 60
    _history(fake, minute0)
    await rig.start()
    try:
        await fake.wait_ws(lambda f: any(m.get("method") == "sub.kline" for m in f.ws_received))
        await fake.push_kline(SYM, minute0, BASE, BASE + 50, BASE, BASE + 40, 100.0)  # in progress at the drop
        await fake.close_ws()
        rig.advance((minute0 * 1000 + 150_000 - rig.clock.now_ms()) / 1000)  # to minute0 + 2.5 min: meanwhile the
        # exchange finished minute0 differently and closed the next minute
        fake.klines[SYM][-1] = (minute0, BASE, BASE + 90, BASE - 20, BASE + 70, 700.0)
        fake.klines[SYM] += [(minute0 + 60, BASE + 70, BASE + 80, BASE + 60, BASE + 75, 650.0),
                             (minute0 + 120, BASE + 75, BASE + 75, BASE + 75, BASE + 75, 5.0)]  # still forming
        await fake.wait_ws(lambda f: f.ws_connects >= 2)
        await fake.wait_subscribed("push.kline", SYM)  # the new socket's: the old one's went with it
        deadline = asyncio.get_running_loop().time() + 5
        while len(rig.of(CandleClosed)) < 2:
            assert asyncio.get_running_loop().time() < deadline, f"no backfill: {rig.of(CandleClosed)}"
            await asyncio.sleep(0.005)
        await fake.push_kline(SYM, minute0 + 120, BASE + 75, BASE + 85, BASE + 75, BASE + 80, 30.0)
        await fake.push_kline(SYM, minute0 + 180, BASE + 80, BASE + 80, BASE + 80, BASE + 80, 1.0)
        while len(rig.of(CandleClosed)) < 3:
            assert asyncio.get_running_loop().time() < deadline + 5, "the stream closed nothing after the backfill"
            await asyncio.sleep(0.005)
        closed = rig.of(CandleClosed)
        assert [e.open_ms // 1000 - minute0 for e in closed] == [0, 60, 120]
        assert (closed[0].high, closed[0].close, closed[0].volume) == (BASE + 90, BASE + 70, 700.0)  # REST's, not stale
        assert (closed[2].close, closed[2].volume) == (BASE + 80, 30.0)
    finally:
        await rig.stop()
