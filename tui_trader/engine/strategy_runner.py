"""Engine layer: runs one strategy's machines on the bus - indicators in, intents out, state persisted.

One `StrategyMachine` and one `IndicatorSet` per symbol. The runner is an inline bus subscriber:
market events of its symbols update the indicators and step the machine at once, order and
position events carrying a machine's tag go to that machine, and a 1 s timer on the injected
clock steps every machine so timeouts, retries and sliding windows advance on a quiet market.
No step that could change anything is dropped or throttled (defect D10); each one is synchronous.

The timer keeps a grid (start + k x tick_s). Live and paper trading step plainly: every market
event and every grid second steps, nothing is bounded or skipped.

Step gate (backtests only): `step_gate`, None unless a backtest attaches one (`StepGate`; the
backtest's `QuietStepAccelerator`, `backtest/quiet_steps.py`), is asked before each tick-mode
step whether it would change nothing, and told after each step and each order or position event;
it may let the timer sleep past steps it rules out (`StepGate.timer_until`). The public methods
it uses are marked "(step gates)".

Time: the machines run on *event time* (strategy.md §2.1): a symbol's now is the timestamp of
its newest market event, advanced by the clock time elapsed since that event arrived, and never
moves backwards. Replayed data (2017 timestamps) and a wall clock therefore never mix. Market
values older than `global_limits.max_stale_data_s` are handed to the machine as undefined.

Bar mode (`evaluation = "bar"`): the machines step on each closed candle of the strategy's
interval (`BarIndicatorSet`; ticks are not even subscribed to) and at their own deadlines
(`StrategyMachine.next_deadline_ms`: signal timeout, fill timeout, max hold, close re-sends) -
nothing else: no 1 s timer, no step gate. An entry decided at a close goes out at that close.

Persistence: after every state change the machine's dict is queued (latest per key) and written
by `run()` through a `StateWriter`; `start()` restores every machine, so
a running position survives a restart. Intents go to `intent_sink` (execution's `submit`).
"""

from __future__ import annotations

import base64
import logging
import pickle
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path

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
from tui_trader.domain.indicators.registry import IndicatorSet
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
from tui_trader.engine.state_writer import StateWriter
from tui_trader.engine.step_gate import StepGate

log = logging.getLogger(__name__)

STATE_KEY_PREFIX = "strategy:"
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


class StrategyRunner:
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
        self.tick_ms = max(1, round(tick_s * 1000))  # the timer's grid step
        self.step_gate: StepGate | None = None  # backtests only (see StepGate); None: every step runs
        self._unsubscribe: Callable[[], None] | None = None
        self._stale_ms = round(strategy.global_limits.max_stale_data_s * 1000)
        self._first_timer_ms: int | None = None  # restored timer phase (see import_state)
        self._warm_from: dict[str, int | None] = {}
        self._deadline_not_before = 0  # bar mode: after a failed deadline step, no retry before this clock time

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
        first = self._first_timer_ms if self._first_timer_ms is not None else self.clock.now_ms() + self.tick_ms
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
            gate = self.step_gate
            if gate is not None and gate.already_has(event):
                return  # a re-publication of data the gate already handed over
            indicators.on_event(event)
            kind = "trade" if isinstance(event, TradeTick) else "book" if isinstance(event, BookTick) else "candle"
            price = event.price if kind == "trade" else 0.0  # type: ignore[union-attr]
            self.on_market(event.symbol, event.ts_ms, kind, price)
        else:
            machine = self._on_order_or_position(event)
            if machine is not None and self.step_gate is not None:
                self.step_gate.order_or_position(machine.symbol)

    def _on_order_or_position(self, event: Event) -> StrategyMachine | None:
        """An order or position event goes to the machine whose tag it carries (both modes); that machine."""
        if isinstance(event, OrderUpdated):
            machine = self._machine_for(event.order.tag, event.order.symbol)
            if machine is not None:
                self._after(machine, machine.on_order_update(self.now_ms(machine.symbol), event.order))
            return machine
        if isinstance(event, PositionChanged):
            machine = self._machine_for(event.position.tag, event.position.symbol)
            if machine is not None:
                now = self.now_ms(machine.symbol)
                self._after(machine, machine.on_position_changed(now, event.position, event.reason))
            return machine
        return None

    def on_market(self, symbol: str, ts_ms: int, kind: str, price: float = 0.0) -> None:
        """A market event of `symbol` at `ts_ms` (`kind` trade / book / candle, a trade's `price`)
        was just put into `indicators[symbol]`: note its event time, then step (unless a step gate
        rules the step out). The bus handler's path; (step gates) also for data a gate hands over
        itself instead of publishing it."""
        self._seen[symbol] = (ts_ms, self.clock.now_ms())
        gate = self.step_gate
        if gate is None or not gate.skip_market_step(symbol, kind, price):
            self.step(symbol)

    def note_market(self, symbol: str, ts_ms: int) -> int:
        """(step gates) Market data up to `ts_ms` was put into `indicators[symbol]` and no step
        can follow it: only the symbol's event time moves. Returns it (`now_ms`)."""
        self._seen[symbol] = (ts_ms, self.clock.now_ms())
        return self.now_ms(symbol)

    # --- bar mode -----------------------------------------------------------------------------

    def _on_bar_event(self, event: Event) -> None:
        if isinstance(event, (CandleClosed, CandlesClosed)):
            bars = self.bars.get(event.symbol)
            if bars is None or not bars.on_event(event):
                return  # another interval, a repeated candle
            clock_now = self.clock.now_ms()
            self._seen[event.symbol] = (event.ts_ms, clock_now)
            if not self._bar_stale(bars, clock_now):
                self.step_bar(event.symbol)  # (an old close - a backfill after a reconnect - is history: counted only)
        else:
            self._on_order_or_position(event)
        self._schedule_deadline()

    def step_bar(self, symbol: str) -> None:
        """Bar mode: evaluate one machine at the close of the bar its indicators just counted."""
        machine, bars = self.machines[symbol], self.bars[symbol]
        assert bars.last_price is not None
        self._after(machine, machine.on_bar(self.now_ms(symbol), bars.values(), price=bars.last_price, bar=bars.bars,
                                            entries_allowed=self._entries_allowed()))

    def _entries_allowed(self) -> bool:
        """Fewer machines busy (entering, in a position, exiting) than `max_open_positions`."""
        busy = sum(1 for m in self.machines.values() if m.phase in _BUSY)
        return busy < self.strategy.global_limits.max_open_positions

    def _bar_stale(self, bars: BarIndicatorSet, now: int) -> bool:
        """Bar mode: the last bar closed more than an interval + max_stale_data_s before `now` (no data
        came since, or this close is a backfill): no decision on it."""
        return bars.last_event_ms is None or now - bars.last_event_ms > bars.interval_s * 1000 + self._stale_ms

    def _bar_values(self, symbol: str, now: int) -> dict[str, float | None]:
        """The last bar's values; undefined once that bar is older than an interval + max_stale_data_s
        (the feed stopped: no decision on old data)."""
        bars = self.bars[symbol]
        return dict.fromkeys(bars.indicators) if self._bar_stale(bars, now) else bars.values()

    def _schedule_deadline(self) -> None:
        """Bar mode: the timer sleeps until the first machine deadline (event time -> clock time)."""
        if self._unsubscribe is None:
            return
        clock_now, due = self.clock.now_ms(), None
        for symbol, machine in self.machines.items():
            deadline = machine.next_deadline_ms()
            if deadline is None:
                continue
            at = deadline - self.now_ms(symbol) + clock_now  # event time -> clock time (the same with no data yet)
            at = max(at, clock_now + 1, self._deadline_not_before)  # (a past deadline: its step runs now, or just ran)
            due = at if due is None else min(due, at)
        if due == self._timer_due:
            return
        if due is None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._timer_due = None
            return
        self._schedule(due, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = self._timer_due = None
        try:
            for symbol, machine in self.machines.items():
                deadline = machine.next_deadline_ms()
                now = self.now_ms(symbol)
                if deadline is not None and now >= deadline:
                    self._after(machine, machine.on_deadline(now, self._bar_values(symbol, now)))
        except Exception as exc:  # timer boundary: report and keep going - retried in a second, not at once
            log.exception("strategy deadline step failed")
            self.bus.publish(ErrorRaised(self.clock.now_ms(), self.name, f"{type(exc).__name__}: {exc}"))
            self._deadline_not_before = self.clock.now_ms() + self.tick_ms
        finally:
            self._schedule_deadline()

    def _machine_for(self, tag: str, symbol: str) -> StrategyMachine | None:
        machine = self.machines.get(symbol)
        return machine if machine is not None and machine.tag == tag else None

    # --- the step timer ---------------------------------------------------------------------

    def _on_timer(self) -> None:
        self._timer = self._timer_due = None
        now = self.clock.now_ms()
        gate = self.step_gate
        try:
            for symbol in self.machines:
                # no market data yet: nothing to evaluate, no event time
                if symbol in self._seen and (gate is None or not gate.skip_timer_step(symbol)):
                    self.step(symbol)
        except Exception as exc:  # timer boundary: report and keep ticking
            log.exception("strategy step failed")
            self.bus.publish(ErrorRaised(self.clock.now_ms(), self.name, f"{type(exc).__name__}: {exc}"))
        finally:
            if self._unsubscribe is not None and self._timer is None:
                self._reschedule(now)

    def _reschedule(self, now: int) -> None:
        """Next timer: the next grid instant; with a step gate, the first one at or after the
        earliest `timer_until` of the symbols with market data."""
        wake, gate = now + 1, self.step_gate
        if gate is not None:
            wake = max(wake, min((gate.timer_until(s) for s in self._seen), default=0))
        self._schedule(self.grid_at(wake))

    def grid_at(self, t_ms: int) -> int:
        """The first step-grid instant (clock time) at or after `t_ms`."""
        return self._grid_ms - (self._grid_ms - t_ms) // self.tick_ms * self.tick_ms

    def _schedule(self, due_ms: int, callback: Callable[[], None] | None = None) -> None:
        """The runner's one timer at `due_ms` (clock time): the 1 s step grid, or bar mode's deadlines."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due_ms
        self._timer = self.clock.call_later(max(0, due_ms - self.clock.now_ms()) / 1000, callback or self._on_timer)

    @property
    def timer_due_ms(self) -> int | None:
        """Clock time the step timer (bar mode: the deadline timer) fires next (None: not set)."""
        return self._timer_due

    def wake_by(self, clock_ms: int) -> None:
        """(step gates) A timer step is needed at the first grid instant at or after `clock_ms`:
        the timer is brought forward if it is due later. Before `start()` and inside the timer's
        own steps (it reschedules itself after them) there is nothing to do."""
        if self._timer_due is None or self._unsubscribe is None or self.bar_mode:
            return
        due = self.grid_at(max(clock_ms, self.clock.now_ms() + 1))
        if due < self._timer_due:
            self._schedule(due)

    def replan_timer(self) -> None:
        """(step gates) The gate's `timer_until` changed either way: the timer is set again from it."""
        if self._timer_due is not None and self._unsubscribe is not None and not self.bar_mode:
            self._reschedule(self.clock.now_ms())

    def event_time(self, symbol: str) -> int | None:
        """(step gates) The newest event time `now_ms` handed out for `symbol` (None: none yet),
        without moving it."""
        return self._last_now.get(symbol)

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
        machine, indicators = self.machines[symbol], self.indicators[symbol]
        now = self.now_ms(symbol)
        values = self.values_at(symbol, now)
        self._after(machine, machine.on_tick(now, values, price=indicators.last_price,
                                             entries_allowed=self._entries_allowed()))
        if self.step_gate is not None:
            self.step_gate.stepped(symbol, now)

    def values_at(self, symbol: str, now: int) -> Mapping[str, float | None]:
        """The indicator values a step of `symbol` at event time `now` evaluates; all undefined
        once the newest market data is older than `max_stale_data_s` (strategy.md §1.1 rule 3)."""
        indicators = self.indicators[symbol]
        last = indicators.last_event_ms
        if last is None or now - last > self._stale_ms:
            return dict.fromkeys(indicators.indicators)
        return indicators.values(now)

    def _after(self, machine: StrategyMachine, intents: list[Intent]) -> None:
        for t in machine.drain_transitions():
            if t.source is not t.target:
                self.bus.publish(StrategyStateChanged(t.ts_ms, self.strategy.strategy_name, machine.symbol,
                                                      t.target.value, t.reason, t.detail))
        if machine.dirty:
            machine.dirty = False
            self.writer.put(self.state_key(machine), machine.to_dict())
        for intent in intents:
            self.intent_sink(intent)
