"""Bench: the dashboard under load - event-loop lag with and without the UI, and key-to-close-sent for close-all.

    python bench/ui_load.py                 # 10 s per phase
    python bench/ui_load.py --seconds 3     # smoke run
    python bench/ui_load.py --profile       # also profile the UI phase (pyinstrument, text on stderr)

The console's own paper core (`build_core`, strategy off, the bundled replay paced at real time from its
first candle so it stays quiet, a fresh data directory per phase) holding 50 positions: a long and a short on each of 25
symbols, opened on the paper venue's ledger. A feed task replays 5,000 market events per second
(fair price and trade alternating, a small random walk per symbol: no stop, no liquidation, no
auto-close), up to FRAME per loop turn, moving the data clock like the replay feed does.

* event-loop lag: a probe sleeps PROBE_S in a loop; how late it wakes (p50 / p99), while the feed
  runs, once with the core only ("headless") and once with `TraderApp(core)` running headless
  (`App.run_test(size=(200, 50))`, which repaints as in a terminal, to a null driver).
* close-all: with the UI, `K`, `CLOSE` typed, Enter; from the Enter key press (the key that sends it) to
  the last reduce-only close the paper venue receives (`place_order` timed, `time.perf_counter`), and
  to flat and to an empty positions table. Not from `K`: the pilot waits for the app to be idle after
  each typed key, which under this load says nothing about the app. For the same reason the Enter press
  runs as its own task while the round is timed: `pilot.press` returns only after two
  `wait_for_idle(0)` calls, and a process that never goes idle (the feed) makes each last its 1 s cap,
  so awaiting it first would add ~2 s to "flat" whatever the core did. Flat is the moment the last
  position leaves the cache (an inline bus handler on `PositionChanged`, not a poll). Headless: from
  `facade.close_all()`. The feed keeps running throughout.

Targets (issue 21): lag p99 < 20 ms with the UI; close-all < 50 ms. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui_trader.app.settings import load_settings
from tui_trader.app.wiring import build_core
from tui_trader.domain.events import MarkPriceTick, PositionChanged, TradeTick
from tui_trader.domain.models import Instrument, Order, Side
from tui_trader.engine.core import TraderCore

RATE = 5_000  # market events per second
FRAME = 4  # market events handed over per loop turn (a WS frame carries a few)
PROBE_S = 0.005  # the lag probe's sleep
SYMBOLS = [f"U{i:02d}_USDT" for i in range(25)]  # x (long, short) = 50 positions
INSTR = {s: Instrument(s, price_unit=Decimal("0.0001"), maintenance_margin_rate=Decimal("0.01")) for s in SYMBOLS}
CLOSES = len(SYMBOLS) * 2
TIMEOUT_S = 30.0
QUIET_FROM = datetime(2000, 1, 1, tzinfo=UTC)  # the bundled replay paced at real time from its first candle


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


class Rig:
    """One paper core with 50 positions, a market-data feed and the timing hooks."""

    def __init__(self, data_dir: Path) -> None:
        os.environ["XDG_CONFIG_HOME"] = str(data_dir / "config")  # no user config, no user data touched
        os.environ["XDG_DATA_HOME"] = str(data_dir / "data")
        settings, _ = load_settings(None)
        self.settings = settings.model_copy(update={
            "strategy": settings.strategy.model_copy(update={"enabled": False}),
            "replay": settings.replay.model_copy(update={"speed": 1.0, "paced_from": QUIET_FROM}),
        })
        self.core: TraderCore = build_core(self.settings)
        self.stack = self.core.components["stack"]
        self.venue, self.clock = self.stack.venue, self.core.components["data_clock"]
        self.venue.instruments.update(INSTR)
        self.closes_sent: list[float] = []  # perf_counter of each reduce-only order the venue received
        self.flat_at: float | None = None  # perf_counter when the cache went flat this round
        self.core.bus.subscribe(self._on_position, [PositionChanged], name="bench.flat")
        self.events = 0
        self.running = False
        place = self.venue.place_order

        async def timed_place(order: Order) -> Order:
            if order.reduce_only:
                self.closes_sent.append(time.perf_counter())
            return await place(order)

        self.venue.place_order = timed_place
        self.prices = dict.fromkeys(SYMBOLS, 1.0)
        self.rng = random.Random(7)

    def _on_position(self, _: Any) -> None:  # inline, as published: the cache applied it, the store has it
        if not self.stack.cache.positions and self.flat_at is None:
            self.flat_at = time.perf_counter()

    async def open_positions(self) -> None:
        self._publish_all()
        now = self.venue.now_ms
        for sym in SYMBOLS:
            for side in (Side.LONG, Side.SHORT):
                pos, _ = self.venue.ledger.open(INSTR[sym], side, Decimal(100), Decimal(1), 3, Decimal(0), now, "bench")
                self.stack.execution.report(PositionChanged(now, self.venue.ledger.snapshot(pos, Decimal(1), now)))
        await self.stack.execution.idle()
        assert len(self.stack.cache.positions) == CLOSES, len(self.stack.cache.positions)
        self.flat_at = None

    def _publish_all(self) -> None:
        ts = max(self.clock.now_ms(), self.venue.now_ms) + 1
        self.clock.advance_to(ts)
        for sym in SYMBOLS:
            self.core.bus.publish(MarkPriceTick(ts, sym, 1.0))
            self.core.bus.publish(TradeTick(ts, sym, 1.0, 1.0))

    async def feed(self) -> None:
        """RATE events per second on the wall clock, at most FRAME per loop turn (catching up when late)."""
        bus, n_sym = self.core.bus, len(SYMBOLS)
        start, i = time.perf_counter(), 0
        base_ms = max(self.clock.now_ms(), self.venue.now_ms)
        while self.running:
            due = int((time.perf_counter() - start) * RATE) + 1
            end = min(due, i + FRAME)
            while i < end:
                sym = SYMBOLS[i % n_sym]
                p = self.prices[sym] = self.prices[sym] * (1 + self.rng.uniform(-0.0005, 0.0005))
                ts = max(base_ms + 1 + i * 1000 // RATE, self.clock.now_ms())
                self.clock.advance_to(ts)
                bus.publish(MarkPriceTick(ts, sym, p) if (i // n_sym) % 2 == 0 else TradeTick(ts, sym, p, 1.0))
                await bus.give_turn()
                i += 1
            self.events = i
            await asyncio.sleep(0 if i < due else 0.0005)

    async def measure_lag(self, seconds: float) -> list[float]:
        lags: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            await asyncio.sleep(PROBE_S)
            lags.append((time.perf_counter() - t - PROBE_S) * 1000)
        return lags

    async def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.perf_counter() + TIMEOUT_S
        while not condition():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{what} after {TIMEOUT_S} s")
            await asyncio.sleep(0.001)

    def flat(self) -> bool:
        return not self.stack.cache.positions

    def last_close_ms(self, t0: float) -> float:
        return (self.closes_sent[-1] - t0) * 1000


async def run_phase(ui: bool, seconds: float, rounds: int, profile: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        rig = Rig(Path(tmp))
        async with rig.core:
            await rig.open_positions()
            rig.running = True
            feeder = asyncio.create_task(rig.feed(), name="bench-feed")
            try:
                return await (_with_ui(rig, seconds, rounds, profile) if ui else _headless(rig, seconds, rounds))
            finally:
                rig.running = False
                await feeder


async def close_all_rounds(rig: Rig, rounds: int, send: Callable[[], Awaitable[float]],
                           table_rows: Callable[[], int] | None = None,
                           settle: Callable[[], Awaitable[None]] | None = None) -> dict[str, list[float]]:
    """`rounds` times: 50 positions open, `send()` (returns its start at once), the last close sent, flat,
    table empty; then `settle()` (the UI: the Enter press's own wait for idle) before the next round."""
    out: dict[str, list[float]] = {"sent": [], "flat": [], "table_empty": []}
    for k in range(rounds):
        if k:  # the next round's positions (the kill switch stays HALTED: the ledger opens them directly)
            await rig.open_positions()
            if table_rows is not None:
                await rig.wait_for(lambda: table_rows() == CLOSES, "the positions table not full")
        rig.closes_sent.clear()
        t0 = await send()
        await rig.wait_for(lambda: len(rig.closes_sent) >= CLOSES, "closes not all sent")
        out["sent"].append(rig.last_close_ms(t0))
        await rig.wait_for(rig.flat, "not flat")
        out["flat"].append(((rig.flat_at or time.perf_counter()) - t0) * 1000)
        if table_rows is not None:
            await rig.wait_for(lambda: table_rows() == 0, "the positions table not empty")
            out["table_empty"].append((time.perf_counter() - t0) * 1000)
        await rig.wait_for(lambda: not rig.stack.emergency.running, "the close-all not finished")  # else joined
        if settle is not None:
            await settle()
    return out


async def _headless(rig: Rig, seconds: float, rounds: int) -> dict[str, Any]:
    from tui_trader.app.facade import ConsoleFacade

    t_feed = time.perf_counter()
    lags = await rig.measure_lag(seconds)
    rate = rig.events / (time.perf_counter() - t_feed)
    facade = ConsoleFacade(rig.core)

    async def send() -> float:
        t0 = time.perf_counter()
        facade.close_all("BENCH")
        return t0

    return {"lags": lags, "rate": rate, **await close_all_rounds(rig, rounds, send)}


async def _with_ui(rig: Rig, seconds: float, rounds: int, profile: bool) -> dict[str, Any]:
    from tui_trader.app.tui.app import TraderApp

    app = TraderApp(rig.core)
    flushes: list[float] = []
    flush = app.flush

    def timed_flush() -> None:  # (the app's repaint timer calls the instance attribute set before mount)
        t = time.perf_counter()
        flush()
        flushes.append((time.perf_counter() - t) * 1000)

    app.flush = timed_flush  # type: ignore[method-assign]
    profiler: Any = nullcontext()
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled", interval=0.001)  # the whole loop, not one task
    async with app.run_test(size=(200, 50)) as pilot:
        await rig.wait_for(lambda: _rows(app) == CLOSES, "the positions table not full")
        t_feed, events0 = time.perf_counter(), rig.events
        flushes.clear()
        with profiler:
            lags = await rig.measure_lag(seconds)
        rate = (rig.events - events0) / (time.perf_counter() - t_feed)
        frames = list(flushes)

        enter: list[asyncio.Task[None]] = []

        async def send() -> float:
            await pilot.press("K")
            await pilot.press(*"CLOSE")
            assert not rig.closes_sent, "a close went out before Enter"
            t0 = time.perf_counter()
            # not awaited here: the press returns only once the (never idle) process has been watched for ~2 s
            enter.append(asyncio.create_task(pilot.press("enter"), name="bench-enter"))
            return t0

        async def settle() -> None:
            await enter.pop()

        closes = await close_all_rounds(rig, rounds, send, lambda: _rows(app), settle)
        await pilot.press("q")
    if profile:
        print(profiler.output_text(unicode=False, color=False, show_all=True), file=sys.stderr)
    return {"lags": lags, "rate": rate, "flushes": frames, **closes}


def _rows(app: Any) -> int:
    from tui_trader.app.tui.widgets.positions_table import PositionsTable

    tables = app.screen.query(PositionsTable)
    return tables.first().row_count if tables else -1


async def main(seconds: float, rounds: int, profile: bool) -> dict[str, Any]:
    headless = await run_phase(False, seconds, rounds, False)
    ui = await run_phase(True, seconds, rounds, profile)
    for name, r in (("core only", headless), ("with UI", ui)):
        lags = r["lags"]
        print(f"{name:9}: {r['rate']:,.0f} market events/s (target {RATE:,}),"
              f" loop lag p50 {statistics.median(lags):.2f} ms, p99 {pct(lags, 99):.2f} ms, max {max(lags):.2f} ms"
              f" ({len(lags)} samples)")
        print(f"{'':9}  close-all x{rounds}: last of {CLOSES} closes sent median {statistics.median(r['sent']):.1f} ms,"
              f" max {max(r['sent']):.1f} ms; flat median {statistics.median(r['flat']):.1f} ms")
    f = ui["flushes"]
    print(f"with UI  : repaints {len(f) / seconds:.1f}/s, TraderApp.flush p50 {statistics.median(f):.2f} ms,"
          f" max {max(f):.2f} ms (the frame's render comes after it, outside); positions table empty"
          f" {statistics.median(ui['table_empty']):.1f} ms after Enter (median)")
    result = {
        "positions": CLOSES, "seconds_per_phase": seconds, "close_all_rounds": rounds,
        "ticks_per_s": round(ui["rate"]), "ticks_per_s_headless": round(headless["rate"]),
        "loop_lag_p50_ms": round(statistics.median(ui["lags"]), 2), "loop_lag_p99_ms": round(pct(ui["lags"], 99), 2),
        "loop_lag_max_ms": round(max(ui["lags"]), 2),
        "loop_lag_p50_ms_headless": round(statistics.median(headless["lags"]), 2),
        "loop_lag_p99_ms_headless": round(pct(headless["lags"], 99), 2),
        "close_all_ms": round(statistics.median(ui["sent"]), 1), "close_all_max_ms": round(max(ui["sent"]), 1),
        "close_all_flat_ms": round(statistics.median(ui["flat"]), 1),
        "close_all_table_empty_ms": round(statistics.median(ui["table_empty"]), 1),
        "close_all_ms_headless": round(statistics.median(headless["sent"]), 1),
        "flush_p50_ms": round(statistics.median(f), 2), "flush_max_ms": round(max(f), 2),
    }
    result["targets_met"] = result["loop_lag_p99_ms"] < 20 and result["close_all_max_ms"] < 50
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="lag measurement per phase (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="close-alls of 50 positions per phase (default 5)")
    parser.add_argument("--profile", action="store_true", help="profile the UI phase (pyinstrument, stderr)")
    args = parser.parse_args()
    out = asyncio.run(main(args.seconds, max(1, args.rounds), args.profile))
    print(json.dumps(out))
