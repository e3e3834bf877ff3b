"""Venues layer: `PaperVenue` - a simulated MEXC futures venue behind the same `VenueClient` port.

Behaviour (defaults from the MEXC reference):
* Market orders fill at the *next* trade tick at or after `latency_ms` (event time), at the ask
  (buys) or bid (sells) when a fresh book is known, else the trade price, moved `slippage_bps`
  against the order and rounded to the price unit against the order; taker fee.
* Limit orders rest and fill at their price when a trade crosses it; maker fee; margin frozen.
* Isolated margin; contract size, price unit and volume unit respected; reduce-only orders never
  open, grow or flip a position (their size is capped at the position); a close with no position
  is `PositionNotFound` (MEXC 2009).
* Stop-loss / take-profit per position trigger on the last price and fill like market orders.
* Funding at each settlement (see `funding.py`) on the mark price.
* Liquidation when the mark crosses the liquidation price (MEXC rule, tiered mmr, liquidation fee):
  the isolated margin is lost and a `PositionLiquidated` is reported.
* A duplicate client order id returns the existing order.

Every state change is handed to `report` (execution persists it, then publishes it); by default
it is published on the bus directly. Event time ("now") is the newest tick's timestamp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from tui_trader.domain.config import FeesConfig, PaperConfig
from tui_trader.domain.errors import OrderRejected, PositionNotFound
from tui_trader.domain.events import (
    AccountUpdated,
    BookTick,
    Event,
    FundingCharged,
    MarkPriceTick,
    OrderFilled,
    OrderUpdated,
    PositionChanged,
    PositionLiquidated,
    TradeTick,
)
from tui_trader.domain.models import (
    ZERO,
    Account,
    ClientOrderId,
    Fill,
    Instrument,
    MarginMode,
    Order,
    OrderSide,
    OrderState,
    OrderType,
    Position,
    Side,
    VenueOrderId,
)
from tui_trader.domain.money import is_on_unit, quantize_to_unit, to_decimal
from tui_trader.engine.bus import EventBus
from tui_trader.venues.paper.funding import FundingSchedule
from tui_trader.venues.paper.ledger import Ledger

BOOK_MAX_AGE_MS = 5_000


@dataclass
class _Pending:
    order: Order
    due_ms: int


class PaperVenue:
    name = "paper"

    def __init__(
        self,
        bus: EventBus,
        *,
        paper: PaperConfig,
        fees: FeesConfig,
        starting_balance: Decimal | None = None,
        instruments: dict[str, Instrument] | None = None,
        funding: FundingSchedule | None = None,
        report: Callable[[Event], None] | None = None,
        latency_ms: int | None = None,
    ) -> None:
        self.bus = bus
        self.paper = paper
        self.fees = fees
        balance = starting_balance if starting_balance is not None else to_decimal(paper.starting_balance)
        self.ledger = Ledger(balance, liquidation_fee_rate=to_decimal(fees.liquidation_fee_rate))
        self.instruments = dict(instruments or {})
        self.funding = funding or FundingSchedule(to_decimal(paper.funding_rate), paper.funding_interval_h)
        self.report = report or bus.publish
        self.latency_ms = paper.latency_ms if latency_ms is None else latency_ms
        self.slippage = to_decimal(paper.slippage_bps) / Decimal(10_000)
        self.orders: dict[ClientOrderId, Order] = {}
        self._market: list[_Pending] = []
        self._limits: list[Order] = []
        self.last: dict[str, Decimal] = {}
        self.marks: dict[str, Decimal] = {}
        self._book: dict[str, tuple[float, float, int]] = {}
        self.now_ms = 0
        self._next_funding: dict[str, int] = {}
        self._fill_seq = 0
        self.order_seq = 0
        self.leverage: dict[str, int] = {}
        self._unsubscribe = [
            bus.subscribe(self._on_trade, [TradeTick], name="paper.trade"),
            bus.subscribe(self._on_mark, [MarkPriceTick], name="paper.mark"),
            bus.subscribe(self._on_book, [BookTick], name="paper.book"),
        ]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    def is_idle(self) -> bool:
        """No position and no working order: market data only updates the latest prices here."""
        return not self._market and not self._limits and not self.ledger.positions

    # --- VenueClient ----------------------------------------------------------------------

    async def instrument(self, symbol: str) -> Instrument:
        return self._instrument(symbol)

    def _instrument(self, symbol: str) -> Instrument:
        instr = self.instruments.get(symbol)
        if instr is None:
            instr = self.instruments[symbol] = Instrument(
                symbol, price_unit=Decimal("0.00000001"), max_vol=Decimal(10) ** 12,
                taker_fee_rate=to_decimal(self.fees.taker_rate), maker_fee_rate=to_decimal(self.fees.maker_rate),
                maintenance_margin_rate=to_decimal(self.paper.maintenance_margin_rate),
            )
        return instr

    async def place_order(self, order: Order) -> Order:
        existing = self.orders.get(order.client_id)
        if existing is not None:
            return existing
        self._validate(order)
        self.order_seq += 1
        accepted = order.with_state(OrderState.OPEN, self.now_ms, venue_order_id=VenueOrderId(f"paper-{self.order_seq}"),
                                    created_ms=order.created_ms or self.now_ms)
        if order.type is OrderType.LIMIT and not order.side.is_close:
            margin = self._notional(accepted, order.price) / Decimal(order.leverage)  # type: ignore[arg-type]
            if margin > self.ledger.available:
                raise OrderRejected(f"limit order needs {margin:.4f} USDT margin, {self.ledger.available:.4f} available", code=2005)
            self.ledger.frozen += margin
        self.orders[order.client_id] = accepted
        if order.type is OrderType.LIMIT:
            self._limits.append(accepted)
        else:
            self._market.append(_Pending(accepted, self.now_ms + self.latency_ms))
        self.report(OrderUpdated(self.now_ms, accepted))
        return accepted

    async def cancel_order(self, symbol: str, client_id: ClientOrderId, *, close_lane: bool = False) -> Order:
        order = self.orders.get(client_id)
        if order is None:
            raise OrderRejected(f"unknown order {client_id}", code=2040)
        if order.state.is_terminal:
            return order
        self._market = [p for p in self._market if p.order.client_id != client_id]
        if order in self._limits:
            self._limits.remove(order)
            if not order.side.is_close:
                self.ledger.frozen -= self._notional(order, order.price) / Decimal(order.leverage)  # type: ignore[arg-type]
        cancelled = order.with_state(OrderState.CANCELLED, self.now_ms)
        self.orders[client_id] = cancelled
        self.report(OrderUpdated(self.now_ms, cancelled))
        return cancelled

    async def get_order(self, symbol: str, client_id: ClientOrderId, *, close_lane: bool = False) -> Order | None:
        return self.orders.get(client_id)

    async def open_orders(self, symbol: str | None = None, *, close_lane: bool = False) -> list[Order]:
        return [o for o in self.orders.values() if not o.state.is_terminal and (symbol is None or o.symbol == symbol)]

    async def positions(self, symbol: str | None = None, *, close_lane: bool = False) -> list[Position]:
        return [self.ledger.snapshot(p, self.marks.get(p.symbol), self.now_ms)
                for p in self.ledger.positions.values() if symbol is None or p.symbol == symbol]

    async def account(self) -> Account:
        return self.ledger.account(self.marks)

    async def set_leverage(self, symbol: str, leverage: int, margin_mode: MarginMode, side: Side | None = None) -> None:
        instr = self._instrument(symbol)
        if not 1 <= leverage <= instr.max_leverage:
            raise OrderRejected(f"leverage {leverage} is outside 1..{instr.max_leverage}", code=2006)
        self.leverage[symbol] = leverage

    async def set_stop_loss(self, symbol: str, side: Side, stop_loss: Decimal | None, take_profit: Decimal | None) -> None:
        pos = self.ledger.position(symbol, side)
        if pos is None:
            raise PositionNotFound(f"no {side.value} position on {symbol}", code=2009)
        unit = self._instrument(symbol).price_unit
        pos.stop_loss = quantize_to_unit(stop_loss, unit) if stop_loss else None
        pos.take_profit = quantize_to_unit(take_profit, unit) if take_profit else None

    # --- validation -----------------------------------------------------------------------

    def _validate(self, order: Order) -> None:
        instr = self._instrument(order.symbol)
        if not instr.min_leverage <= order.leverage <= instr.max_leverage:
            raise OrderRejected(f"leverage {order.leverage} is outside {instr.min_leverage}..{instr.max_leverage}", code=600)
        q = order.qty_contracts
        if q < instr.min_vol or q > instr.max_vol or not is_on_unit(q, instr.vol_unit):
            raise OrderRejected(f"vol {q} must be a multiple of {instr.vol_unit} within {instr.min_vol}..{instr.max_vol}", code=2011)
        if order.type is OrderType.LIMIT and (order.price is None or order.price <= 0 or not is_on_unit(order.price, instr.price_unit)):
            raise OrderRejected(f"limit price {order.price} must be > 0 and a multiple of {instr.price_unit}", code=2015)
        if order.reduce_only and not order.side.is_close:
            raise OrderRejected("reduce-only order cannot open a position", code=600)
        if order.side.is_close and self.ledger.position(order.symbol, order.side.position_side) is None:
            raise PositionNotFound(f"no {order.side.position_side.value} position on {order.symbol} to close", code=2009)

    def _notional(self, order: Order, price: Decimal) -> Decimal:
        return order.qty_contracts * self._instrument(order.symbol).contract_size * price

    # --- market data ----------------------------------------------------------------------

    def _on_book(self, ev: Event) -> None:
        assert isinstance(ev, BookTick)
        self._book[ev.symbol] = (ev.bid, ev.ask, ev.ts_ms)

    def _on_trade(self, ev: Event) -> None:
        assert isinstance(ev, TradeTick)
        self.now_ms = max(self.now_ms, ev.ts_ms)
        price = to_decimal(ev.price)
        self.last[ev.symbol] = price
        if self._market:
            due = [p for p in self._market if p.order.symbol == ev.symbol and p.due_ms <= ev.ts_ms]
            for pending in due:
                self._market.remove(pending)
                self._fill_market(pending.order, ev)
        if self._limits:
            for order in [o for o in self._limits if o.symbol == ev.symbol and _crosses(o, price)]:
                self._limits.remove(order)
                if not order.side.is_close:
                    self.ledger.frozen -= self._notional(order, order.price) / Decimal(order.leverage)  # type: ignore[arg-type]
                self._execute(order, order.price, to_decimal(self.fees.maker_rate), "maker")  # type: ignore[arg-type]
        self._check_stops(ev, price)

    def _on_mark(self, ev: Event) -> None:
        assert isinstance(ev, MarkPriceTick)
        self.now_ms = max(self.now_ms, ev.ts_ms)
        mark = to_decimal(ev.price)
        self.marks[ev.symbol] = mark
        self._settle_funding(ev.symbol, ev.ts_ms, mark)
        for side in (Side.LONG, Side.SHORT):
            pos = self.ledger.position(ev.symbol, side)
            if pos is not None and pos.liq is not None and (mark >= pos.liq if side is Side.SHORT else mark <= pos.liq):
                self._liquidate(ev.symbol, side, ev.ts_ms)

    # --- fills ----------------------------------------------------------------------------

    def _fill_market(self, order: Order, tick: TradeTick, at: Decimal | None = None) -> None:
        """At the book's side around the tick (`at`: a trigger crossed on the tick's way - the book
        around that price, as the same spread), plus the slippage, rounded against the taker."""
        buy = order.side.is_buy
        traded = ref = to_decimal(tick.price)
        book = self._book.get(order.symbol)
        if book is not None and tick.ts_ms - book[2] <= BOOK_MAX_AGE_MS:
            ref = to_decimal(book[1] if buy else book[0])
        if at is not None and traded > 0:
            ref = at * (ref / traded)
        raw = ref * (1 + self.slippage if buy else 1 - self.slippage)
        unit = self._instrument(order.symbol).price_unit
        price = quantize_to_unit(raw, unit, ROUND_UP if buy else ROUND_DOWN)
        if price <= 0:
            price = unit
        self._execute(order, price, to_decimal(self.fees.taker_rate), "taker")

    def _execute(self, order: Order, price: Decimal, fee_rate: Decimal, liquidity: str) -> None:
        instr = self._instrument(order.symbol)
        side = order.side.position_side
        ts = self.now_ms
        try:
            if order.side.is_close:
                pos, qty, realized, fee, flat = self.ledger.reduce(instr, side, order.qty_contracts, price, fee_rate)
            else:
                pos, fee = self.ledger.open(instr, side, order.qty_contracts, price, order.leverage, fee_rate, ts, order.tag)
                realized, flat, qty = ZERO, False, order.qty_contracts
                if order.stop_loss_price or order.take_profit_price:
                    pos.stop_loss = order.stop_loss_price or pos.stop_loss
                    pos.take_profit = order.take_profit_price or pos.take_profit
        except OrderRejected as exc:
            rejected = order.with_state(OrderState.REJECTED, ts, reason=f"{order.reason} rejected: {exc}".strip())
            self.orders[order.client_id] = rejected
            self.report(OrderUpdated(ts, rejected))
            return
        filled = order.with_state(OrderState.FILLED, ts, filled_contracts=qty, avg_fill_price=price)
        self.orders[order.client_id] = filled
        self._fill_seq += 1
        fill = Fill(f"{order.client_id}-f{self._fill_seq}", order.client_id, order.symbol, order.side, filled.filled_contracts,
                    price, fee, ts, liquidity, realized, filled.venue_order_id)
        self.report(OrderUpdated(ts, filled))
        self.report(OrderFilled(ts, fill))
        self.report(PositionChanged(ts, self.ledger.snapshot(pos, self.marks.get(order.symbol), ts, flat=flat), reason=order.reason))
        self.report_account(ts)

    def _check_stops(self, tick: TradeTick, price: Decimal) -> None:
        """`price`: the tick's price as a Decimal (converted once, by `_on_trade`)."""
        for side in (Side.LONG, Side.SHORT):
            pos = self.ledger.position(tick.symbol, side)
            if pos is None or (pos.stop_loss is None and pos.take_profit is None):
                continue
            if side is Side.SHORT:
                hit_sl = pos.stop_loss is not None and price >= pos.stop_loss
                hit_tp = pos.take_profit is not None and price <= pos.take_profit
            else:
                hit_sl = pos.stop_loss is not None and price <= pos.stop_loss
                hit_tp = pos.take_profit is not None and price >= pos.take_profit
            if not (hit_sl or hit_tp):
                continue
            reason = "SL" if hit_sl else "TP"
            trigger = pos.stop_loss if hit_sl else pos.take_profit
            self._fill_seq += 1
            cid = ClientOrderId(f"{pos.position_id}-{reason}-{self._fill_seq}")
            order = Order(cid, tick.symbol, OrderSide.close_for(side), OrderType.STOP_MARKET, pos.contracts,
                          leverage=pos.leverage, reduce_only=True, state=OrderState.OPEN, created_ms=tick.ts_ms,
                          updated_ms=tick.ts_ms, reason=reason, tag=pos.tag, trigger_price=trigger)
            self.orders[cid] = order
            self._fill_market(order, tick, _crossed_at(trigger, tick.from_price, price))

    def _liquidate(self, symbol: str, side: Side, ts: int) -> None:
        pos, loss = self.ledger.liquidate(symbol, side)
        price = pos.liq or ZERO
        self._fill_seq += 1
        cid = ClientOrderId(f"{pos.position_id}-LIQ")
        order = Order(cid, symbol, OrderSide.close_for(side), OrderType.MARKET, pos.contracts, leverage=pos.leverage,
                      reduce_only=True, state=OrderState.FILLED, filled_contracts=pos.contracts, avg_fill_price=price,
                      created_ms=ts, updated_ms=ts, reason="LIQUIDATION", tag=pos.tag)
        self.orders[cid] = order
        fill = Fill(f"{cid}-f{self._fill_seq}", cid, symbol, order.side, pos.contracts, price, ZERO, ts, "liquidation", loss)
        self.report(OrderUpdated(ts, order))
        self.report(OrderFilled(ts, fill))
        self.report(PositionLiquidated(ts, symbol, side.value, price, -loss, tag=pos.tag))
        self.report(PositionChanged(ts, self.ledger.snapshot(pos, self.marks.get(symbol), ts, flat=True), reason="LIQUIDATION"))
        self.report_account(ts)

    def _settle_funding(self, symbol: str, ts: int, mark: Decimal) -> None:
        nxt = self._next_funding.get(symbol)
        if nxt is None:
            self._next_funding[symbol] = self.funding.next_after(ts)
            return
        while ts >= nxt:
            rate = self.funding.rate_at(nxt, symbol)
            for pos, amount in self.ledger.charge_funding(symbol, mark, rate):
                self.report(FundingCharged(nxt, symbol, float(rate), amount, tag=pos.tag))
            nxt = self.funding.next_after(nxt)
            self.report_account(ts)
        self._next_funding[symbol] = nxt

    def report_account(self, ts: int) -> None:
        """Report the account's balances now (after a fill, funding, or a restore from a checkpoint)."""
        acct = self.ledger.account(self.marks)
        self.report(AccountUpdated(ts, acct.equity, acct.available, acct.cash_balance, acct.unrealized_pnl))


def _crossed_at(trigger: Decimal | None, from_price: float | None, price: Decimal) -> Decimal | None:
    """The trigger, when the tick's replayed path (`TradeTick.from_price` -> `price`) went through it on
    the way: a trigger order on a real market triggers at its price, not at the candle's extreme.
    None (fill at the tick) for a real trade, a candle's first tick (a gap), or a path that started
    beyond the trigger."""
    if trigger is None or from_price is None:
        return None
    return trigger if (to_decimal(from_price) - trigger) * (price - trigger) < 0 else None


def _crosses(order: Order, price: Decimal) -> bool:
    assert order.price is not None
    return price <= order.price if order.side.is_buy else price >= order.price
