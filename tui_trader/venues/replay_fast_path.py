"""Venues layer: the replay feed's fast path for backtests (a mixin of `ReplayFeed`).

With an `absorber` (the strategy runner, `engine/replay_fast_path.py`) and a `quiet_gate` saying
nothing but the latest price matters to anyone else (flat, no working order), each trade and
book tick is first offered to the absorber; one it takes (its quiet bounds cover it: no step
would follow) is not published. The latest absorbed book, trade and mark of each symbol are
published - marked for the absorber to ignore - before any other tick and before the absorber
next steps, so every other consumer holds the same latest prices as on the normal path whenever
they can matter.

Stretches (a simulated data clock at full speed, sources of one interval): while the absorber's
`cover` (a trade band and the end of its quiet) holds every price of consecutive candles and no
timer is due before their closes, whole candles are taken at their open step. With several
sources a candle is taken only together with the candles the others open at the same instant,
and only when no other source has an event inside that minute (a slot), so nothing taken can be
overtaken by an event that is not. When a step comes that is not taken, the stretches are
handed over: each symbol's trades to the absorber in one call, the closes as `CandlesClosed`
events - one per run of one symbol's closes, in the order they would have come - each on the data
clock at its own time. Otherwise every candle close is published as it comes.
"""

from __future__ import annotations

import heapq
from typing import Callable, Iterator, Protocol

from tui_trader.domain.events import BookTick, CandlesClosed, Event, MarkPriceTick, TradeTick
from tui_trader.venues.candle_files import Candle
from tui_trader.venues.intrabar import Step, candle_ticks


class Absorber(Protocol):
    """The strategy runner's replay fast path (see `StrategyRunner.absorb_trade`)."""

    before_step: Callable[[], None] | None

    def absorb_trade(self, symbol: str, ts_ms: int, price: float, qty: float) -> bool: ...

    def absorb_book(self, symbol: str, ts_ms: int, bid: float, ask: float) -> bool: ...

    def absorb_quiet_tick(self, symbol: str, ts_ms: int, price: float, qty: float, bid: float, ask: float) -> bool: ...

    def cover(self, symbol: str, need_ms: int) -> tuple[float, float, int] | None: ...

    def absorb_ticks(self, symbol: str, times: list[int], prices: list[float], qtys: list[float], bid: float, ask: float) -> None: ...

    def already_has(self, event: Event) -> None: ...


class Stretch:
    """Consecutive whole candles of one symbol held back for one absorber call: every price inside
    the absorber's trade band [low, high], every close before `limit` (its quiet's end, or the
    next timer of the data clock if sooner)."""

    __slots__ = ("symbol", "low", "high", "limit", "interval_ms", "candles")

    def __init__(self, symbol: str, low: float, high: float, limit: int, interval_ms: int) -> None:
        self.symbol, self.low, self.high, self.limit, self.interval_ms = symbol, low, high, limit, interval_ms
        self.candles: list[Candle] = []

    def fits(self, c: Candle) -> bool:
        return self.low <= c.low and c.high <= self.high and c.ts_ms + self.interval_ms < self.limit


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

    def __iter__(self) -> "StepMerge":
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


class FeedFastPath:
    """Mixed into `ReplayFeed`; uses its attributes (`absorber`, `data_clock`, `bus`, ...)."""

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

    def _take_slot(self, index: int, candle: Candle) -> bool:
        """Take `candle` whole, with the candles the other sources open at the same instant (a
        slot: no other source has an event inside it), if the absorber's quiet covers each of
        them, closes included, and no timer of the data clock is due before those closes (else
        False: tick by tick). A quiet that would end too soon is renewed first - only while no
        stretch is pending (a renewal moves the step timer)."""
        if self._merge is None and index in self._stretches:  # one source, a stretch under way: the common case
            stretch = self._stretches[index]
            if stretch.fits(candle):
                stretch.candles.append(candle)
                return True
            return False
        start, interval_ms = candle.ts_ms, self.intervals_s[index] * 1000
        slot = [(index, candle)]
        for ts, k, other, c in self._merge.others() if self._merge is not None else ():
            if ts >= start + interval_ms:
                continue
            if k != 0 or ts != start:
                return False  # an event inside the slot that is not a candle opening with it
            slot.append((other, c))
        renew, absorber = not self._stretches, self.absorber
        covers = {}
        for i, c in slot:
            if i not in self._stretches:
                cover = absorber.cover(self.symbols[i], start + interval_ms if renew else 0)  # type: ignore[union-attr]
                if cover is None:
                    return False
                covers[i] = cover
        due = self.data_clock.next_timer_ms  # type: ignore[union-attr]  (after any renewal)
        new: dict[int, Stretch] = {}
        for i, c in slot:
            stretch = self._stretches.get(i)
            if stretch is None:
                low, high, until = covers[i]
                stretch = new[i] = Stretch(self.symbols[i], low, high, until if due is None else min(until, due), interval_ms)
            if not stretch.fits(c):
                return False
        self._stretches.update(new)
        for i, c in slot:
            self._stretches[i].candles.append(c)
            if i != index:
                self._slot_taken[i] = c
        return True

    def _flush_stretches(self, until: tuple[int, int] | None = None) -> int:
        """Hand each pending stretch's trades (and last book) to the absorber in one call, hold
        its latest prices, publish its closes as `CandlesClosed` events - one per run of one
        symbol's closes in the order they would have come (a consumer such as the equity
        sampler sees the same sequence) - all in time order, each on the data clock at its own
        time (no timer is due on the way: `Stretch.limit`). `until` (close time, source index):
        the last close the stream reached before a file turned bad. Returns the number of closes."""
        ops: list[tuple[int, int, int, tuple]] = []
        closes: list[tuple[int, int, Candle]] = []
        n, done = self.ticks_per_candle, 0
        for index, stretch in self._stretches.items():
            sym, offsets = stretch.symbol, self._offsets(index)
            side = self.position_side(sym)
            candles = stretch.candles
            times = [c.ts_ms + off for c in candles for off in offsets]
            prices = [p for c in candles for p in candle_ticks(c, n, side)]
            qtys = [c.volume / n for c in candles for _ in offsets]
            last_candle = candles[-1]
            ops.append((times[-1], index, 1, (sym, times, prices, qtys, last_candle)))
            if len(self._stretches) == 1 and until is None:  # one symbol: its closes are one run
                ops.append((last_candle.ts_ms + stretch.interval_ms, index, 0, (sym, candles)))
                done = len(candles)
            else:
                closes += [(c.ts_ms + stretch.interval_ms, index, c) for c in candles]
        if closes:
            closes.sort(key=lambda close: close[:2])  # one stream, as the closes would have come
            if until is not None:  # the stream broke there: later closes would never have come
                closes = [close for close in closes if close[:2] <= until]
            done = len(closes)
            start = 0  # each run of one symbol's consecutive closes: one event
            for i in range(1, len(closes) + 1):
                if i == len(closes) or closes[i][1] != closes[start][1]:
                    index = closes[start][1]
                    ops.append((closes[i - 1][0], index, 0, (self.symbols[index], [c for _, _, c in closes[start:i]])))
                    start = i
        self._stretches = {}
        clock, hs = self.data_clock, self.half_spread
        assert clock is not None
        for t, index, kind, payload in sorted(ops, key=lambda op: op[:3]):
            clock.advance_to(t)
            if kind == 1:
                sym, times, prices, qtys, last_candle = payload
                last = prices[-1]
                bid, ask = last * (1 - hs), last * (1 + hs)
                self.absorber.absorb_ticks(sym, times, prices, qtys, bid, ask)  # type: ignore[union-attr]
                aggressor = "buy" if last >= last_candle.open else "sell"
                self._absorbed[sym] = [(t, bid, ask), (t, last, qtys[-1], aggressor), (t, last)]
            else:
                sym, candles = payload
                self.bus.publish(CandlesClosed(t, sym, self.intervals_s[index], tuple(candles)))
                self.cursor_ms = candles[-1].ts_ms
        self.candles_published += done
        return done
