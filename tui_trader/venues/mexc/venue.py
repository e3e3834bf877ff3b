"""Venues layer: `MexcVenue` - the engine's `VenueClient` port implemented on the MEXC client.

Entries are validated locally, then sent through the breaker lane; reduce-only orders and closes
go through the close lane (no breaker, fast retries) even while entries are blocked. A 1002 on an
order (or 6001/6002) makes the symbol monitor-only: further entries are refused locally without a
request, the user is told with an `ErrorRaised`, and closes are still attempted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar

from tui_trader.domain.errors import AmbiguousOrderState, Retryable, VenueError
from tui_trader.domain.events import (
    AccountUpdated,
    ErrorRaised,
    Event,
    OrderUpdated,
    PositionChanged,
)
from tui_trader.domain.models import (
    Account,
    ClientOrderId,
    Instrument,
    MarginMode,
    Order,
    OrderSide,
    OrderState,
    Position,
    Side,
)
from tui_trader.engine.bus import EventBus
from tui_trader.venues.candle_files import Candle
from tui_trader.venues.mexc import constants as C
from tui_trader.venues.mexc import parse
from tui_trader.venues.mexc.client import MexcClient
from tui_trader.venues.mexc.errors import (
    AuthError,
    ContractNotAllowed,
    ExchangeError,
    MalformedReply,
    ParameterError,
)
from tui_trader.venues.mexc.validation import (
    validate_leverage,
    validate_order,
    validate_price,
)
from tui_trader.venues.mexc.web_utils import dumps

log = logging.getLogger(__name__)
INSTRUMENT_TTL_S = 3600.0  # mexc.md 1.3: cache contract/detail, refresh hourly
DETAIL_RELOAD_S = 60.0  # a symbol the table lacks reloads it, at most this often (new listings)
HISTORY_READS = 10  # a gone position's order history is read at most this often (once per audit) to book its close
HISTORY_MARGIN_MS = 2000  # the clock offset's error: a close seen gone at t happened before t + this
T = TypeVar("T")


@dataclass
class _Unbooked:
    """A position found gone whose order history could not be read: what closed it is booked once it can be."""

    gone: Position
    until_ms: int  # exchange time it was seen gone (+ margin): later closes are another position's
    reads: int = 1


def _rows(data: Any, where: str) -> list[Any]:
    """The rows of a list reply - bare, or an object's `resultList`; null is none. Anything else proves nothing:
    a `MalformedReply` naming the route and what came instead."""
    if isinstance(data, dict):
        if "resultList" not in data:
            keys = ", ".join(sorted(map(str, data))[:6])
            raise MalformedReply(f"{where} answered an object without resultList, not a list (keys: {keys})")
        data = data["resultList"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise MalformedReply(f"{where} answered a {type(data).__name__}, not a list")
    return data


def _parsed(read: Callable[[Any], T], row: Any, where: str) -> T:
    """`read(row)`, a malformed row being the reply's `MalformedReply` (every caller handles VenueError)."""
    if not isinstance(row, dict):
        raise MalformedReply(f"{where}: a {type(row).__name__}, not an object")
    try:
        return read(row)
    except parse.FrameError as exc:
        raise MalformedReply(f"{where}: {exc}") from None


class MexcVenue:
    """Live MEXC futures venue. `symbols` bounds open-order listing when no symbol is given."""

    name = "mexc"
    reports_fills = False  # fills are derived from the orders' cumulative dealVol (engine/order_tracker.py)
    order_poll_s = 2.0  # orders in flight are looked up by externalOid this often: a private push may be lost
    unknown_after_s = 15.0  # recv window (10 s) + margin: an order not found after this never reached MEXC
    max_entry_age_s = 5.0  # a market entry decided longer ago than this (it waited on REST) is not sent

    def __init__(self, client: MexcClient, *, bus: EventBus | None = None, symbols: list[str] | None = None,
                 position_mode: int = C.POSITION_MODE_HEDGE) -> None:
        self.client = client
        self.bus = bus
        # Account events (positions, orders from resync) go here; the trading stack points it at
        # execution's report sink so they are persisted and cached before they are published.
        self.report: Callable[[Event], None] | None = bus.publish if bus is not None else None
        self._known: dict[tuple[str, Side], Position] = {}
        self._unbooked: list[_Unbooked] = []  # gone positions whose closing orders are still to be read
        self.clock = client.clock
        self.symbols = list(symbols or [])
        self.position_mode = position_mode
        self.monitor_only: dict[str, str] = {}  # symbol -> reason
        self._instruments: dict[str, tuple[float, Instrument]] = {}
        self._details_at = float("-inf")  # when the table was loaded
        self._details_loading: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Measure the server clock offset (Request-Time must be within the recv window), then cache
        the configured symbols' contract details: every position is read in contracts x contract size."""
        await self.client.call(self.client.rest.sync_time, "ping", breaker=False)
        for symbol in self.symbols:
            await self.instrument(symbol)

    async def close(self) -> None:
        await self.client.rest.close()

    def exchange_time_ms(self) -> int:
        """MEXC's clock: ours plus the offset measured at start (and on a 513), the time its reports carry."""
        return self.client.rest.request_time_ms()

    def _is_close(self, order: Order) -> bool:
        return order.reduce_only or order.side.is_close

    def _tell(self, message: str, level: str = "ERROR") -> None:
        log.log(logging.ERROR if level == "ERROR" else logging.WARNING, message)
        if self.bus is not None:
            self.bus.publish(ErrorRaised(self.clock.now_ms(), source="mexc", message=message, level=level))

    def mark_monitor_only(self, symbol: str, reason: str) -> None:
        if symbol not in self.monitor_only:
            self.monitor_only[symbol] = reason
            self._tell(f"{symbol}: API trading not allowed ({reason}); monitor-only, closes still attempted")

    # --- market data / metadata -------------------------------------------------------------

    async def instrument(self, symbol: str, *, close_lane: bool = False) -> Instrument:
        """`symbol`'s contract, from the table of every contract (one `contract/detail` call, MEXC
        allows 1 per 5 s: loaded at start, refreshed hourly, reloaded once for a symbol it lacks)."""
        cached = self._instruments.get(symbol)
        if cached and self.clock.time() - cached[0] < INSTRUMENT_TTL_S:
            return cached[1]
        if cached is not None or self.clock.time() - self._details_at >= DETAIL_RELOAD_S:
            await self._load_details(close_lane)
        cached = self._instruments.get(symbol)
        if cached is None:
            raise ParameterError(f"symbol: {symbol} is not a MEXC contract", field="symbol")
        return cached[1]

    async def _load_details(self, close_lane: bool) -> None:
        """One call for every contract; concurrent callers share it."""
        if self._details_loading is not None:
            await asyncio.shield(self._details_loading)
            return
        self._details_loading = asyncio.get_running_loop().create_future()
        try:
            data = await self.client.call(lambda: self.client.rest.contract_detail(None), "contract details",
                                          breaker=False, close_lane=close_lane)
            now = self.clock.time()
            for item in data if isinstance(data, list) else [data]:
                if isinstance(item, dict) and item.get("symbol"):
                    self._note_instrument(now, item)
            self._details_at = now
            self._details_loading.set_result(None)
        except BaseException as exc:
            self._details_loading.set_exception(exc)
            self._details_loading.exception()  # retrieved: a caller may not be waiting
            raise
        finally:
            self._details_loading = None

    def _note_instrument(self, now: float, item: dict) -> None:
        symbol = str(item["symbol"])
        inst = parse.instrument(item)
        watched = symbol in self.symbols
        if watched and not inst.api_allowed:
            self.mark_monitor_only(symbol, "contract detail says apiAllowed = false: MEXC takes no API orders for it")
        if watched and int(item.get("state") or 0) != 0:
            self.mark_monitor_only(symbol, f"contract state {item.get('state')}")
        self._instruments[symbol] = (now, inst)

    def cached_contract_size(self, symbol: str) -> Decimal | None:
        """The contract size of `symbol` if its detail is cached (for pushes, parsed synchronously)."""
        cached = self._instruments.get(symbol)
        return cached[1].contract_size if cached else None

    async def fair_price(self, symbol: str) -> Decimal:
        """REST fair (mark) price - what MEXC liquidates on (liquidation.md 3)."""
        data = await self.client.call(lambda: self.client.rest.fair_price(symbol), f"fair {symbol}", close_lane=True)
        return parse.to_decimal(data["fairPrice"])

    async def klines(self, symbol: str, start_s: int, end_s: int) -> list[Candle]:
        """1-minute candles with open time in [start_s, end_s] (at most 2000: the caller pages)."""
        data = await self.client.call(lambda: self.client.rest.klines(symbol, "Min1", start_s, end_s), f"klines {symbol}",
                                      breaker=False)  # market data: its failures must not close the entry breaker
        return parse.klines(data)

    # --- orders -----------------------------------------------------------------------------

    async def place_order(self, order: Order) -> Order:
        """Send `order` (already persisted by execution with its client id). Idempotent on client_id."""
        closing = self._is_close(order)
        self._refuse_if_monitor_only(order, closing)
        inst = await self._instrument_for(order, closing)
        self._refuse_if_monitor_only(order, closing)  # the detail lookup may just have marked it
        if inst is not None:
            validate_order(order, inst)
        body_text = dumps(parse.order_body(order, position_mode=self.position_mode))
        try:
            result = await self.client.create_order(order.symbol, order.client_id, body_text, close_lane=closing)
        except ContractNotAllowed as exc:
            exc.symbol = order.symbol
            self.mark_monitor_only(order.symbol, f"MEXC {exc.code}")
            raise
        except AuthError as exc:
            self._tell(f"MEXC refused the API key ({exc.code}): live orders cannot be sent")
            raise
        now = self.clock.now_ms()
        if isinstance(result, dict):
            try:
                adopted = parse.order(result)  # found by its externalOid: everything the exchange says of it
            except parse.FrameError as exc:  # it is at MEXC, its reply unreadable: the lookups tell the rest
                raise AmbiguousOrderState(f"order {order.client_id} on {order.symbol}: sent, and the order found"
                                          f" by its externalOid is unreadable ({exc})") from None
            return order.with_state(adopted.state, adopted.updated_ms or now, venue_order_id=adopted.venue_order_id,
                                    filled_contracts=adopted.filled_contracts, avg_fill_price=adopted.avg_fill_price,
                                    fee=adopted.fee, realized_pnl=adopted.realized_pnl,
                                    position_id=adopted.position_id or order.position_id)
        return order.with_state(OrderState.SUBMITTED, now, venue_order_id=result)

    async def _instrument_for(self, order: Order, closing: bool) -> Instrument | None:
        """The contract for validation. A close is sent even when the (uncached) lookup fails."""
        try:
            return await self.instrument(order.symbol, close_lane=closing)
        except Retryable as exc:
            if not closing:
                raise
            log.warning("close %s sent unvalidated: contract lookup failed (%s)", order.client_id, exc)
            return None

    def _refuse_if_monitor_only(self, order: Order, closing: bool) -> None:
        if not closing and order.symbol in self.monitor_only:
            raise ContractNotAllowed(f"{order.symbol} is monitor-only: {self.monitor_only[order.symbol]}", code=1002, symbol=order.symbol)

    async def cancel_order(self, symbol: str, client_id: ClientOrderId, *, close_lane: bool = False) -> Order:
        """`close_lane`: for the kill switch - no breaker, the close lane's retries."""
        await self.client.call(lambda: self.client.rest.cancel_by_external(symbol, client_id), f"cancel {client_id}",
                               close_lane=close_lane)
        found = await self.get_order(symbol, client_id, close_lane=close_lane)
        if found is None:
            raise ExchangeError(f"order {client_id} on {symbol} not found after cancel", code=2040)
        return found

    async def get_order(self, symbol: str, client_id: ClientOrderId, *, close_lane: bool = False) -> Order | None:
        """The order with this externalOid; None only when MEXC says it does not exist (code 2040, or null / an
        empty object as the answer). Any other reply proves nothing: a `MalformedReply` naming it."""
        try:
            data = await self.client.call(lambda: self.client.rest.get_order_by_external(symbol, client_id),
                                          f"get {client_id}", close_lane=close_lane)
        except ExchangeError as exc:
            if exc.code in C.ORDER_NOT_FOUND_CODES:
                return None
            raise
        where = "GET " + C.ORDER_EXTERNAL.format(symbol=symbol, external_oid=client_id)
        try:
            found = parse.looked_up(data)
        except parse.FrameError as exc:
            raise MalformedReply(f"{where} {exc}") from None
        return None if found is None else _parsed(parse.order, found, where)

    async def open_orders(self, symbol: str | None = None, *, close_lane: bool = False) -> list[Order]:
        out: list[Order] = []
        for sym in [symbol] if symbol else self.symbols:
            data = await self.client.call(lambda s=sym: self.client.rest.open_orders(s), f"open orders {sym}",
                                          close_lane=close_lane)
            where = "GET " + C.OPEN_ORDERS.format(symbol=sym)
            out.extend(_parsed(parse.order, d, f"{where} row {i}") for i, d in enumerate(_rows(data, where)))
        return out

    async def closing_orders(self, gone: Position) -> list[Order]:
        """The filled orders that closed `gone` at the exchange since its last known state - a liquidation, an
        exchange TP/SL, a close by hand elsewhere: what a lost private push would have told. Reported before
        the flat, they put the close's price, fee and P&L (a liquidation's lost margin) on record. [] when the
        history is unreadable: the flat is reported regardless."""
        return await self._closing_orders(gone) or []

    async def _closing_orders(self, gone: Position, until_ms: int | None = None) -> list[Order] | None:
        """`closing_orders` (those after `until_ms` left out: another position's), None when unreadable."""
        where = f"order history {gone.symbol}"
        try:
            data = await self.client.call(lambda: self.client.rest.history_orders(gone.symbol), where,
                                          close_lane=True)
            route = "GET " + C.HISTORY_ORDERS
            found = [_parsed(parse.order, d, f"{route} row {i}") for i, d in enumerate(_rows(data, route))]
        except VenueError as exc:
            log.warning("%s unreadable: %s", where, exc)
            return None
        closing = OrderSide.close_for(gone.side)
        return sorted((o for o in found if o.side is closing and o.filled_contracts > 0
                       and gone.updated_ms <= o.updated_ms <= (until_ms if until_ms is not None else o.updated_ms)),
                      key=lambda o: o.updated_ms)

    # --- positions / account ----------------------------------------------------------------

    async def positions(self, symbol: str | None = None, *, close_lane: bool = False) -> list[Position]:
        """The open positions. A reply that is not a list, or a row that cannot be read, is a `MalformedReply`
        for the whole reply: a position left out of an audit would be reported flat."""
        data = await self.client.call(lambda: self.client.rest.open_positions(symbol), "positions", close_lane=close_lane)
        where = "GET " + C.OPEN_POSITIONS
        read = [_parsed(parse.position, d, f"{where} row {i}") for i, d in enumerate(_rows(data, where))]
        out = []
        for p in read:
            if not p.is_flat:  # holdVol is in contracts: without the contract's size BTC would read 10 000x too big
                inst = await self.instrument(p.symbol, close_lane=True)
                out.append(replace(p, contract_size=inst.contract_size))
        return out

    async def account(self) -> Account:
        data = await self.client.call(self.client.rest.assets, "assets")
        try:  # the USDT row's balance is required: a reply left short is no zero account
            return parse.account(data)
        except parse.FrameError as exc:
            raise MalformedReply(f"GET {C.ASSETS}: {exc}") from None

    async def set_leverage(self, symbol: str, leverage: int, margin_mode: MarginMode, side: Side | None = None) -> None:
        validate_leverage(leverage, await self.instrument(symbol))
        open_type = C.OPEN_TYPE_CROSS if margin_mode is MarginMode.CROSS else C.OPEN_TYPE_ISOLATED
        held = {p.side: p for p in await self.positions(symbol)}
        for s in [side] if side else [Side.LONG, Side.SHORT]:
            pos = held.get(s)
            body: dict[str, Any] = (
                {"positionId": int(pos.position_id), "leverage": leverage} if pos and pos.position_id else
                {"symbol": symbol, "leverage": leverage, "openType": open_type,
                 "positionType": C.POSITION_TYPE_LONG if s is Side.LONG else C.POSITION_TYPE_SHORT}
            )
            await self.client.call(lambda b=body: self.client.rest.change_leverage(b), f"leverage {symbol} {s}")

    async def set_stop_loss(self, symbol: str, side: Side, stop_loss: Decimal | None, take_profit: Decimal | None) -> None:
        """Move the exchange-side TP/SL of the position on `side` (both None = remove)."""
        inst = await self.instrument(symbol)
        validate_price(stop_loss, inst, "stopLossPrice")
        validate_price(take_profit, inst, "takeProfitPrice")
        want = C.POSITION_TYPE_LONG if side is Side.LONG else C.POSITION_TYPE_SHORT
        data = await self.client.call(lambda: self.client.rest.stop_orders(symbol), f"stop orders {symbol}", close_lane=True)
        rows = _rows(data, "GET " + C.STOP_ORDERS)
        match = next((r for r in rows if isinstance(r, dict) and int(r.get("positionType") or 0) == want), None)
        if match is None:
            raise ParameterError(f"stopLossPrice: no TP/SL order for the {side} {symbol} position", field="stopLossPrice")
        await self.client.call(
            lambda: self.client.rest.change_stop_plan_price(str(match.get("id") or match.get("stopPlanOrderId")), stop_loss or 0, take_profit or 0),
            f"tp/sl {symbol}", close_lane=True,
        )

    # --- reconciliation ---------------------------------------------------------------------

    async def resync(self) -> None:
        """Positions and open orders over REST, published on the bus (after a WS reconnect / as polling)."""
        now = self.clock.now_ms()
        positions = await self.positions(close_lane=True)
        seen_ms = self.exchange_time_ms() + HISTORY_MARGIN_MS  # a position gone from them closed before this
        orders = await self.open_orders() if self.symbols else []
        if self.report is None:
            return
        try:  # the risk guard's equity: without asset pushes nothing else tells it
            acct = await self.account()
            self.report(AccountUpdated(now, acct.equity, acct.available, acct.cash_balance, acct.unrealized_pnl))
        except VenueError as exc:
            log.warning("account unreadable during resync: %s", exc)
        await self._book_late_closes(now)
        current = {(p.symbol, p.side): p for p in positions}
        for key, gone in self._known.items():  # closed on the exchange since the last look: report flat
            if key not in current:
                closed_by = await self._closing_orders(gone, seen_ms)
                if closed_by is None:  # the flat cannot wait (a phantom position is worse): its close is booked later
                    self._unbooked.append(_Unbooked(gone, seen_ms))
                for order in closed_by or []:
                    self.report(OrderUpdated(now, order=order))
                flat = replace(gone, contracts=Decimal(0), updated_ms=0)  # made up: execution stamps it
                self.report(PositionChanged(now, position=flat, reason="resync: closed"))
        self._known = current
        for p in positions:
            self.report(PositionChanged(now, position=p, reason="resync"))
        for o in orders:
            self.report(OrderUpdated(now, order=o))

    async def _book_late_closes(self, now: int) -> None:
        """The orders that closed positions reported flat while the order history was unreadable, read again
        (once per audit, `HISTORY_READS` times at most): reported late, the trade book puts them on the trade
        that was reported flat - the close's price, fee and P&L (a liquidation's lost margin)."""
        assert self.report is not None
        for item in list(self._unbooked):
            found = await self._closing_orders(item.gone, item.until_ms)
            item.reads += 1
            if found is None and item.reads < HISTORY_READS:
                continue
            self._unbooked.remove(item)
            for order in found or []:
                self.report(OrderUpdated(now, order=order))
            if found is None:
                g = item.gone
                self._tell(f"{g.symbol} {g.side.value}: closed at the exchange, and its order history stayed"
                           f" unreadable ({HISTORY_READS} reads): the close's price, fee and P&L are not booked",
                           level="WARNING")
