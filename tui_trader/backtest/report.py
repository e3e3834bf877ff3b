"""Backtest layer: exports of a stored run record - JSON (everything) and CSV (the trade list).

Both take the record form (`BacktestResult.to_record()` or `BacktestRepository.get_run()`), so a
run can be exported right after it finishes or later from the database. Money stays exact
(decimal strings); times are UTC epoch milliseconds plus an ISO column in the CSV.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tui_trader.domain.errors import DataError
from tui_trader.domain.time_format import iso_utc

TRADE_COLUMNS = (
    "symbol", "side", "entry_ms", "entry_time", "entry_price", "exit_ms", "exit_time", "exit_price", "contracts",
    "leverage", "gross_pnl", "fees", "funding", "net_pnl", "exit_reason", "liquidated",
)  # fmt: skip


def write_json(record: dict[str, Any], path: Path | str) -> None:
    """The whole run: id, strategy, symbols, range, params, every metric, trades, equity curve."""
    _write(path, json.dumps(record, indent=2) + "\n")


def write_csv(record: dict[str, Any], path: Path | str) -> None:
    """One row per trade (open trades have empty exit columns)."""
    path = Path(path)
    try:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=TRADE_COLUMNS)
            writer.writeheader()
            for trade in record["trades"]:
                row = {k: trade.get(k) for k in TRADE_COLUMNS}
                row["entry_time"], row["exit_time"] = iso_utc(trade["entry_ms"]), iso_utc(trade["exit_ms"])
                writer.writerow(row)
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _write(path: Path | str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({exc.strerror or exc})") from None
