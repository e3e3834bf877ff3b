"""Venues layer: replays recorded candles (one or more files, merged in time order) as live-like market data.

Each candle becomes up to four trade ticks (`intrabar.py`: the open, the two extremes in the order
that is pessimistic for an open position, the close). The side is read when the first extreme is
published (after the open tick has been handled, so a position filled on the open counts); it
comes from `position_side(symbol)` when given, else from the `PositionChanged` events the feed
sees on the bus. Ticks are spread evenly over the candle (open at +0, the extremes at +1/4 and
+1/2, the close at +3/4 of the interval) and a `CandleClosed` follows at the candle's end.

Every tick is published as the same event types the live MEXC feed emits: `TradeTick` (volume
split evenly over the ticks), `MarkPriceTick` (recorded candles have no fair price, so the trade
price stands in for it) and `BookTick` with a configured synthetic spread around the price (bar
data has no book; the spread is an assumption made explicit). Event timestamps are the *data*
time, which is the strategy's notion of now; with `data_clock` (a `SimClock`) the feed also moves
that clock to each tick's time before publishing it, so every timer of the trading components runs
on data time while `clock` paces the replay in wall time.

Several files (`sources`, each a path and a symbol) are merged into one stream ordered by event
time; the files of one symbol are one source, read as one series (`read_candle_series`). At one
instant every source's candle closes come first (a minute is over for all symbols before the
next one opens), then the ticks, in source order. Each file is read lazily, so memory does not
grow with the number of bars. `until_ms` stops before the first candle opening at or after it.

Pacing: `speed` 1 = real time, N = N times faster, 0 = as fast as possible (yielding to the loop
every few hundred ticks so nothing else starves). Pacing is measured against the start, so it does
not drift. With `backpressure` (execution), the feed waits after a tick until the work it started
(orders, fills, closes) is done, and likewise after moving the data clock (timers that fired, e.g.
the strategy's 1 s step, may have sent an order), so a replay at full speed trades exactly like a
backtest. `start_after_ms` skips candles already processed (session resume).

Tick filter (backtests only): `tick_filter`, None unless a backtest attaches one (`TickFilter`;
the backtest's `QuietStepAccelerator`, `backtest/quiet_steps.py`), is offered each step before it
is published and may take a tick, or a whole candle, off the bus. Without one every tick goes out.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

from tui_trader.domain.errors import DataError
from tui_trader.domain.events import (
    BookTick,
    CandlesClosed,
    Event,
    FeedStateChanged,
    MarkPriceTick,
    PositionChanged,
    TradeTick,
)
from tui_trader.domain.models import Side
from tui_trader.domain.strategy.schema import Strategy
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock, SimClock
from tui_trader.venues.candle_files import (
    Candle,
    detect_interval_s,
    read_candle_series,
    symbol_from_filename,
)
from tui_trader.venues.intrabar import (
    CLOSE_STEP,
    Step,
    bar_path,
    candle_closed,
    candle_ticks,
    path_from,
    tick_offsets_ms,
    trade_events,
)

log = logging.getLogger(__name__)

BUNDLED_SAMPLE = "bittrex_NXT-BTC_1m_20171130-20171210.csv.gz"
# the bundled pump_short's first entry on the sample is at 2017-12-02 22:52 UTC: a first start paces
# the replay from five minutes before it, so a new user sees a position within seconds
BUNDLED_PACED_FROM_MS = 1_512_254_820_000  # 2017-12-02 22:47 UTC


def bundled_data_path(name: str = BUNDLED_SAMPLE) -> Path:
    """Path of a data file shipped inside the package (see `tui_trader/data/SOURCE.md`)."""
    return Path(str(resources.files("tui_trader") / "data" / name))


def series_interval_s(paths: Sequence[Path], symbol: str) -> int:
    """The candle interval of one symbol's files, which must agree (60 s when none can tell)."""
    found = {path: detect_interval_s(path, default=None) for path in paths}
    intervals = {s for s in found.values() if s is not None}
    if len(intervals) > 1:
        listed = ", ".join(f"{path.name} {s} s" for path, s in found.items() if s is not None)
        raise DataError(f"the files of {symbol} have different candle intervals ({listed}): one series needs one interval")
    return intervals.pop() if intervals else 60


def check_bar_data(feed: ReplayFeed, strategy: Strategy | None) -> None:
    """A bar-mode strategy steps on candles of its own interval only, each once: replaying others,
    or the file again, would never step it. `DataError` naming the file and both intervals."""
    if strategy is None or not strategy.bar_mode:
        return
    if feed.loop:  # the candles come round again, older than the last one counted: never stepped again
        raise DataError(f"replay.loop: a bar strategy ({strategy.strategy_name}) counts each candle once - replaying"
                        " the file again would never step it; set loop = false")
    for paths, interval in zip(feed.files, feed.intervals_s):
        if interval != strategy.bar_interval_s:
            raise DataError(f"{paths[0].name} holds {interval} s candles; {strategy.strategy_name} is evaluated on "
                            f"{strategy.bar_interval} bars ({strategy.bar_interval_s} s)")


class Backpressure(Protocol):
    """Execution's view for the feed: is anything a tick started still pending? wait for it."""

    def has_work(self) -> bool: ...

    async def idle(self) -> None: ...


TAKEN_NONE, TAKEN_BOOK, TAKEN_ALL = 0, 1, 2  # `TickFilter.take_tick`'s answers


class TickFilter(Protocol):
    """What a backtest may attach as `ReplayFeed.tick_filter` to keep ticks and whole candles no
    one needs off the bus (`backtest/quiet_steps.py`). None everywhere else: every tick is published.

    Steps are (time, k, source index, candle): k = 0 .. ticks-1 a candle's ticks, `CLOSE_STEP` its
    close. A filter that takes data hands it to whoever needs it itself."""

    def on_step(self, ts_ms: int, k: int, index: int, candle: Candle) -> bool:
        """Every step as the stream yields it, before the data clock moves to it. True: the step's
        candle is the filter's (taken with an earlier step): the feed skips it and the candle's
        remaining steps."""
        ...

    def take_candle(self, index: int, candle: Candle) -> bool:
        """At the open of `candle` (source `index`), the data clock at its time: True if the filter
        takes the whole candle - its ticks and its close; none of them is published."""
        ...

    def take_tick(self, symbol: str, ts_ms: int, price: float, qty: float, bid: float, ask: float,
                  aggressor: str) -> int:
        """A tick about to be published as book, trade and mark: `TAKEN_ALL` (none of them is
        published), `TAKEN_BOOK` (the book is the filter's: trade and mark are published) or
        `TAKEN_NONE` (all three are)."""
        ...

    def finish(self, failed_after: Step | None) -> None:
        """The stream ended; `failed_after`: the last step yielded before a file turned bad."""
        ...


class StepMerge:
    """The sources' steps in time order (as `heapq.merge`), able to show the other sources' next
    steps (`others`). A source's generator is resumed only when its next step is needed, so it
    sees what the consumer decided about the step it yielded last (`ReplayFeed._taken`)."""

    def __init__(self, streams: list[Iterator[Step]]) -> None:
        self._heap: list[tuple[Step, Iterator[Step]]] = []
        for stream in streams:
            step = next(stream, None)
            if step is not None:
                self._heap.append((step, stream))
        heapq.heapify(self._heap)  # (steps of different sources never compare equal: the index differs)
        self._resume: Iterator[Step] | None = None
        self._last: Step | None = None
        self.failed_after: Step | None = None  # a source's file turned bad: the last step it gave

    def __iter__(self) -> StepMerge:
        return self

    def __next__(self) -> Step:
        heap = self._heap
        if self._resume is not None:
            try:
                step = next(self._resume, None)
            except Exception:
                self.failed_after = self._last
                raise
            if step is not None:
                heapq.heappush(heap, (step, self._resume))
            self._resume = None
        if not heap:
            raise StopIteration
        step, self._resume = heapq.heappop(heap)
        self._last = step
        return step

    def others(self) -> list[Step]:
        """The next step of every source but the one that yielded last."""
        return [step for step, _ in self._heap]


class ReplayFeed:
    """A `Service` publishing recorded candles as ticks on the bus."""

    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        path: Path | str | None = None,
        *,
        symbol: str | None = None,
        sources: Sequence[tuple[Path | str, str | None]] | None = None,
        speed: float = 60.0,
        ticks_per_candle: int = 4,
        spread_bps: float = 10.0,
        loop: bool = False,
        start_after_ms: int = 0,
        until_ms: int | None = None,
        paced_from_ms: int = 0,
        name: str = "replay",
        data_clock: SimClock | None = None,
        backpressure: "Backpressure | None" = None,
        position_side: Callable[[str], Side | None] | None = None,
        close_after_bar: bool = False,
    ) -> None:
        self.bus = bus
        self.clock = clock  # paces the replay (wall time)
        self.data_clock = data_clock  # moved to each tick's data time: the trading components' "now"
        self.backpressure = backpressure  # lets execution finish what a tick started before the next one
        if sources is None:
            if path is None:
                raise ValueError("ReplayFeed needs a path or sources")
            sources = [(path, symbol)]
        series: dict[str, list[Path]] = {}  # symbol -> its files: one series (`read_candle_series`)
        for p, sym in sources:
            series.setdefault(sym or symbol_from_filename(Path(p)), []).append(Path(p))
        self.files = list(series.values())  # per source (symbol): its files
        self.symbols = list(series)
        self.symbol = self.symbols[0]
        self.speed = speed
        # bar mode: open and extremes inside the candle, then the close, traded after the candle's
        # CandleClosed (and after what that close started was sent): entries fill at the close
        self.close_after_bar = close_after_bar
        self.ticks_per_candle = ticks_per_candle
        self.half_spread = spread_bps / 20_000.0
        self.loop = loop
        self.start_after_ms = start_after_ms
        self.until_ms = until_ms
        self.paced_from_ms = paced_from_ms  # before it: full speed (the strategy warms up and trades), then `speed`
        self.name = name
        self.intervals_s = [series_interval_s(paths, sym) for paths, sym in zip(self.files, self.symbols)]
        self.interval_s = self.intervals_s[0]
        self.cursor_ms = start_after_ms  # open time of the last candle fully published
        self.candles_published = 0
        self.state = "idle"
        self._task: asyncio.Task[Any] | None = None  # the task replaying (cancelled by shutdown)
        self.tick_filter: TickFilter | None = None  # backtests only (see TickFilter); None: every tick is published
        self._taken = [False] * len(self.files)  # the candle a source just yielded was taken whole: skip its other steps
        self._merge: StepMerge | None = None
        self.pending_ms: int | None = None  # while the data clock moves to the next event: that event's time
        self.position_side = position_side or self._side_from_bus
        self._open_sides: dict[str, set[Side]] = {}
        if position_side is None:
            bus.subscribe(self._on_position, [PositionChanged], name=f"{name}.positions")

    def _on_position(self, ev: Event) -> None:
        assert isinstance(ev, PositionChanged)
        pos = ev.position
        sides = self._open_sides.setdefault(pos.symbol, set())
        if pos.is_flat:
            sides.discard(pos.side)
        else:
            sides.add(pos.side)

    def _side_from_bus(self, symbol: str) -> Side | None:
        sides = self._open_sides.get(symbol)
        return next(iter(sides)) if sides and len(sides) == 1 else None

    def first_candle_ms(self) -> int | None:
        """Open time of the first candle this feed will publish (None: there is none in range)."""
        firsts = []
        for paths in self.files:
            for candle in read_candle_series(paths):
                if candle.ts_ms > self.start_after_ms:
                    if self.until_ms is None or candle.ts_ms < self.until_ms:
                        firsts.append(candle.ts_ms)
                    break
        return min(firsts, default=None)

    def first_ts_ms(self) -> int:
        """Time of the first tick this feed will publish (start a data clock just before it)."""
        first = self.first_candle_ms()
        return self.start_after_ms if first is None else first

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.bus.publish(FeedStateChanged(self.clock.now_ms(), feed=self.name, state=state, detail=detail))

    async def run(self) -> None:
        self._task = asyncio.current_task()
        self._set_state("replaying", f"{self._describe()} at {self._speed_text()}")
        try:
            while True:
                await self._replay_once()
                if not self.loop:
                    break
                self.start_after_ms = 0
            self._set_state("finished", f"{self.candles_published} candles")
        except asyncio.CancelledError:
            self._set_state("stopped", f"after {self.candles_published} candles")
            raise
        except Exception as exc:  # a bad row, an unreadable file: the header and the log say so, then the core stops
            self._set_state("failed", str(exc)[:300])
            raise

    async def shutdown(self) -> None:
        """The core's stop: stop producing before the listeners write their last state (at full speed
        a replay left running kept changing what they were writing)."""
        task, self._task = self._task, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait([task])

    def _describe(self) -> str:
        return ", ".join(f"{' + '.join(p.name for p in paths)} as {sym}" for paths, sym in zip(self.files, self.symbols))

    def _speed_text(self) -> str:
        return "full speed" if self.speed <= 0 else f"{self.speed:g}x"

    def tick_offsets(self, index: int) -> list[int]:
        """Tick times within a candle of source `index`, ms after its open."""
        return tick_offsets_ms(self.intervals_s[index] * 1000, self._in_bar_ticks())

    def _in_bar_ticks(self) -> int:
        """Trades inside a candle: `ticks_per_candle`; bar mode: open and both extremes (the close after)."""
        return 3 if self.close_after_bar else self.ticks_per_candle

    def _steps(self, index: int) -> Iterator[Step]:
        """One source's events in time order: each candle's ticks, then its close."""
        paths = self.files[index]
        interval_ms = self.intervals_s[index] * 1000
        ticks = list(enumerate(self.tick_offsets(index)))
        after, until, taken = self.start_after_ms, self.until_ms, self._taken
        for candle in read_candle_series(paths):
            ts = candle.ts_ms
            if ts <= after:
                continue
            if until is not None and ts >= until:
                return
            for k, offset in ticks:
                yield (ts + offset, k, index, candle)
                if taken[index]:  # the consumer took the whole candle at its open step
                    break
            if taken[index]:
                taken[index] = False
                continue
            yield (ts + interval_ms, CLOSE_STEP, index, candle)

    def _merged(self) -> Iterator[Step]:
        if len(self.files) == 1:
            self._merge = None
            return self._steps(0)
        self._merge = StepMerge([self._steps(i) for i in range(len(self.files))])
        return self._merge

    def upcoming_steps(self) -> list[Step]:
        """(tick filters) The next step of every source but the one whose step is being handled
        (one source: none)."""
        return self._merge.others() if self._merge is not None else []

    def publish_closes(self, ts_ms: int, index: int, candles: Sequence[Candle]) -> None:
        """(tick filters) Publish consecutive closes of source `index`, taken with their candles,
        as one `CandlesClosed` at `ts_ms` (the last one's close), counted as published."""
        self.bus.publish(CandlesClosed(ts_ms, self.symbols[index], self.intervals_s[index], tuple(candles)))
        self.cursor_ms = candles[-1].ts_ms
        self.candles_published += len(candles)

    async def _replay_once(self) -> None:
        n = self._in_bar_ticks()
        publish = self.bus.publish
        syms = self.symbols
        intervals = self.intervals_s
        hs = self.half_spread
        side_of = self.position_side
        advance = self.data_clock.advance_to if self.data_clock is not None else None
        bp = self.backpressure
        prices: list[tuple[float, ...]] = [()] * len(syms)
        sieve = self.tick_filter
        taken = self._taken
        start_wall: float | None = None
        start_data = 0
        yielded_at = self.candles_published  # closes published since the last turn given to the loop: the difference
        steps = self._merged()
        try:
            for ts, k, index, candle in steps:
                if sieve is not None and sieve.on_step(ts, k, index, candle):
                    taken[index] = True  # its other ticks and its close: the filter's
                    continue
                if self.speed > 0 and ts >= self.paced_from_ms:
                    if start_wall is None:
                        start_wall, start_data = self.clock.time(), ts
                    delay = start_wall + (ts - start_data) / 1000.0 / self.speed - self.clock.time()
                    if delay > 0.001:
                        await self.clock.sleep(delay)
                        yielded_at = self.candles_published
                if advance is not None:
                    self.pending_ms = ts  # (timers firing now may rely on it: no market event before ts)
                    advance(ts)  # timers due before this event fire first ...
                    self.pending_ms = None
                    if bp is not None and bp.has_work():
                        await bp.idle()  # ... and what they started (an entry, a close) is sent before it
                sym = syms[index]
                if k == CLOSE_STEP:
                    publish(candle_closed(sym, candle, intervals[index]))
                    self.cursor_ms = candle.ts_ms
                    self.candles_published += 1
                    if self.close_after_bar:
                        if bp is not None and bp.has_work():
                            await bp.idle()  # what the close started (an entry) is at the venue before its trade
                        for ev in trade_events(sym, ts, candle.close, 0.0, candle.open, hs,
                                               prices[index][-1] if prices[index] else None):
                            publish(ev)
                else:
                    if sieve is not None and k == 0 and sieve.take_candle(index, candle):
                        taken[index] = True  # its other ticks and its close: the filter's
                        continue
                    if k <= 1:  # the extremes' order is decided once the open tick has been handled
                        side = side_of(sym) if k == 1 else None
                        bar = self.close_after_bar
                        prices[index] = bar_path(candle, side) if bar else candle_ticks(candle, n, side)
                    price = prices[index][k]
                    bid, ask, qty = price * (1 - hs), price * (1 + hs), candle.volume / n  # (bar mode: the close: 0)
                    aggressor = "buy" if price >= candle.open else "sell"
                    took = TAKEN_NONE if sieve is None else sieve.take_tick(sym, ts, price, qty, bid, ask, aggressor)
                    if took == TAKEN_ALL:
                        continue
                    if took == TAKEN_NONE:
                        publish(BookTick(ts, sym, bid, ask))
                    publish(TradeTick(ts, sym, price, qty, aggressor, path_from(prices[index], k)))
                    publish(MarkPriceTick(ts, sym, price))
                if bp is not None and bp.has_work():
                    await bp.idle()
                if self.candles_published - yielded_at >= 256:
                    yielded_at = self.candles_published
                    await asyncio.sleep(0)
        finally:  # (also when a file turns bad mid-way: what the filter took before it counts)
            if sieve is not None:
                sieve.finish(self._merge.failed_after if self._merge is not None else None)
