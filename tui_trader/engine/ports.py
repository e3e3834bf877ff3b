"""Engine layer: the ports the engine needs; `venues` and `store` implement them.

The engine never learns which venue it trades on: paper, backtest and MEXC all implement
`VenueClient`. Contract of every venue:

* `place_order` is idempotent on `order.client_id` (MEXC externalOid): a second call with a known
  id returns the existing order, never a second one.
* Reduce-only orders never open or grow a position; they are the "close lane": a venue must not
  hold them behind an entry circuit breaker or an entry back-off. `close_lane=True` on a lookup
  (positions, open orders, cancel) asks the same for the kill switch and the close sequence.
* Errors are `domain.errors` classes: `Retryable`, `Permanent` (incl. `OrderRejected`,
  `PositionNotFound`), `AmbiguousOrderState`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol, runtime_checkable

from tui_trader.domain.intents import OpenPosition
from tui_trader.domain.models import (
    Account,
    ClientOrderId,
    Fill,
    Instrument,
    MarginMode,
    Order,
    Position,
    Side,
)


@runtime_checkable
class VenueClient(Protocol):
    name: str

    async def instrument(self, symbol: str) -> Instrument: ...

    async def place_order(self, order: Order) -> Order: ...

    async def cancel_order(self, symbol: str, client_id: ClientOrderId, *, close_lane: bool = False) -> Order: ...

    async def get_order(self, symbol: str, client_id: ClientOrderId, *, close_lane: bool = False) -> Order | None: ...

    async def open_orders(self, symbol: str | None = None, *, close_lane: bool = False) -> list[Order]: ...

    async def positions(self, symbol: str | None = None, *, close_lane: bool = False) -> list[Position]: ...

    async def account(self) -> Account: ...

    async def set_leverage(self, symbol: str, leverage: int, margin_mode: MarginMode, side: Side | None = None) -> None: ...

    async def set_stop_loss(
        self, symbol: str, side: Side, stop_loss: Decimal | None, take_profit: Decimal | None
    ) -> None: ...


@runtime_checkable
class OrderStore(Protocol):
    """Durable order/fill storage. `save_order` returns only once the row is committed."""

    async def save_order(self, order: Order, session_id: str = "") -> None: ...

    async def save_fill(self, fill: Fill, session_id: str = "") -> bool:
        """Store a fill; False when its `fill_id` was already stored (no duplicate)."""

    async def load_orders(self, session_id: str = "", open_only: bool = False) -> list[Order]: ...


@runtime_checkable
class KeyValueStore(Protocol):
    """Small durable state (trading state, strategy machine state) that must survive a restart."""

    async def put_state(self, key: str, value: dict) -> None: ...

    async def get_state(self, key: str) -> dict | None: ...


class RiskGate(Protocol):
    """What execution asks the risk guard before an entry (see `engine/risk.py`)."""

    def check_open(self, intent: OpenPosition, account: Account, open_positions: int, pending_entries: int) -> None:
        """Raise `RiskRejected` with the reason when the entry is not allowed."""
