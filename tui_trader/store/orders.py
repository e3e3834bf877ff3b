"""Store layer: orders, fills and position snapshots (implements `engine.ports.OrderStore`).

Orders are upserted by (session, client id) and written durably: the row exists before the venue sees the
order. Fills are keyed by (session, `fill_id`) and inserted with `INSERT OR IGNORE`, so a fill replayed after
a crash or a reconnect is never counted twice.
"""

from __future__ import annotations

from decimal import Decimal

from tui_trader.domain.models import (
    ClientOrderId,
    Fill,
    MarginMode,
    Order,
    OrderSide,
    OrderState,
    OrderType,
    Position,
    PositionId,
    Side,
    VenueOrderId,
)
from tui_trader.store.db import Database


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _d(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


_ORDER_UPSERT = """
INSERT INTO orders (client_id, session_id, symbol, side, type, qty, price, leverage, margin_mode,
    reduce_only, state, venue_order_id, filled, avg_price, stop_loss, take_profit, trigger_price,
    position_id, reason, tag, created_ms, updated_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(session_id, client_id) DO UPDATE SET
    state=excluded.state, venue_order_id=COALESCE(excluded.venue_order_id, orders.venue_order_id),
    filled=excluded.filled, avg_price=excluded.avg_price, position_id=excluded.position_id,
    reason=excluded.reason, updated_ms=excluded.updated_ms
"""

_FILL_INSERT = """
INSERT OR IGNORE INTO fills (fill_id, session_id, client_id, venue_order_id, symbol, side, qty,
    price, fee, realized_pnl, liquidity, ts_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def order_params(order: Order, session_id: str) -> tuple:
    o = order
    return (
        o.client_id, session_id, o.symbol, int(o.side), o.type.value, str(o.qty_contracts), _s(o.price),
        o.leverage, o.margin_mode.value, int(o.reduce_only), o.state.value, o.venue_order_id,
        str(o.filled_contracts), _s(o.avg_fill_price), _s(o.stop_loss_price), _s(o.take_profit_price),
        _s(o.trigger_price), o.position_id, o.reason, o.tag, o.created_ms, o.updated_ms,
    )


def fill_params(fill: Fill, session_id: str) -> tuple:
    f = fill
    return (
        f.fill_id, session_id, f.client_id, f.venue_order_id, f.symbol, int(f.side), str(f.qty_contracts),
        str(f.price), str(f.fee), str(f.realized_pnl), f.liquidity, f.ts_ms,
    )


def order_from_row(r) -> Order:
    return Order(
        client_id=ClientOrderId(r["client_id"]),
        symbol=r["symbol"],
        side=OrderSide(r["side"]),
        type=OrderType(r["type"]),
        qty_contracts=Decimal(r["qty"]),
        price=_d(r["price"]),
        leverage=r["leverage"],
        margin_mode=MarginMode(r["margin_mode"]),
        reduce_only=bool(r["reduce_only"]),
        state=OrderState(r["state"]),
        venue_order_id=VenueOrderId(r["venue_order_id"]) if r["venue_order_id"] else None,
        filled_contracts=Decimal(r["filled"]),
        avg_fill_price=_d(r["avg_price"]),
        stop_loss_price=_d(r["stop_loss"]),
        take_profit_price=_d(r["take_profit"]),
        trigger_price=_d(r["trigger_price"]),
        position_id=PositionId(r["position_id"]) if r["position_id"] else None,
        reason=r["reason"],
        tag=r["tag"],
        created_ms=r["created_ms"],
        updated_ms=r["updated_ms"],
    )


def fill_from_row(r) -> Fill:
    return Fill(
        fill_id=r["fill_id"],
        client_id=ClientOrderId(r["client_id"]),
        symbol=r["symbol"],
        side=OrderSide(r["side"]),
        qty_contracts=Decimal(r["qty"]),
        price=Decimal(r["price"]),
        fee=Decimal(r["fee"]),
        ts_ms=r["ts_ms"],
        liquidity=r["liquidity"],
        realized_pnl=Decimal(r["realized_pnl"]),
        venue_order_id=VenueOrderId(r["venue_order_id"]) if r["venue_order_id"] else None,
    )


class OrderRepository:
    """Orders, fills and position snapshots of every session (session_id '' = the live console)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def save_order(self, order: Order, session_id: str = "") -> None:
        await self.db.execute_durable(_ORDER_UPSERT, order_params(order, session_id))

    async def save_fill(self, fill: Fill, session_id: str = "") -> bool:
        return await self.db.execute_durable(_FILL_INSERT, fill_params(fill, session_id)) == 1

    async def load_orders(self, session_id: str = "", open_only: bool = False) -> list[Order]:
        sql = "SELECT * FROM orders WHERE session_id = ?"
        if open_only:
            sql += " AND state NOT IN ('filled', 'cancelled', 'rejected')"
        rows = await self.db.fetchall(sql + " ORDER BY created_ms, rowid", (session_id,))
        return [order_from_row(r) for r in rows]

    async def get_order(self, client_id: str, session_id: str = "") -> Order | None:
        row = await self.db.fetchone("SELECT * FROM orders WHERE session_id = ? AND client_id = ?", (session_id, client_id))
        return order_from_row(row) if row else None

    async def load_fills(self, session_id: str = "") -> list[Fill]:
        rows = await self.db.fetchall("SELECT * FROM fills WHERE session_id = ? ORDER BY ts_ms, rowid", (session_id,))
        return [fill_from_row(r) for r in rows]

    async def last_open_positions(self, session_id: str = "") -> list[Position]:
        """Positions whose latest snapshot is open (what the console held when it stopped), `updated_ms` the
        snapshot's (exchange) time."""
        rows = await self.db.fetchall(
            "SELECT * FROM position_snapshots WHERE id IN (SELECT MAX(id) FROM position_snapshots WHERE session_id = ?"
            " GROUP BY symbol, side)", (session_id,))
        return [Position(r["symbol"], Side(r["side"]), Decimal(r["contracts"]), Decimal(1), Decimal(r["entry_price"]),
                         r["leverage"], updated_ms=r["ts_ms"]) for r in rows if Decimal(r["contracts"]) > 0]

    async def save_position(self, position: Position, session_id: str = "", reason: str = "") -> None:
        p = position
        await self.db.execute_durable(
            "INSERT INTO position_snapshots (session_id, symbol, side, contracts, entry_price, leverage, margin,"
            " liquidation_price, realized_pnl, reason, ts_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (session_id, p.symbol, p.side.value, str(p.contracts), str(p.entry_price), p.leverage, str(p.margin),
             _s(p.liquidation_price), str(p.realized_pnl), reason, p.updated_ms),
        )
