"""App layer: one running paper session - its own bus, data clock, paper venue and trading stack.

Each session is isolated (two sessions may replay the same symbol at different speeds) and runs
under its own `TraderCore`. Checkpoints: at start (so a resume never starts from a state the dead
process left half-written), after every order or position change and every `CHECKPOINT_EVERY`
candles, at the next candle boundary while execution is idle (the replay waits for it through the
backpressure hook): the venue state, the strategy machines and the replay cursor are written in one
durable statement. A stop from another process (`sessions stop`) is seen within half a second; a
feed that fails (a bad row) stops the session as `failed` with the reason. After a crash
the session resumes from its last checkpoint; what happened after it is replayed with the same
deterministic ids, and fills already stored are not stored or counted again: the checkpoint also
holds the indicator windows and the strategy timer's phase, so the replay after a resume makes the
same decisions as the run that crashed. A stop takes
effect at the next candle boundary (paced waits are cut short), right after a checkpoint, so a
stopped session resumes exactly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

from tui_trader.domain.config import Settings
from tui_trader.domain.events import (
    CandleClosed,
    Event,
    FundingCharged,
    OrderUpdated,
    PositionChanged,
    TaskFailed,
    TradeTick,
)
from tui_trader.domain.strategy.schema import Strategy, strategy_from_dict
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock, SimClock
from tui_trader.engine.core import TraderCore
from tui_trader.engine.risk import STATE_KEY as RISK_STATE_KEY
from tui_trader.engine.strategy_runner import load_strategy
from tui_trader.engine.trading import build_trading_stack, replay_settings
from tui_trader.store.db import Database
from tui_trader.store.orders import OrderRepository
from tui_trader.store.state import StateRepository
from tui_trader.venues.candle_files import symbol_in_filename
from tui_trader.venues.paper.funding import FundingSchedule, read_funding_csv
from tui_trader.venues.paper.snapshot import restore, snapshot
from tui_trader.venues.paper.venue import PaperVenue
from tui_trader.venues.replay import ReplayFeed, bundled_data_path, check_bar_data

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 60  # candles
STOP_POLL_S = 0.5  # how often a session looks for a stop requested by another process


class NamespacedState:
    """A `KeyValueStore` view with a per-session key prefix (strategy states of sessions never mix)."""

    def __init__(self, inner: StateRepository, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix

    async def put_state(self, key: str, value: dict) -> None:
        await self.inner.put_state(self.prefix + key, value)

    async def get_state(self, key: str) -> dict | None:
        return await self.inner.get_state(self.prefix + key)


def session_strategy(strategy_file: str | None, leverage: int | None) -> Strategy:
    """The session's strategy, with the request's leverage applied and re-validated."""
    strategy = load_strategy(strategy_file)
    if leverage is None:
        return strategy
    data = strategy.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["z1_entry"]["order"]["leverage"] = leverage
    return strategy_from_dict(data)


class _Pacer:
    """The replay's wall clock; once interrupted (a stop), its sleeps return at once so the replay
    reaches the next candle boundary without waiting out the pacing."""

    def __init__(self, wall: Clock) -> None:
        self.wall = wall
        self._interrupted = asyncio.Event()

    def time(self) -> float:
        return self.wall.time()

    def now_ms(self) -> int:
        return self.wall.now_ms()

    def call_later(self, delay_s: float, callback):  # noqa: ANN001 - Clock protocol
        return self.wall.call_later(delay_s, callback)

    async def sleep(self, seconds: float) -> None:
        if self._interrupted.is_set():
            await asyncio.sleep(0)
            return
        try:  # (asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancellation)
            async with asyncio.timeout(max(0.0, seconds)):
                await self._interrupted.wait()
        except TimeoutError:
            pass

    def interrupt(self) -> None:
        self._interrupted.set()


class _PeriodicCheckpoint:
    """Live-feed sessions have no candle boundaries to wait for (and their data cannot be replayed):
    a checkpoint within a second of an order or position change, else every 30 s."""

    name = "checkpoint"

    def __init__(self, runtime: "SessionRuntime", wall: Clock) -> None:
        self.runtime, self.wall = runtime, wall

    async def run(self) -> None:
        quiet_s = 0
        while True:
            await self.wall.sleep(1)
            quiet_s += 1
            if self.runtime._due or quiet_s >= 30:
                quiet_s, self.runtime._due = 0, False
                await self.runtime.stack.execution.idle()
                await self.runtime.write_checkpoint()


class _StopWatch:
    """`sessions stop` from another process marks the session `stopping` in the store; seen here
    within `STOP_POLL_S` (the run then stops at its next candle boundary, its paced waits cut short)."""

    name = "stop-watch"

    def __init__(self, runtime: SessionRuntime, wall: Clock) -> None:
        self.runtime, self.wall = runtime, wall

    async def run(self) -> None:
        while True:
            await self.wall.sleep(STOP_POLL_S)
            if await self.runtime.stop_asked():
                self.runtime.request_stop()
                return


class _FeedDone:
    """Runs the replay and notes when the data is exhausted."""

    def __init__(self, feed: ReplayFeed) -> None:
        self.feed = feed
        self.name = feed.name
        self.finished = asyncio.Event()

    async def run(self) -> None:
        await self.feed.run()
        self.finished.set()


class SessionRuntime:
    def __init__(self, session_id: str, config: dict[str, Any], settings: Settings, db: Database, wall: Clock,
                 checkpoint: dict[str, Any] | None = None) -> None:
        self.id = session_id
        self.config = config
        self.db = db
        self.bus = EventBus()
        self.core = TraderCore(self.bus, wall, mode="paper")
        cursor = checkpoint["cursor_ms"] if checkpoint else 0
        self.pacer = _Pacer(wall)
        self.live = config.get("source") == "mexc"
        strategy = session_strategy(config.get("strategy_file"), config.get("leverage"))
        self.bar_mode = strategy.bar_mode  # a replayed candle is over once its close has traded (`_on_candle`)
        if self.live:  # the live MEXC public feed: real time, nothing to replay after a restart
            from tui_trader.venues.mexc.candles import check_live_bar_interval
            from tui_trader.venues.mexc.ws_public import MexcFeed

            check_live_bar_interval(strategy)

            self.feed = MexcFeed(settings.mexc, self.bus, wall, symbols=list(config["symbols"]), name=f"mexc:{session_id}")
            self.data_clock: Clock = wall
        else:
            path = config.get("data_file") or str(bundled_data_path())
            replay = ReplayFeed(self.bus, self.pacer, path, symbol=(config.get("symbols") or [None])[0],
                                speed=config.get("speed", 0.0), ticks_per_candle=settings.replay.ticks_per_candle,
                                spread_bps=settings.replay.spread_bps, start_after_ms=cursor,
                                name=f"replay:{session_id}", close_after_bar=strategy.bar_mode)
            check_bar_data(replay, strategy)
            self.feed = replay
            start = checkpoint["data_now_ms"] if checkpoint else self.feed.first_ts_ms() - 1
            self.data_clock = SimClock(start)
            self.feed.data_clock = self.data_clock
        paper = settings.paper.model_copy(update={k: v for k, v in (("latency_ms", config.get("latency_ms")),) if v is not None})
        funding = None
        if config.get("funding_file"):  # charged on the symbol its name names (`funding_series`), else on the session's
            path = Path(config["funding_file"])
            series, named = read_funding_csv(path), symbol_in_filename(path)
            funding = FundingSchedule(Decimal(str(paper.funding_rate)), paper.funding_interval_h, None if named else series,
                                      by_symbol={named: series} if named else None)
        self.venue = PaperVenue(self.bus, paper=paper, fees=settings.fees, starting_balance=Decimal(str(config["starting_balance"])),
                                funding=funding)
        if checkpoint:
            restore(self.venue, checkpoint["venue"])
        self.state = NamespacedState(StateRepository(db), f"session:{session_id}:")
        symbols = list(config["symbols"]) if self.live else [self.feed.symbol]
        if not self.live:
            settings = replay_settings(settings, self.feed.interval_s, settings.replay.ticks_per_candle)
        self.stack = build_trading_stack(settings, self.bus, self.data_clock, self.venue, OrderRepository(db), self.state,
                                         strategy=strategy, symbols=symbols, session_id=session_id)
        if not self.live:
            self.feed.backpressure = self
        self.done = _FeedDone(self.feed)
        for service, options in self.stack.services:
            self.core.add(service, **options)
        self.core.add(self.done, restart=self.live, critical=not self.live)  # a replay that fails ends the session
        self.core.add(_StopWatch(self, wall))
        if self.live:
            self.core.add(_PeriodicCheckpoint(self, wall))
        self.error: str | None = None  # why the session failed (the first critical task failure)
        self._checkpoint = checkpoint
        self._candles = 0
        self._due = False
        self._cursor = cursor
        self._stop_pending = False
        self._at_boundary = True
        self._close_trade_due = False  # bar mode: a candle closed, its close not yet traded
        self.bus.subscribe(self._on_candle, [CandleClosed], name="session.candle")
        self.bus.subscribe(self._on_trade, [TradeTick], name="session.trade")
        self.bus.subscribe(self._on_funding, [FundingCharged], name="session.funding")
        self.bus.subscribe(self._on_change, [OrderUpdated, PositionChanged], name="session.change")
        self.bus.subscribe(self._on_failure, [TaskFailed], name="session.failure")

    # --- backpressure: the replay waits here at each candle boundary ----------------------

    def has_work(self) -> bool:
        return self._due or self._stop_pending or self.stack.execution.has_work()

    async def idle(self) -> None:
        await self.stack.execution.idle()
        if not self._at_boundary:
            return
        if self._due or self._stop_pending:
            self._due = False
            await self.write_checkpoint()
        if self._stop_pending:
            self.core.request_stop()
            await asyncio.Event().wait()  # park the replay at this boundary until the core cancels it

    def _on_trade(self, ev: Event) -> None:
        self._at_boundary, self._close_trade_due = self._close_trade_due, False

    def _on_candle(self, ev: Event) -> None:
        assert isinstance(ev, CandleClosed)
        self._cursor = ev.open_ms
        # bar mode: the candle is over once its close has traded (an entry sent at the close fills on that
        # trade): a checkpoint or a stop between the two would resume with the fill at the next bar's open
        self._close_trade_due = self.bar_mode
        self._at_boundary = not self._close_trade_due
        acct = self.venue.ledger.account(self.venue.marks)
        self.db.enqueue("INSERT OR REPLACE INTO session_equity (session_id, ts_ms, equity, cash) VALUES (?, ?, ?, ?)",
                        (self.id, ev.ts_ms, str(acct.equity), str(acct.cash_balance)))
        self._candles += 1
        if self._candles % CHECKPOINT_EVERY == 0:
            self._due = True

    def _on_change(self, ev: Event) -> None:
        self._due = True  # an order or a position changed: checkpoint at the next boundary

    def _on_failure(self, ev: Event) -> None:
        assert isinstance(ev, TaskFailed)
        if ev.critical and self.error is None:
            self.error = ev.error

    def _on_funding(self, ev: Event) -> None:
        assert isinstance(ev, FundingCharged)
        self.db.enqueue("INSERT OR IGNORE INTO session_funding (session_id, ts_ms, symbol, amount) VALUES (?, ?, ?, ?)",
                        (self.id, ev.ts_ms, ev.symbol, str(ev.amount)))

    def checkpoint(self) -> dict[str, Any]:
        runner = self.stack.runner
        return {
            "cursor_ms": self._cursor if not self.live else self.data_clock.now_ms(),
            "data_now_ms": self.data_clock.now_ms(),
            "venue": snapshot(self.venue),
            "machines": {sym: m.to_dict() for sym, m in runner.machines.items()} if runner else {},
            "runner": runner.export_state() if runner else None,
            "risk": self.stack.risk.snapshot(),  # peak / day-start equity and kill switch as of this checkpoint
        }

    async def write_checkpoint(self) -> None:
        """Queued equity/funding rows first, then the checkpoint (one statement); honour a stop request."""
        await self.db.flush()
        await self.db.execute_durable("UPDATE sessions SET checkpoint_json = ?, cursor_ms = ?, updated_ms = ? WHERE id = ?",
                                      (json.dumps(self.checkpoint()), self._cursor, self.data_clock.now_ms(), self.id))
        if await self.stop_asked():
            self._stop_pending = True

    async def stop_asked(self) -> bool:
        """Has `sessions stop` (another process) marked this session `stopping` in the store?"""
        row = await self.db.fetchone("SELECT status FROM sessions WHERE id = ?", (self.id,))
        return row is not None and row["status"] == "stopping"

    # --- life -----------------------------------------------------------------------------

    async def _restore(self) -> None:
        if not self._checkpoint:  # a fresh start: nothing a dead process stored for this session may steer it
            await self.db.execute_durable("DELETE FROM state WHERE key LIKE ?", (f"session:{self.id}:%",))
        for p in await self.venue.positions():  # the cache, the watchdog and the replay's path choice
            self.stack.cache.apply_position(p)
            self.bus.publish(PositionChanged(self.data_clock.now_ms(), p, reason="restored"))
        for o in await self.venue.open_orders():
            self.stack.cache.apply_order(o)
        if self._checkpoint:
            self.venue.report_account(self.data_clock.now_ms())  # the risk guard marks equity from it
        if self._checkpoint and self._checkpoint.get("risk"):
            # the guard's own store may hold a later state written by the process that crashed
            await self.state.put_state(RISK_STATE_KEY, self._checkpoint["risk"])
        runner = self.stack.runner
        if runner is not None and self._checkpoint:
            if self._checkpoint.get("runner"):
                runner.import_state(self._checkpoint["runner"])
            for sym, data in self._checkpoint.get("machines", {}).items():
                if sym in runner.machines:
                    await self.state.put_state(runner.state_key(runner.machines[sym]), data)

    async def run(self) -> str:
        """Run until the data ends ('finished') or a stop ('stopped'); raises if a critical part failed."""
        await self._restore()
        if not self._checkpoint:
            await self.write_checkpoint()  # the state at start: a resume from here is a clean replay
        async with self.core:
            finished = asyncio.create_task(self.done.finished.wait())
            stopped = asyncio.create_task(self.core.wait_stop_requested())
            await asyncio.wait({finished, stopped}, return_when=asyncio.FIRST_COMPLETED)
            for t in (finished, stopped):
                t.cancel()
            await asyncio.gather(finished, stopped, return_exceptions=True)
            if self.done.finished.is_set() or self.live:
                await self.stack.execution.idle()
                await self.write_checkpoint()  # replay exhausted, or live: the state now is the state
        if self.core.exit_code:
            status = "failed"
        else:
            status = "finished" if self.done.finished.is_set() else "stopped"
        await self.db.flush()
        await self.db.execute_durable("UPDATE sessions SET status = ?, stopped_ms = ?, owner_pid = NULL, error = ?"
                                      " WHERE id = ?", (status, self.data_clock.now_ms(),
                                                        self.error if status == "failed" else None, self.id))
        return status

    def request_stop(self) -> None:
        """Stop at the next candle boundary, after a checkpoint (at once if the replay is not running)."""
        self._stop_pending = True
        self.pacer.interrupt()
        if self.live or self.done.finished.is_set() or self.feed.state not in ("replaying",):
            self.core.request_stop()
