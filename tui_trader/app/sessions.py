"""App layer: the paper-sessions service used by the dashboard and the CLI.

Eight operations: create, list, get, performance, orders, stop, delete, health (plus resume and
emergency-stop-all). Sessions live in the `sessions` table; a running one is hosted by the process
that runs it (`owner_pid`). Rule after a crash: a session whose status is `running` but whose owner
process is gone is shown as `interrupted`; `resume` continues it from its last checkpoint (see
`session_runtime.py`) with its orders, fills and positions intact and no fill counted twice.
Requests are validated before anything is written; every refusal is a typed `SessionError`.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tui_trader.app.session_runtime import SessionRuntime, session_strategy
from tui_trader.backtest import metrics
from tui_trader.backtest.recorder import BacktestTrade, stored_trades
from tui_trader.domain.config import MAX_LEVERAGE, MIN_LEVERAGE, Settings
from tui_trader.domain.errors import DataError, StrategyError, TraderError
from tui_trader.domain.models import Fill, Order, Position, Side
from tui_trader.domain.money import cents
from tui_trader.engine.clock import Clock, WallClock
from tui_trader.store.db import Database
from tui_trader.store.orders import OrderRepository
from tui_trader.venues.candle_files import read_candles, symbol_from_filename
from tui_trader.venues.paper.funding import funding_series
from tui_trader.venues.paper.snapshot import restore
from tui_trader.venues.paper.venue import PaperVenue
from tui_trader.venues.replay import bundled_data_path


class SessionError(TraderError):
    """A session request was refused; nothing was changed."""


class SessionNotFound(SessionError):
    pass


class SessionRunning(SessionError):
    pass


class InvalidSessionRequest(SessionError):
    """`field` names the request field at fault (None: the request as a whole), so a form can mark it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SessionRequest(BaseModel):
    """What `create` needs. Validated before anything is stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    strategy_file: Path | None = None  # None = the bundled pump_short
    symbols: list[str] = Field(default_factory=list)  # empty = derived from the data file
    starting_balance: float = Field(10_000.0, gt=0, le=1e12)
    leverage: int | None = Field(None, ge=MIN_LEVERAGE, le=MAX_LEVERAGE)  # overrides the strategy's Z1 leverage
    source: Literal["replay", "mexc"] = "replay"  # mexc = the live public feed (needs symbols)
    data_file: Path | None = None  # replay only; None = the bundled sample
    funding_file: Path | None = None  # `timestamp_ms,funding_rate` series; None = paper.funding_rate constant
    speed: float = Field(0.0, ge=0, le=1_000_000)  # 0 = as fast as possible
    latency_ms: int | None = Field(None, ge=0, le=60_000)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()


@dataclass
class Performance:
    """A session's figures. Trades, drawdown and Sharpe use the backtester's definitions
    (`backtest/recorder.py`, `backtest/metrics.py`), so a session and a backtest agree."""

    starting_balance: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    funding: Decimal
    trades: list[BacktestTrade] = field(default_factory=list)
    equity_curve: list[tuple[int, float]] = field(default_factory=list)
    max_drawdown_pct: float = 0.0
    sharpe: float | None = None
    disagreements: list[str] = field(default_factory=list)  # where stored orders and fills differ from the account

    @property
    def closed_trades(self) -> list[BacktestTrade]:
        return [t for t in self.trades if t.closed]

    @property
    def trade_count(self) -> int:
        return len(self.closed_trades)

    @property
    def win_rate_pct(self) -> float:
        closed = self.closed_trades
        return 100.0 * sum(1 for t in closed if t.net_pnl > 0) / len(closed) if closed else 0.0

    @property
    def net_realized_pnl(self) -> Decimal:
        """Realised P&L after fees and funding (`realized_pnl` is gross)."""
        return self.realized_pnl - self.fees - self.funding

    @property
    def reconciles(self) -> bool:
        """The account adds up (starting balance + realised - fees - funding + unrealised == equity, to the
        cent) and the stored orders and fills agree with it (`disagreements` is empty)."""
        expected = self.starting_balance + self.realized_pnl - self.fees - self.funding + self.unrealized_pnl
        return abs(expected - self.equity) < Decimal("0.005") and not self.disagreements


@dataclass
class SessionInfo:
    id: str
    name: str
    status: str  # created | running | stopping | stopped | finished | failed | interrupted
    config: dict[str, Any]
    cursor_ms: int
    created_ms: int
    updated_ms: int
    stopped_ms: int | None
    positions: list[Position] = field(default_factory=list)
    error: str | None = None  # why it failed


# a performance with the orders and fills it was worked out from
PerformanceAndOrders = tuple[Performance, list[Order], list[Fill]]


def _disagreements(orders: list[Order], fills: list[Fill], venue: PaperVenue) -> list[str]:
    """Where the stored orders and fills tell another story than the account (its checkpoint, when the
    session is not running): realised P&L, fees, each position's contracts, filled orders without fills."""
    led, out = venue.ledger, []
    realized = fees = Decimal(0)
    held: dict[tuple[str, Side], Decimal] = {}  # contracts per position, from the fills
    filled: dict[str, Decimal] = {}  # contracts per order, from the fills
    for f in fills:
        realized, fees = realized + f.realized_pnl, fees + f.fee
        key = (f.symbol, f.side.position_side)
        held[key] = held.get(key, Decimal(0)) + (-f.qty_contracts if f.side.is_close else f.qty_contracts)
        filled[f.client_id] = filled.get(f.client_id, Decimal(0)) + f.qty_contracts
    if cents(realized) != cents(led.realized):
        out.append(f"realised P&L: fills {cents(realized)}, account {cents(led.realized)}")
    if cents(fees) != cents(led.fees_paid):
        out.append(f"fees: fills {cents(fees)}, account {cents(led.fees_paid)}")
    account = {(p.symbol, p.side): p.contracts for p in led.positions.values()}
    for key in sorted(set(held) | set(account), key=str):
        if held.get(key, Decimal(0)) != account.get(key, Decimal(0)):
            out.append(f"{key[0]} {key[1].value}: fills hold {held.get(key, 0)} contracts,"
                       f" account {account.get(key, 0)}")
    for o in orders:
        if o.filled_contracts != filled.get(o.client_id, Decimal(0)):
            out.append(f"order {o.client_id}: {o.filled_contracts} filled, fills {filled.get(o.client_id, 0)}")
    return out


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SessionService:
    def __init__(self, settings: Settings, db: Database, *, wall: Clock | None = None) -> None:
        self.settings = settings
        self.db = db
        self.wall = wall or WallClock()
        self.orders = OrderRepository(db)
        self.runtimes: dict[str, SessionRuntime] = {}
        self._tasks: dict[str, asyncio.Task[str]] = {}

    # --- create / run ---------------------------------------------------------------------

    def _validate(self, request: SessionRequest | dict[str, Any]) -> SessionRequest:
        try:
            req = request if isinstance(request, SessionRequest) else SessionRequest.model_validate(request)
        except ValidationError as exc:
            lines = [f"{'.'.join(map(str, e['loc']))}: {e.get('input')!r} is not allowed - {e['msg']}" for e in exc.errors()]
            loc = exc.errors()[0]["loc"] if exc.errors() else ()
            raise InvalidSessionRequest("\n".join(lines), str(loc[0]) if loc else None) from None
        strategy_file = str(req.strategy_file) if req.strategy_file else None
        try:
            session_strategy(strategy_file, None)
        except StrategyError as exc:
            raise InvalidSessionRequest(f"strategy_file: {exc}", "strategy_file") from None
        try:  # a leverage the file's own limits refuse is the leverage's fault, not the file's
            session_strategy(strategy_file, req.leverage)
        except StrategyError as exc:
            raise InvalidSessionRequest(f"leverage: {exc}", "leverage") from None
        if req.source == "mexc" and (not req.symbols or req.data_file is not None):
            raise InvalidSessionRequest("source 'mexc' needs symbols (e.g. BTC_USDT) and no data_file",
                                        "symbols" if not req.symbols else "data_file")
        if req.data_file is not None:
            try:
                next(iter(read_candles(req.data_file)), None)
            except DataError as exc:
                raise InvalidSessionRequest(f"data_file: {exc}", "data_file") from None
        if req.funding_file is not None:
            symbols = req.symbols or [symbol_from_filename(req.data_file or bundled_data_path())]
            try:
                funding_series([req.funding_file], symbols)  # its rates go to the symbol its name names
            except DataError as exc:  # (the reader turns every OSError into one, naming the file)
                raise InvalidSessionRequest(f"funding_file: {exc}", "funding_file") from None
        return req

    async def create(self, request: SessionRequest | dict[str, Any], *, start: bool = True) -> SessionInfo:
        """Validate, store and (by default) start a session in this process."""
        req = self._validate(request)
        sid = uuid.uuid4().hex[:12]
        now = self.wall.now_ms()
        config = req.model_dump(mode="json")
        await self.db.execute_durable(
            "INSERT INTO sessions (id, name, kind, status, config_json, created_ms, updated_ms) VALUES (?, ?, 'paper', 'created', ?, ?, ?)",
            (sid, req.name, json.dumps(config), now, now),
        )
        if start:
            await self.start(sid, config, None)
        return await self.get(sid)

    async def start(self, sid: str, config: dict[str, Any], checkpoint: dict[str, Any] | None) -> asyncio.Task[str]:
        """Run the session in this process (marked running, owned by this pid, before it starts)."""
        runtime = SessionRuntime(sid, config, self.settings, self.db, self.wall, checkpoint)
        await self.db.execute_durable("UPDATE sessions SET status = 'running', owner_pid = ? WHERE id = ?", (os.getpid(), sid))
        self.runtimes[sid] = runtime
        task = asyncio.create_task(self._run(sid, runtime), name=f"session:{sid}")
        self._tasks[sid] = task
        return task

    async def _run(self, sid: str, runtime: SessionRuntime) -> str:
        try:
            return await runtime.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            await self.db.execute_durable("UPDATE sessions SET status = 'failed', owner_pid = NULL WHERE id = ?", (sid,))
            raise
        finally:
            self.runtimes.pop(sid, None)

    async def wait(self, sid: str) -> str:
        """Until the session's runtime in this process ends; returns its final status."""
        return await self._tasks[sid]

    async def resume(self, sid: str) -> asyncio.Task[str]:
        info = await self.get(sid)
        if info.status in ("running", "stopping"):
            raise SessionRunning(f"session {sid} is running (pid {await self._owner(sid)}); stop it first")
        if info.status == "finished":
            raise SessionError(f"session {sid} has finished: its data is exhausted")
        row = await self.db.fetchone("SELECT checkpoint_json FROM sessions WHERE id = ?", (sid,))
        checkpoint = json.loads(row["checkpoint_json"]) if row and row["checkpoint_json"] else None
        return await self.start(sid, info.config, checkpoint)

    # --- queries --------------------------------------------------------------------------

    async def _row(self, sid: str):
        row = await self.db.fetchone("SELECT * FROM sessions WHERE id = ?", (sid,))
        if row is None:
            raise SessionNotFound(f"no session with id {sid!r}")
        return row

    async def _owner(self, sid: str) -> int | None:
        return (await self._row(sid))["owner_pid"]

    def _status(self, row) -> str:
        status = row["status"]
        if status in ("running", "stopping") and row["id"] not in self.runtimes and not _pid_alive(row["owner_pid"]):
            return "interrupted"
        return status

    async def _info(self, row) -> SessionInfo:
        return SessionInfo(row["id"], row["name"], self._status(row), json.loads(row["config_json"]), row["cursor_ms"],
                           row["created_ms"], row["updated_ms"], row["stopped_ms"], await self._positions(row),
                           row["error"])

    async def list(self) -> list[SessionInfo]:
        rows = await self.db.fetchall("SELECT * FROM sessions WHERE kind = 'paper' ORDER BY created_ms, id")
        return [await self._info(r) for r in rows]

    async def get(self, sid: str) -> SessionInfo:
        return await self._info(await self._row(sid))

    async def _positions(self, row) -> list[Position]:
        runtime = self.runtimes.get(row["id"])
        if runtime is not None:
            return await runtime.venue.positions()
        return await (await self._checkpoint_venue(row)).positions()

    async def _checkpoint_venue(self, row) -> PaperVenue:
        from tui_trader.engine.bus import EventBus

        config = json.loads(row["config_json"])
        venue = PaperVenue(EventBus(), paper=self.settings.paper, fees=self.settings.fees,
                           starting_balance=Decimal(str(config["starting_balance"])))
        if row["checkpoint_json"]:
            restore(venue, json.loads(row["checkpoint_json"])["venue"])
        return venue

    async def orders_and_fills(self, sid: str) -> tuple[list[Order], list[Fill]]:
        await self._row(sid)
        await self.db.flush()
        return await self.orders.load_orders(sid), await self.orders.load_fills(sid)

    async def performance(self, sid: str) -> Performance:
        return (await self.performance_and_orders(sid))[0]

    async def performance_and_orders(self, sid: str) -> PerformanceAndOrders:
        """The performance with the orders and fills it was worked out from (read once: a detail view
        shows both)."""
        row = await self._row(sid)
        await self.db.flush()
        runtime = self.runtimes.get(sid)
        venue = runtime.venue if runtime is not None else await self._checkpoint_venue(row)
        orders, fills = await self.orders.load_orders(sid), await self.orders.load_fills(sid)
        trades = await stored_trades(self.db, sid, fills)
        curve = [(r["ts_ms"], float(r["equity"])) for r in
                 await self.db.fetchall("SELECT ts_ms, equity FROM session_equity WHERE session_id = ? ORDER BY ts_ms", (sid,))]
        acct = venue.ledger.account(venue.marks)
        led = venue.ledger
        drawdown, _ = metrics.max_drawdown([(t, Decimal(str(v))) for t, v in curve])
        gaps = sorted(b[0] - a[0] for a, b in zip(curve, curve[1:]) if b[0] > a[0])
        per_year = metrics.YEAR_MS / gaps[len(gaps) // 2] if gaps else 0.0
        return Performance(
            starting_balance=led.starting_balance, equity=acct.equity, realized_pnl=led.realized,
            unrealized_pnl=acct.unrealized_pnl, fees=led.fees_paid, funding=led.funding_paid,
            trades=trades, equity_curve=curve, max_drawdown_pct=drawdown,
            sharpe=metrics.sharpe(metrics.periodic_returns([v for _, v in curve]), per_year) if per_year else None,
            disagreements=_disagreements(orders, fills, venue),
        ), orders, fills

    # --- stop / delete / health -----------------------------------------------------------

    async def stop(self, sid: str, wait_s: float = 5.0) -> SessionInfo:
        """Stop a session; one run by another process is asked through the store (it looks every
        0.5 s) and awaited up to `wait_s` (then shown as `stopping`)."""
        row = await self._row(sid)
        runtime = self.runtimes.get(sid)
        if runtime is not None:
            runtime.request_stop()
            await self._tasks[sid]
        elif self._status(row) in ("running", "stopping"):  # hosted by another process
            await self.db.execute_durable("UPDATE sessions SET status = 'stopping' WHERE id = ?", (sid,))
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and self._status(await self._row(sid)) == "stopping":
                await asyncio.sleep(0.05)
        elif self._status(row) in ("created", "interrupted"):
            await self.db.execute_durable("UPDATE sessions SET status = 'stopped', owner_pid = NULL WHERE id = ?", (sid,))
        return await self.get(sid)

    async def delete(self, sid: str) -> None:
        row = await self._row(sid)
        if self._status(row) in ("running", "stopping"):
            raise SessionRunning(f"session {sid} is running; stop it before deleting it")
        await self.db.execute_many_durable([
            ("DELETE FROM fills WHERE session_id = ?", (sid,)),
            ("DELETE FROM orders WHERE session_id = ?", (sid,)),
            ("DELETE FROM position_snapshots WHERE session_id = ?", (sid,)),
            ("DELETE FROM session_equity WHERE session_id = ?", (sid,)),
            ("DELETE FROM session_funding WHERE session_id = ?", (sid,)),
            ("DELETE FROM state WHERE key LIKE ?", (f"session:{sid}:%",)),
            ("DELETE FROM sessions WHERE id = ?", (sid,)),
        ])

    async def health(self) -> dict[str, Any]:
        """The store, and every running session: this process's from memory, other processes' from the
        store (status running or stopping, and a live owner pid)."""
        started = time.perf_counter()
        version = await self.db.schema_version()
        db_ms = (time.perf_counter() - started) * 1000
        sessions: dict[str, dict[str, Any]] = {}
        for sid, rt in self.runtimes.items():
            sessions[sid] = {"pid": os.getpid(), "feed": rt.feed.state,
                             "candles": getattr(rt.feed, "candles_published", None),
                             "data_time_ms": rt.data_clock.now_ms(), "open_positions": len(rt.venue.ledger.positions),
                             "core": rt.core.state}
        running = "SELECT * FROM sessions WHERE kind = 'paper' AND status IN ('running', 'stopping')"
        for row in await self.db.fetchall(running):
            if row["id"] not in sessions and self._status(row) != "interrupted":
                sessions[row["id"]] = {"pid": row["owner_pid"], "status": row["status"],
                                       "data_time_ms": row["updated_ms"],
                                       "open_positions": len(await self._positions(row))}
        return {"ok": True, "schema_version": version, "db_latency_ms": round(db_ms, 3), "running": len(sessions),
                "sessions": sessions}

    async def emergency_stop_all(self) -> list[str]:
        """Flatten and stop every session running in this process; returns their ids."""
        ids = list(self.runtimes)
        for sid in ids:
            rt = self.runtimes[sid]
            await rt.stack.emergency.close_all("EMERGENCY_STOP_ALL")
        await asyncio.gather(*(self.stop(sid) for sid in ids), return_exceptions=True)
        return ids

    async def shutdown(self) -> None:
        """Stop every session of this process (they resume from their checkpoints next time)."""
        for sid in list(self.runtimes):
            self.runtimes[sid].request_stop()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
