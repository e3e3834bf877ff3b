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

TargetKey = tuple[str, Side, str]  # (symbol, position side, tag)
Targets = tuple[Decimal | None, Decimal | None]  # (stop-loss, take-profit)
_Held = tuple[int, Decimal] | None  # (arrival of the order that set it, the price)


def _target_key(o: Order) -> TargetKey | None:
    """Where an entry order's stop-loss / take-profit counts; None: a close, or no target at all."""
    if o.reduce_only or not (o.stop_loss_price or o.take_profit_price):
        return None
    return (o.symbol, o.side.position_side, o.tag)


class EntryTargets:
    """(symbol, position side, tag) -> the stop-loss and take-profit of the newest entry orders carrying one.

    Why an index: the dashboard asks for every position's targets ten times a second, and a long session
    holds thousands of finished orders - a scan of them all would run on the loop the watchdog shares.
    "Newest" is by first arrival, for each target on its own: an entry without a take-profit leaves the
    previous one's in force (what folding every order, oldest first, gives). Kept as orders change;
    only an update taking the newest order's target away reads that key's other carriers again.
    """

    def __init__(self) -> None:
        self._arrival: dict[ClientOrderId, int] = {}  # every order's place in first-arrival order
        self._carriers: dict[TargetKey, dict[ClientOrderId, Targets]] = {}
        self._newest: dict[TargetKey, list[_Held]] = {}  # [stop-loss, take-profit]

    def get(self, key: TargetKey) -> Targets:
        held = self._newest.get(key)
        if held is None:
            return None, None
        sl, tp = held
        return (sl[1] if sl else None), (tp[1] if tp else None)

    def update(self, old: Order | None, new: Order) -> None:
        """`new` replaces `old` (None: the order is new)."""
        cid = new.client_id
        arrival = self._arrival.setdefault(cid, len(self._arrival))
        old_key, new_key = (_target_key(old) if old is not None else None), _target_key(new)
        if old_key is None and new_key is None:
            return
        if old_key is not None:
            self._carriers[old_key].pop(cid, None)
        values: Targets = (new.stop_loss_price, new.take_profit_price)
        if new_key is not None:
            self._carriers.setdefault(new_key, {})[cid] = values
        for key in dict.fromkeys(k for k in (old_key, new_key) if k is not None):
            held = self._newest.setdefault(key, [None, None])
            for i in (0, 1):
                value = values[i] if key == new_key else None
                was = held[i]
                if value:
                    if was is None or was[0] <= arrival:
                        held[i] = (arrival, value)
                elif was is not None and was[0] == arrival:  # the newest lost it: the next newest counts
                    held[i] = self._newest_of(key, i)

    def _newest_of(self, key: TargetKey, i: int) -> _Held:
        best: _Held = None
        for cid, targets in self._carriers.get(key, {}).items():
            value, arrival = targets[i], self._arrival[cid]
            if value and (best is None or arrival > best[0]):
                best = (arrival, value)
        return best


class Cache:
    def __init__(self, bus: EventBus | None = None) -> None:
        self.positions: dict[tuple[str, Side], Position] = {}
        self.orders: dict[ClientOrderId, Order] = {}  # every order of the session (write via apply_order)
        self._working: dict[ClientOrderId, Order] = {}  # the non-terminal ones: `open_orders` reads these
        self._targets = EntryTargets()  # the entry orders' stop-loss / take-profit: `entry_targets` reads it
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
        held = self.orders.get(order.client_id)
        if held == order:
            return False
        self.orders[order.client_id] = order
        self._targets.update(held, order)
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

    def entry_targets(self, symbol: str, side: Side, tag: str) -> Targets:
        """(stop-loss, take-profit) of the newest entry orders of that position that set one (None: none did)."""
        return self._targets.get((symbol, side, tag))

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
