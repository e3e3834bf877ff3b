"""Venues layer: checkpoint and restore of a paper venue's whole state (sessions survive a crash).

A checkpoint is taken at a candle boundary while execution is idle, together with the replay
cursor and the strategy machines, in one durable write. Restoring it and replaying the data from
the cursor re-creates anything that happened after it with the same deterministic client and fill
ids, so stores that de-duplicate on those ids never count a fill twice.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from typing import Any

from tui_trader.domain.models import ClientOrderId, MarginMode, Order, OrderSide, OrderState, OrderType, Side, VenueOrderId
from tui_trader.venues.paper.ledger import PaperPosition
from tui_trader.venues.paper.venue import PaperVenue, _Pending

_DEC = {"contracts", "entry", "margin", "contract_size", "liq", "realized", "fees", "funding", "stop_loss", "take_profit"}
_ORDER_DEC = {"qty_contracts", "price", "filled_contracts", "avg_fill_price", "stop_loss_price", "take_profit_price", "trigger_price"}


def _s(v: Any) -> Any:
    return str(v) if isinstance(v, Decimal) else v.value if isinstance(v, (Side, OrderType, OrderState, MarginMode)) else v


def _order_dict(o: Order) -> dict[str, Any]:
    out = {f.name: _s(getattr(o, f.name)) for f in fields(o)}
    out["side"] = int(o.side)
    return out


def _order(d: dict[str, Any]) -> Order:
    kw = dict(d)
    for k in _ORDER_DEC:
        kw[k] = Decimal(kw[k]) if kw[k] is not None else None
    kw["filled_contracts"] = kw["filled_contracts"] or Decimal(0)
    kw.update(client_id=ClientOrderId(d["client_id"]), side=OrderSide(d["side"]), type=OrderType(d["type"]),
              state=OrderState(d["state"]), margin_mode=MarginMode(d["margin_mode"]),
              venue_order_id=VenueOrderId(d["venue_order_id"]) if d["venue_order_id"] else None)
    return Order(**kw)


def snapshot(venue: PaperVenue) -> dict[str, Any]:
    led = venue.ledger
    return {
        "cash": str(led.cash), "frozen": str(led.frozen), "fees_paid": str(led.fees_paid),
        "funding_paid": str(led.funding_paid), "realized": str(led.realized),
        "starting_balance": str(led.starting_balance), "next_position_id": led._next_id,
        "positions": [{f.name: _s(getattr(p, f.name)) for f in fields(p)} for p in led.positions.values()],
        "open_orders": [_order_dict(o) for o in venue.orders.values() if not o.state.is_terminal],
        "market_due": {p.order.client_id: p.due_ms for p in venue._market},
        "order_seq": venue.order_seq, "fill_seq": venue._fill_seq,
        "last": {k: str(v) for k, v in venue.last.items()}, "marks": {k: str(v) for k, v in venue.marks.items()},
        "next_funding": dict(venue._next_funding), "now_ms": venue.now_ms,
    }


def restore(venue: PaperVenue, snap: dict[str, Any]) -> None:
    """Put `venue` back into the state of `snap` (a fresh venue, before any tick)."""
    led = venue.ledger
    led.cash, led.frozen = Decimal(snap["cash"]), Decimal(snap["frozen"])
    led.fees_paid, led.funding_paid = Decimal(snap["fees_paid"]), Decimal(snap["funding_paid"])
    led.realized, led.starting_balance = Decimal(snap["realized"]), Decimal(snap["starting_balance"])
    led._next_id = snap["next_position_id"]
    led.positions.clear()
    for raw in snap["positions"]:
        kw = {k: (Decimal(v) if k in _DEC and v is not None else v) for k, v in raw.items()}
        kw["side"] = Side(kw["side"])
        pos = PaperPosition(**kw)
        led.positions[(pos.symbol, pos.side)] = pos
    venue.orders.clear()
    venue._market.clear()
    venue._limits.clear()
    for raw in snap["open_orders"]:
        order = _order(raw)
        venue.orders[order.client_id] = order
        if order.client_id in snap["market_due"]:
            venue._market.append(_Pending(order, snap["market_due"][order.client_id]))
        elif order.type is OrderType.LIMIT:
            venue._limits.append(order)
    venue.order_seq = snap["order_seq"]
    venue._fill_seq = snap["fill_seq"]
    venue.last = {k: Decimal(v) for k, v in snap["last"].items()}
    venue.marks = {k: Decimal(v) for k, v in snap["marks"].items()}
    venue._next_funding = {k: int(v) for k, v in snap["next_funding"].items()}
    venue.now_ms = snap["now_ms"]
