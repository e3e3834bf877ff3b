"""`tui-trader trading status|reset`: the persisted kill switch can be reset from the shell."""

from __future__ import annotations

import asyncio

from tui_trader.app.cli import main
from tui_trader.app.settings import load_settings
from tui_trader.app.wiring import database_path
from tui_trader.engine.risk import STATE_KEY
from tui_trader.store.db import Database
from tui_trader.store.state import StateRepository


def test_status_and_reset_of_a_halted_console(isolated_environment, capsys):
    settings, _ = load_settings(None)

    async def halt():
        db = Database(database_path(settings))
        await StateRepository(db).put_state(STATE_KEY, {"state": "HALTED", "reason": "daily loss 5.2 % >= 5 %",
                                                        "peak_equity": "10000", "day_start_ms": 0, "day_start_equity": "10000"})
        await db.close()

    async def read():
        db = Database(database_path(settings))
        state = await StateRepository(db).get_state(STATE_KEY)
        await db.close()
        return state

    asyncio.run(halt())
    assert main(["trading", "status"]) == 0
    assert "HALTED: daily loss" in capsys.readouterr().out
    assert main(["trading", "reset"]) == 0
    state = asyncio.run(read())
    assert state["state"] == "ACTIVE" and state["peak_equity"] is None
    assert main(["trading", "reset"]) == 0
    assert "already ACTIVE" in capsys.readouterr().out
