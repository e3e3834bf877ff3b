"""App layer: `tui-trader trading status|reset|trades` - the kill switch and the console's trades.

`trades` lists the round trips and realised P&L the console's store holds (live or paper console;
`--session ID` for a paper session), rebuilt from the stored fills by the one rule backtests use.

The console's trading state (ACTIVE / REDUCING / HALTED) survives restarts; after a tripped loss
limit or an emergency close it stays HALTED until a person resets it, here or in the dashboard.
Reset from the shell also forgets the stored peak and day-start equity, so the next equity the
console sees becomes the new baseline (otherwise the old breach would trip the switch again).
"""

from __future__ import annotations

import argparse
import asyncio

from tui_trader.domain.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("trading", help="kill-switch state of the console: status, reset")
    actions = parser.add_subparsers(dest="trading_command", metavar="ACTION", required=True)
    actions.add_parser("status", help="show the trading state and why")
    reset = actions.add_parser("reset", help="set the trading state back to ACTIVE (the console must not be running)")
    reset.add_argument("--reason", default="reset from the command line")
    trades = actions.add_parser("trades", help="round trips and realised P&L from the store")
    trades.add_argument("--session", default=None, help="a paper session id (default: the console)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from tui_trader.app.wiring import database_path
    from tui_trader.engine.risk import STATE_KEY
    from tui_trader.store.db import Database
    from tui_trader.store.state import StateRepository

    db = Database(database_path(settings))
    try:
        if args.trading_command == "trades":
            return await print_trades(db, args.session)
        repo = StateRepository(db)
        state = await repo.get_state(STATE_KEY) or {"state": "ACTIVE", "reason": "never tripped"}
        if args.trading_command == "reset":
            if state.get("state") == "ACTIVE":
                print(f"trading is already ACTIVE ({state.get('reason', '')})")
                return 0
            state = {**state, "state": "ACTIVE", "reason": args.reason, "peak_equity": None, "day_start_equity": None}
            await repo.put_state(STATE_KEY, state)
        print(f"trading {state['state']}: {state.get('reason', '')}")
        return 0
    finally:
        await db.close()


async def print_trades(db, session_id: str | None = None, console=None) -> int:  # type: ignore[no-untyped-def]
    """One row per round trip (open ones too) and the realised total."""
    from rich.console import Console
    from rich.table import Table

    from tui_trader.app.sessions_cli import minute_text
    from tui_trader.app.wiring import CONSOLE_SESSION
    from tui_trader.backtest.recorder import stored_trades

    console = console or Console()
    sid = CONSOLE_SESSION if session_id is None else session_id
    trades = await stored_trades(db, sid)
    table = Table(title=f"Trades of {sid}")
    for col in ("opened", "closed", "symbol", "side", "contracts", "entry", "exit", "exit reason", "gross", "fees",
                "net"):
        table.add_column(col)
    for t in trades:
        exit_price = t.exit_price
        table.add_row(minute_text(t.entry_ms), minute_text(t.exit_ms), t.symbol, t.side, str(t.contracts),
                      f"{t.entry_price:.6g}", f"{exit_price:.6g}" if exit_price is not None else "open",
                      t.exit_reason, f"{t.gross_pnl:.4f}", f"{t.fees:.4f}", f"{t.net_pnl:.4f}")
    console.print(table)
    closed = [t for t in trades if t.closed]
    total = sum((t.net_pnl for t in closed), start=0)
    console.print(f"{len(closed)} closed, {len(trades) - len(closed)} open; realised net P&L {total:.4f} USDT")
    return 0
