"""Engine layer: the latest known state - positions, orders, prices, account - read by every component.

Execution writes to the cache *before* it publishes the event that describes the change, so any
handler reading the cache sees the state the event announces (nautilus' "cache, then publish").
Prices are updated inline from ticks (a dict write each).
"""

from __future__ import annotations

from decimal import Decimal

from tui_trader.domain.events import Event, MarkPriceTick, TradeTick
from tui_trader.domain.models import Account, ClientOrderId, Order, Position, Side
from tui_trader.engine.bus import EventBus


class Cache:
    def __init__(self, bus: EventBus | None = None) -> None:
        self.positions: dict[tuple[str, Side], Position] = {}
        self.orders: dict[ClientOrderId, Order] = {}  # every order of the session (write via apply_order)
        self._working: dict[ClientOrderId, Order] = {}  # the non-terminal ones: `open_orders` reads these
        self.last: dict[str, tuple[float, int]] = {}  # symbol -> (price, ts_ms)
        self.mark: dict[str, tuple[float, int]] = {}
        self.account: Account | None = None
        if bus is not None:
            bus.subscribe(self._on_tick, [TradeTick, MarkPriceTick], name="cache.prices")

    def _on_tick(self, ev: Event) -> None:
        if isinstance(ev, TradeTick):
            self.last[ev.symbol] = (ev.price, ev.ts_ms)
        elif isinstance(ev, MarkPriceTick):
            self.mark[ev.symbol] = (ev.price, ev.ts_ms)

    def apply_position(self, position: Position) -> bool:
        """Store the position (flat: drop it); False when only its price or time changed - a poll that
        says nothing new, neither stored nor published again (the audit reads every position every 10 s)."""
        key = (position.symbol, position.side)
        if position.is_flat:
            self.positions.pop(key, None)
            return True
        held, self.positions[key] = self.positions.get(key), position
        return held is None or not position.same_holding(held)

    def apply_order(self, order: Order) -> bool:
        """Store the order; False when nothing changed (the event need not be published again)."""
        if self.orders.get(order.client_id) == order:
            return False
        self.orders[order.client_id] = order
        if order.state.is_terminal:
            self._working.pop(order.client_id, None)
        else:
            self._working[order.client_id] = order
        return True

    def position(self, symbol: str, side: Side) -> Position | None:
        return self.positions.get((symbol, side))

    def open_orders(self, symbol: str | None = None, tag: str | None = None) -> list[Order]:
        """Working orders, oldest first - from an index of them: the entry lane asks at every entry, and
        a long session holds thousands of finished orders."""
        return [o for o in self._working.values()
                if (symbol is None or o.symbol == symbol) and (tag is None or o.tag == tag)]

    def last_price(self, symbol: str) -> float | None:
        entry = self.last.get(symbol)
        return entry[0] if entry else None

    def fair_price(self, symbol: str) -> float | None:
        """The fair (mark) price, else the last trade: what positions are marked and stops checked against."""
        entry = self.mark.get(symbol) or self.last.get(symbol)
        return entry[0] if entry else None

    def reference_price(self, symbol: str) -> Decimal | None:
        """Last trade price, else mark, as Decimal (sizing and pre-trade checks)."""
        entry = self.last.get(symbol) or self.mark.get(symbol)
        return Decimal(repr(entry[0])) if entry else None
