"""App layer: `tui-trader trading status|reset` - the kill switch from the shell.

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
