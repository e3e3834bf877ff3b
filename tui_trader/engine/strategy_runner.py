"""Engine layer: runs one strategy's machines on the bus - indicators in, intents out, state persisted.

One `StrategyMachine` and one `IndicatorSet` per symbol. The runner is an inline bus subscriber:
market events of its symbols update the indicators and step the machine at once, order and
position events carrying a machine's tag go to that machine, and a 1 s timer on the injected
clock steps every machine so timeouts, retries and sliding windows advance on a quiet market.
No step that could change anything is dropped or throttled (defect D10); each one is synchronous.

Quiet steps: after each step a MONITORING machine tells how long S1 provably cannot fire if no
market data arrives (`StrategyMachine.quiet_until`, from the indicators' `bounds`, over 1500 s,
else 15 s); the 1 s timer then skips that symbol's steps until then - they would be no-ops - and
sleeps to the first grid second where some machine needs a step. The conditions that keep S1
from firing say which events leave them so (`QuietDeps`: trades priced inside a band derived from
their thresholds, no book / candle they read); such an event only updates the indicators. Any
other market event has the bounds recomputed from its time with it included, and only if S1 may
then fire is the machine stepped. Order and position events end the quiet at once.
The timer keeps its grid (start + k s), so the steps that do run happen at the same instants as
without skipping, and a run trades identically (`QUIET_HORIZON_S = 0` steps everything: tests).
A quiet that ends is first recomputed from that instant: if S1 still cannot fire, that step is
inside the new quiet and is skipped too (except the first step of a UTC day: it rolls the
machine's daily counters).

Time: the machines run on *event time* (strategy.md §2.1): a symbol's now is the timestamp of
its newest market event, advanced by the clock time elapsed since that event arrived, and never
moves backwards. Replayed data (2017 timestamps) and a wall clock therefore never mix. Market
values older than `global_limits.max_stale_data_s` are handed to the machine as undefined.

Replay fast path (backtests only): `ReplayFastPath` (`engine/replay_fast_path.py`), mixed in.

Bar mode (`evaluation = "bar"`): the machines step on each closed candle of the strategy's
interval (`BarIndicatorSet`; ticks are not even subscribed to) and at their own deadlines
(`StrategyMachine.next_deadline_ms`: signal timeout, fill timeout, max hold, close re-sends) -
nothing else: no 1 s timer, no quiet steps. An entry decided at a close goes out at that close.

Persistence: after every state change the machine's dict is queued (latest per key) and written
by `run()` through a `StateWriter`; `start()` restores every machine, so
a running position survives a restart. Intents go to `intent_sink` (execution's `submit`).
"""

from __future__ import annotations

import base64
import logging
import pickle
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable

from tui_trader.domain.errors import StrategyError, StrategyFileError
from tui_trader.domain.events import (
    BookTick,
    CandleClosed,
    CandlesClosed,
    ErrorRaised,
    Event,
    OrderUpdated,
    PositionChanged,
    StrategyStateChanged,
    TradeTick,
)
from tui_trader.domain.indicators.bar_set import BarIndicatorSet
from tui_trader.domain.indicators.registry import IndicatorSet, QuietDeps
from tui_trader.domain.intents import Intent
from tui_trader.domain.models import Position
from tui_trader.domain.strategy import DEFAULT_STRATEGY_FILE
from tui_trader.domain.strategy.machine import StrategyMachine
from tui_trader.domain.strategy.schema import Strategy, strategy_from_text
from tui_trader.domain.strategy.state import Phase
from tui_trader.domain.strategy.warmup import warmup_s
from tui_trader.engine.bus import EventBus
from tui_trader.engine.cache import Cache
from tui_trader.engine.clock import Clock, TimerHandle
from tui_trader.engine.ports import KeyValueStore
from tui_trader.engine.replay_fast_path import ReplayFastPath
from tui_trader.engine.state_writer import StateWriter

log = logging.getLogger(__name__)

STATE_KEY_PREFIX = "strategy:"
QUIET_HORIZON_S = 1500.0  # how far ahead a quiet step bounds the indicators (0: step every second)
# the fallback horizon where S1 may fire within the long one: past the next tick of replayed 1 m
# bars (15 s apart), so a tick inside the band needs no new bounds, and under the 30 s buckets of a
# default volume surge, whose bounds a horizon that long leaves open (15 s before; the trades are
# the same either way - `bench/quiet_parity.py` - only the work differs: `bench/backtest.py --counts`)
SHORT_HORIZON_MS = 25_000
MAX_REACH = 4  # a quiet market earns bounds up to this many long horizons ahead (longer stretches)
QUIET_RETRY_MS = 5_000  # S1 within reach: step every second without bounding again for this long


@dataclass(slots=True)
class _Quiet:
    """One symbol's quiet: its steps before event time `until` are no-ops (`quiet_until`)."""

    until: int = 0  # event time (0: not quiet)
    offset: int = 0  # event-minus-clock offset when `until` was set: the timer's end is until - offset
    retry: int = 0  # S1 within reach: no bounds before this event time
    reach: int = 1  # the long horizon is tried this many times over (doubled after it held, reset when not)
    deps: QuietDeps = field(default_factory=QuietDeps)  # what keeps S1 from firing (QuietDeps.keeps)

    @property
    def clock_until(self) -> int:
        return self.until - self.offset if self.until else 0
_BUSY = (Phase.ENTRY_PENDING, Phase.POSITION_ACTIVE, Phase.EXIT_PENDING)


def bundled_strategy_path(name: str = DEFAULT_STRATEGY_FILE) -> Path:
    """Path of a strategy file shipped in the package (`tui_trader/data/pump_short.toml`)."""
    return Path(str(resources.files("tui_trader") / "data" / name))


def load_strategy(path: Path | str | None = None) -> Strategy:
    """Read and validate a strategy file (TOML or JSON); None = the bundled default. Any problem,
    reading or parsing, is a `StrategyFileError` naming the file (the parser sees only text)."""
    path = Path(path) if path is not None else bundled_strategy_path()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise StrategyFileError(path, [f"not UTF-8 text (byte {byte:#04x}) - a strategy file is TOML or JSON"]) from None
    except IsADirectoryError:
        raise StrategyFileError(path, ["is a directory, not a file"]) from None
    except OSError as exc:
        raise StrategyFileError(path, [f"cannot read ({exc.strerror or exc})"]) from None
    try:
        return strategy_from_text(text, path.suffix)
    except StrategyError as exc:
        raise StrategyFileError(path, str(exc).splitlines()) from None


class StrategyRunner(ReplayFastPath):
    """A core `Service`: `await start()` restores and subscribes, `run()` writes state until cancelled."""

    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        strategy: Strategy,
        symbols: Iterable[str],
        state_store: KeyValueStore | None,
        intent_sink: Callable[[Intent], None],
        *,
        tick_s: float = 1.0,
        quiet_horizon_s: float | None = None,
        reconcile_from: Cache | None = None,
    ) -> None:
        self.bus, self.clock, self.strategy = bus, clock, strategy
        # live: the cache execution reconciled with the exchange before this runner starts; restored
        # machines are told what it holds (a fill while we were down, a position closed meanwhile)
        self.reconcile_from = reconcile_from
        self.state_store, self.intent_sink, self.tick_s = state_store, intent_sink, tick_s
        self.name = f"strategy:{strategy.strategy_name}"
        syms = list(symbols) or list(strategy.global_limits.symbols)
        self.machines = {s: StrategyMachine(strategy, s) for s in syms}
        self.bar_mode = strategy.bar_mode
        # bar mode: the bar indicators instead (`_sets()` is whichever the strategy uses)
        self.indicators = {} if self.bar_mode else {s: IndicatorSet.for_strategy(strategy) for s in syms}
        self.bars = {s: BarIndicatorSet.for_strategy(strategy) for s in syms} if self.bar_mode else {}
        self._seen: dict[str, tuple[int, int]] = {}  # symbol -> (event ts, clock ms on arrival)
        self._last_now: dict[str, int] = {}
        self.writer = StateWriter(state_store)  # machine states, newest per key, written by run()
        self._timer: TimerHandle | None = None
        self._timer_due: int | None = None  # due time of `_timer` on the step grid
        self._grid_ms = 0  # set by start(): the timer fires at _grid_ms + k x tick only
        self._tick_ms = max(1, round(tick_s * 1000))
        horizon = 0 if self.bar_mode else QUIET_HORIZON_S if quiet_horizon_s is None else quiet_horizon_s
        self._quiet_ms = max(0, round(horizon * 1000))
        self._quiet: dict[str, _Quiet] = {}  # symbol -> its quiet (see _Quiet)
        self.before_step: Callable[[], None] | None = None  # replay fast path: flush absorbed prices
        self.next_event_ms: Callable[[], int | None] | None = None  # replay: no market event before this clock time
        self._echoes: dict[int, Event] = {}  # published events absorb_* already handled (kept alive: ids stay unique)
        self._unsubscribe: Callable[[], None] | None = None
        self._stale_ms = round(strategy.global_limits.max_stale_data_s * 1000)
        self._first_timer_ms: int | None = None  # restored timer phase (see import_state)
        self._warm_from: dict[str, int | None] = {}

    # --- life -------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._unsubscribe is not None

    async def start(self) -> None:
        """Restore persisted machines, subscribe to the bus, start the 1 s step timer. Idempotent."""
        if self.started:
            return
        for symbol, machine in list(self.machines.items()):
            data = await self.state_store.get_state(self.state_key(machine)) if self.state_store else None
            if data:
                machine = self.machines[symbol] = StrategyMachine.from_dict(self.strategy, symbol, data)
            if self._warm_from.get(symbol) is not None:  # indicators restored too: so is their warm-up
                machine._warm_from_ms = self._warm_from[symbol]
            st = machine.state
            self.bus.publish(StrategyStateChanged(self.clock.now_ms(), self.strategy.strategy_name, symbol, st.phase.value, "restored" if data else "start"))
        if self.reconcile_from is not None:
            for machine in self.machines.values():
                self._reconcile(machine)
        if self.bar_mode:
            self._unsubscribe = self.bus.subscribe(
                self._on_bar_event, types=[CandleClosed, CandlesClosed, OrderUpdated, PositionChanged], name=self.name)
            self._schedule_deadline()
            return
        self._unsubscribe = self.bus.subscribe(
            self._on_event, types=[TradeTick, BookTick, CandleClosed, CandlesClosed, OrderUpdated, PositionChanged], name=self.name
        )
        first = self._first_timer_ms if self._first_timer_ms is not None else self.clock.now_ms() + self._tick_ms
        self._grid_ms = first  # every step-timer firing is at first + k x tick
        self._schedule(first)

    def _reconcile(self, machine: StrategyMachine) -> None:
        """Bring a restored machine in line with the reconciled cache, before its first step."""
        cache, st = self.reconcile_from, machine.state
        assert cache is not None
        now = self.clock.now_ms()
        held = cache.position(machine.symbol, machine.side)
        mine = held if held is not None and held.tag == machine.tag else None
        if st.phase is Phase.ENTRY_PENDING:
            order = cache.orders.get(st.entry_client_id)
            if order is not None and (order.state.is_terminal or order.filled_contracts > 0):
                self._after(machine, machine.on_order_update(now, order))
        if machine.phase in (Phase.POSITION_ACTIVE, Phase.EXIT_PENDING) and mine is None:
            gone = Position(machine.symbol, machine.side, Decimal(0), Decimal(1), Decimal(str(st.entry_price or 0)), 1,
                            tag=machine.tag, updated_ms=now)
            self._after(machine, machine.on_position_changed(now, gone, "reconcile: gone at the exchange"))
        elif mine is not None:
            self._after(machine, machine.on_position_changed(now, mine, "reconcile"))

    def export_state(self) -> dict:
        """Everything besides the machines that decides future steps: indicator windows, event
        times and the step timer's phase. With it a resumed paper session replays exactly as an
        uninterrupted one (same signals, same client ids). Indicators are pickled: they are our
        own objects, written and read by this process's checkpoints only."""
        return {
            "indicators": base64.b64encode(pickle.dumps(self._sets(), protocol=pickle.HIGHEST_PROTOCOL)).decode(),
            "seen": {k: list(v) for k, v in self._seen.items()},
            "last_now": dict(self._last_now),
            "next_timer_ms": self._timer_due,
            "warm_from_ms": {sym: m._warm_from_ms for sym, m in self.machines.items()},
        }

    def import_state(self, data: dict) -> None:
        """Restore `export_state()` output (before `start()`)."""
        sets = pickle.loads(base64.b64decode(data["indicators"]))
        if self.bar_mode:
            self.bars = sets
        else:
            self.indicators = sets
        self._seen = {k: (int(v[0]), int(v[1])) for k, v in data["seen"].items()}
        self._last_now = {k: int(v) for k, v in data["last_now"].items()}
        self._first_timer_ms = data.get("next_timer_ms")
        self._warm_from = dict(data.get("warm_from_ms") or {})  # applied to the machines start() restores

    def history_s(self) -> float:
        """Seconds of market history that make every indicator defined and the warm-up complete."""
        longest = max((ind.longest_s for ind in self._sets().values()), default=0.0)
        return max(longest, warmup_s(self.strategy))

    def warm(self, symbol: str, events: list[Event], from_ms: int) -> None:
        """Feed recorded market events (exchange history, oldest first) into `symbol`'s indicators
        before `start()`; the machine's warm-up then counts from `from_ms`, the history's start.
        Indicators only: nothing is stepped, published or taken for the current market."""
        if self.started:
            raise RuntimeError("history goes in before the strategy starts")
        indicators = self._sets().get(symbol)
        if indicators is None:
            return
        for event in events:
            indicators.on_event(event)
        self._warm_from[symbol] = from_ms

    def _sets(self) -> dict[str, IndicatorSet] | dict[str, BarIndicatorSet]:
        """Each symbol's indicators: tick (`IndicatorSet`) or bar (`BarIndicatorSet`) ones."""
        return self.bars if self.bar_mode else self.indicators

    async def run(self) -> None:
        await self.start()
        await self.writer.run()

    async def shutdown(self) -> None:
        """Stop stepping, then write whatever state is still queued."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.flush()

    async def flush(self) -> None:
        """Write every queued machine state (latest per key)."""
        await self.writer.flush()

    @staticmethod
    def state_key(machine: StrategyMachine) -> str:
        return STATE_KEY_PREFIX + machine.tag

    # --- events -----------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, (TradeTick, BookTick, CandleClosed, CandlesClosed)):
            indicators = self.indicators.get(event.symbol)
            if indicators is None:
                return
            if self._echoes and self._echoes.get(id(event)) is event:
                del self._echoes[id(event)]  # a re-publication of what absorb_* already handled
                return
            indicators.on_event(event)
            kind = "trade" if isinstance(event, TradeTick) else "book" if isinstance(event, BookTick) else "candle"
            self._after_market(event.symbol, event.ts_ms, kind, event.price if kind == "trade" else 0.0)  # type: ignore[union-attr]
        elif isinstance(event, OrderUpdated):
            machine = self._machine_for(event.order.tag, event.order.symbol)
            if machine is not None:
                self._after(machine, machine.on_order_update(self.now_ms(machine.symbol), event.order))
                self._end_quiet(machine.symbol)
        elif isinstance(event, PositionChanged):
            machine = self._machine_for(event.position.tag, event.position.symbol)
            if machine is not None:
                self._after(machine, machine.on_position_changed(self.now_ms(machine.symbol), event.position, event.reason))
                self._end_quiet(machine.symbol)

    def _after_market(self, symbol: str, ts_ms: int, kind: str, price: float) -> None:
        """After a market event was recorded in the indicators: note its event time, then step
        unless the quiet provably makes that a no-op."""
        self._seen[symbol] = (ts_ms, self.clock.now_ms())
        self._market(symbol, kind, price)

    def _market(self, symbol: str, kind: str, price: float) -> None:
        """After a market event was recorded: step, unless the quiet provably makes it a no-op."""
        q, now = self._quiet.get(symbol), self.now_ms(symbol)
        if q is not None and now < q.until:
            if q.deps.keeps(kind, price) or self._update_quiet(symbol, now, held=False) > now:
                self._keep_quiet(symbol)
                return  # a no-op step: the event is covered, or with it included S1 still cannot fire
        elif q is not None and self._new_quiet(symbol):
            return
        self.step(symbol)

    # --- bar mode -----------------------------------------------------------------------------

    def _on_bar_event(self, event: Event) -> None:
        if isinstance(event, (CandleClosed, CandlesClosed)):
            bars = self.bars.get(event.symbol)
            if bars is None or not bars.on_event(event):
                return  # another interval, a repeated candle
            self._seen[event.symbol] = (event.ts_ms, self.clock.now_ms())
            self.step_bar(event.symbol)
        elif isinstance(event, OrderUpdated):
            machine = self._machine_for(event.order.tag, event.order.symbol)
            if machine is not None:
                self._after(machine, machine.on_order_update(self.now_ms(machine.symbol), event.order))
        elif isinstance(event, PositionChanged):
            machine = self._machine_for(event.position.tag, event.position.symbol)
            if machine is not None:
                self._after(machine, machine.on_position_changed(self.now_ms(machine.symbol), event.position, event.reason))
        self._schedule_deadline()

    def step_bar(self, symbol: str) -> None:
        """Bar mode: evaluate one machine at the close of the bar its indicators just counted."""
        machine, bars = self.machines[symbol], self.bars[symbol]
        assert bars.last_price is not None
        busy = sum(1 for m in self.machines.values() if m.phase in _BUSY)
        allowed = busy < self.strategy.global_limits.max_open_positions
        self._after(machine, machine.on_bar(self.now_ms(symbol), bars.values(), price=bars.last_price, entries_allowed=allowed))

    def _bar_values(self, symbol: str, now: int) -> dict[str, float | None]:
        """The last bar's values; undefined once that bar is older than an interval + max_stale_data_s
        (the feed stopped: no decision on old data)."""
        bars = self.bars[symbol]
        if bars.last_event_ms is None or now - bars.last_event_ms > bars.interval_s * 1000 + self._stale_ms:
            return dict.fromkeys(bars.indicators)
        return bars.values()

    def _schedule_deadline(self) -> None:
        """Bar mode: the timer sleeps until the first machine deadline (event time -> clock time)."""
        if self._unsubscribe is None:
            return
        clock_now, due = self.clock.now_ms(), None
        for symbol, machine in self.machines.items():
            deadline = machine.next_deadline_ms()
            if deadline is None:
                continue
            seen = self._seen.get(symbol)
            at = deadline if seen is None else deadline - self.now_ms(symbol) + clock_now
            at = max(at, clock_now + 1)  # (a deadline already past: its step is running now, or just ran)
            due = at if due is None else min(due, at)
        if due == self._timer_due:
            return
        if due is None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._timer_due = None
            return
        self._timer_due = due
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.clock.call_later(max(0, due - clock_now) / 1000, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = self._timer_due = None
        try:
            for symbol, machine in self.machines.items():
                deadline = machine.next_deadline_ms()
                now = self.now_ms(symbol)
                if deadline is not None and now >= deadline:
                    self._after(machine, machine.on_deadline(now, self._bar_values(symbol, now)))
        except Exception as exc:  # timer boundary: report and keep going
            log.exception("strategy deadline step failed")
            self.bus.publish(ErrorRaised(self.clock.now_ms(), self.name, f"{type(exc).__name__}: {exc}"))
        finally:
            self._schedule_deadline()

    def _machine_for(self, tag: str, symbol: str) -> StrategyMachine | None:
        machine = self.machines.get(symbol)
        return machine if machine is not None and machine.tag == tag else None

    # --- the step timer ---------------------------------------------------------------------

    def _on_timer(self) -> None:
        self._timer = self._timer_due = None
        now = self.clock.now_ms()
        try:
            for symbol in self.machines:
                # no market data yet: nothing to evaluate, no event time; quiet: the step is a no-op
                if symbol in self._seen and self.now_ms(symbol) >= self.quiet_end(symbol) and not self._new_quiet(symbol):
                    self.step(symbol)
        except Exception as exc:  # timer boundary: report and keep ticking
            log.exception("strategy step failed")
            self.bus.publish(ErrorRaised(self.clock.now_ms(), self.name, f"{type(exc).__name__}: {exc}"))
        finally:
            if self._unsubscribe is not None and self._timer is None:
                self._reschedule(now)

    def _reschedule(self, now: int) -> None:
        """Next timer: the first grid instant after `now` (clock) at which some quiet has ended."""
        quiet = min((self._quiet[s].clock_until if s in self._quiet else 0 for s in self._seen), default=0)
        self._schedule(self._grid_at(max(quiet, now + 1)))

    def _new_quiet(self, symbol: str) -> bool:
        """A quiet has ended: does a new one start right now (then the step due is a no-op)? From
        the bounds, else (replay only) from evaluating the machine up to the next market event."""
        return self._requiet(symbol) or self._evaluated_quiet(symbol)

    def _requiet(self, symbol: str) -> bool:
        """At the end of a quiet: if a new one starts right now, this step is inside it - a no-op
        like the others, so it is not run (True). Not on a new UTC day (that step rolls the
        machine's daily counters), nor before the bounds may be retried."""
        machine, q, now = self.machines[symbol], self._quiet.get(symbol), self.now_ms(symbol)
        if q is None or now < q.retry or machine.phase is not Phase.MONITORING or machine.new_day(now) or not self._quiet_ms:
            return False
        return self._update_quiet(symbol, now, held=True) > now

    def _grid_at(self, t_ms: int) -> int:
        """The first step-grid instant at or after `t_ms`."""
        return self._grid_ms - (self._grid_ms - t_ms) // self._tick_ms * self._tick_ms

    def _schedule(self, due_ms: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due_ms
        self._timer = self.clock.call_later(max(0, due_ms - self.clock.now_ms()) / 1000, self._on_timer)

    def _quiet_changed(self, symbol: str, quiet_ms: int) -> None:
        """Record a symbol's quiet end (event time); bring the timer forward if it now sleeps past a
        needed step. The timer runs on the clock: the end is converted with the symbol's current
        event-minus-clock offset (0 in backtests), and re-converted when a market event moves it."""
        clock_now = self.clock.now_ms()
        q = self._quiet.get(symbol)
        if q is None:
            q = self._quiet[symbol] = _Quiet()
        q.until, q.offset = quiet_ms, self._last_now.get(symbol, clock_now) - clock_now
        if self._timer_due is None or self._unsubscribe is None:
            return  # not started, or inside _on_timer (it reschedules itself)
        due = self._grid_at(max(q.clock_until, clock_now + 1))
        if due < self._timer_due:
            self._schedule(due)

    def _keep_quiet(self, symbol: str) -> None:
        """A market event left the quiet standing: re-convert its end if event time jumped."""
        q = self._quiet[symbol]
        if self._last_now.get(symbol, 0) - self.clock.now_ms() != q.offset:
            self._quiet_changed(symbol, q.until)

    def _end_quiet(self, symbol: str) -> None:
        """An order or position event: the machine steps at the next grid second, bounds retried."""
        if symbol in self._quiet:
            self._quiet[symbol].retry = 0
            self._quiet_changed(symbol, 0)

    def quiet_end(self, symbol: str) -> int:
        """Event time before which `symbol`'s steps are known no-ops (0: none)."""
        q = self._quiet.get(symbol)
        return 0 if q is None else q.until

    def now_ms(self, symbol: str) -> int:
        """Event time of `symbol`: newest event ts + clock time since it arrived; never backwards."""
        seen = self._seen.get(symbol)
        if seen is None:  # no market data yet: clock time, not recorded (replayed data may be older)
            return self.clock.now_ms()
        now = seen[0] + max(0, self.clock.now_ms() - seen[1])
        now = max(now, self._last_now.get(symbol, now))
        self._last_now[symbol] = now
        return now

    def step(self, symbol: str) -> None:
        """Evaluate one machine with its indicators at the symbol's event time."""
        if self.before_step is not None:
            self.before_step()  # whatever this step may start sees every price absorbed so far
        machine, indicators = self.machines[symbol], self.indicators[symbol]
        now = self.now_ms(symbol)
        last = indicators.last_event_ms
        if last is None or now - last > self._stale_ms:
            values = dict.fromkeys(indicators.indicators)  # stale data counts as missing (strategy.md §1.1 rule 3)
        else:
            values = indicators.values(now)
        busy = sum(1 for m in self.machines.values() if m.phase in _BUSY)
        allowed = busy < self.strategy.global_limits.max_open_positions
        self._after(machine, machine.on_tick(now, values, price=indicators.last_price, entries_allowed=allowed))
        if self._quiet_ms:
            self._update_quiet(symbol, now)

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
        machine, indicators = self.machines[symbol], self.indicators[symbol]
        q = self._quiet.get(symbol)
        if q is None:
            q = self._quiet[symbol] = _Quiet()
        quiet = now
        if machine.state.phase is Phase.MONITORING and now >= q.retry:  # (other phases: never quiet)
            if held is False:
                q.reach = 1  # the market moved: back to one long horizon
            short = min(self._quiet_ms, SHORT_HORIZON_MS)
            ladder = [h for h in dict.fromkeys((self._quiet_ms * q.reach, self._quiet_ms)) if h > short] + [short]
            for horizon in ladder:
                q.deps = indicators.begin_bounds()
                quiet = machine.quiet_until(now, lambda name: indicators.bounds(name, now, horizon), horizon,
                                            lambda c: indicators.note_blocker(c.indicator, now, horizon, c.operator, c.value))
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

    def _after(self, machine: StrategyMachine, intents: list[Intent]) -> None:
        for t in machine.drain_transitions():
            if t.source is not t.target:
                self.bus.publish(StrategyStateChanged(t.ts_ms, self.strategy.strategy_name, machine.symbol, t.target.value,
                                                      t.reason, t.detail))
        if machine.dirty:
            machine.dirty = False
            self.writer.put(self.state_key(machine), machine.to_dict())
        for intent in intents:
            self.intent_sink(intent)
