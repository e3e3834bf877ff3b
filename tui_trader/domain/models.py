"""Domain layer: typed trading models (instrument, order, fill, position, account).

Money fields are `Decimal`: they meet the exchange's price and volume units, and fees and P&L
must add up to the cent. Market-data prices on the tick path are floats (see `events`); they are
converted to `Decimal` and quantised where an order or a fill is made.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import NewType

ClientOrderId = NewType("ClientOrderId", str)
VenueOrderId = NewType("VenueOrderId", str)
PositionId = NewType("PositionId", str)

ZERO = Decimal(0)


class Side(StrEnum):
    """Direction of a position."""

    LONG = "LONG"
    SHORT = "SHORT"

    @property
    def sign(self) -> int:
        """+1 for long, -1 for short: P&L = sign * (exit - entry) * qty."""
        return 1 if self is Side.LONG else -1

    @property
    def opposite(self) -> "Side":
        return Side.SHORT if self is Side.LONG else Side.LONG


class OrderSide(IntEnum):
    """MEXC's four order sides (wire values): open/close x long/short."""

    OPEN_LONG = 1
    CLOSE_SHORT = 2
    OPEN_SHORT = 3
    CLOSE_LONG = 4

    @property
    def position_side(self) -> Side:
        """The side of the position this order opens or closes."""
        return Side.LONG if self in (OrderSide.OPEN_LONG, OrderSide.CLOSE_LONG) else Side.SHORT

    @property
    def is_close(self) -> bool:
        return self in (OrderSide.CLOSE_SHORT, OrderSide.CLOSE_LONG)

    @property
    def is_buy(self) -> bool:
        """True when the order buys (open long, close short)."""
        return self in (OrderSide.OPEN_LONG, OrderSide.CLOSE_SHORT)

    @staticmethod
    def open_for(side: Side) -> "OrderSide":
        return OrderSide.OPEN_LONG if side is Side.LONG else OrderSide.OPEN_SHORT

    @staticmethod
    def close_for(side: Side) -> "OrderSide":
        return OrderSide.CLOSE_LONG if side is Side.LONG else OrderSide.CLOSE_SHORT


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"  # trigger order on last price (exchange-side SL / TP)


class MarginMode(StrEnum):
    ISOLATED = "isolated"
    CROSS = "cross"


class OrderState(StrEnum):
    """Life of an order. NEW = persisted, not yet sent; UNKNOWN = sent, no definite answer."""

    NEW = "new"
    SUBMITTED = "submitted"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in (OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED)


@dataclass(frozen=True, slots=True)
class Instrument:
    """Contract specification (MEXC `contract/detail`): the units orders must respect."""

    symbol: str
    contract_size: Decimal = Decimal("1")
    price_unit: Decimal = Decimal("0.00000001")
    vol_unit: Decimal = Decimal("1")
    min_vol: Decimal = Decimal("1")
    max_vol: Decimal = Decimal("100000000")
    min_leverage: int = 1
    max_leverage: int = 200
    taker_fee_rate: Decimal = Decimal("0.0006")
    maker_fee_rate: Decimal = Decimal("0.0002")
    maintenance_margin_rate: Decimal = Decimal("0.004")
    risk_base_vol: Decimal = Decimal("0")  # 0 = a single tier
    risk_incr_vol: Decimal = Decimal("0")
    risk_incr_mmr: Decimal = Decimal("0")
    risk_level_limit: int = 1
    api_allowed: bool = True


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the console tracks it; `client_id` (MEXC externalOid) is the idempotency key."""

    client_id: ClientOrderId
    symbol: str
    side: OrderSide
    type: OrderType
    qty_contracts: Decimal
    price: Decimal | None = None
    leverage: int = 1
    margin_mode: MarginMode = MarginMode.ISOLATED
    reduce_only: bool = False
    state: OrderState = OrderState.NEW
    venue_order_id: VenueOrderId | None = None
    filled_contracts: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    trigger_price: Decimal | None = None
    position_id: PositionId | None = None
    created_ms: int = 0
    updated_ms: int = 0
    reason: str = ""  # why it was sent (E1, ZE1, LIQ, MANUAL...) or why it was rejected
    tag: str = ""  # owner: strategy key or session id
    fee: Decimal = ZERO  # cumulative, as a live venue reports it on the order (fills are derived from it)
    realized_pnl: Decimal = ZERO  # cumulative gross P&L of a closing order, as reported

    def with_state(self, state: OrderState, ts_ms: int, **changes: object) -> "Order":
        """A copy in `state` (orders are immutable snapshots; the tracker keeps the latest)."""
        return replace(self, state=state, updated_ms=ts_ms, **changes)  # type: ignore[arg-type]

    @property
    def remaining_contracts(self) -> Decimal:
        return self.qty_contracts - self.filled_contracts


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of an order. `fill_id` is unique: stores de-duplicate on it."""

    fill_id: str
    client_id: ClientOrderId
    symbol: str
    side: OrderSide
    qty_contracts: Decimal
    price: Decimal
    fee: Decimal
    ts_ms: int
    liquidity: str = "taker"  # taker | maker | liquidation
    realized_pnl: Decimal = ZERO  # gross, before fee, for closing fills
    venue_order_id: VenueOrderId | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """An open position. `liquidation_price` is the venue's when known, else the formula's."""

    symbol: str
    side: Side
    contracts: Decimal
    contract_size: Decimal
    entry_price: Decimal
    leverage: int
    margin_mode: MarginMode = MarginMode.ISOLATED
    margin: Decimal = ZERO
    liquidation_price: Decimal | None = None
    mark_price: Decimal | None = None
    realized_pnl: Decimal = ZERO
    position_id: PositionId | None = None
    opened_ms: int = 0
    updated_ms: int = 0
    tag: str = ""

    @property
    def qty_coins(self) -> Decimal:
        return self.contracts * self.contract_size

    @property
    def notional(self) -> Decimal:
        return self.qty_coins * self.entry_price

    @property
    def unrealized_pnl(self) -> Decimal:
        """P&L at the mark price (0 when no mark is known yet)."""
        return ZERO if self.mark_price is None else self.pnl_at(self.mark_price)

    def pnl_at(self, price: Decimal) -> Decimal:
        """Unrealised P&L if the position were marked at `price` (the one marking rule)."""
        return self.side.sign * (price - self.entry_price) * self.qty_coins

    @property
    def is_flat(self) -> bool:
        return self.contracts <= 0

    def same_holding(self, other: Position) -> bool:
        """The same position in everything but its price and report time (mark, updated_ms): a poll
        that says nothing new, which is neither stored nor published again."""
        return (self.contracts, self.contract_size, self.entry_price, self.leverage, self.margin_mode, self.margin,
                self.liquidation_price, self.realized_pnl, self.position_id, self.opened_ms, self.tag) == (
            other.contracts, other.contract_size, other.entry_price, other.leverage, other.margin_mode, other.margin,
            other.liquidation_price, other.realized_pnl, other.position_id, other.opened_ms, other.tag)


@dataclass(frozen=True, slots=True)
class Account:
    """Balances in the settlement currency (USDT)."""

    currency: str = "USDT"
    cash_balance: Decimal = ZERO  # deposits + realised P&L - fees - funding
    position_margin: Decimal = ZERO
    frozen: Decimal = ZERO  # margin reserved by open orders
    unrealized_pnl: Decimal = ZERO

    @property
    def equity(self) -> Decimal:
        return self.cash_balance + self.unrealized_pnl

    @property
    def available(self) -> Decimal:
        return self.cash_balance - self.position_margin - self.frozen
