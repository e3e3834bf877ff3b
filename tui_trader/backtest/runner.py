"""Backtest layer: runs a strategy over candle files through the very stack paper trading runs.

Composition (the same as `app/wiring.py`'s paper mode, only the clock and the store differ):
`ReplayFeed` (all files merged, full speed, backpressure = execution) -> bus -> strategy runner,
risk, watchdog, execution (`engine.trading.build_trading_stack`) -> `PaperVenue` (fills, fees,
slippage, SL/TP, funding, liquidation). Every component runs on one `SimClock` that the feed moves
to each tick's data time, under a `TraderCore` that supervises them as in the console. Orders and
fills go to a `MemoryStore` (its coroutines never suspend, so a run is deterministic); the finished
run is written to SQLite once at the end (`store_path`). Paper latency defaults to 0 here.
Tick mode: the `QuietStepAccelerator` (`quiet_steps.py`) leaves out strategy steps its bounds
prove to be no-ops and, while flat, keeps the ticks they cover off the bus (`fast_path=False`: every
step and tick, as paper trading runs them). Trades are identical either way and to a paper replay's
(tested).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Sequence

from tui_trader.backtest.bar_replay import BarReplay
from tui_trader.backtest.bar_screen import s1_may_fire
from tui_trader.backtest.metrics import compute_metrics, metrics_to_json
from tui_trader.backtest.quiet_steps import QuietStepAccelerator
from tui_trader.backtest.recorder import BacktestTrade, Recorder
from tui_trader.domain.config import Settings
from tui_trader.domain.errors import DataError
from tui_trader.domain.events import (
    ErrorRaised,
    Event,
    FeedStateChanged,
    OrderUpdated,
    TaskFailed,
)
from tui_trader.domain.models import OrderState
from tui_trader.domain.money import to_decimal
from tui_trader.domain.strategy.schema import Strategy
from tui_trader.domain.time_format import iso_utc
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock
from tui_trader.engine.core import TraderCore
from tui_trader.engine.strategy_runner import load_strategy
from tui_trader.engine.trading import build_trading_stack, replay_settings
from tui_trader.store.memory import MemoryStore
from tui_trader.venues.candle_cache import (
    CandleColumns,
    default_cache_dir,
    load_series_columns,
)
from tui_trader.venues.paper.funding import FundingSchedule, funding_series
from tui_trader.venues.paper.venue import PaperVenue
from tui_trader.venues.replay import ReplayFeed, check_bar_data

HOUR_MS = 3_600_000
_numbers = re.compile(r"\d+(?:\.\d+)?")
MAX_ERRORS_KEPT = 50


@dataclass
class BacktestResult:
    id: str
    created_ms: int
    status: str  # finished | failed
    strategy: str
    symbols: list[str]
    date_from_ms: int | None
    date_to_ms: int | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    trades: list[BacktestTrade]
    equity: list[tuple[int, Decimal]]
    bars: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        """The `backtest_runs` row (JSON-ready), as `store.backtests` saves it."""
        return {
            "id": self.id, "created_ms": self.created_ms, "status": self.status, "strategy": self.strategy,
            "symbols": self.symbols, "date_from_ms": self.date_from_ms, "date_to_ms": self.date_to_ms,
            "params": {**self.params, "bars": self.bars, "elapsed_s": round(self.elapsed_s, 3), "errors": self.errors},
            "metrics": metrics_to_json(self.metrics), "trades": [t.to_dict() for t in self.trades],
            "equity": [[ts, str(e)] for ts, e in self.equity],
        }  # fmt: skip


def new_run_id() -> str:
    return time.strftime("bt-%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]


def run_backtest(strategy: Strategy | Path | str | None, data: Sequence[Path | str], **options: Any) -> BacktestResult:
    """Synchronous entry point (CLI, grid workers, the dashboard's thread worker): see `run_backtest_async`."""
    return asyncio.run(run_backtest_async(strategy, data, **options))


async def run_backtest_async(
    strategy: Strategy | Path | str | None,
    data: Sequence[Path | str],
    *,
    settings: Settings | None = None,
    symbols: Sequence[str | None] | None = None,
    date_from_ms: int | None = None,
    date_to_ms: int | None = None,
    funding_file: Path | str | Sequence[Path | str] | None = None,
    latency_ms: int = 0,
    equity_every_ms: int = HOUR_MS,
    params: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    store_path: Path | str | None = None,
    run_id: str | None = None,
    fast_path: bool = True,
    columns: CandleColumns | None = None,
) -> BacktestResult:
    """Run `strategy` (a `Strategy`, a file, or None = the bundled default) over the candle files.

    `date_to_ms` is exclusive (candles opening before it). `progress(bars_done, data_time_ms)` is
    called about ten times a second. With `store_path` the result is saved to that SQLite database.
    Bad data met mid-file stops the run: it is saved as `failed`, then `DataError` is raised.
    Files of one symbol are one series (`read_candle_series`). No candle in range: `DataError`
    before anything runs (nothing is saved). A bar-mode strategy on one symbol runs on the
    file's columns (`BarReplay`, cached under `<data_dir>/candles` when the settings name a data
    dir); `fast_path=False` replays every bar as events - and in tick mode runs every strategy
    step and publishes every tick (no `QuietStepAccelerator`) - the trades are the same (tested);
    `columns`: those bars already in memory (`load_columns` of `data`), used instead of reading it.
    """
    settings = settings or Settings()
    strat = strategy if isinstance(strategy, Strategy) else load_strategy(strategy)
    run_id = run_id or new_run_id()
    started = time.perf_counter()
    syms = list(symbols) if symbols is not None else [None] * len(data)
    feed, venue, core, stack = _assemble(strat, list(zip(data, syms)), settings, date_from_ms, date_to_ms, funding_file,
                                         latency_ms, run_id, fast_path, columns)
    recorder = Recorder(core.bus, lambda: venue.ledger.account(venue.marks).equity, equity_every_ms)
    if isinstance(feed, BarReplay):
        feed.recorder = recorder  # it counts and samples the bars the replay leaves out
    outcome = _Outcome(core.bus, feed.name)
    async with core:
        watcher = asyncio.create_task(_report_progress(feed, progress)) if progress else None
        try:
            await outcome.wait(core)
            await stack.execution.idle()
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
    recorder.finish()
    failed = feed.state != "finished" or outcome.feed_error is not None
    result = BacktestResult(
        run_id, int(time.time() * 1000), "failed" if failed else "finished", strat.strategy_name,
        feed.symbols, recorder.first_open_ms, recorder.last_close_ms,
        {**(params or {}), **_run_params(settings, data, funding_file, latency_ms, equity_every_ms, date_from_ms, date_to_ms)},
        compute_metrics(recorder.trades, recorder.curve, equity_every_ms), recorder.trades, recorder.curve,
        recorder.bars, time.perf_counter() - started, outcome.summary(),
    )  # fmt: skip
    if store_path is not None:
        await save_result(result, store_path)
    if outcome.feed_error is not None:
        raise DataError(f"backtest {run_id} stopped at bar {result.bars + 1}: {outcome.feed_error}")
    return result


def _assemble(strat: Strategy, sources: list, settings: Settings, date_from_ms: int | None, date_to_ms: int | None,
              funding_file: Path | str | Sequence[Path | str] | None, latency_ms: int, run_id: str,
              fast_path: bool = True, columns: CandleColumns | None = None,
              ) -> tuple[ReplayFeed | BarReplay, PaperVenue, TraderCore, Any]:
    """The paper-trading composition (`app/wiring.py::_paper`) on a SimClock and a memory store."""
    bus = EventBus()
    feed = ReplayFeed(
        bus, SimClock(), sources=sources, speed=0, ticks_per_candle=settings.replay.ticks_per_candle,
        spread_bps=settings.replay.spread_bps, start_after_ms=(date_from_ms - 1) if date_from_ms else 0, until_ms=date_to_ms,
        name="backtest", close_after_bar=strat.bar_mode,
    )  # fmt: skip
    check_bar_data(feed, strat)
    bar_columns = _bar_columns(feed, settings, date_from_ms, date_to_ms, columns) if strat.bar_mode else None
    if bar_columns is not None:  # (the columns say where they start: no text read of the file)
        first = int(bar_columns.ts[0]) if len(bar_columns) else None
    else:
        first = feed.first_candle_ms()
    if first is None:
        raise DataError(_no_candles(feed, date_from_ms, date_to_ms))
    clock = SimClock(first - 1)
    feed.clock = feed.data_clock = clock  # speed 0: the pacing clock is never waited on
    bars = None
    if bar_columns is not None:
        bars = BarReplay(bus, clock, bar_columns, feed.symbol, interval_s=strat.bar_interval_s,
                         spread_bps=settings.replay.spread_bps, position_side=feed.position_side,
                         may_fire=s1_may_fire(strat, bar_columns) if fast_path else None)
    funding = FundingSchedule(to_decimal(settings.paper.funding_rate), settings.paper.funding_interval_h,
                              by_symbol=funding_series(_paths(funding_file), feed.symbols))
    venue = PaperVenue(bus, paper=settings.paper, fees=settings.fees, funding=funding, latency_ms=latency_ms)
    store = MemoryStore()
    settings = replay_settings(settings, feed.interval_s, settings.replay.ticks_per_candle)
    stack = build_trading_stack(settings, bus, clock, venue, store, store, strategy=strat, symbols=feed.symbols, session_id=run_id)
    feed.backpressure = stack.execution
    if fast_path and stack.runner is not None and not strat.bar_mode:  # no-op steps left out, quiet ticks off the bus
        QuietStepAccelerator(stack.runner, feed, lambda: venue.is_idle() and not stack.execution.has_work()).attach()
    core = TraderCore(bus, clock, mode="backtest")
    for service, opts in stack.services:
        core.add(service, **opts)
    if bars is not None:
        bars.backpressure, bars.venue_idle = stack.execution, venue.is_idle
        runner = stack.runner
        bars.machines = lambda: runner.machines.values() if runner is not None else ()
        bars.bar_sets = lambda: runner.bars.values() if runner is not None else ()
        core.add(bars)
        return bars, venue, core, stack
    core.add(feed)  # last: everything that listens is subscribed before the first tick
    return feed, venue, core, stack


def _bar_columns(feed: ReplayFeed, settings: Settings, date_from_ms: int | None, date_to_ms: int | None,
                 columns: CandleColumns | None) -> CandleColumns | None:
    """A bar-mode run on one symbol runs on its columns (given, else from the candle cache), cut to the
    range; several symbols: None, the merged replay publishes every bar."""
    if len(feed.symbols) != 1:
        return None
    if columns is None:
        cache = default_cache_dir(settings.data_dir)
        columns = load_series_columns(feed.files[0], cache)
    return columns.between(date_from_ms, date_to_ms)


def _paths(files: Path | str | Sequence[Path | str] | None) -> list[Path]:
    if files is None:
        return []
    return [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]


def _no_candles(feed: ReplayFeed, date_from_ms: int | None, date_to_ms: int | None) -> str:
    names = ", ".join(path.name for paths in feed.files for path in paths)
    window = (f" from {iso_utc(date_from_ms)}" if date_from_ms is not None else "") + (
        f" before {iso_utc(date_to_ms)}" if date_to_ms is not None else "")
    return f"nothing to test: no candle in {names}{window}"


class _Outcome:
    """Waits for the feed to finish (or the core to stop) and keeps the errors raised meanwhile."""

    def __init__(self, bus: EventBus, feed: str) -> None:
        self.feed = feed
        self.done = asyncio.Event()
        self.errors: list[str] = []
        self.feed_error: str | None = None  # the feed crashed (bad data): the run is incomplete
        self.refused: dict[str, list] = {}  # why orders were refused (the reason, numbers masked) -> [count, the first]
        bus.subscribe(self._on_event, [FeedStateChanged, ErrorRaised, TaskFailed, OrderUpdated],
                      name="backtest.outcome")

    def summary(self) -> list[str]:
        """The errors kept, then one line per reason orders were refused (a run that trades nothing says why)."""
        refused = [f"{n} order{'s' * (n > 1)} refused, the first: {first}" for n, first in self.refused.values()]
        return self.errors + refused

    def _on_event(self, ev: Event) -> None:
        if isinstance(ev, OrderUpdated):
            if ev.order.state is OrderState.REJECTED:
                why = ev.order.reason or "no reason given"
                kind = _numbers.sub("#", why)  # one line per kind of reason, not per price
                if kind in self.refused or len(self.refused) < MAX_ERRORS_KEPT:
                    self.refused.setdefault(kind, [0, why])[0] += 1
            return
        if isinstance(ev, FeedStateChanged):
            if ev.state in ("finished", "stopped"):
                self.done.set()
            return
        if isinstance(ev, TaskFailed) and ev.task == self.feed:
            self.feed_error = ev.error
            self.done.set()
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(f"{ev.ts_ms} {ev.type}: {getattr(ev, 'message', '') or getattr(ev, 'error', '')}")

    async def wait(self, core: TraderCore) -> None:
        stop = asyncio.create_task(core.wait_stop_requested())
        done = asyncio.create_task(self.done.wait())
        await asyncio.wait([stop, done], return_when=asyncio.FIRST_COMPLETED)
        for task in (stop, done):
            task.cancel()
        await asyncio.gather(stop, done, return_exceptions=True)


async def _report_progress(feed: ReplayFeed | BarReplay, progress: Callable[[int, int], None]) -> None:
    while True:
        progress(feed.candles_published, feed.cursor_ms)
        await asyncio.sleep(0.1)  # wall time: the feed yields to the loop every few hundred candles


def _run_params(settings: Settings, data: Sequence[Path | str], funding_file: Path | str | Sequence[Path | str] | None, latency_ms: int,
                every_ms: int, date_from_ms: int | None, date_to_ms: int | None) -> dict[str, Any]:
    return {
        "data": [str(p) for p in data], "funding_file": [str(p) for p in _paths(funding_file)] or None,
        "latency_ms": latency_ms, "equity_every_ms": every_ms, "from_ms": date_from_ms, "to_ms": date_to_ms,
        "starting_balance": str(to_decimal(settings.paper.starting_balance)), "slippage_bps": settings.paper.slippage_bps,
        "taker_fee_rate": settings.fees.taker_rate, "funding_rate": settings.paper.funding_rate,
        "ticks_per_candle": settings.replay.ticks_per_candle, "spread_bps": settings.replay.spread_bps,
    }  # fmt: skip


async def save_result(result: BacktestResult, store_path: Path | str) -> None:
    """Write the run to the `backtest_runs` table of the SQLite database at `store_path`."""
    from tui_trader.store.backtests import BacktestRepository
    from tui_trader.store.db import Database

    db = Database(store_path)
    try:
        await BacktestRepository(db).save(result.to_record())
    finally:
        await db.close()
