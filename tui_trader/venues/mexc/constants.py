"""Venues layer: MEXC futures wire constants - paths, error-code classes, WebSocket channels.

Hosts are NOT here: base URLs are configuration (`MexcConfig`), so tests point them at a fake.
Code sets follow the reference table (mexc.md 1.2); the classification lives in `errors.py`.
"""

from __future__ import annotations

PUBLIC = "/api/v1/contract"
PRIVATE = "/api/v1/private"

# public
PING = f"{PUBLIC}/ping"
DETAIL = f"{PUBLIC}/detail"
TICKER = f"{PUBLIC}/ticker"
DEPTH = f"{PUBLIC}/depth/{{symbol}}"
KLINE = f"{PUBLIC}/kline/{{symbol}}"
FAIR_PRICE = f"{PUBLIC}/fair_price/{{symbol}}"
INDEX_PRICE = f"{PUBLIC}/index_price/{{symbol}}"
FUNDING_RATE = f"{PUBLIC}/funding_rate/{{symbol}}"

# private
ASSETS = f"{PRIVATE}/account/assets"
OPEN_POSITIONS = f"{PRIVATE}/position/open_positions"
OPEN_ORDERS = f"{PRIVATE}/order/list/open_orders/{{symbol}}"
ORDER_GET = f"{PRIVATE}/order/get/{{order_id}}"
HISTORY_ORDERS = f"{PRIVATE}/order/list/history_orders"
ORDER_EXTERNAL = f"{PRIVATE}/order/external/{{symbol}}/{{external_oid}}"
ORDER_CANCEL = f"{PRIVATE}/order/cancel"
ORDER_CANCEL_EXTERNAL = f"{PRIVATE}/order/cancel_with_external"
CHANGE_LEVERAGE = f"{PRIVATE}/position/change_leverage"
STOP_ORDERS = f"{PRIVATE}/stoporder/list/orders"
STOP_CHANGE_PRICE = f"{PRIVATE}/stoporder/change_price"
STOP_CHANGE_PLAN_PRICE = f"{PRIVATE}/stoporder/change_plan_price"

KLINE_SECONDS = {"Min1": 60, "Min5": 300, "Min15": 900, "Min30": 1800, "Min60": 3600, "Hour4": 14400,
                 "Hour8": 28800, "Day1": 86400}
KLINE_PAGE = 2000  # bars per contract/kline call at most (mexc.md 3)
KLINE_INTERVALS = ("Min1", "Min5", "Min15", "Min30", "Min60", "Hour4", "Hour8", "Day1", "Week1", "Month1")

# error-code classes (mexc.md 1.2 and 9)
OK_CODES = frozenset({0, 200})
AUTH_CODES = frozenset({401, 402, 406, 511, 602, 701, 702, 703, 704})
TRANSIENT_CODES = frozenset({500, 501, 604, 801})
RATE_LIMIT_CODES = frozenset({510, 2037})
CLOCK_SKEW_CODE = 513
PARAMETER_CODES = frozenset({600, 601})
REPEATED_REQUEST_CODE = 603
NOT_ALLOWED_CODES = frozenset({1002, 6001, 6002})
INSUFFICIENT_BALANCE_CODE = 2005
POSITION_NOT_FOUND_CODE = 2009
ORDER_NOT_FOUND_CODES = frozenset({2040})
# validation codes other than 600/601, with the request field each one is about
VALIDATION_FIELDS: dict[int, str] = {
    1000: "account", 1001: "symbol",
    2006: "leverage", 2019: "positionMode", 2021: "leverage", 2023: "leverage", 2024: "leverage", 2026: "leverage",
    2011: "vol", 2015: "price", 2028: "vol", 2030: "externalOid", 2032: "price", 2033: "price",
    5001: "stopLossPrice", 5002: "takeProfitPrice", 5003: "stopLossPrice", 5004: "takeProfitPrice",
}
BUSINESS_REJECT_CODES = frozenset({2036})

RATE_LIMIT_BACKOFF_S = 1.0  # mexc.md 1.2: back off at least 1 s on 510
MAX_EXTERNAL_OID_LEN = 32
MAX_ORDER_RESENDS = 2  # mexc.md 5.4: re-send the same body at most twice
RECV_WINDOW_MARGIN_S = 2.0  # past Request-Time + Recv-Window a held create can no longer be processed
ORDER_LOOKUP_DELAY_S = 1.0  # mexc.md 5.4: wait ~1 s before the externalOid lookup

# order fields (mexc.md 5.2)
ORDER_TYPE_LIMIT = 1
ORDER_TYPE_MARKET = 5
OPEN_TYPE_ISOLATED = 1
OPEN_TYPE_CROSS = 2
POSITION_TYPE_LONG = 1
POSITION_TYPE_SHORT = 2
POSITION_MODE_HEDGE = 1
POSITION_MODE_ONE_WAY = 2

# WebSocket (mexc.md 8)
WS_PING = '{"method":"ping"}'
CH_PONG = "pong"
CH_LOGIN = "rs.login"
CH_ERROR = "rs.error"
CH_DEAL = "push.deal"
CH_TICKER = "push.ticker"
CH_DEPTH = "push.depth"
CH_DEPTH_FULL = "push.depth.full"
CH_FAIR = "push.fair.price"
CH_KLINE = "push.kline"
CH_FUNDING = "push.funding.rate"
CH_ORDER = "push.personal.order"
CH_POSITION = "push.personal.position"
CH_ASSET = "push.personal.asset"
DEPTH_FULL_LIMIT = 5
