"""Test support: a fake MEXC futures exchange (aiohttp, 127.0.0.1:0) speaking REST and WS `/edge`.

It verifies ApiKey / Request-Time / Signature independently of the client's signing code (602 on
mismatch, 513 outside the recv window), stores every accepted order (duplicates included, so a
blind re-send shows up as a second order) and injects faults per route: HTTP 500, HTML page,
non-JSON, empty body, any envelope code, hang (with or without accepting the order first),
connection drop (with or without accepting), and on the WebSocket a stall or a close.

Account model (``FakeMexc(fills=True)`` or ``fake.fills = True``; off by default so the older
tests keep seeing orders that rest in state 2 and closes stored without a position):

* Prices per symbol: ``set_price(symbol, price, fair=None)`` sets last, fair and index price (fair
  defaults to the same price); defaults BTC_USDT 60000.5 (fair 60001.1, index 60000.9), ETH_USDT 3000.
  ticker / fair_price / index_price / depth answer from them; ticker ``volume24`` rises on each move.
* Hedge-mode fills: side 1 open long, 2 close short, 3 open short, 4 close long. Market (5, 6) fills
  at once at the last price (taker fee); limit (1) fills at once when marketable, else rests in
  state 2 and fills at its limit price (maker fee) when a price move crosses it; post-only (2) that
  would take is cancelled (errorCode 20); IOC/FOK (3/4) fill when marketable, else are cancelled.
  Closes are reduce-only: no position -> code 2009 and nothing stored; vol > holdVol fills holdVol.
* Partial fills (off by default: every order fills whole, as above): ``partial_fill_vol = N`` makes
  each matching step fill at most N contracts of an order. A matching step is the create (market,
  marketable limit / IOC) and every price step (``set_price`` / ``gap`` / ``ramp`` / ``spike``) for
  each resting order: a crossed limit fills at its price (maker), a market order's rest at the last
  price (taker). Each step is one deal and pushes deal, position, order, asset like a whole fill; the
  order carries the cumulative ``dealVol`` / ``dealAvgPrice`` / ``takerFee`` / ``makerFee`` /
  ``profit`` (REST ``order/get`` / ``order/external`` / history read the same dict) with state 2
  (``remainVol`` = the rest) until complete (3). ``market_remainder``: ``"rest"`` (default) - a
  market order's rest fills on the next price steps; ``"cancel"`` - the rest is cancelled at once,
  as MEXC can: one order push, state 4, errorCode 21, dealVol > 0. IOC: the rest is cancelled
  (errorCode 18); FOK, liquidations and ``open_position`` (tests/live/filling_fake.py) fill whole.
  A close completes (state 3) as soon as its position is flat.
* Every fill appends a deal to ``deals`` and updates the position (``position(symbol, ptype)``,
  ``closed_positions``, ``peak_hold_vol[(symbol, ptype)]``); a flat position gets state 3 and leaves
  ``open_positions``. The route returns the live positions followed by whatever a test put into
  ``positions`` (returned verbatim, never traded against).
* Isolated liquidation price, MEXC's entry form (liquidation.md §6): long E(1 - 1/L + m + f), short
  E(1 + 1/L - m - f); m = tiered maintenanceMarginRate (§5.1), f = ``liq_fee_rate`` (default 0 because
  ``im`` carries no fee reserve here, §6.4). When the fair price reaches it the position is closed
  by a system order (category 2) at the liquidation price, its isolated margin (``im``) is lost,
  the position's resting closes are cancelled (errorCode 5) and ``liquidations`` gets a record.
* Public WebSocket, routed as MEXC does (``fake_subscriptions.py``): ``push(frame)`` sends a public
  push (``push.deal``, ``push.ticker``, ``push.kline``, ...) only to the sockets that sent
  ``sub.<channel>`` for its symbol (and kline interval) and no ``unsub.`` since; ``push.personal.*``
  frames only to logged-in sockets; a frame with nothing to route by (not JSON, no ``push.`` channel)
  to every socket. A test pushing right after the client connected waits first:
  ``await wait_subscribed("push.deal", symbol)`` (raises TimeoutError naming what is subscribed).
* Private WebSocket: after a successful ``login`` (unless ``"subscribe": false``) a socket gets
  ``push.personal.order`` (each state change), ``push.personal.order.deal`` (each fill),
  ``push.personal.position`` and ``push.personal.asset``; a fill pushes deal, position, order,
  asset in that order. Pushes go out in order through one queue; ``await settle()`` waits for it.
  ``private_pushes`` records what was delivered.
* Routes added: ``order/list/history_orders`` (symbol, states, page_num, page_size),
  ``order/list/order_deals`` (symbol, page_num, page_size), ``order/deal_details/{order_id}``.

Faults switchable at run time:

* ``fault(route, kind, code=0, message="", times=1, hold_s=0.0)`` with kind ``http500`` | ``http503``
  (HTML 503) | ``html`` (HTML 502) | ``nonjson`` | ``empty`` | ``code`` | ``hang`` | ``hang_after`` |
  ``drop`` | ``drop_after`` | ``hold_before`` (wait ``hold_s``, then re-check the Request-Time
  window against the fake's clock at processing time: 513 and nothing placed when it has passed)
  | ``hold_after`` (process at once, answer after ``hold_s``). ``held`` counts requests on hold.
  ``process_abandoned`` (False): True processes a ``hold_before`` request after its hold even when the
  client gave up on it meanwhile (timed out, disconnected) - MEXC cannot tell; False drops it with the
  connection (aiohttp cancels the handler).
  ``http500_after`` | ``http503_after`` | ``html_after`` | ``nonjson_after`` | ``empty_after`` | ``code_after``:
  the request is processed (an order placed and matched), then answered with that failure - a gateway
  error page in front of an exchange that did the work.
* ``recv_window_ms`` (10 000), ``server_offset_ms`` / ``clock_ms`` (a callable returning ms that
  replaces real time) shape the fake's clock ``now_ms()``.
* ``dedupe_external_oid`` (False): True answers ``dedupe_code`` (603) to a create whose externalOid
  was already used for the symbol; False stores a second order.
* ``not_allowed`` (symbols answering 1002), ``rate_limited`` (symbols answering 510 on create).
* ``enforce_rate_limits`` (False): True answers 510 beyond MEXC's per-endpoint limits (20 / 2 s,
  ``detail`` 1 / 5 s) on the fake's clock, as MEXC does; ``over_limit`` counts those answers by route.
* ``order_stamp_lag_ms`` (0): a finished order's ``updateTime`` this many ms after the position push that
  went before it (MEXC stamps each push with its own time; the flat position can be the earlier one).
* ``push_loss`` (drop private pushes), ``push_delay_s`` (deliver them late), ``close_ws()``,
  ``ws_stalled`` (no replies, no pushes), ``ws_stall_pushes`` (pongs answered, no pushes at all).
* Price moves, each step running the limit-fill and liquidation checks: ``set_price``,
  ``gap(symbol, price)``, ``await ramp(symbol, to_price, seconds, steps)``,
  ``await spike(symbol, peak, seconds, steps, back_to=None)``.
* ``await wait_until(predicate, timeout)`` waits (event-driven) for ``predicate(fake)``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from math import ceil
from typing import Any
from urllib.parse import parse_qsl, quote

from aiohttp import WSMsgType, web

from tests.venues.mexc import fake_subscriptions as subs

API_KEY = "mx0vTESTAPIKEY000001"
SECRET = "TESTSECRET-0123456789abcdef-XYZ"
BODY = web.RequestKey("body", str)
FIRST_ORDER_ID = 7_000_000_000_000_000_001  # > 2^53: ids must stay exact
FIRST_POSITION_ID = 500_000_001
FIRST_DEAL_ID = 900_000_001
START_CASH = Decimal("1000.5")
PRIVATE_CHANNELS = ("push.personal.order", "push.personal.order.deal", "push.personal.position",
                    "push.personal.asset")
HTML_503 = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"


@dataclass
class Fault:
    kind: str  # see the module docstring; *_after kinds run the handler first
    code: int = 0
    message: str = ""
    hold_s: float = 0.0


def contract(symbol: str = "BTC_USDT", **over: Any) -> dict[str, Any]:
    d = {"symbol": symbol, "contractSize": 0.0001, "priceUnit": 0.1, "volUnit": 1, "minVol": 1, "maxVol": 1000000,
         "minLeverage": 1, "maxLeverage": 125, "takerFeeRate": 0.0006, "makerFeeRate": 0.0002,
         "maintenanceMarginRate": 0.004, "state": 0, "apiAllowed": True, "riskBaseVol": 150000}
    d.update(over)
    return d


def _ok(data: Any) -> web.Response:
    return web.json_response({"success": True, "code": 0, "data": data})


def _err(code: int, message: str) -> web.Response:
    return web.json_response({"success": False, "code": code, "message": message})


def _asyncify(fn: Any) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return fn(request)
    return handler


def _d(x: Any) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


def _out(x: Decimal) -> int | float:
    """JSON number for a Decimal: int when integral, else the float of its exact text."""
    return int(x) if x == x.to_integral_value() else float(x)


def mmr_for(c: dict[str, Any], vol: Decimal) -> Decimal:
    """Maintenance margin rate of the risk tier holding `vol` contracts (liquidation.md §5.1)."""
    base, m = _d(c.get("riskBaseVol", 0) or 0), _d(c["maintenanceMarginRate"])
    incr_vol, incr_mmr = _d(c.get("riskIncrVol", 0) or 0), _d(c.get("riskIncrMmr", 0) or 0)
    if base <= 0 or vol <= base or incr_vol <= 0:
        return m
    level = min(ceil((vol - base) / incr_vol) + 1, int(c.get("riskLevelLimit", 5)))
    return m + (level - 1) * incr_mmr


def liquidation_price(position_type: int, avg: Decimal, leverage: Decimal, mmr: Decimal,
                      fee: Decimal = Decimal(0)) -> Decimal:
    """Isolated liquidation price, MEXC's entry form (liquidation.md §6), margin = holdVol·cs·avg/leverage."""
    if position_type == 1:
        return avg * (1 - 1 / leverage + mmr + fee)
    return avg * (1 + 1 / leverage - mmr - fee)


def _buys(side: int) -> bool:
    return side in (1, 2)  # open long / close short buy; 3 open short / 4 close long sell


class FakeMexc:
    def __init__(self, fills: bool = False) -> None:
        self.contracts = {c["symbol"]: c for c in (
            contract(), contract("ETH_USDT", contractSize=0.01, priceUnit=0.01, maxLeverage=200))}
        self.fills = fills
        self.not_allowed: set[str] = set()
        self.rate_limited: set[str] = set()
        self.enforce_rate_limits = False
        self.over_limit: dict[str, int] = defaultdict(int)
        self._recent: dict[str, collections.deque[int]] = defaultdict(collections.deque)  # route -> request ms
        self.orders: list[dict[str, Any]] = []
        self.positions: list[dict[str, Any]] = []
        self.stop_orders: list[dict[str, Any]] = []
        self.leverage_calls: list[dict[str, Any]] = []
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.calls: dict[str, int] = defaultdict(int)
        self.rejected_signatures = 0
        self.server_offset_ms = 0
        self.order_stamp_lag_ms = 0
        self.clock_ms: Callable[[], int] | None = None
        self.recv_window_ms = 10_000
        self.held = 0
        self.process_abandoned = False  # True: a hold_before request is processed after its client gave up
        self._abandoned: set[asyncio.Future[web.StreamResponse]] = set()
        self.lookup_not_found = "null"  # "null" -> data null; "2040" -> error envelope
        self.dedupe_external_oid = False
        self.dedupe_code = 603
        self._ids = itertools.count(FIRST_ORDER_ID)
        self._position_ids = itertools.count(FIRST_POSITION_ID)
        self._deal_ids = itertools.count(FIRST_DEAL_ID)
        self._release = asyncio.Event()
        # market + account state
        self.prices: dict[str, Decimal] = {"BTC_USDT": Decimal("60000.5"), "ETH_USDT": Decimal(3000)}
        self.fair: dict[str, Decimal] = {"BTC_USDT": Decimal("60001.1"), "ETH_USDT": Decimal(3000)}
        self.index: dict[str, Decimal] = {"BTC_USDT": Decimal("60000.9"), "ETH_USDT": Decimal(3000)}
        self.volume24: dict[str, Decimal] = defaultdict(lambda: Decimal(1_000_000))
        self.move_volume = Decimal(10_000)  # contracts added to volume24 per price step (scaled by the move)
        self.liq_fee_rate = Decimal(0)
        self.partial_fill_vol: int | Decimal | None = None  # None: whole fills; N: at most N contracts a step
        self.market_remainder = "rest"  # a market order's unfilled rest: "rest" (next price steps) | "cancel"
        self.cash = START_CASH
        self.deals: list[dict[str, Any]] = []
        self.liquidations: list[dict[str, Any]] = []
        self.closed_positions: list[dict[str, Any]] = []
        self.peak_hold_vol: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
        self._live: dict[tuple[str, int], dict[str, Any]] = {}
        # 1-minute candles per symbol: (open time s, open, high, low, close, vol), ascending; `kline` serves them
        self.klines: dict[str, list[tuple[int, float, float, float, float, float]]] = {
            "BTC_USDT": [(1700000000, 1, 2, 1, 2, 10), (1700000060, 2, 3, 2, 3, 11)]}
        # websocket
        self.ws_clients: set[web.WebSocketResponse] = set()
        self.ws_logged_in: set[web.WebSocketResponse] = set()
        self.subscriptions = subs.Subscriptions()  # public channels per socket, as MEXC routes them
        self.ws_connects = 0
        self.ws_stalled = False
        self.ws_stall_pushes = False
        self.push_loss = False
        self.push_delay_s = 0.0
        self.private_pushes: list[dict[str, Any]] = []
        self.ws_received: list[dict[str, Any]] = []
        self.ws_changed = asyncio.Condition()
        self._outbox: asyncio.Queue[tuple[dict[str, Any], float]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._waiters: set[asyncio.Event] = set()
        self.app = web.Application(middlewares=[self._middleware])
        self._routes()
        self._runner: web.AppRunner | None = None
        self.url = self.ws_url = ""

    # --- life ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/edge"
        self._sender = asyncio.create_task(self._send_pushes())

    async def stop(self) -> None:
        self._release.set()
        for held in list(self._abandoned):
            held.cancel()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        for ws in list(self.ws_clients):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def fault(self, route: str, kind: str, code: int = 0, message: str = "", times: int = 1,
              hold_s: float = 0.0) -> None:
        self.faults[route].extend(Fault(kind, code, message, hold_s) for _ in range(times))

    def now_ms(self) -> int:
        base = self.clock_ms() if self.clock_ms is not None else int(time.time() * 1000)
        return base + self.server_offset_ms

    def orders_with(self, external_oid: str) -> list[dict[str, Any]]:
        return [o for o in self.orders if o["externalOid"] == external_oid]

    def position(self, symbol: str, position_type: int) -> dict[str, Any] | None:
        p = self._live.get((symbol, position_type))
        return self._public_position(p) if p is not None else None

    def _changed(self) -> None:
        for ev in self._waiters:
            ev.set()

    async def wait_until(self, predicate: Callable[[FakeMexc], bool], timeout: float = 5.0) -> None:
        """Wait (event-driven: woken by every fake state change) until `predicate(self)` is true."""
        async def _wait() -> None:
            while not predicate(self):
                ev = asyncio.Event()
                self._waiters.add(ev)
                try:
                    await ev.wait()
                finally:
                    self._waiters.discard(ev)
        await asyncio.wait_for(_wait(), timeout)

    # --- middleware: auth + faults ------------------------------------------------------------

    def _check_auth(self, request: web.Request, body: str) -> web.Response | None:
        key = request.headers.get("ApiKey")
        req_time, sig = request.headers.get("Request-Time", ""), request.headers.get("Signature", "")
        if request.method == "GET":
            raw = request.rel_url.raw_query_string
            pairs = sorted(parse_qsl(raw, keep_blank_values=True))
            canonical = "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs)
            if raw != canonical:
                self.rejected_signatures += 1
                return _err(602, "Signature verification failed!")
            payload = raw
        else:
            payload = body
        want = hmac.new(SECRET.encode(), f"{API_KEY}{req_time}{payload}".encode(), hashlib.sha256).hexdigest()
        if key != API_KEY or not hmac.compare_digest(sig, want):
            self.rejected_signatures += 1
            return _err(602, "Signature verification failed!")
        return self._check_window(request)

    def _check_window(self, request: web.Request) -> web.Response | None:
        req_time = request.headers.get("Request-Time", "")
        if not req_time.isdigit() or abs(int(req_time) - self.now_ms()) > self.recv_window_ms:
            return _err(513, "Invalid request(Request-Time more than 10 seconds different from the server time)")
        return None

    async def _hold(self, seconds: float) -> None:
        self.held += 1
        self._changed()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), seconds)
        finally:
            self.held -= 1
            self._changed()

    async def _apply(self, fault: Fault, request: web.Request) -> web.StreamResponse:
        if fault.kind.endswith("_after") and not fault.kind.startswith(("hang", "drop", "hold")):
            fault = Fault(fault.kind.removesuffix("_after"), fault.code, fault.message, fault.hold_s)
        if fault.kind == "http500":
            return web.Response(status=500, text="Internal Server Error")
        if fault.kind == "http503":
            return web.Response(status=503, text=HTML_503, content_type="text/html")
        if fault.kind == "html":
            return web.Response(status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                                content_type="text/html")
        if fault.kind == "nonjson":
            return web.Response(status=200, text="upstream timeout, try later", content_type="text/plain")
        if fault.kind == "empty":
            return web.Response(status=200, text="")
        if fault.kind == "code":
            return _err(fault.code, fault.message or f"error {fault.code}")
        if fault.kind.startswith("hang"):
            await self._release.wait()
            return web.Response(status=504)
        assert fault.kind.startswith("drop"), fault.kind
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=500)

    def _over_limit(self, route: str) -> bool:
        """MEXC's per-endpoint limit, a sliding window on the fake's clock (mexc.md 1.3)."""
        allowed, window_ms = (1, 5_000) if route == "detail" else (20, 2_000)
        now, recent = self.now_ms(), self._recent[route]
        while recent and recent[0] <= now - window_ms:
            recent.popleft()
        if len(recent) >= allowed:
            return True
        recent.append(now)
        return False

    async def _held_request(self, fault: Fault, request: web.Request, handler: Any,
                            private: bool) -> web.StreamResponse:
        await self._hold(fault.hold_s)
        refused = self._check_window(request) if private else None
        if refused is not None:
            return refused
        return await handler(request)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.name or ""
        self.calls[route] += 1
        if self.enforce_rate_limits and self._over_limit(route):
            self.over_limit[route] += 1
            return _err(510, "Requests are too frequent!")
        body = await request.text() if request.method == "POST" else ""
        request[BODY] = body
        private = request.path.startswith("/api/v1/private/")
        if private:
            refused = self._check_auth(request, body)
            if refused is not None:
                return refused
        fault = self.faults[route].pop(0) if self.faults.get(route) else None
        if fault is not None and fault.kind == "hold_before":
            if not self.process_abandoned:
                return await self._held_request(fault, request, handler, private)
            held = asyncio.ensure_future(self._held_request(fault, request, handler, private))
            self._abandoned.add(held)  # processed even if the client gives up on it (MEXC cannot tell)
            held.add_done_callback(self._abandoned.discard)
            return await asyncio.shield(held)
        if fault is not None and fault.kind == "hold_after":
            response = await handler(request)
            await self._hold(fault.hold_s)
            return response
        if fault is not None and not fault.kind.endswith("_after"):
            return await self._apply(fault, request)
        response = await handler(request)
        if fault is not None:
            return await self._apply(fault, request)
        return response

    # --- REST routes --------------------------------------------------------------------------

    def _routes(self) -> None:
        router = self.app.router

        class _R:  # wraps plain lambdas as coroutine handlers (aiohttp deprecates sync handlers)
            @staticmethod
            def add_get(path: str, fn: Any, name: str) -> None:
                router.add_get(path, fn if asyncio.iscoroutinefunction(fn) else _asyncify(fn), name=name)

            @staticmethod
            def add_post(path: str, fn: Any, name: str) -> None:
                router.add_post(path, fn, name=name)

        r = _R()
        pub, prv = "/api/v1/contract", "/api/v1/private"
        r.add_get(f"{pub}/ping", lambda q: _ok(self.now_ms()), name="ping")
        r.add_get(f"{pub}/detail", self._detail, name="detail")
        r.add_get(f"{pub}/ticker", self._ticker, name="ticker")
        r.add_get(f"{pub}/fair_price/{{symbol}}", lambda q: _ok({
            "symbol": q.match_info["symbol"], "fairPrice": _out(self._fair(q.match_info["symbol"])),
            "timestamp": self.now_ms()}), name="fair")
        r.add_get(f"{pub}/index_price/{{symbol}}", lambda q: _ok({
            "symbol": q.match_info["symbol"], "indexPrice": _out(self.index.get(q.match_info["symbol"],
                                                                                self._last(q.match_info["symbol"]))),
            "timestamp": self.now_ms()}), name="index")
        r.add_get(f"{pub}/depth/{{symbol}}", self._depth, name="depth")
        r.add_get(f"{pub}/kline/{{symbol}}", self._kline, name="kline")
        r.add_get(f"{pub}/funding_rate/{{symbol}}", lambda q: _ok({
            "symbol": q.match_info["symbol"], "fundingRate": 0.0001, "nextSettleTime": 1700028800000}), name="funding")
        r.add_get(f"{prv}/account/assets", lambda q: _ok([self._asset()]), name="assets")
        r.add_get(f"{prv}/position/open_positions", self._open_positions, name="positions")
        r.add_get(f"{prv}/order/list/open_orders/{{symbol}}", self._open_orders, name="open_orders")
        r.add_get(f"{prv}/order/list/history_orders", self._history_orders, name="history_orders")
        r.add_get(f"{prv}/order/list/order_deals", self._order_deals, name="order_deals")
        r.add_get(f"{prv}/order/deal_details/{{order_id}}", self._deal_details, name="deal_details")
        r.add_post(f"{prv}/order/create", self._create, name="create")
        r.add_post(f"{prv}/order/cancel", self._cancel, name="cancel")
        r.add_post(f"{prv}/order/cancel_with_external", self._cancel_external, name="cancel_external")
        r.add_get(f"{prv}/order/get/{{order_id}}", self._get, name="get")
        r.add_get(f"{prv}/order/external/{{symbol}}/{{oid}}", self._external, name="external")
        r.add_post(f"{prv}/position/change_leverage", self._leverage, name="leverage")
        r.add_get(f"{prv}/stoporder/list/orders", lambda q: _ok(self.stop_orders), name="stop_orders")
        r.add_post(f"{prv}/stoporder/change_plan_price", self._stop_change, name="stop_change")
        r.add_get("/edge", self._ws, name="ws")

    def _last(self, symbol: str) -> Decimal:
        return self.prices.get(symbol, Decimal("60000.5"))

    def _fair(self, symbol: str) -> Decimal:
        return self.fair.get(symbol, self._last(symbol))

    def _unit(self, symbol: str) -> Decimal:
        return _d(self.contracts.get(symbol, contract(symbol))["priceUnit"])

    def _ticker_for(self, symbol: str) -> dict[str, Any]:
        last, unit = self._last(symbol), self._unit(symbol)
        hold = sum((p["holdVol"] for (s, _), p in self._live.items() if s == symbol), Decimal(0))
        return {"symbol": symbol, "lastPrice": _out(last), "bid1": _out(last - unit), "ask1": _out(last + unit),
                "fairPrice": _out(self._fair(symbol)), "indexPrice": _out(self.index.get(symbol, last)),
                "fundingRate": 0.0001, "volume24": _out(self.volume24[symbol]),
                "amount24": _out(self.volume24[symbol] * last), "holdVol": _out(hold), "timestamp": self.now_ms()}

    async def _ticker(self, request: web.Request) -> web.Response:
        sym = request.query.get("symbol")
        return _ok(self._ticker_for(sym) if sym else [self._ticker_for(s) for s in self.contracts])

    async def _depth(self, request: web.Request) -> web.Response:
        sym = request.match_info["symbol"]
        last, unit = self._last(sym), self._unit(sym)
        return web.json_response({"asks": [[_out(last + unit), 10, 1]], "bids": [[_out(last - unit), 12, 2]],
                                  "version": 5})

    async def _detail(self, request: web.Request) -> web.Response:
        sym = request.query.get("symbol")
        if sym is None:
            return _ok(list(self.contracts.values()))
        return _ok(self.contracts[sym]) if sym in self.contracts else _err(1001, "contract not exists")

    def _asset(self) -> dict[str, Any]:
        if not self.fills:
            return {"currency": "USDT", "cashBalance": 1000.5, "positionMargin": 100, "frozenBalance": 10,
                    "availableBalance": 890.5, "unrealized": 5.25, "equity": 1005.75}
        margin = sum((p["im"] for p in self._live.values()), Decimal(0))
        frozen = sum((self._order_margin(o) for o in self.orders
                      if o.get("_engine") and o["state"] in (1, 2) and o["side"] in (1, 3)), Decimal(0))
        unreal = sum((self._unrealized(p) for p in self._live.values()), Decimal(0))
        return {"currency": "USDT", "cashBalance": _out(self.cash), "positionMargin": _out(margin),
                "frozenBalance": _out(frozen), "availableBalance": _out(self.cash - margin - frozen),
                "unrealized": _out(unreal), "equity": _out(self.cash + unreal), "bonus": 0}

    def _cs(self, symbol: str) -> Decimal:
        return _d(self.contracts.get(symbol, contract(symbol))["contractSize"])

    def _order_margin(self, o: dict[str, Any]) -> Decimal:
        left = _d(o["vol"]) - _d(o["dealVol"])
        return left * self._cs(o["symbol"]) * _d(o["price"] or 0) / _d(o["leverage"] or 1)

    def _unrealized(self, p: dict[str, Any]) -> Decimal:
        diff = self._fair(p["symbol"]) - p["holdAvgPrice"]
        return diff * p["holdVol"] * self._cs(p["symbol"]) * (1 if p["positionType"] == 1 else -1)

    async def _open_positions(self, request: web.Request) -> web.Response:
        sym = request.query.get("symbol")
        live = [self._public_position(p) for p in self._live.values()]
        return _ok([p for p in live + self.positions if sym is None or p.get("symbol") == sym])

    # --- orders ---------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        body = json.loads(request[BODY])
        sym = body.get("symbol")
        if sym in self.not_allowed:
            return _err(1002, "Contract not allow place order!")
        if sym in self.rate_limited:
            return _err(510, "Requests are too frequent!")
        ext = body.get("externalOid", "")
        used = any(o["symbol"] == sym and o["externalOid"] == ext for o in self.orders)
        if self.dedupe_external_oid and ext and used:
            return _err(self.dedupe_code, "repeated request: externalOid already used")
        side, ptype = body["side"], 2 if body["side"] in (2, 3) else 1
        pos = self._live.get((sym, ptype))
        if self.fills and side in (2, 4) and pos is None:
            return _err(2009, "position not exist")
        oid, now = next(self._ids), self.now_ms()
        leverage = body.get("leverage", 1) if pos is None else _out(pos["leverage"])
        order = {"orderId": oid, "symbol": sym, "externalOid": ext, "vol": body["vol"], "side": side,
                 "orderType": body["type"], "openType": body["openType"], "leverage": leverage,
                 "price": body.get("price", 0), "state": 2, "dealVol": 0, "positionId": body.get("positionId", 0),
                 "createTime": now, "updateTime": now, "raw": request[BODY]}
        if self.fills:
            order.update(_engine=True, category=1, dealAvgPrice=0, remainVol=body["vol"], takerFee=0, makerFee=0,
                         profit=0, feeCurrency="USDT", errorCode=0, orderMargin=0, usedMargin=0, version=1,
                         positionId=pos["positionId"] if pos is not None else 0,
                         stopLossPrice=body.get("stopLossPrice", 0), takeProfitPrice=body.get("takeProfitPrice", 0))
        self.orders.append(order)
        if self.fills:
            self._emit("push.personal.order", self._public_order(order))
            self._on_new_order(order)
            self._refresh_frozen(sym)
        self._changed()
        return _ok({"orderId": str(oid), "ts": self.now_ms()})

    def _marketable(self, o: dict[str, Any]) -> bool:
        last, price = self._last(o["symbol"]), _d(o["price"] or 0)
        return last <= price if _buys(o["side"]) else last >= price

    def _step_cap(self, o: dict[str, Any]) -> Decimal | None:
        """The most one matching step fills of `o` (None: all of it); a FOK fills whole or not at all."""
        if self.partial_fill_vol is None or o["orderType"] == 4:
            return None
        return _d(self.partial_fill_vol)

    def _unfilled(self, o: dict[str, Any]) -> tuple[int, int]:
        """(state, errorCode) of `o` after a matching step left part of it unfilled."""
        if o["orderType"] == 3:
            return 4, 18  # IOC: the rest cancelled
        if o["orderType"] in (5, 6) and self.market_remainder == "cancel":
            return 4, 21  # market cancel: state 4 with dealVol > 0
        return 2, 0  # rests: a limit at its price, a market order's rest on the next price steps

    def _match(self, o: dict[str, Any], price: Decimal, taker: bool) -> None:
        """One matching step of `o` at `price` (at most `partial_fill_vol` contracts)."""
        self._fill(o, price, taker=taker, cap=self._step_cap(o))

    def _on_new_order(self, o: dict[str, Any]) -> None:
        kind = o["orderType"]
        if kind in (5, 6) or (kind in (1, 3, 4) and self._marketable(o)):
            self._match(o, self._last(o["symbol"]), taker=True)
        elif kind == 2 and self._marketable(o):
            self._finish(o, 4, error=20)
        elif kind in (3, 4):
            self._finish(o, 4, error=18 if kind == 3 else 19)

    def _finish(self, o: dict[str, Any], state: int, error: int = 0) -> None:
        o.update(state=state, errorCode=error, updateTime=self.now_ms() + self.order_stamp_lag_ms,
                 version=o.get("version", 0) + 1)
        o["remainVol"] = _out(_d(o["vol"]) - _d(o["dealVol"])) if state in (1, 2) else 0
        self._emit("push.personal.order", self._public_order(o))
        self._emit_asset()

    def _new_position(self, symbol: str, ptype: int, leverage: Decimal) -> dict[str, Any]:
        now = self.now_ms()
        p = {"positionId": next(self._position_ids), "symbol": symbol, "positionType": ptype, "openType": 1,
             "state": 1, "holdVol": Decimal(0), "frozenVol": Decimal(0), "closeVol": Decimal(0),
             "holdAvgPrice": Decimal(0), "openAvgPrice": Decimal(0), "closeAvgPrice": Decimal(0),
             "liquidatePrice": Decimal(0), "im": Decimal(0), "oim": Decimal(0), "holdFee": Decimal(0),
             "realised": Decimal(0), "leverage": leverage, "adlLevel": 1, "autoAddIm": False,
             "createTime": now, "updateTime": now}
        self._live[(symbol, ptype)] = p
        return p

    def _reprice(self, p: dict[str, Any]) -> None:
        c = self.contracts.get(p["symbol"], contract(p["symbol"]))
        if p["holdVol"] > 0:
            p["im"] = p["holdVol"] * self._cs(p["symbol"]) * p["holdAvgPrice"] / p["leverage"]
            mmr = mmr_for(c, p["holdVol"])
            p["liquidatePrice"] = liquidation_price(p["positionType"], p["holdAvgPrice"], p["leverage"], mmr,
                                                    self.liq_fee_rate)
        else:
            p["im"] = Decimal(0)
        p["frozenVol"] = sum((_d(o["vol"]) - _d(o["dealVol"]) for o in self._resting(p["symbol"])
                              if o["side"] == (4 if p["positionType"] == 1 else 2)), Decimal(0))
        p["updateTime"] = self.now_ms()

    def _resting(self, symbol: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.orders if o.get("_engine") and o["state"] in (1, 2)
                and (symbol is None or o["symbol"] == symbol)]

    def _fill(self, o: dict[str, Any], price: Decimal, taker: bool, profit_override: Decimal | None = None,
              cap: Decimal | None = None) -> None:
        """Fill `o` at `price`: all that is left of it (a close: at most the position), or at most `cap`
        contracts. Pushes deal, position, order (state 3 when complete, else `_unfilled`), asset."""
        sym, side = o["symbol"], o["side"]
        ptype, opening, cs = 1 if side in (1, 4) else 2, side in (1, 3), self._cs(sym)
        c = self.contracts.get(sym, contract(sym))
        pos = self._live.get((sym, ptype))
        remaining = _d(o["vol"]) - _d(o["dealVol"])
        if not opening and pos is None:
            self._finish(o, 4, error=3)  # position missing
            return
        if opening and pos is None:
            pos = self._new_position(sym, ptype, _d(o["leverage"] or 1))
        assert pos is not None
        qty = remaining if opening else min(remaining, pos["holdVol"])
        if cap is not None:
            qty = min(qty, cap)
        rate = _d(c["takerFeeRate"] if taker else c["makerFeeRate"])
        fee = Decimal(0) if profit_override is not None else qty * cs * price * rate
        if opening:
            hold = pos["holdVol"] + qty
            pos["holdAvgPrice"] = (pos["holdAvgPrice"] * pos["holdVol"] + price * qty) / hold
            pos["openAvgPrice"] = pos["holdAvgPrice"]
            pos["holdVol"], profit = hold, Decimal(0)
            if pos["oim"] == 0:
                pos["oim"] = hold * cs * pos["holdAvgPrice"] / pos["leverage"]
        else:
            sign = 1 if ptype == 1 else -1
            profit = profit_override if profit_override is not None else (price - pos["holdAvgPrice"]) * qty * cs * sign
            closed = pos["closeVol"] + qty
            pos["closeAvgPrice"] = (pos["closeAvgPrice"] * pos["closeVol"] + price * qty) / closed
            pos["closeVol"], pos["holdVol"] = closed, pos["holdVol"] - qty
        pos["realised"] += profit - fee
        self.cash += profit - fee
        dealt = _d(o["dealVol"]) + qty
        avg = (_d(o.get("dealAvgPrice", 0)) * _d(o["dealVol"]) + price * qty) / dealt
        fee_key = "takerFee" if taker else "makerFee"
        o.update(dealVol=_out(dealt), dealAvgPrice=_out(avg), positionId=pos["positionId"],
                 profit=_out(_d(o.get("profit", 0)) + profit), **{fee_key: _out(_d(o.get(fee_key, 0)) + fee)})
        deal = {"id": next(self._deal_ids), "symbol": sym, "side": side, "vol": _out(qty), "price": _out(price),
                "fee": _out(fee), "feeCurrency": "USDT", "profit": _out(profit), "taker": taker,
                "category": o.get("category", 1), "orderId": o["orderId"], "positionMode": 1,
                "timestamp": self.now_ms()}
        if o["externalOid"]:
            deal["externalOid"] = o["externalOid"]
        self.deals.append(deal)
        self._emit("push.personal.order.deal", deal)
        key = (sym, ptype)
        self.peak_hold_vol[key] = max(self.peak_hold_vol[key], pos["holdVol"])
        if pos["holdVol"] == 0:
            pos["state"] = 3
            del self._live[key]
        # a reduce-only close larger than the position completes with dealVol = holdVol
        complete = dealt >= _d(o["vol"]) or pos["state"] == 3
        state, error = (3, 0) if complete else self._unfilled(o)
        o["state"] = state  # before the position snapshot, so frozenVol counts only what still rests
        self._reprice(pos)
        public = self._public_position(pos)
        if pos["state"] == 3:
            self.closed_positions.append(public)
        self._emit("push.personal.position", public)
        self._finish(o, state, error)
        self._changed()

    def _public_order(self, o: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in o.items() if k != "raw" and not k.startswith("_")}

    def _public_position(self, p: dict[str, Any]) -> dict[str, Any]:
        return {k: _out(v) if isinstance(v, Decimal) else v for k, v in p.items()}

    async def _open_orders(self, request: web.Request) -> web.Response:
        sym = request.match_info["symbol"]
        return _ok([self._public_order(o) for o in self.orders if o["symbol"] == sym and o["state"] in (1, 2)])

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        num, size = int(request.query.get("page_num", 1)), int(request.query.get("page_size", 20))
        return items[(num - 1) * size: num * size]

    async def _history_orders(self, request: web.Request) -> web.Response:
        sym, states = request.query.get("symbol"), request.query.get("states")
        wanted = {int(s) for s in states.split(",")} if states else None
        found = [self._public_order(o) for o in reversed(self.orders)
                 if (sym is None or o["symbol"] == sym) and (wanted is None or o["state"] in wanted)]
        return _ok(self._page(request, found))

    async def _order_deals(self, request: web.Request) -> web.Response:
        sym = request.query.get("symbol")
        return _ok(self._page(request, [d for d in reversed(self.deals) if sym is None or d["symbol"] == sym]))

    async def _deal_details(self, request: web.Request) -> web.Response:
        oid = request.match_info["order_id"]
        if not any(str(o["orderId"]) == oid for o in self.orders):
            return _err(2040, "order not exists")
        return _ok([d for d in self.deals if str(d["orderId"]) == oid])

    async def _external(self, request: web.Request) -> web.Response:
        found = [o for o in self.orders
                 if o["symbol"] == request.match_info["symbol"] and o["externalOid"] == request.match_info["oid"]]
        if found:
            return _ok(self._public_order(found[0]))
        return _ok(None) if self.lookup_not_found == "null" else _err(2040, "order not exists")

    async def _get(self, request: web.Request) -> web.Response:
        found = [o for o in self.orders if str(o["orderId"]) == request.match_info["order_id"]]
        return _ok(self._public_order(found[0])) if found else _err(2040, "order not exists")

    def _cancel_one(self, o: dict[str, Any]) -> int:
        """Cancel `o`; returns the per-order error code (0, or 2041 when it is no longer live)."""
        if not o.get("_engine"):
            o["state"] = 4  # legacy behaviour: any stored order becomes cancelled
            return 0
        if o["state"] not in (1, 2):
            return 2041
        self._finish(o, 4)
        self._refresh_frozen(o["symbol"])
        self._changed()
        return 0

    def _refresh_frozen(self, symbol: str) -> None:
        for (s, _), p in self._live.items():
            if s == symbol:
                self._reprice(p)

    async def _cancel(self, request: web.Request) -> web.Response:
        ids = json.loads(request[BODY])
        out = []
        for i in ids:
            hit = [o for o in self.orders if o["orderId"] == i]
            code = max((self._cancel_one(o) for o in hit), default=2040)
            msg = {0: "", 2040: "order not exists", 2041: "order state cannot be cancelled"}[code]
            out.append({"orderId": i, "errorCode": code, "errorMsg": msg})
        return _ok(out)

    async def _cancel_external(self, request: web.Request) -> web.Response:
        body = json.loads(request[BODY])
        hit = [o for o in self.orders if o["symbol"] == body["symbol"] and o["externalOid"] == body["externalOid"]]
        if not hit:
            return _err(2040, "order not exists")
        codes = [self._cancel_one(o) for o in hit]
        return _ok(None) if 0 in codes else _err(2041, "order state cannot be cancelled")

    async def _leverage(self, request: web.Request) -> web.Response:
        self.leverage_calls.append(json.loads(request[BODY]))
        return _ok(None)

    async def _stop_change(self, request: web.Request) -> web.Response:
        body = json.loads(request[BODY])
        for s in self.stop_orders:
            if s["id"] == body["stopPlanOrderId"]:
                s.update(stopLossPrice=body.get("stopLossPrice"), takeProfitPrice=body.get("takeProfitPrice"))
                return _ok(None)
        return _err(5001, "stop order not found")

    async def _kline(self, request: web.Request) -> web.Response:
        """`contract/kline`: column arrays, at most 2000 bars; start/end in s as MEXC reads them (mexc.md 3)."""
        bars = self.klines.get(request.match_info["symbol"], [])
        start, end = request.query.get("start"), request.query.get("end")
        if start:
            bars = [b for b in bars if b[0] >= int(start)]
        if end:
            bars = [b for b in bars if b[0] <= int(end)]
        bars = bars[:2000] if start or not end else bars[-2000:]
        cols = list(zip(*bars)) or [(), (), (), (), (), ()]
        return _ok({"time": list(cols[0]), "open": list(cols[1]), "high": list(cols[2]), "low": list(cols[3]),
                    "close": list(cols[4]), "vol": list(cols[5]), "amount": [v * c for v, c in zip(cols[5], cols[4])]})

    async def push_kline(self, symbol: str, t_s: int, o: float, h: float, lo: float, c: float, q: float) -> None:
        """The candle in progress of window `t_s` (as MEXC repeats it on `push.kline`), also kept for `kline`."""
        bars = self.klines.setdefault(symbol, [])
        if bars and bars[-1][0] == t_s:
            bars[-1] = (t_s, o, h, lo, c, q)
        else:
            bars.append((t_s, o, h, lo, c, q))
        await self.push({"channel": "push.kline", "symbol": symbol, "ts": self.now_ms(),
                         "data": {"symbol": symbol, "interval": "Min1", "t": t_s, "o": o, "h": h, "l": lo, "c": c,
                                  "q": q, "a": q * c}})

    # --- prices, limit fills, liquidation -------------------------------------------------------

    def set_price(self, symbol: str, price: Any, fair: Any = None) -> None:
        """Move last/index (and fair, = price unless given) price; fills crossed limits, liquidates."""
        old, new = self._last(symbol), _d(price)
        self.prices[symbol], self.index[symbol] = new, new
        self.fair[symbol] = _d(fair) if fair is not None else new
        if old > 0 and new != old:
            self.volume24[symbol] += (self.move_volume * (1 + abs(new - old) / old * 100)).to_integral_value()
        self._match_limits(symbol)
        self._check_liquidations(symbol)
        self._changed()

    def gap(self, symbol: str, price: Any) -> None:
        """Jump straight to `price` (no intermediate prints)."""
        self.set_price(symbol, price)

    async def ramp(self, symbol: str, to_price: Any, seconds: float = 1.0, steps: int = 10) -> None:
        """Move linearly to `to_price` in `steps` prices spread over `seconds`."""
        start, end = self._last(symbol), _d(to_price)
        unit = self._unit(symbol)
        for i in range(1, steps + 1):
            px = end if i == steps else (start + (end - start) * i / steps).quantize(unit)
            self.set_price(symbol, px)
            await asyncio.sleep(seconds / steps)

    async def spike(self, symbol: str, peak: Any, seconds: float = 1.0, steps: int = 10, back_to: Any = None) -> None:
        """Ramp to `peak` in half the time, then back to `back_to` (default: the starting price)."""
        start = self._last(symbol)
        up = max(steps // 2, 1)
        await self.ramp(symbol, peak, seconds / 2, up)
        await self.ramp(symbol, start if back_to is None else back_to, seconds / 2, max(steps - up, 1))

    def _match_limits(self, symbol: str) -> None:
        for o in self._resting(symbol):
            if o["state"] not in (1, 2):
                continue  # finished by an earlier fill of this step (a close that ran out of position)
            if o["orderType"] in (1, 2) and self._marketable(o):
                self._match(o, _d(o["price"]), taker=False)
            elif o["orderType"] in (5, 6):  # a market order's unfilled rest (partial_fill_vol)
                self._match(o, self._last(symbol), taker=True)

    def _check_liquidations(self, symbol: str) -> None:
        fair = self._fair(symbol)
        for ptype in (1, 2):
            p = self._live.get((symbol, ptype))
            if p is None:
                continue
            liq = p["liquidatePrice"]
            if (ptype == 1 and fair <= liq) or (ptype == 2 and fair >= liq):
                self._liquidate(p, fair)

    def _liquidate(self, p: dict[str, Any], fair: Decimal) -> None:
        sym, ptype, now = p["symbol"], p["positionType"], self.now_ms()
        side = 4 if ptype == 1 else 2
        for o in self._resting(sym):
            if o["side"] == side:
                self._finish(o, 4, error=5)  # position liquidated
        hold, im, liq = p["holdVol"], p["im"], p["liquidatePrice"]
        oid = next(self._ids)
        order = {"orderId": oid, "symbol": sym, "externalOid": "", "vol": _out(hold), "side": side, "orderType": 5,
                 "openType": 1, "leverage": _out(p["leverage"]), "price": _out(liq), "state": 2, "dealVol": 0,
                 "positionId": p["positionId"], "createTime": now, "updateTime": now, "raw": "", "_engine": True,
                 "category": 2, "dealAvgPrice": 0, "remainVol": _out(hold), "takerFee": 0, "makerFee": 0, "profit": 0,
                 "feeCurrency": "USDT", "errorCode": 0, "orderMargin": 0, "usedMargin": 0, "version": 1}
        self.orders.append(order)
        self._emit("push.personal.order", self._public_order(order))
        self._fill(order, liq, taker=True, profit_override=-im)  # the isolated margin is lost
        self.liquidations.append({"symbol": sym, "positionType": ptype, "positionId": p["positionId"],
                                  "holdVol": _out(hold), "holdAvgPrice": _out(p["holdAvgPrice"]),
                                  "liquidatePrice": _out(liq), "fairPrice": _out(fair), "im": _out(im),
                                  "orderId": oid, "timestamp": now})
        self._changed()

    # --- WebSocket ----------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.ws_clients.add(ws)
        self.ws_connects += 1
        await self._notify()
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._ws_message(ws, json.loads(msg.data))
        finally:
            self.ws_clients.discard(ws)
            self.ws_logged_in.discard(ws)
            self.subscriptions.drop(ws)
            await self._notify()
        return ws

    async def _notify(self) -> None:
        self._changed()
        async with self.ws_changed:
            self.ws_changed.notify_all()

    async def _ws_message(self, ws: web.WebSocketResponse, msg: dict[str, Any]) -> None:
        self.ws_received.append(msg)
        method = str(msg.get("method", ""))
        # a stalled server reads nothing: a subscription sent meanwhile is lost, as its reply is
        subscribing = not self.ws_stalled and self.subscriptions.apply(ws, method, msg.get("param"))
        await self._notify()
        if self.ws_stalled:
            return
        if method == "ping":
            await ws.send_str(json.dumps({"channel": "pong", "data": self.now_ms()}))
        elif subscribing:
            await ws.send_str(json.dumps({"channel": "rs." + method, "data": "success", "ts": self.now_ms()}))
        elif method == "login":
            p = msg.get("param", {})
            want = hmac.new(SECRET.encode(), f"{API_KEY}{p.get('reqTime')}".encode(), hashlib.sha256).hexdigest()
            ok = p.get("apiKey") == API_KEY and hmac.compare_digest(str(p.get("signature")), want)
            if ok and p.get("subscribe", True) is not False:
                self.ws_logged_in.add(ws)
            answer = "success" if ok else "signature verification failed"
            await ws.send_str(json.dumps({"channel": "rs.login", "data": answer}))
            await self._notify()

    async def push(self, frame: dict[str, Any] | str | bytes) -> None:
        """Send a frame (bytes = binary frame) to the sockets MEXC would send it to; nothing while stalled.

        A public push goes to the sockets subscribed to its channel and symbol, a ``push.personal.*`` one to
        the logged-in sockets, a frame with nothing to route by to every socket (see the module docstring)."""
        if self.ws_stalled or self.ws_stall_pushes:
            return
        for ws in self._recipients(frame):
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))

    def _recipients(self, frame: dict[str, Any] | str | bytes) -> list[web.WebSocketResponse]:
        sockets = [w for w in self.ws_clients if not w.closed]
        msg = subs.read_frame(frame)
        channel = msg.get("channel") if msg is not None else None
        if msg is None or not isinstance(channel, str) or not channel.startswith("push."):
            return sockets
        if channel.startswith(subs.PRIVATE_PREFIX):
            return [w for w in sockets if w in self.ws_logged_in]
        return [w for w in sockets if self.subscriptions.wants(w, msg)]

    async def wait_subscribed(self, channel: str, symbol: str | None = None, timeout: float = 5.0) -> None:
        """Wait (event-driven) until an open socket is subscribed to `channel` (``"push.deal"``, ``"deal"`` or
        ``"sub.deal"``) for `symbol` (None: a symbol-less channel such as ``push.tickers``).

        Raises:
            TimeoutError: not subscribed within `timeout` s; the message names what is subscribed.
        """
        try:
            await self.wait_ws(lambda f: any(not w.closed for w in f.subscriptions.holders(channel, symbol)), timeout)
        except TimeoutError:
            raise TimeoutError(f"no socket subscribed to {subs.push_channel(channel)} {symbol or ''} within {timeout:g} s"
                               f" (subscribed: {self.subscriptions.describe()})") from None

    def _emit(self, channel: str, data: dict[str, Any]) -> None:
        """Queue a private push (order preserved; dropped at once under `push_loss`)."""
        if not self.push_loss:
            due = asyncio.get_running_loop().time() + self.push_delay_s
            self._outbox.put_nowait(({"channel": channel, "data": data, "ts": self.now_ms()}, due))

    def _emit_asset(self) -> None:
        a = self._asset()
        self._emit("push.personal.asset", {k: a[k] for k in ("currency", "positionMargin", "availableBalance",
                                                             "frozenBalance", "cashBalance", "bonus")})

    async def _send_pushes(self) -> None:
        while True:
            frame, due = await self._outbox.get()
            try:  # each push is late by push_delay_s from when it happened, order kept
                wait = due - asyncio.get_running_loop().time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not (self.ws_stalled or self.ws_stall_pushes):
                    text = json.dumps(frame)
                    for ws in [w for w in self.ws_logged_in if w in self.ws_clients and not w.closed]:
                        with contextlib.suppress(ConnectionError, RuntimeError):
                            await ws.send_str(text)
                    self.private_pushes.append(frame)
            finally:
                self._outbox.task_done()
                self._changed()

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until every queued private push has been delivered (or dropped by a stall)."""
        await asyncio.wait_for(self._outbox.join(), timeout)

    async def close_ws(self) -> None:
        for ws in list(self.ws_clients):
            await ws.close()

    async def wait_ws(self, predicate: Any, timeout: float = 5.0) -> None:
        """Wait (event-driven) until `predicate(self)` is true."""
        async def _wait() -> None:
            async with self.ws_changed:
                await self.ws_changed.wait_for(lambda: predicate(self))
        await asyncio.wait_for(_wait(), timeout)
