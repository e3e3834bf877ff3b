"""Store layer: the `backtest_runs` repository - one row per finished run, JSON columns for the rest.

A run arrives as a plain record (`BacktestResult.to_record()`: id, created_ms, status, strategy,
symbols, date range, params, metrics, trades, equity curve) and is written in one durable
statement; `list_runs` returns the summary columns the CLI and the dashboard show, `get_run` the
whole record with its JSON decoded. Ids can be given by a unique prefix.
"""

from __future__ import annotations

import json
from typing import Any

from tui_trader.store.db import Database

SUMMARY_KEYS = ("trades", "win_rate_pct", "net_pnl", "total_return_pct", "max_drawdown_pct", "sharpe")


class AmbiguousRunId(LookupError):
    """A prefix matching several runs."""


class BacktestRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save(self, record: dict[str, Any]) -> None:
        await self.db.execute_durable(
            "INSERT OR REPLACE INTO backtest_runs (id, created_ms, status, strategy, symbols, date_from_ms, date_to_ms,"
            " params_json, metrics_json, trades_json, equity_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record["id"], record["created_ms"], record["status"], record["strategy"], json.dumps(record["symbols"]),
                record.get("date_from_ms"), record.get("date_to_ms"), json.dumps(record.get("params", {})),
                json.dumps(record.get("metrics", {})), json.dumps(record.get("trades", [])), json.dumps(record.get("equity", [])),
            ),
        )  # fmt: skip

    async def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first: id, created_ms, status, strategy, symbols, date range and the summary metrics."""
        rows = await self.db.fetchall(
            "SELECT id, created_ms, status, strategy, symbols, date_from_ms, date_to_ms, metrics_json"
            " FROM backtest_runs ORDER BY created_ms DESC, id DESC LIMIT ?",
            (limit,),
        )
        out = []
        for row in rows:
            metrics = json.loads(row["metrics_json"])
            out.append({
                "id": row["id"], "created_ms": row["created_ms"], "status": row["status"], "strategy": row["strategy"],
                "symbols": json.loads(row["symbols"]), "date_from_ms": row["date_from_ms"], "date_to_ms": row["date_to_ms"],
                **{k: metrics.get(k) for k in SUMMARY_KEYS},
            })  # fmt: skip
        return out

    async def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The whole run by id or unique id prefix; None when nothing matches."""
        rows = await self.db.fetchall("SELECT * FROM backtest_runs WHERE id = ?", (run_id,))
        if not rows:
            escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = await self.db.fetchall("SELECT * FROM backtest_runs WHERE id LIKE ? ESCAPE '\\' LIMIT 2", (escaped + "%",))
            if len(rows) > 1:
                raise AmbiguousRunId(f"{run_id!r} matches several runs; give more of the id")
        if not rows:
            return None
        row = rows[0]
        return {
            "id": row["id"], "created_ms": row["created_ms"], "status": row["status"], "strategy": row["strategy"],
            "symbols": json.loads(row["symbols"]), "date_from_ms": row["date_from_ms"], "date_to_ms": row["date_to_ms"],
            "params": json.loads(row["params_json"]), "metrics": json.loads(row["metrics_json"]),
            "trades": json.loads(row["trades_json"]), "equity": json.loads(row["equity_json"]),
        }  # fmt: skip
