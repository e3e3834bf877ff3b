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
from collections.abc import Collection, Iterator
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


class UnusedFrame(FrameError):
    """A frame the console does not use - no channel, a channel it does not know, another currency's asset: skipped
    and counted like a malformed one; `kind` (the channel, the currency) keys the stream's once-only warning."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


_PARSE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, InvalidOperation, IndexError)

# --- REST objects -----------------------------------------------------------------------------


ANY, NOT_NEGATIVE, POSITIVE = "any", "not negative", "positive"  # the sign a field's number may have


def _dec(value: Any, key: str, default: str | None = None, sign: str = ANY) -> Decimal:
    """`value` of field `key` as a finite Decimal of the allowed `sign`; `default` when absent (None: required).
    A ValueError names the field and the value: "dealVol: 'abc' is not a number"."""
    if value is None or value == "":
        if default is None:
            raise ValueError(f"{key} missing")
        return Decimal(default)
    try:
        number = to_decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{key}: {_shown(value)} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{key}: {_shown(value)} is not a finite number")
    if sign == NOT_NEGATIVE and number < 0:
        raise ValueError(f"{key}: {_shown(value)} is negative")
    if sign == POSITIVE and number <= 0:
        raise ValueError(f"{key}: {_shown(value)} is not positive")
    return number


def _shown(value: Any) -> str:
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _code(d: dict[str, Any], key: str, known: Collection[int], default: int | None = None) -> int:
    """An enumerated code of field `key` (order state, position type, side): one of `known`, else a ValueError
    naming the field and the code (never read as some other code)."""
    value = d.get(key)
    if value is None or value == "":
        if default is None:
            raise ValueError(f"{key} missing")
        return default
    try:
        code: int | None = None if isinstance(value, bool) else int(value)
    except (TypeError, ValueError, ArithmeticError):
        code = None
    if isinstance(value, (float, Decimal)) and value != code:
        code = None  # 2.5 is no code
    if code is None or code not in known:
        raise ValueError(f"{key}: {_shown(value)} is not a known MEXC {key} code")
    return code


@contextmanager
def _malformed(what: str) -> Iterator[None]:
    """A REST object or a push fails one way: a missing or malformed field is a `FrameError` naming it
    (not a KeyError from deep inside), so callers branch on one class for any reply. Also a decorator."""
    try:
        yield
    except _PARSE_ERRORS as exc:
        raise FrameError(f"malformed {what}: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    """What is wrong, naming the field: our own ValueErrors say it in words; a KeyError is the field left out."""
    if isinstance(exc, KeyError) and exc.args:
        return f"{exc.args[0]} missing"
    text = str(exc)[:100]
    return text if type(exc) is ValueError else f"{type(exc).__name__}: {text}"


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
        fields[name] = _dec(value, key) if convert is _dec else convert(value)  # type: ignore[operator]
    return Instrument(symbol=str(d["symbol"]), **fields)


_ORDER_STATES = {1: OrderState.SUBMITTED, 3: OrderState.FILLED, 4: OrderState.CANCELLED, 5: OrderState.REJECTED}
_ORDER_STATE_CODES = frozenset({1, 2, 3, 4, 5})  # 2: uncompleted - open or partially filled, by dealVol
_ORDER_SIDES = frozenset(int(s) for s in OrderSide)
_POSITION_TYPES = {C.POSITION_TYPE_LONG: Side.LONG, C.POSITION_TYPE_SHORT: Side.SHORT}
_POSITION_STATES, _POSITION_CLOSED = frozenset({1, 2, 3}), 3  # position state: 1 holding, 2 system-held, 3 closed


_SYSTEM_CATEGORIES = {2: "LIQUIDATION", 4: "ADL"}  # order category: 2 system take-over (liquidation), 4 ADL


def _price(d: dict[str, Any], key: str) -> Decimal | None:
    """An optional price: absent or 0 is None (a market order's price, no fill yet); else positive."""
    value = d.get(key)
    return _dec(value, key, sign=POSITIVE) if value not in (None, "", 0) else None


def looked_up(data: Any) -> dict[str, Any] | None:
    """An externalOid lookup's answer: the order object, or None when MEXC says there is none (null, an empty
    object or text; code 2040 is raised before this). Anything else - a list, a number - proves nothing: a
    `FrameError` (the client then has no answer, the venue a malformed reply), never "not there"."""
    if data is None or data == {} or data == "":
        return None
    if not isinstance(data, dict):
        raise FrameError(f"answered a {type(data).__name__}, not an order object")
    return data


@_malformed("order object")
def order(d: dict[str, Any]) -> Order:
    """Order object (get / external / open_orders / push.personal.order) -> Order."""
    filled = _dec(d.get("dealVol"), "dealVol", "0", NOT_NEGATIVE)
    state_code = _code(d, "state", _ORDER_STATE_CODES, default=1)
    state = _ORDER_STATES.get(state_code, OrderState.PARTIALLY_FILLED if filled > 0 else OrderState.OPEN)
    return Order(
        client_id=ClientOrderId(str(d.get("externalOid") or "")),
        symbol=str(d["symbol"]),
        side=OrderSide(_code(d, "side", _ORDER_SIDES)),
        type=OrderType.MARKET if int(d.get("orderType") or 1) in (5, 6) else OrderType.LIMIT,
        qty_contracts=_dec(d.get("vol"), "vol", sign=NOT_NEGATIVE),
        price=_price(d, "price"),
        leverage=int(d.get("leverage") or 1),
        margin_mode=MarginMode.CROSS if int(d.get("openType") or 1) == C.OPEN_TYPE_CROSS else MarginMode.ISOLATED,
        state=state,
        venue_order_id=VenueOrderId(str(d["orderId"])) if d.get("orderId") is not None else None,
        filled_contracts=filled,
        avg_fill_price=_price(d, "dealAvgPrice"),
        stop_loss_price=_price(d, "stopLossPrice"),
        take_profit_price=_price(d, "takeProfitPrice"),
        position_id=PositionId(str(d["positionId"])) if d.get("positionId") else None,
        created_ms=int(d.get("createTime") or 0),
        updated_ms=int(d.get("updateTime") or d.get("createTime") or 0),
        reason=_SYSTEM_CATEGORIES.get(int(d.get("category") or 1),
                                      f"errorCode {d['errorCode']}" if d.get("errorCode") else ""),
        fee=_dec(d.get("takerFee"), "takerFee", "0") + _dec(d.get("makerFee"), "makerFee", "0"),  # a rebate is < 0
        realized_pnl=_dec(d.get("profit"), "profit", "0"),
    )


@_malformed("position object")
def position(d: dict[str, Any], contract_size: Decimal = Decimal(1)) -> Position:
    """`open_positions` item / push.personal.position -> Position (contracts = holdVol, required: a holding
    left out is never read as flat; only state 3 says closed without it)."""
    closed = _code(d, "state", _POSITION_STATES, default=1) == _POSITION_CLOSED
    hold = _dec(d.get("holdVol"), "holdVol", "0" if closed else None, NOT_NEGATIVE)
    avg_key = "holdAvgPrice" if d.get("holdAvgPrice") not in (None, "", 0) else "openAvgPrice"
    return Position(
        symbol=str(d["symbol"]),
        side=_POSITION_TYPES[_code(d, "positionType", _POSITION_TYPES)],
        contracts=Decimal(0) if closed else hold,
        contract_size=contract_size,
        entry_price=_dec(d.get(avg_key), avg_key, "0", NOT_NEGATIVE),
        leverage=int(d.get("leverage") or 1),
        margin_mode=MarginMode.CROSS if int(d.get("openType") or 1) == C.OPEN_TYPE_CROSS else MarginMode.ISOLATED,
        margin=_dec(d.get("im"), "im", "0", NOT_NEGATIVE),
        liquidation_price=_dec(d.get("liquidatePrice"), "liquidatePrice") if d.get("liquidatePrice") not in (
            None, "", 0) else None,
        realized_pnl=_dec(d.get("realised"), "realised", "0"),
        position_id=PositionId(str(d["positionId"])) if d.get("positionId") is not None else None,
        opened_ms=int(d.get("createTime") or 0),
        updated_ms=int(d.get("updateTime") or 0),
    )


SETTLEMENT_CURRENCY = "USDT"  # every contract the console trades settles in USDT


@_malformed("account object")
def account(items: Any, currency: str = SETTLEMENT_CURRENCY) -> Account:
    """`account/assets` list (or one asset object) -> the settlement currency's Account; a zero Account when
    the list has no row for it. The row's cashBalance is required: a balance left out is not a zero balance."""
    if not isinstance(items, (list, dict)):
        raise TypeError(f"a {type(items).__name__}, not an asset list or object")
    rows = items if isinstance(items, list) else [items]
    for d in rows:
        if isinstance(d, dict) and d.get("currency") == currency:
            return Account(
                currency=currency,
                cash_balance=_dec(d.get("cashBalance"), "cashBalance"),
                position_margin=_dec(d.get("positionMargin"), "positionMargin", "0", NOT_NEGATIVE),
                frozen=_dec(d.get("frozenBalance"), "frozenBalance", "0", NOT_NEGATIVE),
                unrealized_pnl=_dec(d.get("unrealized"), "unrealized", "0"),
            )
    if isinstance(items, list):
        return Account(currency=currency)  # no row for it: nothing held in it
    raise ValueError(f"currency: {_shown(items.get('currency'))} is not {currency}")


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


# MEXC channels the console receives and does not use (a kline push is the public stream's own: ws_public)
_UNUSED_CHANNELS = frozenset({
    C.CH_PONG, C.CH_KLINE, "push.personal.order.deal", "push.personal.plan.order", "push.personal.stop.order",
    "push.personal.stop.planorder", "push.personal.liquidate.risk", "push.personal.adl.level",
    "push.personal.risk.limit", "push.personal.position.mode", "push.index.price", "push.contract", "push.tickers",
})
_MARKET_CHANNELS = (C.CH_DEAL, C.CH_TICKER, C.CH_DEPTH, C.CH_DEPTH_FULL, C.CH_FAIR, C.CH_FUNDING)


def frame_events(msg: dict[str, Any], now_ms: int) -> list[Event]:
    """Domain events of one decoded push; [] for control frames and MEXC channels we do not use. A frame with
    no channel, an unknown channel or another currency's asset is an `UnusedFrame`, a broken one a `FrameError`,
    each naming the channel and the field."""
    channel = msg.get("channel")
    if not isinstance(channel, str) or not channel:
        raise UnusedFrame(f"frame without a channel (keys: {', '.join(sorted(map(str, msg))[:8])})", kind="")
    if channel in _UNUSED_CHANNELS or channel.startswith("rs."):
        return []
    data = msg.get("data")
    if channel in _MARKET_CHANNELS:
        with _malformed(f"{channel} frame"):
            return _market_events(channel, msg, data, now_ms)
    if channel not in (C.CH_ORDER, C.CH_POSITION, C.CH_ASSET):
        raise UnusedFrame(f"frame on unknown channel {_shown(channel)}", kind=channel)
    if not isinstance(data, dict):
        raise FrameError(f"{channel} frame without a data object ({type(data).__name__})")
    try:
        return [_private_event(channel, data, _ts(msg, None, now_ms))]
    except FrameError as exc:
        if isinstance(exc, UnusedFrame):
            raise
        raise FrameError(f"{channel} frame: {exc}") from None


def _market_events(channel: str, msg: dict[str, Any], data: Any, now_ms: int) -> list[Event]:
    symbol = str(msg.get("symbol") or (data.get("symbol") if isinstance(data, dict) else None) or "")
    if not symbol:
        raise ValueError("push without symbol")
    if channel == C.CH_DEAL:
        return _deals(msg, data, symbol, now_ms)
    if not isinstance(data, dict):
        raise TypeError(f"data is a {type(data).__name__}, not an object")
    if channel == C.CH_TICKER:
        return _ticker(msg, data, symbol, now_ms)
    if channel == C.CH_FAIR:
        return [MarkPriceTick(_ts(msg, data, now_ms), symbol=symbol, price=_px(data["price"]))]
    if channel == C.CH_FUNDING:
        return [FundingRateUpdated(_ts(msg, data, now_ms), symbol=symbol, rate=float(data["rate"]),
                                   next_settle_ms=int(data.get("nextSettleTime") or 0))]
    return _book(msg, data, symbol, now_ms)


def _private_event(channel: str, data: dict[str, Any], ts_ms: int) -> Event:
    if channel == C.CH_ORDER:
        return OrderUpdated(ts_ms, order=order(data))
    if channel == C.CH_POSITION:
        return PositionChanged(ts_ms, position=position(data), reason="push")
    currency = data.get("currency")
    if currency is None or currency == "":
        raise FrameError("malformed account object: currency missing")
    if currency != SETTLEMENT_CURRENCY:  # USDC, coin-margined: never the USDT account the risk guard counts
        raise UnusedFrame(f"{channel} for {_shown(currency)} ignored: only the {SETTLEMENT_CURRENCY} account is"
                          " followed", kind=f"{channel} {currency}")
    a = account(data)
    return AccountUpdated(ts_ms, equity=a.equity, available=a.available, cash_balance=a.cash_balance,
                          unrealized_pnl=a.unrealized_pnl)


def parse_frame(raw: bytes | str, now_ms: int) -> list[Event]:
    """Any bytes -> domain events, or FrameError (never another exception)."""
    return frame_events(decode_frame(raw), now_ms)
