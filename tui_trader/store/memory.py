"""Store layer: an in-memory `OrderStore` / `KeyValueStore` for backtests and tests.

Same contract as the SQLite repositories (upsert by client id, fills de-duplicated by id) but its
coroutines never suspend, so a backtest stays deterministic and fast; the run is written to SQLite
once at the end.
"""

from __future__ import annotations

from typing import Any

from tui_trader.domain.models import Fill, Order, Position


class MemoryStore:
    def __init__(self) -> None:
        self.orders: dict[str, tuple[str, Order]] = {}
        self.fills: dict[str, tuple[str, Fill]] = {}
        self.positions: list[tuple[str, Position, str]] = []
        self.state: dict[str, dict] = {}

    async def save_order(self, order: Order, session_id: str = "") -> None:
        self.orders[order.client_id] = (session_id, order)

    async def save_fill(self, fill: Fill, session_id: str = "") -> bool:
        if fill.fill_id in self.fills:
            return False
        self.fills[fill.fill_id] = (session_id, fill)
        return True

    async def save_position(self, position: Position, session_id: str = "", reason: str = "") -> None:
        self.positions.append((session_id, position, reason))

    async def load_orders(self, session_id: str = "", open_only: bool = False) -> list[Order]:
        return [o for s, o in self.orders.values() if s == session_id and not (open_only and o.state.is_terminal)]

    async def load_fills(self, session_id: str = "") -> list[Fill]:
        return [f for s, f in self.fills.values() if s == session_id]

    async def put_state(self, key: str, value: dict) -> None:
        self.state[key] = _copy(value)

    async def get_state(self, key: str) -> dict | None:
        value = self.state.get(key)
        return _copy(value) if value is not None else None


def _copy(value: Any) -> Any:
    """A copy of a JSON-ready state value (dicts, lists, scalars) - what a database round trip gives,
    without `deepcopy`'s memo machinery (states are written at every change)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
