"""Domain layer: intents - what a strategy (or the watchdog, or the user) asks execution to do.

Intents are commands (imperative names): execution may refuse them (risk guard, trading state).
Each carries the client order id it will be sent with, chosen by the caller so that a retry of the
same intent reuses the same id (idempotency; MEXC externalOid, at most 32 characters).
`tag` names the owner (a strategy machine key `strategy:symbol`, a session id, or "manual"), and
comes back on the resulting `OrderUpdated` / `PositionChanged` events so the owner can react.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_trader.domain.models import ClientOrderId, OrderType, Side


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """Open a new position. Size is the isolated *margin* as % of available balance."""

    ts_ms: int
    tag: str
    symbol: str
    side: Side
    client_id: ClientOrderId
    size_pct: float
    leverage: int
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    ref_price: float | None = None  # latest price the decision saw (sizing, pre-trade checks)
    reason: str = "Z1"
    max_per_symbol: int = 1  # the strategy's max_positions_per_symbol (hedge mode: sides held)
    min_liq_distance_pct: float = 0.0  # the strategy's min_entry_liq_distance_pct (checked at sizing)
    daily_loss_limit_pct: float | None = None  # the strategy's own (risk guard: its realised loss today)


@dataclass(frozen=True, slots=True)
class ClosePosition:
    """Close (reduce-only, market) the position of `tag` on `symbol`/`side`; qty None = all of it."""

    ts_ms: int
    tag: str
    symbol: str
    side: Side
    client_id: ClientOrderId
    reason: str  # E1 | ZE1 | TIME | LIQ | STALE | MANUAL | SL | TP
    qty_contracts: float | None = None


@dataclass(frozen=True, slots=True)
class CancelOrders:
    """Cancel open, non-protective orders of `tag` on `symbol` (e.g. an unfilled entry)."""

    ts_ms: int
    tag: str
    symbol: str
    reason: str = ""


Intent = OpenPosition | ClosePosition | CancelOrders


def machine_tag(strategy_name: str, symbol: str) -> str:
    """The owner tag of one strategy machine's orders and positions: `strategy:SYMBOL`."""
    return f"{strategy_name}:{symbol}"


def strategy_of(tag: str) -> str:
    """The strategy part of a machine tag (limits that span a strategy's symbols group by it)."""
    return tag.rsplit(":", 1)[0]


def make_client_id(*parts: str | int, max_len: int = 32) -> ClientOrderId:
    """Deterministic client id from its parts, shortened (stable hash) to fit MEXC's 32 characters."""
    raw = "-".join(str(p) for p in parts)
    if len(raw) <= max_len:
        return ClientOrderId(raw)
    import hashlib

    digest = hashlib.blake2s(raw.encode(), digest_size=6).hexdigest()
    tail = "-".join(str(p) for p in parts[-2:])
    keep = max_len - len(digest) - len(tail) - 2
    head = str(parts[0])[: max(0, keep)]
    return ClientOrderId(f"{head}-{digest}-{tail}"[:max_len])


def leg_id(base: ClientOrderId, leg: int) -> ClientOrderId:
    """`...-X` -> `...-X2`: a new id for a re-issued close, within MEXC's 32 characters."""
    suffix = str(leg)
    return ClientOrderId((base[: 32 - len(suffix)]) + suffix)
