"""`backtest_runs` repository: save, list newest first with summary figures, get by id or unique prefix."""

from __future__ import annotations

import pytest

from tui_trader.store.backtests import AmbiguousRunId, BacktestRepository
from tui_trader.store.db import Database


def record(run_id, created, net):
    return {"id": run_id, "created_ms": created, "status": "finished", "strategy": "s", "symbols": ["A_USDT"],
            "date_from_ms": 1, "date_to_ms": 2, "params": {"latency_ms": 0}, "metrics": {"trades": 1, "net_pnl": net},
            "trades": [{"net_pnl": net}], "equity": [[1, "100"], [2, "101"]]}


async def test_save_list_get(tmp_path):
    db = Database(tmp_path / "t.sqlite")
    repo = BacktestRepository(db)
    try:
        await repo.save(record("bt-1-aa", 10, "1.5"))
        await repo.save(record("bt-1-ab", 20, "-2"))
        await repo.save(record("bt_2", 30, "0"))
        runs = await repo.list_runs()
        assert [r["id"] for r in runs] == ["bt_2", "bt-1-ab", "bt-1-aa"]
        assert runs[1]["net_pnl"] == "-2" and runs[1]["trades"] == 1 and runs[1]["symbols"] == ["A_USDT"]
        full = await repo.get_run("bt-1-aa")
        assert full == record("bt-1-aa", 10, "1.5")
        assert (await repo.get_run("bt-1-ab"))["equity"] == [[1, "100"], [2, "101"]]
        assert (await repo.get_run("bt_"))["id"] == "bt_2"  # '_' is a literal, not a LIKE wildcard
        with pytest.raises(AmbiguousRunId):
            await repo.get_run("bt-1-a")
        assert await repo.get_run("zz") is None
    finally:
        await db.close()
