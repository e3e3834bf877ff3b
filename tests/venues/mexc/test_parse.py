"""Wire -> domain (parse.py): REST objects, order bodies, and frames (any bytes -> events or FrameError)."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trader.domain.events import AccountUpdated, BookTick, FundingRateUpdated, MarkPriceTick, OrderUpdated, PositionChanged, TradeTick
from tui_trader.domain.models import Instrument, OrderSide, OrderState, OrderType
from tui_trader.venues.mexc.parse import FrameError, UnusedFrame, instrument, order, parse_frame
from tui_trader.venues.mexc.web_utils import parse_json

NOW = 1_700_000_000_000


def frame(channel: str, data, symbol: str = "BTC_USDT", **extra) -> str:
    return json.dumps({"channel": channel, "data": data, "symbol": symbol, "ts": NOW + 1, **extra})


def test_deal_list_and_object():
    evs = parse_frame(frame("push.deal", [{"p": 60000.5, "v": 3, "T": 1, "O": 1, "M": 2, "t": NOW + 5},
                                          {"p": 60000.4, "v": 1, "T": 2, "O": 3, "M": 2, "t": NOW + 6}]), NOW)
    assert evs == [TradeTick(NOW + 5, symbol="BTC_USDT", price=60000.5, qty=3.0, side="buy"),
                   TradeTick(NOW + 6, symbol="BTC_USDT", price=60000.4, qty=1.0, side="sell")]
    (one,) = parse_frame(frame("push.deal", {"p": 1.5, "v": 2, "T": 2, "t": NOW}), NOW)
    assert one.side == "sell" and one.price == 1.5


def test_ticker_gives_mark_book_and_funding():
    evs = parse_frame(frame("push.ticker", {"symbol": "BTC_USDT", "lastPrice": 1, "bid1": 99.5, "ask1": 100.5,
                                            "fairPrice": 100.1, "fundingRate": 0.0001, "timestamp": NOW + 9}), NOW)
    assert [type(e) for e in evs] == [MarkPriceTick, BookTick, FundingRateUpdated]
    assert evs[0].price == 100.1 and evs[1].bid == 99.5 and evs[0].ts_ms == NOW + 9


def test_fair_price_depth_funding_and_gzip():
    (mark,) = parse_frame(frame("push.fair.price", {"symbol": "BTC_USDT", "price": 61000.2}), NOW)
    assert isinstance(mark, MarkPriceTick) and mark.price == 61000.2
    (book,) = parse_frame(gzip.compress(frame("push.depth.full", {"asks": [[101, 5, 1]], "bids": [[99, 3, 1]], "version": 3}).encode()), NOW)
    assert isinstance(book, BookTick) and (book.bid, book.ask) == (99.0, 101.0)
    assert parse_frame(frame("push.depth", {"asks": [[101, 0, 0]], "bids": [], "version": 4}), NOW) == []
    (fr,) = parse_frame(frame("push.funding.rate", {"symbol": "BTC_USDT", "rate": -0.0002}), NOW)
    assert isinstance(fr, FundingRateUpdated) and fr.rate == -0.0002


def test_private_pushes():
    (o,) = parse_frame(json.dumps({"channel": "push.personal.order", "ts": NOW, "data": {
        "orderId": 7000000000000000123, "symbol": "BTC_USDT", "side": 3, "orderType": 5, "vol": 50, "dealVol": 50,
        "dealAvgPrice": 60000.5, "state": 3, "externalOid": "e-1", "leverage": 3, "openType": 1}}), NOW)
    assert isinstance(o, OrderUpdated) and o.order.state is OrderState.FILLED and o.order.venue_order_id == "7000000000000000123"
    (p,) = parse_frame(json.dumps({"channel": "push.personal.position", "data": {
        "positionId": 1, "symbol": "BTC_USDT", "positionType": 2, "holdVol": 5, "state": 1, "holdAvgPrice": 1.5}}), NOW)
    assert isinstance(p, PositionChanged) and p.position.contracts == 5
    (a,) = parse_frame(json.dumps({"channel": "push.personal.asset", "data": {"currency": "USDT", "cashBalance": 10}}), NOW)
    assert isinstance(a, AccountUpdated) and a.cash_balance == 10


@pytest.mark.parametrize("raw", [b"\x00\xff", "not json", "[1,2]", '{"channel":"push.deal","data":{"p":"x","v":1,"T":1}}',
                                 '{"channel":"push.deal","symbol":"A","data":{"p":-1,"v":1,"T":1}}',
                                 '{"channel":"push.ticker","data":{"fairPrice":1}}', b"\x1f\x8b\x08garbage",
                                 '{"channel":"push.personal.order","data":{"side":9,"symbol":"A","vol":1}}',
                                 '{"channel":"push.fair.price","symbol":"A","data":null}'])
def test_malformed_frames_raise_frame_error(raw):
    with pytest.raises(FrameError):
        parse_frame(raw, NOW)


def test_control_and_unknown_channels_are_empty():
    assert parse_frame('{"channel":"rs.sub.deal","data":"success"}', NOW) == []
    assert parse_frame('{"channel":"push.kline","data":{}}', NOW) == []


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=4), max_leaves=12)
_channels = st.sampled_from(["push.deal", "push.ticker", "push.depth", "push.depth.full", "push.fair.price", "push.funding.rate",
                             "push.personal.order", "push.personal.position", "push.personal.asset", "pong", "x"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_bytes_give_events_or_frame_error(raw):
    try:
        parse_frame(raw, NOW)
    except FrameError:
        pass


@settings(max_examples=400, deadline=None)
@given(_channels, _json, st.one_of(st.none(), st.text(max_size=5)))
def test_any_shaped_push_gives_events_or_frame_error(channel, data, symbol):
    try:
        parse_frame(json.dumps({"channel": channel, "data": data, "symbol": symbol}), NOW)
    except FrameError:
        pass


def test_instrument_and_order_from_rest_are_decimal_exact():
    inst = instrument(parse_json('{"symbol":"BTC_USDT","contractSize":0.0001,"priceUnit":0.1,"volUnit":1,"minVol":1,'
                                 '"maxVol":1000000,"maxLeverage":125,"apiAllowed":false}'))
    assert inst.contract_size == Decimal("0.0001") and inst.price_unit == Decimal("0.1") and not inst.api_allowed
    assert inst.max_leverage == 125 and inst.maker_fee_rate == Instrument("X").maker_fee_rate  # absent: the default
    assert instrument({"symbol": "X_USDT", "priceUnit": "", "maxLeverage": 0, "riskLevelLimit": None}) == Instrument("X_USDT")
    o = order(parse_json('{"orderId":7000000000000000123,"symbol":"BTC_USDT","side":4,"orderType":1,"vol":2,"price":60000.1,'
                         '"state":2,"dealVol":1,"externalOid":"x"}'))
    assert o.side is OrderSide.CLOSE_LONG and o.type is OrderType.LIMIT and o.state is OrderState.PARTIALLY_FILLED
    assert o.price == Decimal("60000.1") and o.venue_order_id == "7000000000000000123"


@pytest.mark.parametrize("q", ["NaN", -1, "x", None])
def test_kline_push_with_a_bad_volume_is_a_frame_error(q):
    from tui_trader.venues.mexc.parse import kline_push

    msg = {"channel": "push.kline", "symbol": "BTC_USDT",
           "data": {"symbol": "BTC_USDT", "interval": "Min1", "t": 60, "o": 1, "h": 1, "l": 1, "c": 1, "q": q}}
    with pytest.raises(FrameError, match="push.kline"):
        kline_push(msg)
    assert kline_push({**msg, "data": {**msg["data"], "q": 3}})[2].volume == 3.0


# --- REST replies: any body ends in data or a typed error, any object in a model or a FrameError ------------------

_rest_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=6),
                         st.decimals(-(10**20), 10**20), st.sampled_from([Decimal("NaN"), Decimal("-Infinity")]),
                         st.sampled_from(["", "0", "1", "-1", "NaN", "1e999", "BTC_USDT"]))
_rest_value = st.recursive(
    _rest_scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=8)
_ORDER_KEYS = ["orderId", "symbol", "side", "orderType", "vol", "dealVol", "dealAvgPrice", "price", "state",
               "externalOid", "leverage", "openType", "positionId", "createTime", "updateTime", "category", "errorCode",
               "takerFee", "makerFee", "profit", "stopLossPrice", "takeProfitPrice"]
_POSITION_KEYS = ["symbol", "positionType", "holdVol", "state", "holdAvgPrice", "openAvgPrice", "leverage", "openType",
                  "im", "liquidatePrice", "realised", "positionId", "createTime", "updateTime"]
_ASSET_KEYS = ["currency", "cashBalance", "positionMargin", "frozenBalance", "unrealized"]
_INSTRUMENT_KEYS = ["symbol", "contractSize", "priceUnit", "volUnit", "minVol", "maxVol", "minLeverage", "maxLeverage",
                    "takerFeeRate", "makerFeeRate", "maintenanceMarginRate", "riskLevelLimit", "apiAllowed", "state"]


def _rest_object(keys):
    values = _rest_value | st.sampled_from(["1", 1, 3, "USDT"])
    return st.dictionaries(st.sampled_from(keys), values, max_size=len(keys))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["instrument", "order", "position", "account", "klines"]),
       _rest_object(_ORDER_KEYS + _POSITION_KEYS + _INSTRUMENT_KEYS + _ASSET_KEYS) | _rest_value)
def test_any_rest_object_gives_a_model_or_a_frame_error(kind, obj):
    from tui_trader.domain.errors import DataError
    from tui_trader.venues.mexc import parse

    try:
        {"instrument": parse.instrument, "order": parse.order, "position": parse.position, "account": parse.account,
         "klines": parse.klines}[kind](obj)
    except DataError:  # FrameError for objects, DataError naming the bar for klines
        pass


@pytest.mark.parametrize("kind, obj", [
    ("instrument", {}), ("instrument", [1]), ("instrument", {"symbol": "X", "contractSize": "abc"}),
    ("order", {"symbol": "X", "side": 9, "vol": 1}), ("order", {"symbol": "X", "side": 1}),
    ("order", {"symbol": "X", "side": 1, "vol": "NaN"}), ("position", {"symbol": "X", "positionType": "long"}),
    ("account", [{"currency": "USDT", "cashBalance": "lots"}]), ("position", None),
], ids=["no-symbol", "not-an-object", "bad-number", "bad-side", "no-vol", "nan-vol", "bad-type", "bad-balance", "none"])
def test_a_malformed_rest_object_is_a_frame_error_naming_what_it_is(kind, obj):
    from tui_trader.venues.mexc import parse

    with pytest.raises(FrameError, match=f"malformed {kind} object"):
        getattr(parse, kind)(obj)


_bodies = st.one_of(st.text(max_size=80), _rest_value.map(lambda v: json.dumps(v, default=str)),
                    st.fixed_dictionaries({"success": st.booleans(), "code": _rest_value, "data": _rest_value,
                                           "message": _rest_value}).map(lambda v: json.dumps(v, default=str)),
                    st.just("[" * 100_000), st.just('{"code": ' + "[" * 100_000))


@settings(max_examples=300, deadline=None)
@given(st.integers(100, 599), _bodies, st.sampled_from(["application/json", "text/html", ""]))
def test_any_response_body_gives_data_or_a_venue_error(status, body, content_type):
    from tui_trader.domain.errors import VenueError
    from tui_trader.venues.mexc.web_utils import unwrap

    try:
        unwrap(status, body, content_type, where="test")
    except VenueError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["symbol", "interval", "t", "o", "h", "l", "c", "q", "a"]),
                       _json | st.sampled_from(["Min1", "Min60", 1e308, "1e999", 10**400]), max_size=9),
       st.one_of(st.none(), st.text(max_size=4)))
def test_any_kline_push_gives_a_candle_or_a_frame_error(data, symbol):
    from tui_trader.venues.mexc.parse import kline_push

    msg = {"channel": "push.kline", "data": data, **({"symbol": symbol} if symbol is not None else {})}
    try:
        kline_push(json.loads(json.dumps(msg)))
    except FrameError:
        pass


@pytest.mark.parametrize("body", ['{"success": true, "data": {"time": [1E+1000000]}}', '{"success": true, "data": NaN}',
                                  '{"success": true, "data": ' + "[" * 100_000 + "]" * 100_000 + "}"],
                         ids=["huge-exponent", "nan", "deep"])
def test_a_body_no_exchange_sends_is_a_bad_response_at_once(body):
    """Issue 23: int(Decimal('1E+1000000')) took 20 s in the kline reader; deep nesting was a RecursionError."""
    from tui_trader.venues.mexc.errors import BadResponse
    from tui_trader.venues.mexc.web_utils import unwrap

    with pytest.raises(BadResponse):
        unwrap(200, body, "application/json")


# --- bad numbers and codes: a FrameError naming the field and the value, never a silent default ------------------

_ORDER = {"orderId": 7, "symbol": "BTC_USDT", "side": 3, "orderType": 5, "vol": 5, "dealVol": 5,
          "dealAvgPrice": 60000.5, "state": 3, "externalOid": "e-1"}
_POSITION = {"positionId": 1, "symbol": "BTC_USDT", "positionType": 2, "holdVol": 5, "state": 1, "holdAvgPrice": 1.5}
_ASSET = {"currency": "USDT", "cashBalance": 1000, "positionMargin": 10, "frozenBalance": 0, "unrealized": -2}


def private(channel: str, data) -> str:
    return json.dumps({"channel": f"push.personal.{channel}", "ts": NOW, "data": data})


@pytest.mark.parametrize("channel, base, key, value, said", [
    ("order", _ORDER, "dealVol", "abc", "dealVol: 'abc' is not a number"),
    ("order", _ORDER, "dealVol", -5, "dealVol: -5 is negative"),
    ("order", _ORDER, "dealVol", float("nan"), "dealVol: nan is not a finite number"),
    ("order", _ORDER, "dealVol", float("inf"), "dealVol: inf is not a finite number"),
    ("order", _ORDER, "vol", -1, "vol: -1 is negative"),
    ("order", _ORDER, "vol", None, "vol missing"),
    ("order", _ORDER, "dealAvgPrice", -5, "dealAvgPrice: -5 is not positive"),
    ("order", _ORDER, "price", -1, "price: -1 is not positive"),
    ("order", _ORDER, "state", 99, "state: 99 is not a known MEXC state code"),
    ("order", _ORDER, "state", 2.5, "state: 2.5 is not a known MEXC state code"),
    ("order", _ORDER, "side", 9, "side: 9 is not a known MEXC side code"),
    ("order", _ORDER, "side", None, "side missing"),
    ("order", _ORDER, "symbol", None, "symbol missing"),
    ("position", _POSITION, "holdVol", None, "holdVol missing"),
    ("position", _POSITION, "holdVol", -5, "holdVol: -5 is negative"),
    ("position", _POSITION, "holdVol", "abc", "holdVol: 'abc' is not a number"),
    ("position", _POSITION, "holdAvgPrice", -5, "holdAvgPrice: -5 is negative"),
    ("position", _POSITION, "positionType", 7, "positionType: 7 is not a known MEXC positionType code"),
    ("position", _POSITION, "positionType", None, "positionType missing"),
    ("position", _POSITION, "state", 9, "state: 9 is not a known MEXC state code"),
    ("asset", _ASSET, "cashBalance", None, "cashBalance missing"),
    ("asset", _ASSET, "cashBalance", "abc", "cashBalance: 'abc' is not a number"),
    ("asset", _ASSET, "positionMargin", -1, "positionMargin: -1 is negative"),
    ("asset", _ASSET, "currency", None, "currency missing"),
], ids=lambda v: v if isinstance(v, str) and " " not in v else None)
def test_a_broken_field_is_a_frame_error_naming_the_channel_the_field_and_the_value(channel, base, key, value, said):
    data = {k: v for k, v in base.items() if k != key} if value is None else {**base, key: value}
    with pytest.raises(FrameError) as caught:
        parse_frame(private(channel, data), NOW)
    assert f"push.personal.{channel} frame" in str(caught.value) and said in str(caught.value), caught.value
    assert not isinstance(caught.value, UnusedFrame)


def test_numbers_that_may_be_zero_or_negative_still_read():
    o = order({**_ORDER, "price": 0, "dealAvgPrice": 0, "dealVol": 0, "state": 2, "takerFee": 0, "makerFee": -0.01,
               "profit": -3})
    assert o.price is None and o.avg_fill_price is None and o.state is OrderState.OPEN
    assert o.fee == Decimal("-0.01") and o.realized_pnl == -3  # a maker rebate, a loss
    assert order({**_ORDER, "state": "3"}).state is OrderState.FILLED
    (a,) = parse_frame(private("asset", {**_ASSET, "cashBalance": -4}), NOW)  # a deficit is a balance
    assert isinstance(a, AccountUpdated) and a.cash_balance == -4


def test_a_position_is_flat_only_when_it_says_so():
    (held,) = parse_frame(private("position", _POSITION), NOW)
    assert isinstance(held, PositionChanged) and held.position.contracts == 5
    for closed in ({**_POSITION, "state": 3}, {k: v for k, v in _POSITION.items() if k != "holdVol"} | {"state": 3},
                   {**_POSITION, "holdVol": 0}):
        (flat,) = parse_frame(private("position", closed), NOW)
        assert isinstance(flat, PositionChanged) and flat.position.is_flat


def test_another_currencys_asset_is_unused_never_the_usdt_account():
    with pytest.raises(UnusedFrame, match="USDC") as caught:
        parse_frame(private("asset", {**_ASSET, "currency": "USDC", "cashBalance": 3}), NOW)
    assert caught.value.kind == "push.personal.asset USDC"


def test_the_rest_asset_list_reads_the_usdt_row_and_only_it():
    from tui_trader.venues.mexc.parse import account

    assert account([{"currency": "USDC", "cashBalance": 3}, _ASSET]).cash_balance == 1000
    assert account([{"currency": "USDC", "cashBalance": 3}]).equity == 0  # nothing held in USDT
    for bad, said in (({"currency": "USDC", "cashBalance": 3}, "currency: 'USDC' is not USDT"),
                      ([{"currency": "USDT"}], "cashBalance missing"), ("USDT", "not an asset list")):
        with pytest.raises(FrameError, match=said):
            account(bad)


@pytest.mark.parametrize("msg, kind", [
    ({"data": {"symbol": "BTC_USDT"}, "ts": 1}, ""),
    ({"channel": "", "data": {}}, ""),
    ({"channel": "push.personal.bogus", "data": {"x": 1}}, "push.personal.bogus"),
])
def test_a_frame_without_a_channel_or_on_an_unknown_one_is_unused_keyed_by_its_channel(msg, kind):
    with pytest.raises(UnusedFrame, match="channel") as caught:
        parse_frame(json.dumps(msg), NOW)
    assert caught.value.kind == kind


def test_mexc_channels_the_console_does_not_use_are_empty():
    for channel in ("push.personal.order.deal", "push.personal.stop.order", "pong", "rs.login"):
        assert parse_frame(json.dumps({"channel": channel, "data": {"x": 1}}), NOW) == []


@pytest.mark.parametrize("data", [None, [], "x", 5])
@pytest.mark.parametrize("channel", ["order", "position", "asset"])
def test_a_private_push_without_a_data_object_says_so(channel, data):
    with pytest.raises(FrameError, match=f"push.personal.{channel} frame without a data object"):
        parse_frame(private(channel, data) if data is not None else json.dumps(
            {"channel": f"push.personal.{channel}"}), NOW)
