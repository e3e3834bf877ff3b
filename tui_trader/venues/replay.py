"""Venues layer: replays recorded candles (one or more files, merged in time order) as live-like market data.

Each candle becomes up to four trade ticks: the open, the two extremes, the close. The order of
the extremes is *pessimistic for the open position* of the candle's symbol (strategy.md §7), so
stops, liquidation and targets are tested the way that hurts: a short sees the high before the low,
a long the low before the high. With no position (or both sides open) the conventional OHLC order
applies: for a rising candle (close >= open) the low before the high, for a falling candle the
high before the low. The side is read when the first extreme is published (after the open tick
has been handled, so a position filled on the open counts); it comes from `position_side(symbol)`
when given, else from the `PositionChanged` events the feed sees on the bus. Paper replay and
backtests both run this feed, so both see the same path. Ticks are spread evenly over the candle (open at +0, the extremes at +1/4 and +1/2, the close at +3/4 of
the interval) and a `CandleClosed` follows at the candle's end. With `ticks_per_candle` 1 only the
close is sent; 2 sends open and close; 3 adds the first extreme.

Every tick is published as the same event types the live MEXC feed emits: `TradeTick` (volume
split evenly over the ticks), `MarkPriceTick` (recorded candles have no fair price, so the trade
price stands in for it) and `BookTick` with a configured synthetic spread around the price (bar
data has no book; the spread is an assumption made explicit). Event timestamps are the *data*
time, which is the strategy's notion of now; with `data_clock` (a `SimClock`) the feed also moves
that clock to each tick's time before publishing it, so every timer of the trading components runs
on data time while `clock` paces the replay in wall time.

Several files (`sources`, each a path and a symbol) are merged into one stream ordered by event
time, then by source order, a candle's close event before the next candle's open at the same
instant; each file is read lazily, so memory does not grow with the number of bars. `until_ms`
stops before the first candle opening at or after it.

Pacing: `speed` 1 = real time, N = N times faster, 0 = as fast as possible (yielding to the loop
every few hundred ticks so nothing else starves). Pacing is measured against the start, so it does
not drift. With `backpressure` (execution), the feed waits after a tick until the work it started
(orders, fills, closes) is done, and likewise after moving the data clock (timers that fired, e.g.
the strategy's 1 s step, may have sent an order), so a replay at full speed trades exactly like a
backtest. `start_after_ms` skips candles already processed (session resume).

Fast path (backtests): with an `absorber` (the strategy runner) and a `quiet_gate` saying nothing
but the latest price matters to anyone else (flat, no working order), each trade and book tick is
first offered to the absorber; one it takes (its quiet bounds cover it: no step would follow) is
not published. The latest absorbed book, trade and mark of each symbol are published - marked
for the absorber to ignore - before any other tick and before the absorber next steps, so every
other consumer holds the same latest prices as on the normal path whenever they can matter.
With one source on a simulated clock at full speed, whole candles go over in stretches: while
the absorber's `cover` (a trade band and the end of its quiet) holds every price of consecutive
candles, and no timer is due before their closes, their trades go to the absorber in one call and
their closes out as one `CandlesClosed` (in place of their `CandleClosed` events). Otherwise every
candle close is published as it comes.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

from tui_trader.domain.events import BookTick, CandleClosed, CandlesClosed, Event, FeedStateChanged, MarkPriceTick, PositionChanged, TradeTick
from tui_trader.domain.models import Side
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock, SimClock
from tui_trader.venues.candle_files import Candle, detect_interval_s, read_candles, symbol_from_filename

log = logging.getLogger(__name__)

BUNDLED_SAMPLE = "bittrex_NXT-BTC_1m_20171130-20171210.csv.gz"


def bundled_data_path(name: str = BUNDLED_SAMPLE) -> Path:
    """Path of a data file shipped inside the package (see `tui_trader/data/SOURCE.md`)."""
    return Path(str(resources.files("tui_trader") / "data" / name))


CLOSE_STEP = -1  # a candle's close event sorts before a tick of the same instant

Step = tuple[int, int, int, Candle]  # (event ts, source index, tick index or CLOSE_STEP, candle)


def candle_ticks(c: Candle, n: int = 4, side: Side | None = None) -> tuple[float, ...]:
    """Trade prices a candle is replayed as (see the module docstring for the order).

    `side` is the open position's side on the candle's symbol: its adverse extreme comes first.
    """
    if side is Side.SHORT:
        first, second = c.high, c.low
    elif side is Side.LONG:
        first, second = c.low, c.high
    elif c.close >= c.open:
        first, second = c.low, c.high
    else:
        first, second = c.high, c.low
    if n >= 4:
        return (c.open, first, second, c.close)
    if n == 3:
        return (c.open, first, c.close)
    if n == 2:
        return (c.open, c.close)
    return (c.close,)


class Backpressure(Protocol):
    """Execution's view for the feed: is anything a tick started still pending? wait for it."""

    def has_work(self) -> bool: ...

    async def idle(self) -> None: ...


class Absorber(Protocol):
    """The strategy runner's replay fast path (see `StrategyRunner.absorb_trade`)."""

    before_step: Callable[[], None] | None

    def absorb_trade(self, symbol: str, ts_ms: int, price: float, qty: float) -> bool: ...

    def absorb_book(self, symbol: str, ts_ms: int, bid: float, ask: float) -> bool: ...

    def absorb_quiet_tick(self, symbol: str, ts_ms: int, price: float, qty: float, bid: float, ask: float) -> bool: ...

    def cover(self, symbol: str, need_ms: int) -> tuple[float, float, int] | None: ...

    def absorb_ticks(self, symbol: str, times: list[int], prices: list[float], qtys: list[float], bid: float, ask: float) -> None: ...

    def already_has(self, event: Event) -> None: ...


class _Stretch:
    """Consecutive whole candles of one symbol held back for one absorber call: every price inside
    the absorber's trade band [low, high], every close before `limit` (its quiet's end, or the
    next timer of the data clock if sooner)."""

    __slots__ = ("symbol", "low", "high", "limit", "interval_ms", "candles")

    def __init__(self, symbol: str, low: float, high: float, limit: int, interval_ms: int) -> None:
        self.symbol, self.low, self.high, self.limit, self.interval_ms = symbol, low, high, limit, interval_ms
        self.candles: list[Candle] = []

    def take(self, c: Candle) -> bool:
        if self.low <= c.low and c.high <= self.high and c.ts_ms + self.interval_ms < self.limit:
            self.candles.append(c)
            return True
        return False


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
        name: str = "replay",
        data_clock: SimClock | None = None,
        backpressure: "Backpressure | None" = None,
        position_side: Callable[[str], Side | None] | None = None,
        absorber: "Absorber | None" = None,
        quiet_gate: Callable[[], bool] | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock  # paces the replay (wall time)
        self.data_clock = data_clock  # moved to each tick's data time: the trading components' "now"
        self.backpressure = backpressure  # lets execution finish what a tick started before the next one
        if sources is None:
            if path is None:
                raise ValueError("ReplayFeed needs a path or sources")
            sources = [(path, symbol)]
        self.sources = [(Path(p), sym or symbol_from_filename(Path(p))) for p, sym in sources]
        self.path, self.symbol = self.sources[0]
        self.symbols = [sym for _, sym in self.sources]
        self.speed = speed
        self.ticks_per_candle = ticks_per_candle
        self.half_spread = spread_bps / 20_000.0
        self.loop = loop
        self.start_after_ms = start_after_ms
        self.until_ms = until_ms
        self.name = name
        self.intervals_s = [detect_interval_s(p) for p, _ in self.sources]
        self.interval_s = self.intervals_s[0]
        self.cursor_ms = start_after_ms  # open time of the last candle fully published
        self.candles_published = 0
        self.state = "idle"
        self.absorber = absorber
        self.quiet_gate = quiet_gate
        self._absorbed: dict[str, list] = {}  # symbol -> [book, trade, mark] latest absorbed, unpublished
        self._stretch: _Stretch | None = None  # whole candles taken, not yet handed over
        self.pending_ms: int | None = None  # while the data clock moves to the next event: that event's time
        self._taken = False  # (single source) the candle just yielded was taken whole: skip its other steps
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

    def first_ts_ms(self) -> int:
        """Time of the first tick this feed will publish (start a data clock just before it)."""
        firsts = []
        for path, _ in self.sources:
            for candle in read_candles(path):
                if candle.ts_ms > self.start_after_ms:
                    firsts.append(candle.ts_ms)
                    break
        return min(firsts, default=self.start_after_ms)

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.bus.publish(FeedStateChanged(self.clock.now_ms(), feed=self.name, state=state, detail=detail))

    async def run(self) -> None:
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

    def _describe(self) -> str:
        return ", ".join(f"{p.name} as {sym}" for p, sym in self.sources)

    def _speed_text(self) -> str:
        return "full speed" if self.speed <= 0 else f"{self.speed:g}x"

    def _offsets(self, index: int) -> list[int]:
        """Tick times within a candle of source `index`, ms after its open."""
        interval_ms = self.intervals_s[index] * 1000
        n = self.ticks_per_candle
        return [i * interval_ms // 4 for i in range(4)][:n] if n > 1 else [interval_ms * 3 // 4]

    def _steps(self, index: int) -> Iterator[Step]:
        """One source's events in time order: each candle's ticks, then its close."""
        path = self.sources[index][0]
        interval_ms = self.intervals_s[index] * 1000
        ticks = list(enumerate(self._offsets(index)))
        after, until = self.start_after_ms, self.until_ms
        for candle in read_candles(path):
            ts = candle.ts_ms
            if ts <= after:
                continue
            if until is not None and ts >= until:
                return
            for k, offset in ticks:
                yield (ts + offset, index, k, candle)
                if self._taken:  # the consumer took the whole candle at its open step
                    break
            if self._taken:
                self._taken = False
                continue
            yield (ts + interval_ms, index, CLOSE_STEP, candle)

    def _merged(self) -> Iterator[Step]:
        if len(self.sources) == 1:
            return self._steps(0)
        return heapq.merge(*(self._steps(i) for i in range(len(self.sources))))

    def _flush_absorbed(self) -> None:
        """Publish the latest absorbed prices; the absorber already has them and ignores these."""
        if not self._absorbed:
            return
        pending = list(self._absorbed.items())
        self._absorbed.clear()
        events: list[Event] = []
        for sym, (book, trade, mark) in pending:
            if book is not None:
                events.append(BookTick(book[0], sym, book[1], book[2]))
            if trade is not None:
                events.append(TradeTick(trade[0], sym, trade[1], trade[2], trade[3]))
            if mark is not None:
                events.append(MarkPriceTick(mark[0], sym, mark[1]))
        for ev in events:
            self.absorber.already_has(ev)  # type: ignore[union-attr]
            self.bus.publish(ev)  # (delivered after the current dispatch when published from a handler)

    def _hold(self, symbol: str, slot: int, value: tuple) -> None:
        """Keep an absorbed book (0), trade (1) or mark (2) as the symbol's latest, unpublished."""
        (self._absorbed.get(symbol) or self._absorbed.setdefault(symbol, [None, None, None]))[slot] = value

    def _open_stretch(self, symbol: str, candle: Candle) -> bool:
        """Start a stretch with `candle` if the absorber's quiet covers it, close included, and no
        timer of the data clock is due before that close (else False: tick by tick)."""
        interval_ms = self.intervals_s[0] * 1000
        cover = self.absorber.cover(symbol, candle.ts_ms + interval_ms)  # type: ignore[union-attr]
        if cover is None:
            return False
        low, high, until = cover
        due = self.data_clock.next_timer_ms  # type: ignore[union-attr]
        stretch = _Stretch(symbol, low, high, until if due is None else min(until, due), interval_ms)
        if not stretch.take(candle):
            return False
        self._stretch = stretch
        return True

    def _flush_stretch(self) -> int:
        """Hand the stretch's trades (and last book) to the absorber in one call, hold its latest
        prices, publish its closes as one `CandlesClosed`; returns the number of candles."""
        stretch, self._stretch = self._stretch, None
        assert stretch is not None
        n, sym, offsets = self.ticks_per_candle, stretch.symbol, self._offsets(0)
        side = self.position_side(sym)
        times: list[int] = []
        prices: list[float] = []
        qtys: list[float] = []
        for c in stretch.candles:
            times += [c.ts_ms + off for off in offsets]
            prices += candle_ticks(c, n, side)
            qtys += [c.volume / n] * n
        clock = self.data_clock
        assert clock is not None
        last_ts, last, last_candle = times[-1], prices[-1], stretch.candles[-1]
        clock.advance_to(last_ts)  # (no timer is due on the way: `_Stretch.limit`)
        bid, ask = last * (1 - self.half_spread), last * (1 + self.half_spread)
        self.absorber.absorb_ticks(sym, times, prices, qtys, bid, ask)  # type: ignore[union-attr]
        aggressor = "buy" if last >= last_candle.open else "sell"
        self._absorbed[sym] = [(last_ts, bid, ask), (last_ts, last, qtys[-1], aggressor), (last_ts, last)]
        close_ts = last_candle.ts_ms + stretch.interval_ms
        clock.advance_to(close_ts)
        self.bus.publish(CandlesClosed(close_ts, sym, self.intervals_s[0], tuple(stretch.candles)))
        self.cursor_ms = last_candle.ts_ms
        self.candles_published += len(stretch.candles)
        return len(stretch.candles)

    async def _replay_once(self) -> None:
        n = self.ticks_per_candle
        publish = self.bus.publish
        syms = self.symbols
        intervals = self.intervals_s
        hs = self.half_spread
        side_of = self.position_side
        advance = self.data_clock.advance_to if self.data_clock is not None else None
        bp = self.backpressure
        prices: list[tuple[float, ...]] = [()] * len(syms)
        absorber, gate = self.absorber, self.quiet_gate
        if absorber is not None:
            absorber.before_step = self._flush_absorbed
        # whole candles at once: one source (its ticks follow each other) on a simulated data clock, unpaced
        whole = absorber is not None and len(syms) == 1 and isinstance(self.data_clock, SimClock) and n > 1 and self.speed <= 0
        start_wall: float | None = None
        start_data = 0
        since_yield = 0
        steps = self._merged()
        try:
            for ts, index, k, candle in steps:
                if self._stretch is not None:
                    if k == 0 and self._stretch.take(candle):
                        self._taken = True  # its other ticks and its close: in the stretch
                        continue
                    since_yield += self._flush_stretch()
                if self.speed > 0:
                    if start_wall is None:
                        start_wall, start_data = self.clock.time(), ts
                    delay = start_wall + (ts - start_data) / 1000.0 / self.speed - self.clock.time()
                    if delay > 0.001:
                        await self.clock.sleep(delay)
                        since_yield = 0
                if advance is not None:
                    self.pending_ms = ts  # (timers firing now may rely on it: no market event before ts)
                    advance(ts)  # timers due before this event fire first ...
                    self.pending_ms = None
                    if bp is not None and bp.has_work():
                        await bp.idle()  # ... and what they started (an entry, a close) is sent before it
                sym = syms[index]
                if k == CLOSE_STEP:  # (held prices stay held: no close consumer reads them while flat)
                    publish(CandleClosed(ts, sym, candle.ts_ms, intervals[index], candle.open, candle.high, candle.low, candle.close, candle.volume))
                    self.cursor_ms = candle.ts_ms
                    self.candles_published += 1
                    since_yield += 1
                else:
                    open_gate = absorber is not None and gate is not None and gate()
                    if open_gate and whole and k == 0 and self._open_stretch(sym, candle):
                        self._taken = True  # its other ticks and its close: in the stretch
                        continue
                    if k <= 1:  # the extremes' order is decided once the open tick has been handled
                        prices[index] = candle_ticks(candle, n, side_of(sym) if k == 1 else None)
                    price = prices[index][k]
                    bid, ask, qty = price * (1 - hs), price * (1 + hs), candle.volume / n
                    aggressor = "buy" if price >= candle.open else "sell"
                    book_taken = False
                    if open_gate:  # (a step inside absorb_* may flush what is held: _hold looks the entry up)
                        if absorber.absorb_quiet_tick(sym, ts, price, qty, bid, ask):  # type: ignore[union-attr]
                            self._absorbed[sym] = [(ts, bid, ask), (ts, price, qty, aggressor), (ts, price)]
                            continue
                        book_taken = absorber.absorb_book(sym, ts, bid, ask)  # type: ignore[union-attr]
                        if book_taken:
                            self._hold(sym, 0, (ts, bid, ask))
                            if absorber.absorb_trade(sym, ts, price, qty):  # type: ignore[union-attr]
                                self._hold(sym, 1, (ts, price, qty, aggressor))
                                self._hold(sym, 2, (ts, price))
                                continue
                    self._flush_absorbed()  # whatever is held goes out before a published tick
                    if not book_taken:
                        publish(BookTick(ts, sym, bid, ask))
                    publish(TradeTick(ts, sym, price, qty, aggressor))
                    publish(MarkPriceTick(ts, sym, price))
                if bp is not None and bp.has_work():
                    await bp.idle()
                if since_yield >= 256:
                    since_yield = 0
                    await asyncio.sleep(0)
        finally:  # (also when the file turns bad mid-way: the candles read before it count)
            if self._stretch is not None:
                self._flush_stretch()
