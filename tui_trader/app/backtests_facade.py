"""App layer: `BacktestsFacade` - stored backtest runs for the dashboard, and backtests started from a form.

A backtest is CPU-bound and this process runs the live watchdog on its event loop, so a run never
executes here, neither inline nor in a thread (the GIL would starve the loop): `start()` returns a
`BacktestJob` whose `run()` spawns `python -m tui_trader.app.backtests_facade`, a fresh niced
interpreter without Textual, hands it the request as JSON on stdin and reads its progress as JSON
lines on its stdout. The child saves the run with `save_result` to the database the CLI uses;
`cancel()` terminates it and the run is stored as `cancelled`. Wrong typed values raise
`FieldInvalid` naming the form's widget id (`FIELDS`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from tui_trader.app.backtest_cli import parse_date_ms
from tui_trader.app.facade import FieldInvalid, NotAvailable
from tui_trader.app.form_values import parse_balance, parse_leverage
from tui_trader.domain.config import Settings
from tui_trader.domain.errors import DataError, StrategyError, TraderError
from tui_trader.domain.strategy.schema import Strategy, strategy_from_dict
from tui_trader.engine.core import TraderCore
from tui_trader.engine.strategy_runner import bundled_strategy_path, load_strategy
from tui_trader.store.backtests import AmbiguousRunId, BacktestRepository
from tui_trader.store.db import Database
from tui_trader.venues.candle_files import symbol_from_filename
from tui_trader.venues.replay import bundled_data_path

FIELDS = ("strategy", "data", "date-from", "date-to", "balance", "leverage")  # the form's widget ids
MONEY_METRICS = frozenset({"net_pnl", "fees_paid", "funding_paid", "expectancy", "start_equity", "end_equity"})
EQUITY_EVERY_MS = 3_600_000  # the CLI's default sampling (60 minutes)
STOP_GRACE_S = 3.0  # SIGTERM, then SIGKILL after this long
CHILD_MODULE = "tui_trader.app.backtests_facade"
DATE_HINT = "use 2017-11-05, 2017-11-05T12:00 (UTC) or epoch ms"


@dataclass(frozen=True)
class RunSummary:
    """One row of the runs table (plain data; formatting is the screen's)."""

    id: str
    status: str  # running | finished | failed | cancelled
    created_ms: int
    strategy: str
    symbols: tuple[str, ...]
    date_from_ms: int | None
    date_to_ms: int | None
    trades: int | None
    win_rate_pct: float | None
    net_pnl: Decimal | None
    total_return_pct: float | None
    max_drawdown_pct: float | None


@dataclass(frozen=True)
class TradeView:
    symbol: str
    side: str
    entry_ms: int
    entry_price: Decimal
    exit_ms: int | None
    exit_price: Decimal | None
    contracts: Decimal
    net_pnl: Decimal
    fees: Decimal
    funding: Decimal
    exit_reason: str  # "" while open


@dataclass(frozen=True)
class RunDetail:
    summary: RunSummary
    metrics: dict[str, Any]  # every `backtest.metrics` figure: Decimal money, float ratios, None = undefined
    trades: tuple[TradeView, ...]
    equity: tuple[tuple[int, Decimal], ...]  # (data time ms, equity USDT)
    params: dict[str, Any]


@dataclass(frozen=True)
class BacktestRequest:
    """A validated form: what the child process runs."""

    strategy: Strategy
    data: tuple[Path, ...]
    date_from_ms: int | None = None
    date_to_ms: int | None = None
    starting_balance: Decimal | None = None  # None: the config's paper.starting_balance
    leverage: int | None = None  # None: the strategy's own


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def summary_from_record(r: Mapping[str, Any], metrics: Mapping[str, Any] | None = None) -> RunSummary:
    """A `list_runs` row (or a `get_run` record with its metrics) as a `RunSummary`."""
    m = metrics if metrics is not None else r
    return RunSummary(r["id"], r["status"], r["created_ms"], r["strategy"], tuple(r["symbols"]), r["date_from_ms"],
                      r["date_to_ms"], m.get("trades"), m.get("win_rate_pct"), _dec(m.get("net_pnl")),
                      m.get("total_return_pct"), m.get("max_drawdown_pct"))


def detail_from_record(r: Mapping[str, Any]) -> RunDetail:
    metrics = {k: _dec(v) if k in MONEY_METRICS else v for k, v in r["metrics"].items()}
    trades = tuple(TradeView(t["symbol"], t["side"], t["entry_ms"], Decimal(t["entry_price"]), t["exit_ms"],
                             _dec(t["exit_price"]), Decimal(t["contracts"]), Decimal(t["net_pnl"]),
                             Decimal(t["fees"]), Decimal(t["funding"]), t.get("exit_reason") or "")
                   for t in r["trades"])
    equity = tuple((int(ts), Decimal(str(e))) for ts, e in r["equity"])
    return RunDetail(summary_from_record(r, r["metrics"]), metrics, trades, equity, r["params"])


class RunStore:
    """`backtest_runs` through short-lived connections (a long read never queues before the live store's
    order writes), one at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def repository(self) -> AsyncIterator[BacktestRepository]:
        async with self._lock:
            db = Database(self.path)
            try:
                await db.connection()
                yield BacktestRepository(db)
            finally:
                await db.close()


class BacktestsFacade:
    def __init__(self, core: TraderCore) -> None:
        self._core = core
        self.job: BacktestJob | None = None  # the one run in progress (one at a time: two cores are not many)
        self._store: RunStore | None = None

    @property
    def settings(self) -> Settings:
        settings = self._core.components.get("settings")
        return settings if settings is not None else Settings()

    @property
    def store_path(self) -> Path:
        from tui_trader.app.wiring import database_path

        return database_path(self.settings)

    @property
    def store(self) -> RunStore:
        if self._store is None or self._store.path != self.store_path:
            self._store = RunStore(self.store_path)
        return self._store

    # --- stored runs -------------------------------------------------------------------------

    async def list_runs(self, limit: int = 50) -> list[RunSummary]:
        """Newest first; the run in progress (not stored yet) on top as `running`."""
        async with self.store.repository() as repo:
            rows = await repo.list_runs(limit)
        runs = [summary_from_record(r) for r in rows]
        job = self.job
        if job is not None and job.status in ("starting", "running") and all(r.id != job.run_id for r in runs):
            runs.insert(0, job.summary())
        return runs

    async def get_run(self, run_id: str) -> RunDetail | None:
        try:
            async with self.store.repository() as repo:
                record = await repo.get_run(run_id)
        except AmbiguousRunId as exc:
            raise TraderError(str(exc)) from None
        return None if record is None else detail_from_record(record)

    # --- the form -------------------------------------------------------------------------

    def defaults(self) -> dict[str, str]:
        """What a blank field means, for the form's placeholders."""
        return {"strategy": str(bundled_strategy_path()), "data": str(bundled_data_path()),
                "date-from": "first candle", "date-to": "last candle",
                "balance": f"{Decimal(str(self.settings.paper.starting_balance)):f}", "leverage": "the strategy's"}

    def check(self, field_id: str, text: str) -> None:
        """Check one field on its own as it is typed (files and the strategy only on submit)."""
        if field_id in ("date-from", "date-to"):
            _date_ms(field_id, text)
        elif field_id == "balance":
            _balance(text)
        elif field_id == "leverage":
            parse_leverage(text)

    def validate(self, values: Mapping[str, str]) -> BacktestRequest:
        """The form's values as a request; the first wrong one raises `FieldInvalid`."""
        strategy = _strategy(values.get("strategy", ""))
        text = values.get("data", "").strip()
        data = tuple(_file("data", p) for p in _split_paths(text)) if text else (bundled_data_path(),)
        date_from = _date_ms("date-from", values.get("date-from", ""))
        date_to = _date_ms("date-to", values.get("date-to", ""))
        if date_from is not None and date_to is not None and date_to <= date_from:
            raise FieldInvalid("date-to", "must be after the start date")
        balance = _balance(values.get("balance", ""))
        leverage = parse_leverage(values.get("leverage", ""))
        if leverage is not None:
            if leverage > self.settings.risk.max_leverage:
                raise FieldInvalid("leverage", f"above risk.max_leverage ({self.settings.risk.max_leverage}) of the "
                                               "config: the risk check would refuse every entry")
            doc = strategy.model_dump(mode="json")
            doc["z1_entry"]["order"]["leverage"] = leverage
            try:
                strategy = strategy_from_dict(doc)
            except StrategyError as exc:
                raise FieldInvalid("leverage", str(exc).replace("\n", "; ")) from None
        return BacktestRequest(strategy, data, date_from, date_to, balance, leverage)

    # --- running ----------------------------------------------------------------------------

    def start(self, request: BacktestRequest) -> BacktestJob:
        """A job for `request` (not started: the caller's worker awaits `job.run()`)."""
        if self.job is not None and self.job.status in ("starting", "running"):
            raise NotAvailable(f"backtest {self.job.run_id} is still running: cancel it first")
        from tui_trader.backtest.runner import new_run_id

        self.job = BacktestJob(request, new_run_id(), self.settings, self.store)
        return self.job


ProgressCallback = Callable[["BacktestJob"], None]


@dataclass
class BacktestJob:
    """One backtest in a child process: `await run()` drives it to its end, `cancel()` stops it."""

    request: BacktestRequest
    run_id: str
    settings: Settings
    store: RunStore
    status: str = "starting"  # starting | running | finished | failed | cancelled
    bars_done: int = 0
    bars_total: int | None = None  # None until the child has counted the candles
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    _proc: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)
    _cancelled: bool = field(default=False, init=False, repr=False)
    _stderr: deque[str] = field(default_factory=lambda: deque(maxlen=20), init=False, repr=False)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def summary(self) -> RunSummary:
        r = self.request
        return RunSummary(self.run_id, self.status, self.created_ms, r.strategy.strategy_name, _symbols(r.data),
                          r.date_from_ms, r.date_to_ms, None, None, None, None, None)

    def cancel(self) -> None:
        """Stop the child (SIGTERM; `run()` escalates to SIGKILL) and store the run as cancelled."""
        self._cancelled = True
        if self.alive:
            assert self._proc is not None
            self._proc.terminate()

    async def run(self, on_progress: ProgressCallback | None = None) -> str:
        """Spawn the child, follow it to its end; the final status. A run the child refused (no candle
        in range, bad data) raises its `TraderError` (a run stopped by bad data is stored as failed)."""
        proc = self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", CHILD_MODULE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.status = "running"
        stderr = asyncio.create_task(self._keep_stderr(proc.stderr))
        error: dict[str, Any] | None = None
        try:
            if self._cancelled:
                proc.terminate()
            proc.stdin.write(json.dumps(self._payload()).encode())
            await _close_stdin(proc.stdin)
            async for line in proc.stdout:
                try:
                    message = json.loads(line)
                except ValueError:  # the child was killed in the middle of a line
                    continue
                if message["event"] == "error":
                    error = message
                self._apply(message)
                if on_progress is not None:
                    on_progress(self)
            await self._stop(proc)
        finally:
            if proc.returncode is None:  # our worker was cancelled (screen or app closed): no orphan
                proc.kill()
                await proc.wait()
            await stderr
        try:
            return await self._outcome(proc, error)
        finally:
            if self.status in ("starting", "running"):  # an unexpected error: never shown as running
                self.status = "cancelled" if self._cancelled else "failed"

    async def _outcome(self, proc: asyncio.subprocess.Process, error: dict[str, Any] | None) -> str:
        if self.status == "finished":
            return self.status
        if self._cancelled:
            await self._record_cancelled()
            self.status = "cancelled"
            return self.status
        self.status = "failed"
        if error is not None:
            kind = DataError if error["kind"] in ("DataError", "StrategyFileError") else TraderError
            raise kind(error["message"])
        tail = "; ".join(self._stderr) or "no output"
        raise TraderError(f"backtest {self.run_id} ended with exit code {proc.returncode}: {tail}")

    def _apply(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if event == "total":
            self.bars_total = message["total"] or None
        elif event == "progress":
            self.bars_done = message["bars"]
        elif event == "done":
            self.bars_done = self.bars_total = message["bars"]
            self.status = "finished" if message["status"] == "finished" else "failed"

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def _keep_stderr(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:  # drained, so a chatty child never blocks on a full pipe
            self._stderr.append(line.decode(errors="replace").rstrip())

    def _payload(self) -> dict[str, Any]:
        r = self.request
        settings = self.settings
        if r.starting_balance is not None:  # (the config keeps it as a float; the runner reads it as Decimal)
            settings = settings.model_copy(update={"paper": settings.paper.model_copy(
                update={"starting_balance": float(r.starting_balance)})})
        return {
            "run_id": self.run_id, "store_path": str(self.store.path), "strategy": r.strategy.model_dump(mode="json"),
            "data": [str(p) for p in r.data], "date_from_ms": r.date_from_ms, "date_to_ms": r.date_to_ms,
            "settings": settings.model_dump(mode="json", exclude={"mexc"}),  # no keys leave this process
            "params": {"source": "dashboard", "leverage": r.leverage,
                       "starting_balance": None if r.starting_balance is None else str(r.starting_balance)},
        }  # fmt: skip

    async def _record_cancelled(self) -> None:
        """Store the run as cancelled - unless the child saved it just before it was stopped."""
        r = self.request
        async with self.store.repository() as repo:
            if await repo.get_run(self.run_id) is not None:
                return
            await repo.save({
                "id": self.run_id, "created_ms": self.created_ms, "status": "cancelled",
                "strategy": r.strategy.strategy_name, "symbols": list(_symbols(r.data)),
                "date_from_ms": r.date_from_ms, "date_to_ms": r.date_to_ms, "metrics": {}, "trades": [], "equity": [],
                "params": {**self._payload()["params"], "data": [str(p) for p in r.data], "bars": self.bars_done,
                           "bars_total": self.bars_total},
            })  # fmt: skip


async def _close_stdin(stdin: asyncio.StreamWriter) -> None:
    with suppress(BrokenPipeError, ConnectionResetError):  # the child is already gone (cancelled at once)
        await stdin.drain()
        stdin.close()


# --- field checks (pure but for the file checks) ---------------------------------------------------


def _split_paths(text: str) -> list[str]:
    try:
        return shlex.split(text.replace(",", " "))
    except ValueError as exc:  # an unclosed quote
        raise FieldInvalid("data", f"cannot read the file list ({exc})") from None


def _file(field_id: str, text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise FieldInvalid(field_id, f"{text}: {'is a directory, not a file' if path.is_dir() else 'file not found'}")
    return path.resolve()


def _strategy(text: str) -> Strategy:
    path = _file("strategy", text.strip()) if text.strip() else None
    try:
        return load_strategy(path)
    except StrategyError as exc:
        raise FieldInvalid("strategy", str(exc).replace("\n", "; ")) from None


def _date_ms(field_id: str, text: str) -> int | None:
    if not text.strip():
        return None
    try:
        return parse_date_ms(text, field_id)
    except TraderError:
        raise FieldInvalid(field_id, f"{text.strip()!r} is not a date: {DATE_HINT}") from None


def _balance(text: str) -> Decimal | None:
    value = parse_balance(text)
    if value is not None and value <= 0:
        raise FieldInvalid("balance", "must be more than 0 USDT")
    return value


def _symbols(data: tuple[Path, ...]) -> tuple[str, ...]:
    return tuple(sorted({symbol_from_filename(p) for p in data}))


# --- the child process -----------------------------------------------------------------------------


def child_main() -> int:
    """Run one backtest from the JSON request on stdin; protocol lines (JSON) on stdout, logs to the log file."""
    import logging  # (the child's imports: the dashboard process never needs them)

    from tui_trader.app.backtest_cli import count_bars
    from tui_trader.app.cli import file_log_handler
    from tui_trader.backtest.runner import run_backtest
    from tui_trader.venues.candle_cache import default_cache_dir

    out, sys.stdout = sys.stdout, sys.stderr  # nothing else may write on the protocol stream

    def emit(**message: Any) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    with suppress(OSError):
        os.nice(5)  # the console's live watchdog comes first
    req = json.load(sys.stdin)
    settings = Settings.model_validate(req["settings"])
    if settings.data_dir is not None:  # the engine's log goes where the dashboard's goes (else: stderr)
        logging.getLogger().handlers[:] = [file_log_handler(settings)]
        logging.getLogger().setLevel(settings.log_level)
    data = [Path(p) for p in req["data"]]
    cache = default_cache_dir(settings.data_dir)
    emit(event="total", total=count_bars(data, req["date_from_ms"], req["date_to_ms"], cache))
    try:
        result = run_backtest(
            strategy_from_dict(req["strategy"]), data, settings=settings, date_from_ms=req["date_from_ms"],
            date_to_ms=req["date_to_ms"], equity_every_ms=EQUITY_EVERY_MS, params=req["params"],
            progress=lambda bars, _ts: emit(event="progress", bars=bars), store_path=req["store_path"],
            run_id=req["run_id"])
    except TraderError as exc:
        emit(event="error", kind=type(exc).__name__, message=str(exc))
        return 2
    emit(event="done", status=result.status, bars=result.bars, trades=result.metrics["trades"])
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
