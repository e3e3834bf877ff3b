"""Backtest layer: the feed's half of the quiet-step accelerator (`quiet_steps.py`) - `QuietTicks`.

The replay's `TickFilter`. While `flat` says nothing but the latest price matters to
anyone else (no position, no working order), each tick is first offered to `QuietSteps`
(`absorb_*`); one it takes (its quiet covers it: no step would follow) is not published. The
latest absorbed book, trade and mark of each symbol are published - marked for the runner to
ignore (`already_has`) - before any other tick and before the runner next steps, so every other
consumer holds the same latest prices as on the plain path whenever they can matter.
Stretches (a simulated data clock at full speed, sources of one interval): while `cover` (a trade
band and the end of the quiet) holds every price of consecutive candles and no timer is due before
their closes, whole candles are taken at their open step. With several sources a candle is taken
only together with the candles the others open at the same instant, and only when no other source
has an event inside that minute (a slot), so nothing taken can be overtaken by an event that is
not. When a step comes that is not taken, the stretches are handed over: each symbol's trades to
the indicators in one call, the closes as `CandlesClosed` events - one per run of one symbol's
closes, in the order they would have come - each on the data clock at its own time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from tui_trader.domain.events import BookTick, Event, MarkPriceTick, TradeTick
from tui_trader.engine.clock import SimClock
from tui_trader.venues.candle_files import Candle
from tui_trader.venues.intrabar import Step, candle_ticks
from tui_trader.venues.replay import TAKEN_ALL, TAKEN_BOOK, TAKEN_NONE, ReplayFeed


class Absorber(Protocol):
    """What `QuietTicks` hands ticks to (`QuietSteps`; a fake in the feed-side tests)."""

    def absorb_trade(self, symbol: str, ts_ms: int, price: float, qty: float) -> bool: ...

    def absorb_book(self, symbol: str, ts_ms: int, bid: float, ask: float) -> bool: ...

    def absorb_quiet_tick(self, symbol: str, ts_ms: int, price: float, qty: float, bid: float, ask: float) -> bool: ...

    def cover(self, symbol: str, need_ms: int) -> tuple[float, float, int] | None: ...

    def absorb_ticks(self, symbol: str, times: list[int], prices: list[float], qtys: list[float],
                     bid: float, ask: float) -> None: ...

    def note_echo(self, event: Event) -> None: ...


class Stretch:
    """Consecutive whole candles of one symbol held back for one absorber call: every price inside
    the absorber's trade band [low, high], every close before `limit` (its quiet's end, or the
    next timer of the data clock if sooner)."""

    __slots__ = ("candles", "high", "interval_ms", "limit", "low", "symbol")

    def __init__(self, symbol: str, low: float, high: float, limit: int, interval_ms: int) -> None:
        self.symbol, self.low, self.high, self.limit, self.interval_ms = symbol, low, high, limit, interval_ms
        self.candles: list[Candle] = []

    def fits(self, c: Candle) -> bool:
        return self.low <= c.low and c.high <= self.high and c.ts_ms + self.interval_ms < self.limit


class QuietTicks:
    """The feed's `TickFilter`: ticks and whole candles the absorber's quiet covers stay off the bus."""

    def __init__(self, feed: ReplayFeed, absorber: Absorber, flat: Callable[[], bool]) -> None:
        self.feed, self.absorber, self.flat = feed, absorber, flat
        self.held: dict[str, list] = {}  # symbol -> [book, trade, mark] latest absorbed, unpublished
        self.stretches: dict[int, Stretch] = {}  # source index -> whole candles taken, not yet handed over
        self._slot_taken: dict[int, Candle] = {}  # taken with another source's candle (their open step is to come)
        self._one_source = len(feed.symbols) == 1
        self._whole: bool | None = None  # whole candles may be taken (`_wholes`; known once the replay runs)

    def _wholes(self) -> bool:
        """Whole candles at once: on a simulated data clock, unpaced, sources of one interval."""
        if self._whole is None:
            feed = self.feed
            self._whole = (isinstance(feed.data_clock, SimClock) and feed.ticks_per_candle > 1 and feed.speed <= 0
                           and not feed.close_after_bar and len(set(feed.intervals_s)) == 1)
        return self._whole

    # --- TickFilter -------------------------------------------------------------------------

    def on_step(self, ts_ms: int, k: int, index: int, candle: Candle) -> bool:
        slot_taken = self._slot_taken
        if slot_taken and slot_taken.get(index) is candle:  # taken with its slot
            del slot_taken[index]
            return True
        stretches = self.stretches
        if stretches:  # nothing has happened since they began: the gate is still open
            if k == 0:
                if self._one_source:  # one source, a stretch under way: the common case (as `_take_slot`)
                    stretch = stretches[index]
                    if stretch.fits(candle):
                        stretch.candles.append(candle)
                        return True
                elif self._take_slot(index, candle):
                    return True
            self._flush_stretches()
        return False

    def take_candle(self, index: int, candle: Candle) -> bool:
        return self.flat() and self._wholes() and self._take_slot(index, candle)

    def take_tick(self, symbol: str, ts_ms: int, price: float, qty: float, bid: float, ask: float,
                  aggressor: str) -> int:
        if self.flat():  # (a step inside absorb_* may flush what is held: _hold looks the entry up)
            absorber = self.absorber
            if absorber.absorb_quiet_tick(symbol, ts_ms, price, qty, bid, ask):
                self.held[symbol] = [(ts_ms, bid, ask), (ts_ms, price, qty, aggressor), (ts_ms, price)]
                return TAKEN_ALL
            if absorber.absorb_book(symbol, ts_ms, bid, ask):
                self._hold(symbol, 0, (ts_ms, bid, ask))
                if absorber.absorb_trade(symbol, ts_ms, price, qty):
                    self._hold(symbol, 1, (ts_ms, price, qty, aggressor))
                    self._hold(symbol, 2, (ts_ms, price))
                    return TAKEN_ALL
                self.flush_held()  # whatever is held goes out before a published tick
                return TAKEN_BOOK
        self.flush_held()
        return TAKEN_NONE

    def finish(self, failed_after: Step | None) -> None:
        if self.stretches:
            # a source whose file broke gave its last candle whole: the stream reached that close, no further
            until = None if failed_after is None else (
                failed_after[3].ts_ms + self.feed.intervals_s[failed_after[2]] * 1000, failed_after[2])
            self._flush_stretches(until)

    # --- held prices ------------------------------------------------------------------------

    def flush_held(self) -> None:
        """Publish the latest absorbed prices; the absorber already has them and ignores these."""
        if not self.held:
            return
        pending = list(self.held.items())
        self.held.clear()
        events: list[Event] = []
        for sym, (book, trade, mark) in pending:
            if book is not None:
                events.append(BookTick(book[0], sym, book[1], book[2]))
            if trade is not None:
                events.append(TradeTick(trade[0], sym, trade[1], trade[2], trade[3]))
            if mark is not None:
                events.append(MarkPriceTick(mark[0], sym, mark[1]))
        publish, note = self.feed.bus.publish, self.absorber.note_echo
        for ev in events:
            note(ev)
            publish(ev)  # (delivered after the current dispatch when published from a handler)

    def _hold(self, symbol: str, slot: int, value: tuple) -> None:
        """Keep an absorbed book (0), trade (1) or mark (2) as the symbol's latest, unpublished."""
        (self.held.get(symbol) or self.held.setdefault(symbol, [None, None, None]))[slot] = value

    # --- stretches --------------------------------------------------------------------------

    def _take_slot(self, index: int, candle: Candle) -> bool:
        """Take `candle` whole, with the candles the other sources open at the same instant (a
        slot: no other source has an event inside it), if the absorber's quiet covers each of
        them, closes included, and no timer of the data clock is due before those closes (else
        False: tick by tick). A quiet that would end too soon is renewed first - only while no
        stretch is pending (a renewal moves the step timer)."""
        stretches, feed = self.stretches, self.feed
        start, interval_ms = candle.ts_ms, feed.intervals_s[index] * 1000
        slot = [(index, candle)]
        for ts, k, other, c in feed.upcoming_steps():
            if ts >= start + interval_ms:
                continue
            if k != 0 or ts != start:
                return False  # an event inside the slot that is not a candle opening with it
            slot.append((other, c))
        renew, absorber = not stretches, self.absorber
        covers = {}
        for i, _ in slot:
            if i not in stretches:
                cover = absorber.cover(feed.symbols[i], start + interval_ms if renew else 0)
                if cover is None:
                    return False
                covers[i] = cover
        assert feed.data_clock is not None
        due = feed.data_clock.next_timer_ms  # type: ignore[attr-defined]  # (a SimClock: `_wholes`; after any renewal)
        new: dict[int, Stretch] = {}
        for i, c in slot:
            held = stretches.get(i)
            if held is None:
                low, high, until = covers[i]
                limit = until if due is None else min(until, due)
                held = new[i] = Stretch(feed.symbols[i], low, high, limit, interval_ms)
            if not held.fits(c):
                return False
        stretches.update(new)
        for i, c in slot:
            stretches[i].candles.append(c)
            if i != index:
                self._slot_taken[i] = c
        return True

    def _flush_stretches(self, until: tuple[int, int] | None = None) -> None:
        """Hand each pending stretch's trades (and last book) to the absorber in one call, hold
        its latest prices, publish its closes as `CandlesClosed` events - one per run of one
        symbol's closes in the order they would have come (a consumer such as the equity
        sampler sees the same sequence) - all in time order, each on the data clock at its own
        time (no timer is due on the way: `Stretch.limit`). `until` (close time, source index):
        the last close the stream reached before a file turned bad."""
        feed = self.feed
        ops: list[tuple[int, int, int, tuple]] = []
        closes: list[tuple[int, int, Candle]] = []
        n = feed.ticks_per_candle
        for index, stretch in self.stretches.items():
            sym, offsets = stretch.symbol, feed.tick_offsets(index)
            side = feed.position_side(sym)
            candles = stretch.candles
            times = [c.ts_ms + off for c in candles for off in offsets]
            prices = [p for c in candles for p in candle_ticks(c, n, side)]
            qtys = [c.volume / n for c in candles for _ in offsets]
            last_candle = candles[-1]
            ops.append((times[-1], index, 1, (sym, times, prices, qtys, last_candle)))
            if len(self.stretches) == 1 and until is None:  # one symbol: its closes are one run
                ops.append((last_candle.ts_ms + stretch.interval_ms, index, 0, tuple(candles)))
            else:
                closes += [(c.ts_ms + stretch.interval_ms, index, c) for c in candles]
        if closes:
            closes.sort(key=lambda close: close[:2])  # one stream, as the closes would have come
            if until is not None:  # the stream broke there: later closes would never have come
                closes = [close for close in closes if close[:2] <= until]
            start = 0  # each run of one symbol's consecutive closes: one event
            for i in range(1, len(closes) + 1):
                if i == len(closes) or closes[i][1] != closes[start][1]:
                    ops.append((closes[i - 1][0], closes[start][1], 0, tuple(c for _, _, c in closes[start:i])))
                    start = i
        self.stretches = {}
        clock, hs = feed.data_clock, feed.half_spread
        assert clock is not None
        for t, index, kind, payload in sorted(ops, key=lambda op: op[:3]):
            clock.advance_to(t)  # type: ignore[attr-defined]  # (a SimClock: `_wholes`)
            if kind == 1:
                sym, times, prices, qtys, last_candle = payload
                last = prices[-1]
                bid, ask = last * (1 - hs), last * (1 + hs)
                self.absorber.absorb_ticks(sym, times, prices, qtys, bid, ask)
                aggressor = "buy" if last >= last_candle.open else "sell"
                self.held[sym] = [(t, bid, ask), (t, last, qtys[-1], aggressor), (t, last)]
            else:
                feed.publish_closes(t, index, payload)
