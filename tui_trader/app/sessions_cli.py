"""App layer: `tui-trader sessions ...` - paper-trading sessions from the shell, shown as rich tables.

`create` runs the new session in this process until its data ends or Ctrl-C (it then stops at the
next candle boundary and can be resumed); `--no-run` only stores it. A session interrupted by a
crash is listed as `interrupted`; `resume ID` continues it from its last checkpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tui_trader.domain.config import Settings
from tui_trader.domain.errors import TraderError
from tui_trader.domain.number_format import (
    fee_text,
    money_text,
    price_text,
    quantity_text,
)
from tui_trader.domain.time_format import utc_minute, utc_second

FINE = Decimal("0.0001")  # P&L, fees and margin in a session's detail: to 1/100 of a cent


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sessions", help="paper-trading sessions: create, list, show, orders, stop, delete, resume, health",
                            description="Paper-trading sessions replaying recorded candles with the real strategy, risk and execution code.")
    actions = parser.add_subparsers(dest="sessions_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a session and run it here (Ctrl-C stops it at a candle boundary)")
    create.add_argument("--name", required=True)
    create.add_argument("--strategy", type=Path, help="strategy file (default: bundled pump_short)")
    create.add_argument("--symbol", action="append", default=[], help="symbol name for the replayed data (default: from the file name)")
    create.add_argument("--balance", type=float, default=10_000.0, help="starting balance in USDT (default 10000)")
    create.add_argument("--leverage", type=int, help="override the strategy's leverage (1..200)")
    create.add_argument("--data", type=Path, help="candle file to replay (default: bundled sample)")
    create.add_argument("--funding", type=Path, help="funding-rate series CSV (timestamp_ms,funding_rate)")
    create.add_argument("--live-feed", action="store_true", help="trade paper on the live MEXC public feed (needs --symbol)")
    create.add_argument("--speed", type=float, default=0.0, help="0 = as fast as possible (default), 1 = real time, N = N x")
    create.add_argument("--no-run", action="store_true", help="only store the session")
    for name, text in (("show", "a session with its performance and positions"), ("orders", "order history with fills"),
                       ("stop", "stop a session (one run by another process stops within a second)"),
                       ("resume", "continue a stopped or interrupted session here")):
        actions.add_parser(name, help=text).add_argument("id")
    delete = actions.add_parser("delete", help="delete a session that is not running, with its orders and fills")
    delete.add_argument("id")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    actions.add_parser("list", help="all sessions")
    actions.add_parser("health", help="database and running sessions")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace, settings: Settings) -> int:
    console = Console()
    try:
        return asyncio.run(_dispatch(args, settings, console))
    except TraderError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from tui_trader.app.sessions import SessionService
    from tui_trader.app.wiring import database_path
    from tui_trader.store.db import Database

    db = Database(database_path(settings))
    writer = asyncio.create_task(db.run())
    service = SessionService(settings, db)
    try:
        handler = _HANDLERS[args.sessions_command]
        return await handler(service, args, console)
    finally:
        await service.shutdown()
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await db.shutdown()


async def _create(service, args, console: Console) -> int:
    request = {"name": args.name, "strategy_file": args.strategy, "symbols": args.symbol, "starting_balance": args.balance,
               "leverage": args.leverage, "data_file": args.data, "speed": args.speed,
               "source": "mexc" if args.live_feed else "replay", "funding_file": args.funding}
    info = await service.create(request, start=not args.no_run)
    console.print(f"session [bold]{info.id}[/] created ({info.name})")
    if args.no_run:
        return 0
    return await _run_foreground(service, info.id, console)


async def _resume(service, args, console: Console) -> int:
    await service.resume(args.id)
    console.print(f"session [bold]{args.id}[/] resumed")
    return await _run_foreground(service, args.id, console)


async def _run_foreground(service, sid: str, console: Console) -> int:
    from tui_trader.domain.events import ErrorRaised, FeedStateChanged

    runtime = service.runtimes[sid]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runtime.request_stop)

    def report(ev) -> None:  # the feed's state and errors, a line each, as the console's event log has them
        if isinstance(ev, FeedStateChanged):
            if ev.state == "failed":
                return  # the session's own error line says it, once
            text = f"feed {ev.feed}: {ev.state}" + (f" - {ev.detail}" if ev.detail else "")
        else:
            text = f"{ev.level.lower()}: {ev.source}: {ev.message}"
        print(f"{utc_second(ev.ts_ms)}  {text}", file=sys.stderr, flush=True)

    runtime.bus.subscribe(report, [FeedStateChanged, ErrorRaised], name="cli.report")
    progress = asyncio.create_task(_progress(service, sid))
    try:
        status = await service.wait(sid)
    finally:
        progress.cancel()
    perf = await service.performance(sid)
    if status == "failed":
        error = (await service.get(sid)).error or "a part of the session crashed (see the log)"
        print(f"error: session {sid} failed: {error}", file=sys.stderr)  # one line, however narrow the terminal
        return 2 if error.startswith(("DataError", "StrategyError", "ConfigError")) else 1  # bad input: 2
    console.print(f"session {sid} {status}: equity {money_text(perf.equity)} USDT, {perf.trade_count} trades")
    return 0


async def _progress(service, sid: str, every_s: float = 10.0) -> None:
    """A line every `every_s` while a session runs: data time, candles, trades, equity (long runs say they live)."""
    while True:
        await asyncio.sleep(every_s)
        runtime = service.runtimes.get(sid)
        if runtime is None:
            return
        perf = await service.performance(sid)
        candles = getattr(runtime.feed, "candles_published", None)
        print(f"progress: data time {utc_minute(runtime.data_clock.now_ms())}"
              + (f", {candles} candles" if candles is not None else "")
              + f", {perf.trade_count} trades, equity {money_text(perf.equity)} USDT", file=sys.stderr, flush=True)


async def _list(service, args, console: Console) -> int:
    table = Table(title="Paper sessions")
    for col in ("id", "name", "status", "data", "balance", "data time", "positions"):
        table.add_column(col)
    for s in await service.list():
        data = source_text(s.config)
        table.add_row(s.id, s.name, s.status, data, money_text(s.config['starting_balance']), minute_text(s.cursor_ms), str(len(s.positions)))
    console.print(table)
    return 0


async def _show(service, args, console: Console) -> int:
    s = await service.get(args.id)
    p = await service.performance(args.id)
    table = Table(title=f"Session {s.id} - {s.name} ({s.status})", show_header=False)
    rows = [("equity", money_text(p.equity)), ("starting balance", money_text(p.starting_balance)),
            ("realised P&L (gross)", money_text(p.realized_pnl, unit=FINE)),
            ("realised P&L (net of fees, funding)", money_text(p.net_realized_pnl, unit=FINE)),
            ("unrealised P&L", money_text(p.unrealized_pnl, unit=FINE)),
            ("fees", money_text(p.fees, unit=FINE)), ("funding", money_text(p.funding, unit=FINE)),
            ("trades", str(p.trade_count)),
            ("win rate", f"{p.win_rate_pct:.1f} %"), ("max drawdown", f"{p.max_drawdown_pct:.2f} %"),
            ("Sharpe", "-" if p.sharpe is None else f"{p.sharpe:.2f}"), ("data time", minute_text(s.cursor_ms)), ("reconciles", "yes" if p.reconciles else "NO")]
    rows += [("differs", d) for d in p.disagreements] + ([("error", s.error)] if s.error else [])
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if s.positions:
        pos = Table(title="Open positions")
        for col in ("symbol", "side", "contracts", "entry", "liquidation", "margin"):
            pos.add_column(col)
        for x in s.positions:
            pos.add_row(x.symbol, x.side.value, str(x.contracts), price_text(x.entry_price), price_text(x.liquidation_price),
                        money_text(x.margin, unit=FINE))
        console.print(pos)
    return 0


async def _orders(service, args, console: Console) -> int:
    orders, fills = await service.orders_and_fills(args.id)
    by_order: dict[str, list] = {}
    for f in fills:
        by_order.setdefault(f.client_id, []).append(f)
    table = Table(title=f"Orders of {args.id}")
    for col in ("time", "client id", "side", "qty", "state", "reason", "fills (qty @ price, fee)"):
        table.add_column(col)
    for o in orders:
        fs = "; ".join(f"{quantity_text(f.qty_contracts)} @ {price_text(f.price)}, {fee_text(f.fee)}"
                       for f in by_order.get(o.client_id, []))
        table.add_row(minute_text(o.created_ms), o.client_id, o.side.name, quantity_text(o.qty_contracts), o.state.value, o.reason, fs)
    console.print(table)
    return 0


async def _stop(service, args, console: Console) -> int:
    info = await service.stop(args.id)
    console.print(f"session {info.id}: {info.status}")
    return 0


async def _delete(service, args, console: Console) -> int:
    info = await service.get(args.id)
    if not args.yes:
        if not sys.stdin.isatty():
            console.print("refusing to delete without confirmation: pass --yes")
            return 2
        if console.input(f"delete session {info.id} ({info.name}) with its orders and fills? [y/N] ").strip().lower() != "y":
            return 1
    await service.delete(args.id)
    console.print(f"session {args.id} deleted")
    return 0


async def _health(service, args, console: Console) -> int:
    print(json.dumps(await service.health(), default=str))  # JSON for scripts (not a Python dict)
    return 0


def source_text(config: dict) -> str:
    """Where a session's market data comes from, as a person would say it."""
    if config.get("source") == "mexc":
        return "MEXC live feed: " + ", ".join(config.get("symbols") or [])
    return Path(config.get("data_file") or "bundled sample").name


def minute_text(ts_ms: int | None) -> str:
    """UTC to the minute, for the shell's tables (sessions, trades)."""
    return utc_minute(ts_ms or None)


_HANDLERS = {"create": _create, "resume": _resume, "list": _list, "show": _show, "orders": _orders, "stop": _stop,
             "delete": _delete, "health": _health}
