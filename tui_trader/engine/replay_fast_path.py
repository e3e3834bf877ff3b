"""Engine layer: the strategy runner's replay fast path - the API only a backtest's feed uses.

A mixin of `StrategyRunner` (it works on the runner's machines, indicators and quiet records).
The replay offers what it would publish, and the runner handles it exactly as `_on_event` would,
or refuses it:
* `absorb_trade` / `absorb_book`: one tick, taken while the symbol's machine is MONITORING (whose
  steps send no order). The feed keeps a taken tick off the bus and hands the latest absorbed
  prices to the other consumers before this runner next steps (`before_step`), marked
  `already_has` so the runner does not count them twice.
* `cover` / `absorb_ticks`: whole stretches of candles. `cover` states the promise (a trade band
  and an end time, renewed ahead of a quiet's end on request); the feed hands every trade of the
  candles inside it over in one call, and their closes as one `CandlesClosed`.
* `next_event_ms` (set by the feed): the time of the next market event. Where the bounds cannot
  rule S1 out, the runner then evaluates S1 itself at each grid second up to that event and only
  steps a second where it fires (`_evaluated_quiet`).
Only the backtest enables it, and only while nothing but the latest price matters elsewhere
(flat, no working order): identical trades (tests and `bench/quiet_parity.py`), a fraction of the
events and steps.
"""

from __future__ import annotations

from tui_trader.domain.events import BookTick, Event, TradeTick
from tui_trader.domain.indicators.registry import QuietDeps
from tui_trader.domain.strategy.state import Phase


_DECIDING = (Phase.MONITORING, Phase.POSITION_ACTIVE)  # phases whose steps only decide (see `_evaluated_quiet`)


class ReplayFastPath:
    """Mixed into `StrategyRunner`; uses its attributes (`machines`, `indicators`, `_quiet`, ...)."""

    def absorb_trade(self, symbol: str, ts_ms: int, price: float, qty: float) -> bool:
        """Handle a trade as `_on_event` would (True), or refuse it (False: publish it).

        Taken only while the symbol's machine is MONITORING: its steps send no order (S1 only
        marks a signal), so no one else needs the trade before this runner's next step in
        another phase - and `before_step` hands them the latest prices first."""
        if not self._absorbable(symbol):
            return False
        self.indicators[symbol].on_trade(ts_ms, price, qty)
        self._after_market(symbol, ts_ms, "trade", price)
        return True

    def absorb_quiet_tick(self, symbol: str, ts_ms: int, price: float, qty: float, bid: float, ask: float) -> bool:
        """Take a tick's book and trade together when neither can cause a step (the quiet lasts
        past the tick and keeps both) - what `absorb_book` then `absorb_trade` would record, with
        one check. Else False, nothing recorded: the feed offers them one by one."""
        q = self._quiet.get(symbol)
        if q is None or not self._absorbable(symbol):
            return False
        deps = q.deps
        if "book" in deps.kinds or not deps.low <= price <= deps.high:
            return False
        last = self._last_now.get(symbol)
        now = ts_ms if last is None or last < ts_ms else last  # (as `now_ms` right after the tick)
        if now >= q.until:
            return False
        indicators = self.indicators[symbol]
        indicators.on_book(ts_ms, bid, ask)
        indicators.on_trade(ts_ms, price, qty)
        self._seen[symbol] = (ts_ms, self.clock.now_ms())
        self._last_now[symbol] = now
        self._keep_quiet(symbol)
        return True

    def absorb_book(self, symbol: str, ts_ms: int, bid: float, ask: float) -> bool:
        """As `absorb_trade`, for a top-of-book update."""
        if not self._absorbable(symbol):
            return False
        self.indicators[symbol].on_book(ts_ms, bid, ask)
        self._after_market(symbol, ts_ms, "book", 0.0)
        return True

    def cover(self, symbol: str, need_ms: int = 0) -> tuple[float, float, int] | None:
        """`(low, high, until)`: trades priced in [low, high], each with its book, and candle
        closes, all before event time `until`, would cause no step (MONITORING inside its quiet,
        no book- or candle-driven blocker). None: no such promise now. A quiet that ends by
        `need_ms` is first renewed from the current event time where that gives a longer one."""
        if not self._absorbable(symbol):
            return None
        q = self._quiet[symbol]
        if q.until <= need_ms:
            self._renew(symbol)
        if q.deps.kinds or self._last_now.get(symbol, q.until - 1) >= q.until:
            return None
        return q.deps.low, q.deps.high, q.until

    def absorb_ticks(self, symbol: str, times: list[int], prices: list[float], qtys: list[float], bid: float, ask: float) -> None:
        """Record trades `cover` vouched for, and the last one's book, as their events would be
        (no step can follow: the book is no blocker's input)."""
        indicators = self.indicators[symbol]
        indicators.on_trades(times, prices, qtys)
        indicators.on_book(times[-1], bid, ask)  # only the newest book is kept
        self._seen[symbol] = (times[-1], self.clock.now_ms())
        self.now_ms(symbol)
        self._keep_quiet(symbol)

    def _renew(self, symbol: str) -> None:
        """Recompute a quiet before it ends, from the current event time with every event so far
        (as valid as one computed at its end); keep the current one unless the new one is longer."""
        q, now = self._quiet[symbol], self.now_ms(symbol)
        if now < q.retry or not self._quiet_ms:
            return
        until, deps = q.until, q.deps
        if self._update_quiet(symbol, now, held=True) <= until:
            q.deps = deps
            self._quiet_changed(symbol, until)
        if self._timer_due is not None and self._unsubscribe is not None:
            self._reschedule(self.clock.now_ms())  # the timer may sleep longer now (or again, if it was kept)

    def _absorbable(self, symbol: str) -> bool:
        machine = self.machines.get(symbol)
        return machine is not None and machine.state.phase is Phase.MONITORING and symbol in self._quiet

    def already_has(self, event: Event) -> None:
        """`event` re-publishes a price absorbed here: ignore it when the bus delivers it (which,
        published from inside a handler, happens only after the current dispatch)."""
        if isinstance(event, (TradeTick, BookTick)) and event.symbol in self.indicators:  # what _on_event will see
            self._echoes[id(event)] = event

    def _evaluated_quiet(self, symbol: str) -> bool:
        """Replay only (`next_event_ms`): where the bounds cannot tell, evaluate the machine at each
        grid second up to the next market event - no data changes before it, so a second where
        its step would change nothing (`StrategyMachine.step_changes_nothing`: S1 does not fire
        while MONITORING, no exit is due while a position is open) is skipped. The first second
        that needs a step (or the next event) ends this quiet; any market, order or position
        event ends it too. True if the step due now is one of the skipped ones."""
        horizon = self.next_event_ms() if self.next_event_ms is not None else None
        machine, q = self.machines[symbol], self._quiet.get(symbol)
        if horizon is None or q is None or not self._quiet_ms or machine.phase not in _DECIDING:
            return False
        now, clock_now = self.now_ms(symbol), self.clock.now_ms()
        offset = now - clock_now  # event time minus clock time
        indicators, tick = self.indicators[symbol], self._tick_ms
        last, price, missing = indicators.last_event_ms, indicators.last_price, dict.fromkeys(indicators.indicators)
        until, c = horizon, self._grid_at(clock_now)
        while c < horizon:
            t = c + offset
            values = missing if last is None or t - last > self._stale_ms else indicators.values(t)  # (as `step`)
            if not machine.step_changes_nothing(t, values, price):
                until = c
                break
            c += tick
        if until <= clock_now:
            return False
        q.deps = QuietDeps.ending_on_any_event()  # any market event ends it
        self._quiet_changed(symbol, until + offset)
        return True
