"""Store layer: small JSON state that must survive a restart (kill-switch state, strategy machines)."""

from __future__ import annotations

import json
import time

from tui_trader.store.db import Database


class StateRepository:
    """Implements `engine.ports.KeyValueStore` on the `state` table; every put is durable."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def put_state(self, key: str, value: dict) -> None:
        await self.db.execute_durable(
            "INSERT INTO state (key, value, updated_ms) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value, updated_ms=excluded.updated_ms",
            (key, json.dumps(value, sort_keys=True, default=str), time.time_ns() // 1_000_000),
        )

    async def get_state(self, key: str) -> dict | None:
        row = await self.db.fetchone("SELECT value FROM state WHERE key = ?", (key,))
        return json.loads(row["value"]) if row else None

    async def delete_state(self, key: str) -> None:
        await self.db.execute_durable("DELETE FROM state WHERE key = ?", (key,))
