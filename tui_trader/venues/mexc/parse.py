"""Venues layer: MEXC wire <-> domain mapping (REST objects, order bodies, WebSocket frames).

Pure functions, no I/O. REST numbers arrive as Decimal (web_utils.parse_json) and stay Decimal;
MEXC `vol` is in contracts, like `Order.qty_contracts`. Order ids exceed 2^53 and are kept as
strings. Frame and REST-object parsing never raise anything but `FrameError`: a malformed push is
logged and skipped by the feed, it cannot kill it; a malformed reply object is one typed error.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

from tui_trader.domain.errors import DataError
from tui_trader.domain.events import AccountUpdated, BookTick, Event, FundingRateUpdated, MarkPriceTick, OrderUpdated, PositionChanged, TradeTick
from tui_trader.domain.models import (
    Account, ClientOrderId, Instrument, MarginMode, Order, OrderSide, OrderState, OrderType, Position, PositionId, Side, VenueOrderId,
)
from tui_trader.domain.money import to_decimal
from tui_trader.venues.candle_files import Candle, kline_candles
from tui_trader.venues.mexc import constants as C


class FrameError(DataError):
    """A WebSocket frame (or REST object) that cannot be decoded into domain events."""


_PARSE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, InvalidOperation, IndexError)

# --- REST objects -----------------------------------------------------------------------------


def _dec(value: Any, default: str | None = None) -> Decimal:
    if value is None or value == "":
        if default is None:
            raise ValueError("missing number")
        return Decimal(default)
    number = to_decimal(value)
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


@contextmanager
def _malformed(what: str) -> Iterator[None]:
    """A REST object or a push fails one way: a missing or malformed field is a `FrameError` naming it
    (not a KeyError from deep inside), so callers branch on one class for any reply. Also a decorator."""
    try:
        yield
    except _PARSE_ERRORS as exc:
        raise FrameError(f"malformed {what}: {type(exc).__name__}: {str(exc)[:80]}") from None


_INSTRUMENT_FIELDS = {  # contract/detail key -> (Instrument field, conversion)
    "contractSize": ("contract_size", _dec), "priceUnit": ("price_unit", _dec),
    "volUnit": ("vol_unit", _dec), "minVol": ("min_vol", _dec), "maxVol": ("max_vol", _dec),
    "minLeverage": ("min_leverage", int), "maxLeverage": ("max_leverage", int),
    "takerFeeRate": ("taker_fee_rate", _dec), "makerFeeRate": ("maker_fee_rate", _dec),
    "maintenanceMarginRate": ("maintenance_margin_rate", _dec), "riskBaseVol": ("risk_base_vol", _dec),
    "riskIncrVol": ("risk_incr_vol", _dec), "riskIncrMmr": ("risk_incr_mmr", _dec),
    "riskLevelLimit": ("risk_level_limit", int), "apiAllowed": ("api_allowed", bool),
}


@_malformed("instrument object")
def instrument(d: dict[str, Any]) -> Instrument:
    """`contract/detail` item -> Instrument; a field the reply leaves out (or empty, or a zero
    leverage / risk-level count) keeps the `Instrument` default."""
    fields: dict[str, Any] = {}
    for key, (name, convert) in _INSTRUMENT_FIELDS.items():
        value = d.get(key)
        if value is None or value == "" or (convert is int and not value):
            continue
        fields[name] = convert(value)
    return Instrument(symbol=str(d["symbol"]), **fields)


_ORDER_STATES = {1: OrderState.SUBMITTED, 3: OrderState.FILLED, 4: OrderState.CANCELLED, 5: OrderState.REJECTED}


_SYSTEM_CATEGORIES = {2: "LIQUIDATION", 4: "ADL"}  # order category: 2 system take-over (liquidation), 4 ADL


@_malformed("order object")
def order(d: dict[str, Any]) -> Order:
    """Order object (get / external / open_orders / push.personal.order) -> Order."""
    filled = _dec(d.get("dealVol"), "0")
    state_code = int(d.get("state") or 1)
    state = _ORDER_STATES.get(state_code, OrderState.PARTIALLY_FILLED if filled > 0 else OrderState.OPEN)
    price = d.get("price")
    avg = d.get("dealAvgPrice")
    return Order(
        client_id=ClientOrderId(str(d.get("externalOid") or "")),
        symbol=str(d["symbol"]),
        side=OrderSide(int(d["side"])),
        type=OrderType.MARKET if int(d.get("orderType") or 1) in (5, 6) else OrderType.LIMIT,
        qty_contracts=_dec(d["vol"]),
        price=_dec(price) if price not in (None, "", 0) else None,
        leverage=int(d.get("leverage") or 1),
        margin_mode=MarginMode.CROSS if int(d.get("openType") or 1) == C.OPEN_TYPE_CROSS else MarginMode.ISOLATED,
        state=state,
        venue_order_id=VenueOrderId(str(d["orderId"])) if d.get("orderId") is not None else None,
        filled_contracts=filled,
        avg_fill_price=_dec(avg) if avg not in (None, "", 0) else None,
        stop_loss_price=_dec(d["stopLossPrice"]) if d.get("stopLossPrice") else None,
        take_profit_price=_dec(d["takeProfitPrice"]) if d.get("takeProfitPrice") else None,
        position_id=PositionId(str(d["positionId"])) if d.get("positionId") else None,
        created_ms=int(d.get("createTime") or 0),
        updated_ms=int(d.get("updateTime") or d.get("createTime") or 0),
        reason=_SYSTEM_CATEGORIES.get(int(d.get("category") or 1),
                                      f"errorCode {d['errorCode']}" if d.get("errorCode") else ""),
        fee=_dec(d.get("takerFee"), "0") + _dec(d.get("makerFee"), "0"),
        realized_pnl=_dec(d.get("profit"), "0"),
    )


@_malformed("position object")
def position(d: dict[str, Any], contract_size: Decimal = Decimal(1)) -> Position:
    """`open_positions` item / push.personal.position -> Position (contracts = holdVol)."""
    liq = d.get("liquidatePrice")
    return Position(
        symbol=str(d["symbol"]),
        side=Side.LONG if int(d["positionType"]) == C.POSITION_TYPE_LONG else Side.SHORT,
        contracts=_dec(d.get("holdVol"), "0") if int(d.get("state") or 1) != 3 else Decimal(0),
        contract_size=contract_size,
        entry_price=_dec(d.get("holdAvgPrice") or d.get("openAvgPrice"), "0"),
        leverage=int(d.get("leverage") or 1),
        margin_mode=MarginMode.CROSS if int(d.get("openType") or 1) == C.OPEN_TYPE_CROSS else MarginMode.ISOLATED,
        margin=_dec(d.get("im"), "0"),
        liquidation_price=_dec(liq) if liq not in (None, "", 0) else None,
        realized_pnl=_dec(d.get("realised"), "0"),
        position_id=PositionId(str(d["positionId"])) if d.get("positionId") is not None else None,
        opened_ms=int(d.get("createTime") or 0),
        updated_ms=int(d.get("updateTime") or 0),
    )


@_malformed("account object")
def account(items: Any, currency: str = "USDT") -> Account:
    """`account/assets` list (or one asset object) -> the settlement currency's Account."""
    rows = items if isinstance(items, list) else [items]
    for d in rows:
        if isinstance(d, dict) and d.get("currency") == currency:
            return Account(
                currency=currency,
                cash_balance=_dec(d.get("cashBalance"), "0"),
                position_margin=_dec(d.get("positionMargin"), "0"),
                frozen=_dec(d.get("frozenBalance"), "0"),
                unrealized_pnl=_dec(d.get("unrealized"), "0"),
            )
    return Account(currency=currency)


def order_body(o: Order, *, position_mode: int = C.POSITION_MODE_HEDGE) -> dict[str, Any]:
    """Domain Order -> `order/create` body (mexc.md 5.2), key order fixed, None fields dropped."""
    market = o.type is OrderType.MARKET
    return {
        "symbol": o.symbol,
        "price": None if market else o.price,
        "vol": o.qty_contracts,
        "leverage": o.leverage,
        "side": int(o.side),
        "type": C.ORDER_TYPE_MARKET if market else C.ORDER_TYPE_LIMIT,
        "openType": C.OPEN_TYPE_CROSS if o.margin_mode is MarginMode.CROSS else C.OPEN_TYPE_ISOLATED,
        "positionId": int(o.position_id) if o.position_id else None,
        "externalOid": str(o.client_id),
        "stopLossPrice": o.stop_loss_price,
        "takeProfitPrice": o.take_profit_price,
        "reduceOnly": True if (o.reduce_only and position_mode == C.POSITION_MODE_ONE_WAY) else None,
    }


# --- WebSocket frames -------------------------------------------------------------------------


def klines(data: Any) -> list[Candle]:
    """`contract/kline` column arrays -> candles by open time (ms), in order; DataError naming the bar."""
    return list(kline_candles(data, "MEXC kline reply"))


def kline_push(msg: dict[str, Any]) -> tuple[str, int, Candle]:
    """`push.kline` (the candle in progress: `t` its window start in s) -> (symbol, interval s, candle)."""
    with _malformed("push.kline frame"):
        d = msg["data"]
        symbol = str(msg.get("symbol") or d["symbol"])
        interval_s = C.KLINE_SECONDS[d.get("interval") or "Min1"]
        volume = float(d["q"])
        if not 0 <= volume < math.inf:
            raise ValueError(f"bad volume {d['q']!r}")
        candle = Candle(int(d["t"]) * 1000, _px(d["o"]), _px(d["h"]), _px(d["l"]), _px(d["c"]), volume)
    return symbol, interval_s, candle


def decode_frame(raw: bytes | str) -> dict[str, Any]:
    """Text or gzip/deflate binary frame -> JSON object. Raises FrameError only."""
    try:
        if isinstance(raw, (bytes, bytearray, memoryview)):
            data = bytes(raw)
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            elif data[:1] == b"\x78":
                data = zlib.decompress(data)
            raw = data.decode("utf-8")
        msg = json.loads(raw)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise FrameError(f"undecodable frame: {type(exc).__name__}") from exc
    if not isinstance(msg, dict):
        raise FrameError(f"frame is a {type(msg).__name__}, not an object")
    return msg


def _px(value: Any) -> float:
    x = float(value)
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"bad price {value!r}")
    return x


def _ts(msg: dict[str, Any], data: Any, now_ms: int) -> int:
    for src in (data if isinstance(data, dict) else {}, msg):
        for k in ("t", "timestamp", "ts"):
            if isinstance(src.get(k), int) and not isinstance(src.get(k), bool):
                return src[k]
    return now_ms


def _deals(msg: dict[str, Any], data: Any, symbol: str, now_ms: int) -> list[Event]:
    items = data if isinstance(data, list) else [data]
    return [
        TradeTick(_ts(msg, d, now_ms), symbol=symbol, price=_px(d["p"]), qty=float(d["v"]), side="buy" if int(d["T"]) == 1 else "sell")
        for d in items
    ]


def _ticker(msg: dict[str, Any], d: dict[str, Any], symbol: str, now_ms: int) -> list[Event]:
    ts = _ts(msg, d, now_ms)
    out: list[Event] = []
    if d.get("fairPrice"):
        out.append(MarkPriceTick(ts, symbol=symbol, price=_px(d["fairPrice"])))
    if d.get("bid1") and d.get("ask1"):
        out.append(BookTick(ts, symbol=symbol, bid=_px(d["bid1"]), ask=_px(d["ask1"])))
    if d.get("fundingRate") is not None:
        out.append(FundingRateUpdated(ts, symbol=symbol, rate=float(d["fundingRate"])))
    return out


def _book(msg: dict[str, Any], d: dict[str, Any], symbol: str, now_ms: int) -> list[Event]:
    bids, asks = d.get("bids") or [], d.get("asks") or []
    if not bids or not asks:
        return []  # an incremental update touching one side says nothing about the top of book
    return [BookTick(_ts(msg, d, now_ms), symbol=symbol, bid=_px(bids[0][0]), ask=_px(asks[0][0]))]


def frame_events(msg: dict[str, Any], now_ms: int) -> list[Event]:
    """Domain events of one decoded push; [] for control frames and channels we do not use."""
    channel = msg.get("channel")
    data = msg.get("data")
    with _malformed(f"{channel} frame"):
        if channel in (C.CH_DEAL, C.CH_TICKER, C.CH_DEPTH, C.CH_DEPTH_FULL, C.CH_FAIR, C.CH_FUNDING):
            symbol = str(msg.get("symbol") or (data.get("symbol") if isinstance(data, dict) else None) or "")
            if not symbol:
                raise ValueError("push without symbol")
            if channel == C.CH_DEAL:
                return _deals(msg, data, symbol, now_ms)
            if channel == C.CH_TICKER:
                return _ticker(msg, data, symbol, now_ms)
            if channel == C.CH_FAIR:
                return [MarkPriceTick(_ts(msg, data, now_ms), symbol=symbol, price=_px(data["price"]))]
            if channel == C.CH_FUNDING:
                return [FundingRateUpdated(_ts(msg, data, now_ms), symbol=symbol, rate=float(data["rate"]),
                                           next_settle_ms=int(data.get("nextSettleTime") or 0))]
            return _book(msg, data, symbol, now_ms)
        if channel == C.CH_ORDER:
            return [OrderUpdated(_ts(msg, None, now_ms), order=order(data))]
        if channel == C.CH_POSITION:
            return [PositionChanged(_ts(msg, None, now_ms), position=position(data), reason="push")]
        if channel == C.CH_ASSET:
            a = account(data, str(data.get("currency") or "USDT"))
            return [AccountUpdated(_ts(msg, None, now_ms), equity=a.equity, available=a.available,
                                   cash_balance=a.cash_balance, unrealized_pnl=a.unrealized_pnl)]
    return []


def parse_frame(raw: bytes | str, now_ms: int) -> list[Event]:
    """Any bytes -> domain events, or FrameError (never another exception)."""
    return frame_events(decode_frame(raw), now_ms)
