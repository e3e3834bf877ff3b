"""Backtest layer: the quiet-step accelerator - leaves out the work that provably changes nothing.

Backtests only. Live and paper trading step plainly (`StrategyRunner.step_gate` and
`ReplayFeed.tick_filter` stay None there); `run_backtest(fast_path=False)` runs a backtest plainly
too. `QuietStepAccelerator(runner, feed, flat).attach()` is the one way in: it sets both hooks, and
uses only the runner's and the feed's public methods (those marked "(step gates)" / "(tick
filters)" are there for it). Its two halves:

`QuietSteps` (the runner's `StepGate`). After each step a MONITORING machine tells how long S1
provably cannot fire if no market data arrives (`StrategyMachine.quiet_until`, from the
indicators' `bounds`, over `QUIET_HORIZON_S`, else `SHORT_HORIZON_MS`); the 1 s timer then skips
that symbol's steps until then - they would be no-ops - and sleeps to the first grid second where
some machine needs a step. The conditions that keep S1 from firing say which events leave them so
(`QuietDeps`: trades priced inside a band derived from their thresholds, no book / candle they
read); such an event only updates the indicators. Any other market event has the bounds
recomputed from its time with it included, and only if S1 may then fire is the machine stepped.
Order and position events end the quiet at once. The timer keeps its grid, so the steps that do
run happen at the same instants as without skipping, and a run trades identically. A quiet that
ends is first recomputed from that instant: if S1 still cannot fire, that step is inside the new
quiet and is skipped too (except the first step of a UTC day: it rolls the daily counters). Where
the bounds cannot tell, the machine is evaluated at each grid second up to the replay's next market
event (`next_event_ms`) and only a second that would change something is stepped.

`QuietTicks` (the feed's `TickFilter`, `quiet_ticks.py`): while flat, the ticks and whole candles
these quiets cover stay off the bus.

Proof: the property test (random candle series, with and without: the same transitions, intents
and trades), the parity tests on real files, and `bench/quiet_parity.py` on every shared real file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tui_trader.backtest.quiet_ticks import QuietTicks
from tui_trader.domain.events import BookTick, Event, TradeTick
from tui_trader.domain.indicators.registry import IndicatorSet, QuietDeps
from tui_trader.domain.strategy.machine import StrategyMachine
from tui_trader.domain.strategy.state import Phase
from tui_trader.engine.strategy_runner import StrategyRunner
from tui_trader.venues.replay import ReplayFeed

QUIET_HORIZON_S = 1500.0  # how far ahead a quiet step bounds the indicators
# the fallback horizon where S1 may fire within the long one: past the next tick of replayed 1 m
# bars (15 s apart), so a tick inside the band needs no new bounds, and under the 30 s buckets of a
# default volume surge, whose bounds a horizon that long leaves open (15 s before; the trades are
# the same either way - `bench/quiet_parity.py` - only the work differs: `bench/backtest.py --counts`)
SHORT_HORIZON_MS = 25_000
MAX_REACH = 4  # a quiet market earns bounds up to this many long horizons ahead (longer stretches)
QUIET_RETRY_MS = 5_000  # S1 within reach: step every second without bounding again for this long

_DECIDING = (Phase.MONITORING, Phase.POSITION_ACTIVE)  # phases whose steps only decide (see `_evaluated_quiet`)


class QuietStepAccelerator:
    """The backtest's fast path: `QuietSteps` on the runner, `QuietTicks` on the feed."""

    def __init__(self, runner: StrategyRunner, feed: ReplayFeed | None = None, flat: Callable[[], bool] | None = None,
                 *, horizon_s: float = QUIET_HORIZON_S) -> None:
        """`flat`: nothing but the latest price matters to anyone but the runner now (the
        venue is idle, execution has no work); required with a feed."""
        self.steps = QuietSteps(runner, horizon_s)
        self.ticks: QuietTicks | None = None
        if feed is not None:
            if flat is None:
                raise ValueError("taking ticks off the bus needs the flat gate")
            self.ticks = QuietTicks(feed, self.steps, flat)
            self.steps.next_event_ms = lambda: feed.pending_ms
            self.steps.before_step = self.ticks.flush_held

    def attach(self) -> QuietStepAccelerator:
        """Set the runner's step gate (and the feed's tick filter); before either starts."""
        self.steps.runner.step_gate = self.steps
        if self.ticks is not None:
            self.ticks.feed.tick_filter = self.ticks
        return self


@dataclass(slots=True)
class Quiet:
    """One symbol's quiet: its steps before event time `until` are no-ops (`quiet_until`)."""

    until: int = 0  # event time (0: not quiet)
    offset: int = 0  # event-minus-clock offset when `until` was set: the timer's end is until - offset
    retry: int = 0  # S1 within reach: no bounds before this event time
    reach: int = 1  # the long horizon is tried this many times over (doubled after it held, reset when not)
    deps: QuietDeps = field(default_factory=QuietDeps)  # what keeps S1 from firing (QuietDeps.keeps)

    @property
    def clock_until(self) -> int:
        return self.until - self.offset if self.until else 0


class QuietSteps:
    """The runner's `StepGate`: per symbol a `Quiet`; and the ticks `QuietTicks` hands over."""

    def __init__(self, runner: StrategyRunner, horizon_s: float = QUIET_HORIZON_S) -> None:
        if runner.bar_mode:
            raise ValueError("bar mode has no quiet steps: its machines step on closed candles only")
        if horizon_s <= 0:
            raise ValueError("a quiet needs a horizon (to step everything, attach no accelerator)")
        self.runner = runner
        self.horizon_ms = round(horizon_s * 1000)
        self.quiets: dict[str, Quiet] = {}
        self.before_step: Callable[[], None] | None = None  # run right before a step the gate lets through
        self.next_event_ms: Callable[[], int | None] | None = None  # replay: no market event before this clock time
        self._echoes: dict[int, Event] = {}  # published events already handed over (kept alive: ids stay unique)

    # --- StepGate ---------------------------------------------------------------------------

    def already_has(self, event: Event) -> bool:
        echoes = self._echoes
        if echoes and echoes.get(id(event)) is event:
            del echoes[id(event)]
            return True
        return False

    def skip_market_step(self, symbol: str, kind: str, price: float) -> bool:
        """Step, unless the quiet provably makes it a no-op: the event is covered, or with it
        included S1 still cannot fire."""
        q, now = self.quiets.get(symbol), self.runner.now_ms(symbol)
        if q is not None:
            if now < q.until:
                if q.deps.keeps(kind, price) or self._update_quiet(symbol, now, held=False) > now:
                    self._keep_quiet(symbol, now)
                    return True
            elif self._new_quiet(symbol):
                return True
        self._stepping()
        return False

    def skip_timer_step(self, symbol: str) -> bool:
        if self.runner.now_ms(symbol) < self.quiet_end(symbol) or self._new_quiet(symbol):
            return True
        self._stepping()
        return False

    def timer_until(self, symbol: str) -> int:
        q = self.quiets.get(symbol)
        return 0 if q is None else q.clock_until

    def stepped(self, symbol: str, now_ms: int) -> None:
        self._update_quiet(symbol, now_ms)

    def order_or_position(self, symbol: str) -> None:
        """The machine steps at the next grid second, bounds retried."""
        q = self.quiets.get(symbol)
        if q is not None:
            q.retry = 0
            self._quiet_changed(symbol, 0)

    def _stepping(self) -> None:
        if self.before_step is not None:
            self.before_step()  # whatever this step may start sees every price absorbed so far

    # --- quiets -----------------------------------------------------------------------------

    def quiet_end(self, symbol: str) -> int:
        """Event time before which `symbol`'s steps are known no-ops (0: none)."""
        q = self.quiets.get(symbol)
        return 0 if q is None else q.until

    def _new_quiet(self, symbol: str) -> bool:
        """A quiet has ended: does a new one start right now (then the step due is a no-op)? From
        the bounds, else (replay only) from evaluating the machine up to the next market event."""
        return self._requiet(symbol) or self._evaluated_quiet(symbol)

    def _requiet(self, symbol: str) -> bool:
        """At the end of a quiet: if a new one starts right now, this step is inside it - a no-op
        like the others, so it is not run (True). Not on a new UTC day (that step rolls the
        machine's daily counters), nor before the bounds may be retried."""
        runner = self.runner
        machine, q, now = runner.machines[symbol], self.quiets.get(symbol), runner.now_ms(symbol)
        if q is None or now < q.retry or machine.phase is not Phase.MONITORING or machine.new_day(now):
            return False
        return self._update_quiet(symbol, now, held=True) > now

    def _update_quiet(self, symbol: str, now: int, held: bool | None = None) -> int:
        """(Re)compute the symbol's quiet from event time `now` (a step, or a market event that
        left the previous quiet), with every event received so far.

        The long horizon first; where S1 may fire within it, a short one, whose tighter bounds
        still spare the steps of the next few seconds. Where neither helps (S1 is within reach)
        the bounds are not tried again for `QUIET_RETRY_MS`: meanwhile every step runs.
        The long horizon reaches further while the market stays put: a quiet that ran its course
        (`held`: renewed at or near its end) and is renewed as far doubles the next one's reach, up
        to `MAX_REACH` horizons; a trade that left the band (`held=False`) starts again from one.
        Any horizon is sound (the bounds hold for it); a longer one only means fewer renewals."""
        machine, indicators = self.runner.machines[symbol], self.runner.indicators[symbol]
        q = self.quiets.get(symbol)
        if q is None:
            q = self.quiets[symbol] = Quiet()
        quiet = now
        if machine.state.phase is Phase.MONITORING and now >= q.retry:  # (other phases: never quiet)
            if held is False:
                q.reach = 1  # the market moved: back to one long horizon
            long_ms = self.horizon_ms
            short = min(long_ms, SHORT_HORIZON_MS)
            ladder = [h for h in dict.fromkeys((long_ms * q.reach, long_ms)) if h > short] + [short]
            for horizon in ladder:
                q.deps = indicators.begin_bounds()
                quiet = _quiet_over(machine, indicators, now, horizon)
                if quiet > now:
                    break
            if quiet <= now or horizon != ladder[0]:
                q.reach = 1
            elif held:
                q.reach = min(q.reach * 2, MAX_REACH)  # the last quiet ran its course and this one reaches as far
            if quiet <= now:
                q.retry = now + QUIET_RETRY_MS
        self._quiet_changed(symbol, quiet)
        return quiet

    def _quiet_changed(self, symbol: str, quiet_ms: int) -> None:
        """Record a symbol's quiet end (event time); bring the timer forward if it now sleeps past a
        needed step. The timer runs on the clock: the end is converted with the symbol's current
        event-minus-clock offset (0 in backtests), and re-converted when a market event moves it."""
        runner = self.runner
        clock_now = runner.clock.now_ms()
        q = self.quiets[symbol]
        last = runner.event_time(symbol)
        q.until, q.offset = quiet_ms, (clock_now if last is None else last) - clock_now
        runner.wake_by(q.clock_until)

    def _keep_quiet(self, symbol: str, now: int) -> None:
        """A market event left the quiet standing: re-convert its end if event time (`now`: the
        symbol's, just noted) jumped."""
        q = self.quiets[symbol]
        if now - self.runner.clock.now_ms() != q.offset:
            self._quiet_changed(symbol, q.until)

    def _evaluated_quiet(self, symbol: str) -> bool:
        """Replay only (`next_event_ms`): where the bounds cannot tell, evaluate the machine at each
        grid second up to the next market event - no data changes before it, so a second where
        its step would change nothing (`StrategyMachine.step_changes_nothing`: S1 does not fire
        while MONITORING, no exit is due while a position is open) is skipped. The first second
        that needs a step (or the next event) ends this quiet; any market, order or position
        event ends it too. True if the step due now is one of the skipped ones."""
        horizon = self.next_event_ms() if self.next_event_ms is not None else None
        runner = self.runner
        machine, q = runner.machines[symbol], self.quiets.get(symbol)
        if horizon is None or q is None or machine.phase not in _DECIDING:
            return False
        now, clock_now = runner.now_ms(symbol), runner.clock.now_ms()
        offset = now - clock_now  # event time minus clock time
        price, tick = runner.indicators[symbol].last_price, runner.tick_ms
        until, c = horizon, runner.grid_at(clock_now)
        while c < horizon:
            t = c + offset
            if not machine.step_changes_nothing(t, runner.values_at(symbol, t), price):  # (values as `step` reads them)
                until = c
                break
            c += tick
        if until <= clock_now:
            return False
        q.deps = QuietDeps.ending_on_any_event()  # any market event ends it
        self._quiet_changed(symbol, until + offset)
        return True

    # --- ticks handed over by QuietTicks ----------------------------------------------------

    def absorb_trade(self, symbol: str, ts_ms: int, price: float, qty: float) -> bool:
        """Handle a trade as the runner's bus handler would (True), or refuse it (False: publish it).

        Taken only while the symbol's machine is MONITORING: its steps send no order (S1 only
        marks a signal), so no one else needs the trade before the runner's next step in
        another phase - and `before_step` hands them the latest prices first."""
        if not self._absorbable(symbol):
            return False
        self.runner.indicators[symbol].on_trade(ts_ms, price, qty)
        self.runner.on_market(symbol, ts_ms, "trade", price)
        return True

    def absorb_book(self, symbol: str, ts_ms: int, bid: float, ask: float) -> bool:
        """As `absorb_trade`, for a top-of-book update."""
        if not self._absorbable(symbol):
            return False
        self.runner.indicators[symbol].on_book(ts_ms, bid, ask)
        self.runner.on_market(symbol, ts_ms, "book")
        return True

    def absorb_quiet_tick(self, symbol: str, ts_ms: int, price: float, qty: float, bid: float, ask: float) -> bool:
        """Take a tick's book and trade together when neither can cause a step (the quiet lasts
        past the tick and keeps both) - what `absorb_book` then `absorb_trade` would record, with
        one check. Else False, nothing recorded: they are offered one by one."""
        q = self.quiets.get(symbol)
        if q is None or not self._absorbable(symbol):
            return False
        deps = q.deps
        if "book" in deps.kinds or not deps.low <= price <= deps.high:
            return False
        last = self.runner.event_time(symbol)
        now = ts_ms if last is None or last < ts_ms else last  # (as `now_ms` right after the tick)
        if now >= q.until:
            return False
        indicators = self.runner.indicators[symbol]
        indicators.on_book(ts_ms, bid, ask)
        indicators.on_trade(ts_ms, price, qty)
        self._keep_quiet(symbol, self.runner.note_market(symbol, ts_ms))
        return True

    def cover(self, symbol: str, need_ms: int = 0) -> tuple[float, float, int] | None:
        """`(low, high, until)`: trades priced in [low, high], each with its book, and candle
        closes, all before event time `until`, would cause no step (MONITORING inside its quiet,
        no book- or candle-driven blocker). None: no such promise now. A quiet that ends by
        `need_ms` is first renewed from the current event time where that gives a longer one."""
        if not self._absorbable(symbol):
            return None
        q = self.quiets[symbol]
        if q.until <= need_ms:
            self._renew(symbol)
        last = self.runner.event_time(symbol)
        if q.deps.kinds or (q.until - 1 if last is None else last) >= q.until:
            return None
        return q.deps.low, q.deps.high, q.until

    def absorb_ticks(self, symbol: str, times: list[int], prices: list[float], qtys: list[float],
                     bid: float, ask: float) -> None:
        """Record trades `cover` vouched for, and the last one's book, as their events would be
        (no step can follow: the book is no blocker's input)."""
        indicators = self.runner.indicators[symbol]
        indicators.on_trades(times, prices, qtys)
        indicators.on_book(times[-1], bid, ask)  # only the newest book is kept
        self._keep_quiet(symbol, self.runner.note_market(symbol, times[-1]))

    def note_echo(self, event: Event) -> None:
        """`event` re-publishes a price absorbed here: the runner ignores it when the bus delivers
        it (which, published from inside a handler, happens only after the current dispatch)."""
        if isinstance(event, (TradeTick, BookTick)) and event.symbol in self.runner.indicators:  # what the runner sees
            self._echoes[id(event)] = event

    def _renew(self, symbol: str) -> None:
        """Recompute a quiet before it ends, from the current event time with every event so far
        (as valid as one computed at its end); keep the current one unless the new one is longer."""
        q, now = self.quiets[symbol], self.runner.now_ms(symbol)
        if now < q.retry:
            return
        until, deps = q.until, q.deps
        if self._update_quiet(symbol, now, held=True) <= until:
            q.deps = deps
            self._quiet_changed(symbol, until)
        self.runner.replan_timer()  # the timer may sleep longer now (or again, if it was kept)

    def _absorbable(self, symbol: str) -> bool:
        machine = self.runner.machines.get(symbol)
        return machine is not None and machine.state.phase is Phase.MONITORING and symbol in self.quiets


def _quiet_over(machine: StrategyMachine, indicators: IndicatorSet, now: int, horizon: int) -> int:
    """`quiet_until` from `now` over `horizon` ms, the blockers noted in the indicators' `QuietDeps`."""
    return machine.quiet_until(now, lambda name: indicators.bounds(name, now, horizon), horizon,
                               lambda c: indicators.note_blocker(c.indicator, now, horizon, c.operator, c.value))
