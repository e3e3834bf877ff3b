"""Bench: liquidation watchdog under load - tick-to-close-sent latency, cost per tick, event-loop lag.

200 open positions over 20 symbols: one position per (symbol, side) is all a venue account holds, so
the bench runs 5 accounts (bus + SimClock + paper venue + cache + execution + watchdog each), every
one with a long and a short on each of the 20 symbols, and feeds each market event to all five
(as five paper sessions would see the same feed). 5,000 market events per second (fair price and
trade alternating) are replayed in real time for DURATION_S seconds, up to FRAME per loop turn; after 1 s, 4 symbols spike up
(their shorts cross the auto-close distance) and 2 spike down (their longs cross).

* tick-to-close-sent: from publishing the crossing tick to the paper venue's `place_order` being
  called with the reduce-only close (`time.perf_counter_ns`), per crossing position.
* watchdog cost per tick: time inside the watchdog's tick handlers, per market event (all five
  accounts, 200 positions), and per position checked.
* event-loop lag: a 5 ms wall-clock ticker's lateness while the replay runs.
* REST fallback: the live stack on the fake MEXC; the stream goes silent while the price runs toward a
  3x short's liquidation: from the last pushed price to the close sent (`rest_fallback_stall_to_close_ms`).
Last line: one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from decimal import Decimal

from tui_trader.domain.config import FeesConfig, PaperConfig, WatchdogConfig
from tui_trader.domain.events import MarkPriceTick, PositionChanged, TradeTick
from tui_trader.domain.models import Instrument, Side
from tui_trader.engine.bus import EventBus
from tui_trader.engine.cache import Cache
from tui_trader.engine.clock import SimClock
from tui_trader.engine.execution import Execution
from tui_trader.engine.watchdog import LiquidationWatchdog
from tui_trader.store.memory import MemoryStore
from tui_trader.venues.paper.venue import PaperVenue

T0 = 1_700_000_000_000
FRAME = 4  # market events handed over per loop turn (a WS frame carries a few)
ACCOUNTS, SYMBOLS, RATE, DURATION_S = 5, [f"B{i:02d}_USDT" for i in range(20)], 5_000, 4.0
SPIKE_UP, SPIKE_DOWN = {"B00_USDT": 1.22, "B05_USDT": 1.22, "B10_USDT": 1.23, "B15_USDT": 1.22}, {"B03_USDT": 0.73, "B08_USDT": 0.72}
INSTR = {s: Instrument(s, price_unit=Decimal("0.0001"), maintenance_margin_rate=Decimal("0.01")) for s in SYMBOLS}


class Account:
    """One venue account: the engine stack the console builds, with timing hooks."""

    def __init__(self, bench: Bench) -> None:
        self.bus, self.clock, self.cache = EventBus(), SimClock(T0), None
        self.cache = Cache(self.bus)
        self.execution = Execution(self.bus, self.clock, None, MemoryStore(), self.cache)  # type: ignore[arg-type]
        self.venue = PaperVenue(self.bus, paper=PaperConfig(latency_ms=0, slippage_bps=0), fees=FeesConfig(),
                                starting_balance=Decimal(10**7), instruments=INSTR, report=self.execution.report)
        self.execution.venue = self.venue
        self.wd = LiquidationWatchdog(self.bus, self.clock, self.cache, self.execution, WatchdogConfig(), venue=self.venue,
                                      subscribe=False)
        self.bus.subscribe(self.wd.on_position, [PositionChanged])
        self.bus.subscribe(bench.timed(self.wd.on_mark), [MarkPriceTick])
        self.bus.subscribe(bench.timed(self.wd.on_trade), [TradeTick])
        place, close = self.venue.place_order, self.execution.close

        async def timed_place(order):
            if order.reduce_only:
                bench.latencies_ns.append(time.perf_counter_ns() - bench.trigger_ns.pop((id(self), order.symbol, order.side.position_side)))
            return await place(order)

        def timed_close(intent):  # the watchdog calls this while the crossing tick is dispatched
            bench.trigger_ns.setdefault((id(self), intent.symbol, intent.side), bench.tick_ns)
            return close(intent)

        self.venue.place_order = timed_place  # type: ignore[method-assign]
        self.execution.close = timed_close  # type: ignore[method-assign]

    async def open_positions(self) -> None:
        for sym in SYMBOLS:
            self.bus.publish(MarkPriceTick(T0, sym, 1.0))
            self.bus.publish(TradeTick(T0, sym, 1.0, 1.0))
            for side in (Side.LONG, Side.SHORT):
                pos, _ = self.venue.ledger.open(INSTR[sym], side, Decimal(1000), Decimal(1), 3, Decimal(0), T0, f"acct:{sym}")
                self.execution.report(PositionChanged(T0, self.venue.ledger.snapshot(pos, Decimal(1), T0)))
        await self.execution.idle()


class Bench:
    def __init__(self) -> None:
        self.latencies_ns: list[int] = []
        self.trigger_ns: dict[tuple, int] = {}
        self.tick_ns = 0
        self.handler_ns = 0

    def timed(self, handler):
        def run(ev):
            t = time.perf_counter_ns()
            handler(ev)
            self.handler_ns += time.perf_counter_ns() - t

        return run


def ticks(n: int, rng: random.Random):
    """(ts_ms, symbol, price, is_mark): a random walk per symbol, spikes after 1 s."""
    price = dict.fromkeys(SYMBOLS, 1.0)
    for i in range(n):
        sym = SYMBOLS[i % len(SYMBOLS)]
        t_s = i / RATE
        if t_s >= 1.0 and sym in SPIKE_UP:
            p = SPIKE_UP[sym]
        elif t_s >= 1.0 and sym in SPIKE_DOWN:
            p = SPIKE_DOWN[sym]
        else:
            p = price[sym] = price[sym] * (1 + rng.uniform(-0.0005, 0.0005))
        yield T0 + 1000 + i * 1000 // RATE, sym, p, (i // len(SYMBOLS)) % 2 == 0


async def replay(bench: Bench, accounts: list[Account], n: int) -> list[float]:
    lags: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append((time.perf_counter() - t - 0.005) * 1000)

    lag_task = asyncio.create_task(ticker())
    events = list(ticks(n, random.Random(7)))
    start, i = time.perf_counter(), 0
    while i < n:
        due = min(n, int((time.perf_counter() - start) * RATE) + 1)
        frame_end = min(due, i + FRAME)  # a feed hands over a few events per frame, then yields
        while i < frame_end:
            ts, sym, p, is_mark = events[i]
            bench.tick_ns = time.perf_counter_ns()
            for acct in accounts:
                acct.clock.advance_to(ts)
                acct.bus.publish(MarkPriceTick(ts, sym, p) if is_mark else TradeTick(ts, sym, p, 1.0))
            for acct in accounts:  # as MexcFeed does between messages: a close just started goes out first
                await acct.bus.give_turn()
            i += 1
        await asyncio.sleep(0 if i < due else 0.0005)
    running = False
    await lag_task
    for acct in accounts:
        await acct.execution.idle()
    return lags


def microbench_cost(acct: Account, n: int = 200_000) -> float:
    """ns per position checked on the no-change path (40 positions, 2 per symbol, per account)."""
    evs = [MarkPriceTick(T0, s, 1.0) for s in SYMBOLS]
    t = time.perf_counter_ns()
    for k in range(n):
        acct.wd.on_mark(evs[k % len(evs)])
    return (time.perf_counter_ns() - t) / n / 2


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


async def main() -> dict:
    bench = Bench()
    accounts = [Account(bench) for _ in range(ACCOUNTS)]
    workers = [asyncio.create_task(a.execution.run()) for a in accounts]
    for acct in accounts:
        await acct.open_positions()
    positions = sum(len(a.wd.watches) for a in accounts)
    n = int(RATE * DURATION_S)
    bench.handler_ns = 0
    wall = time.perf_counter()
    lags = await replay(bench, accounts, n)
    wall = time.perf_counter() - wall
    lat_us = [x / 1000 for x in bench.latencies_ns]
    crossing = ACCOUNTS * (len(SPIKE_UP) + len(SPIKE_DOWN))
    flat = sum(1 for a in accounts for s in list(SPIKE_UP) + list(SPIKE_DOWN)
               for side in (Side.SHORT if s in SPIKE_UP else Side.LONG,) if a.cache.position(s, side) is None)
    cost_us = bench.handler_ns / n / 1000
    per_pos_ns = microbench_cost(accounts[0])
    for w in workers:
        w.cancel()
    for a in accounts:
        await a.execution.cancel_all_tasks()
    await asyncio.gather(*workers, return_exceptions=True)
    print(f"positions watched: {positions} over {len(SYMBOLS)} symbols ({ACCOUNTS} accounts)")
    print(f"market events replayed: {n} in {wall:.2f} s wall ({n / wall:,.0f}/s, target {RATE:,}/s)")
    print(f"positions crossing: {crossing}; closes sent: {len(lat_us)}; flat at the end: {flat}")
    print(f"tick-to-close-sent p50: {pct(lat_us, 50):.1f} us")
    print(f"tick-to-close-sent p99: {pct(lat_us, 99):.1f} us  (max {max(lat_us, default=float('nan')):.1f} us)")
    print(f"watchdog cost per market event (200 positions, 5 accounts): {cost_us:.2f} us")
    print(f"watchdog no-change check per position: {per_pos_ns:.0f} ns")
    print(f"event-loop lag p99: {pct(lags, 99):.2f} ms (p50 {statistics.median(lags):.2f} ms, {len(lags)} samples)")
    return {"positions": positions, "ticks": n, "closes_sent": len(lat_us), "crossing_positions": crossing, "flat": flat,
            "tick_to_close_p50_us": round(pct(lat_us, 50), 1), "tick_to_close_p99_us": round(pct(lat_us, 99), 1),
            "watchdog_cost_per_tick_us": round(cost_us, 3), "watchdog_cost_per_position_ns": round(per_pos_ns),
            "loop_lag_p99_ms": round(pct(lags, 99), 2)}


async def rest_fallback() -> dict:
    """The stream stalls while the price runs toward liquidation: from the last pushed price to the close
    sent, the live stack on the fake MEXC (wall clock). Dominated by `watchdog.stale_after_s` (3 s)."""
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.live.filling_fake import SHORT, FillingMexc
    from tests.live.rig import LiveRig
    from tui_trader.engine.clock import WallClock

    fake = FillingMexc()
    await fake.start()
    try:
        fake.open_position("BTC_USDT", SHORT, 40, 60000.0, leverage=3)  # liquidation ~79 760
        with tempfile.TemporaryDirectory() as tmp:
            rig = await LiveRig(fake, Path(tmp) / "wd.sqlite", strategy=None, clock=WallClock()).start()
            try:
                rig.trade(60000.0)  # the last price the stream pushes
                last_pushed, zone_ms = fake.now_ms(), 0
                zone = float(fake.position("BTC_USDT", SHORT)["liquidatePrice"]) / 1.10  # auto-close: 10 % away
                for step in range(1, 400):  # then silence while the exchange's price runs up 50 / 50 ms
                    price = 60000.0 + 50.0 * step
                    fake.set_price("BTC_USDT", price)
                    if price >= zone and not zone_ms:
                        zone_ms = fake.now_ms()
                    await asyncio.sleep(0.05)
                    if fake.position("BTC_USDT", SHORT) is None:
                        break
                closes = [o for o in fake.orders if o["side"] == 2 and o["externalOid"]]
                sent = closes[0]["createTime"] if closes else 0
                print(f"REST fallback: stream silent; close sent {sent - last_pushed} ms after the last pushed price,"
                      f" {sent - zone_ms} ms after the price entered the auto-close zone; liquidations"
                      f" {len(fake.liquidations)}")
                return {"rest_fallback_stall_to_close_ms": sent - last_pushed,
                        "rest_fallback_zone_to_close_ms": sent - zone_ms, "rest_fallback_liquidations": len(fake.liquidations)}
            finally:
                await rig.stop()
    finally:
        await fake.stop()


if __name__ == "__main__":
    result = asyncio.run(main())
    result |= asyncio.run(rest_fallback())
    print(json.dumps(result))
    sys.exit(0 if result["closes_sent"] == result["crossing_positions"] else 1)
