"""Engine layer: attribution of venue reports - every order, fill and position report gets its owner.

A live exchange reports orders by externalOid (our client id) and positions by symbol and side,
with no strategy tag. Before execution stores or publishes such a report it passes through here
(hummingbot's client order tracker, nautilus' "an unknown outcome is not a rejection"):

* an order report is merged into the order we sent with that client id (kept in the cache and the
  store): the exchange's state, filled volume, average price and ids; our tag, reason and
  protective prices. States only move forward: a stale "open" after "filled" is ignored;
* a rise of the cumulative filled volume becomes one `Fill`, with an id made of the exchange's
  order id and the cumulative volume - the same fill reported by the REST poll, a private push or
  a lookup gets the same id, so it is stored once whatever path reported it;
* a position report takes the tag of the position we already hold on that symbol and side, else of
  the latest entry order of ours on it that can still own a position: one in flight, or one that
  finished after that side was last reported flat (`spend_entries`; a finished entry whose position
  has since closed owns nothing - a short opened there later by hand is someone else's). A report
  that matches nothing is `EXTERNAL_TAG`: shown, stored and watched, never traded by a strategy.

* exchange times order position reports: one stamped before a report already applied is stale (a
  late push); a position the console makes up from a REST read ("not there any more") carries no
  exchange time and gets one here, on the exchange's clock, after everything seen on its side - on
  our clock it was dropped as stale whenever MEXC's clock ran ahead (a phantom position, watched
  for ever) and it sorted before the fills that closed it in the stored trade list.

A report that already carries a tag (the paper venue keeps our order objects; a create's reply) is taken
as it is, unless other reports already took the order further: then it is merged forward only.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal

from tui_trader.domain.events import PositionChanged
from tui_trader.domain.models import (
    ZERO,
    ClientOrderId,
    Fill,
    Order,
    OrderSide,
    OrderState,
    Position,
    Side,
)
from tui_trader.engine.cache import Cache

log = logging.getLogger(__name__)

EXTERNAL_TAG = "external"
EXTERNAL_ID_PREFIX = "ext-"  # an external order without an externalOid: nothing to look it up by

_RANK = {
    OrderState.NEW: 0, OrderState.UNKNOWN: 0, OrderState.SUBMITTED: 1, OrderState.OPEN: 1,
    OrderState.PARTIALLY_FILLED: 2, OrderState.FILLED: 3, OrderState.CANCELLED: 3, OrderState.REJECTED: 3,
}


def fill_id(order: Order) -> str:
    """The id of the fill that took `order` to its current cumulative volume (path independent)."""
    return f"{order.venue_order_id or order.client_id}:{order.filled_contracts.normalize():f}"


class OrderTracker:
    """Merges untagged venue reports with what the cache knows. Pure bookkeeping: no I/O."""

    def __init__(self, cache: Cache, *, derive_fills: bool = True) -> None:
        self.cache = cache
        self.derive_fills = derive_fills  # False when the venue publishes its own fills (paper)
        self._position_ms: dict[tuple[str, object], int] = {}  # newest position report seen per symbol/side
        self._exchange_ms: dict[tuple[str, object], int] = {}  # newest exchange time per side: positions and fills
        self._applied_ms: dict[tuple[str, object], int] = {}  # local time a report on each side was last applied
        # per side, when it was last reported flat (our clock) and our entries then still in flight: an entry
        # made before that and finished by then owns nothing (`spend_entries`)
        self._flat_mark: dict[tuple[str, Side], tuple[int, frozenset[ClientOrderId]]] = {}

    def known(self, reported: Order) -> Order | None:
        """Our order behind a report: by client id, else by the exchange's order id."""
        if reported.client_id:
            found = self.cache.orders.get(reported.client_id)
            if found is not None:
                return found
        if reported.venue_order_id:
            for order in self.cache.orders.values():
                if order.venue_order_id == reported.venue_order_id:
                    return order
        return None

    def merge_order(self, reported: Order, now_ms: int) -> tuple[Order, Fill | None]:
        """The order to store and publish for a venue report, and the fill it reveals (or None)."""
        known = self.known(reported)
        if reported.tag and (known is None or _not_older(reported, known)):
            return reported, self._fill(known, reported, now_ms)  # our own answer (the paper venue's, a create's
            # reply, one found filled by a lookup): as it is - unless reports already took the order further
            # (MEXC's fill pushes often beat its create reply): then it is merged like any report, forward only
        if known is None:
            cid = reported.client_id or ClientOrderId(f"{EXTERNAL_ID_PREFIX}{reported.venue_order_id}")
            merged = replace(reported, client_id=cid, tag=EXTERNAL_TAG, reason=reported.reason or "external order",
                             updated_ms=reported.updated_ms or now_ms)
            return merged, self._fill(None, merged, now_ms)
        state = reported.state if _RANK[reported.state] >= _RANK[known.state] else known.state
        filled = max(reported.filled_contracts, known.filled_contracts)
        avg = reported.avg_fill_price if reported.filled_contracts >= known.filled_contracts else known.avg_fill_price
        reason = known.reason
        if state in (OrderState.REJECTED, OrderState.CANCELLED) and reported.reason and reported.reason not in reason:
            reason = f"{reason}: {reported.reason}" if reason else reported.reason
        newer = reported.filled_contracts >= known.filled_contracts
        merged = replace(
            known, state=state, filled_contracts=filled, avg_fill_price=avg or known.avg_fill_price,
            fee=reported.fee if newer else known.fee,
            realized_pnl=reported.realized_pnl if newer else known.realized_pnl,
            venue_order_id=reported.venue_order_id or known.venue_order_id,
            position_id=reported.position_id or known.position_id, reason=reason,
            updated_ms=max(known.updated_ms, reported.updated_ms or now_ms),
        )
        return merged, self._fill(known, merged, now_ms)

    def _fill(self, before: Order | None, after: Order, now_ms: int) -> Fill | None:
        if not self.derive_fills:
            return None
        old_qty = before.filled_contracts if before is not None else ZERO
        delta = after.filled_contracts - old_qty
        if delta <= 0 or after.avg_fill_price is None:
            return None
        old_cost = old_qty * (before.avg_fill_price or ZERO) if before is not None else ZERO
        price = (after.filled_contracts * after.avg_fill_price - old_cost) / delta
        if price <= 0:  # an inconsistent average: the order's own average is the better guess
            price = after.avg_fill_price
        fee = after.fee - (before.fee if before is not None else ZERO)
        pnl = after.realized_pnl - (before.realized_pnl if before is not None else ZERO)
        if after.updated_ms:
            self._seen(after.symbol, after.side.position_side, after.updated_ms)
        liquidity = "liquidation" if after.reason == "LIQUIDATION" else "taker"  # the exchange's own close
        return Fill(fill_id(after), after.client_id, after.symbol, after.side, delta, _tidy(price), max(fee, ZERO),
                    after.updated_ms or now_ms, liquidity, realized_pnl=pnl, venue_order_id=after.venue_order_id)

    def stale_position(self, reported: Position) -> bool:
        """True for a position report older than one already applied (a late push of the position as it
        was before a close would bring the closed position back). Reports without a time are never stale."""
        key = (reported.symbol, reported.side)
        last = self._position_ms.get(key)
        if reported.updated_ms and last is not None and reported.updated_ms < last:
            return True
        if reported.updated_ms:
            self._position_ms[key] = max(reported.updated_ms, last or 0)
            self._seen(reported.symbol, reported.side, reported.updated_ms)
        return False

    def made_up(self, position: Position, read_ms: int, now_ms: int, offset_ms: int) -> Position | None:
        """A position the console made up from a REST read begun at `read_ms` (our clock) - "not there any
        more" - stamped on the exchange's clock now (`now_ms` + `offset_ms`, never before the newest report or fill
        seen on its side: stored trades are ordered by time, and a flat stamped before the fill that closed
        the position would close nothing). None when a report on its side was applied since the read began.
        Exchange reports stamped before the read are stale from now on (a late push of the position as it
        was before the close must not bring it back); one stamped on our clock was wrongly dropped as stale
        whenever MEXC's clock ran ahead of ours."""
        key = (position.symbol, position.side)
        applied = self._applied_ms.get(key)
        if applied is not None and applied > read_ms:
            return None
        self._position_ms[key] = max(self._position_ms.get(key, 0), read_ms + offset_ms)
        stamp = max(now_ms + offset_ms, self._exchange_ms.get(key, 0) + 1)
        return replace(position, updated_ms=stamp)

    def admit_position(self, event: PositionChanged, now_ms: int, offset_ms: int) -> Position | None:
        """The position to apply for a report, with its owner; None to skip a stale one (logged). `now_ms`:
        our clock; `offset_ms`: the exchange's clock minus ours."""
        p = event.position
        if not p.updated_ms:  # made up from a REST read begun at event.ts_ms
            made = self.made_up(p, event.ts_ms, now_ms, offset_ms)
            if made is None:
                log.info("%s %s position read before a newer report: skipped (%s)", p.symbol, p.side, event.reason)
                return None
            p = made
        elif self.stale_position(p) and not p.tag:
            log.info("stale %s %s position report skipped (%s)", p.symbol, p.side, event.reason)
            return None
        return self.attribute_position(p)

    def applied(self, position: Position, now_ms: int) -> None:
        """`position` is in the cache since local time `now_ms`; a flat one spends our entries there."""
        self._applied_ms[(position.symbol, position.side)] = now_ms
        if position.is_flat:
            self.spend_entries(position.symbol, position.side, now_ms)

    def _seen(self, symbol: str, side: Side, exchange_ms: int) -> None:
        key = (symbol, side)
        self._exchange_ms[key] = max(self._exchange_ms.get(key, 0), exchange_ms)

    def attribute_position(self, reported: Position) -> Position:
        """`reported` with its owner's tag (and our contract size where the report lacks one)."""
        if reported.tag:
            return reported
        held = self.cache.position(reported.symbol, reported.side)
        if held is not None and held.tag:
            return replace(reported, tag=held.tag)
        return replace(reported, tag=self.entry_owner(reported) or EXTERNAL_TAG)

    def entry_owner(self, position: Position) -> str:
        """The tag of our latest entry order on the position's symbol and side that can still own it ('' if
        none): not rejected or cancelled unfilled, not spent on a position since reported flat."""
        opening = OrderSide.open_for(position.side)
        best: Order | None = None
        for order in self.cache.orders.values():
            if (order.symbol == position.symbol and order.side is opening and order.tag
                    and order.tag != EXTERNAL_TAG and not _never_filled(order) and not self._spent(order)
                    and (best is None or order.created_ms >= best.created_ms)):
                best = order
        return best.tag if best is not None else ""

    def spend_entries(self, symbol: str, side: Side, now_ms: int) -> None:
        """`symbol`/`side` is flat at `now_ms` (our clock): our entries made before and finished by then own
        nothing any more; entries still in flight keep their claim (one may fill after this report). Called
        on every flat report applied, and at start for each side the store last saw flat. O(orders in
        flight): a backtest reports thousands of flats."""
        opening = OrderSide.open_for(side)
        working = frozenset(o.client_id for o in self.cache.open_orders(symbol) if o.side is opening)
        self._flat_mark[(symbol, side)] = (now_ms, working)

    def _spent(self, order: Order) -> bool:
        mark = self._flat_mark.get((order.symbol, order.side.position_side))
        return mark is not None and order.created_ms <= mark[0] and order.client_id not in mark[1]


def _not_older(reported: Order, known: Order) -> bool:
    return _RANK[reported.state] >= _RANK[known.state] and reported.filled_contracts >= known.filled_contracts


def _never_filled(order: Order) -> bool:
    return order.state in (OrderState.REJECTED, OrderState.CANCELLED) and order.filled_contracts <= 0


def _tidy(price: Decimal) -> Decimal:
    """A derived price without the 28 digits a division leaves (12 decimals is below any tick)."""
    return price.quantize(Decimal("1e-12")).normalize()
