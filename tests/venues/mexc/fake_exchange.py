"""Test support: a fake MEXC futures exchange (aiohttp, 127.0.0.1:0) speaking REST and WS `/edge`.

It verifies ApiKey / Request-Time / Signature independently of the client's signing code (602 on
mismatch, 513 outside the recv window), stores every accepted order (duplicates included, so a
blind re-send shows up as a second order) and injects faults per route: HTTP 500, HTML page,
non-JSON, empty body, any envelope code, hang (with or without accepting the order first),
connection drop (with or without accepting), and on the WebSocket a stall or a close.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

from aiohttp import WSMsgType, web

API_KEY = "mx0vTESTAPIKEY000001"
SECRET = "TESTSECRET-0123456789abcdef-XYZ"
BODY = web.RequestKey("body", str)
FIRST_ORDER_ID = 7_000_000_000_000_000_001  # > 2^53: ids must stay exact


@dataclass
class Fault:
    kind: str  # http500 | html | nonjson | empty | code | hang | drop; *_after (accept first) for hang/drop
    code: int = 0
    message: str = ""


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


class FakeMexc:
    def __init__(self) -> None:
        self.contracts = {c["symbol"]: c for c in (contract(), contract("ETH_USDT", contractSize=0.01, priceUnit=0.01, maxLeverage=200))}
        self.not_allowed: set[str] = set()
        self.orders: list[dict[str, Any]] = []
        self.positions: list[dict[str, Any]] = []
        self.stop_orders: list[dict[str, Any]] = []
        self.leverage_calls: list[dict[str, Any]] = []
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.calls: dict[str, int] = defaultdict(int)
        self.rejected_signatures = 0
        self.server_offset_ms = 0
        self.lookup_not_found = "null"  # "null" -> data null; "2040" -> error envelope
        self._ids = itertools.count(FIRST_ORDER_ID)
        self._release = asyncio.Event()
        self.ws_clients: set[web.WebSocketResponse] = set()
        self.ws_connects = 0
        self.ws_stalled = False
        self.ws_received: list[dict[str, Any]] = []
        self.ws_changed = asyncio.Condition()
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

    async def stop(self) -> None:
        self._release.set()
        for ws in list(self.ws_clients):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def fault(self, route: str, kind: str, code: int = 0, message: str = "", times: int = 1) -> None:
        self.faults[route].extend(Fault(kind, code, message) for _ in range(times))

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.server_offset_ms

    def orders_with(self, external_oid: str) -> list[dict[str, Any]]:
        return [o for o in self.orders if o["externalOid"] == external_oid]

    # --- middleware: auth + faults ------------------------------------------------------------

    def _check_auth(self, request: web.Request, body: str) -> web.Response | None:
        key, req_time, sig = request.headers.get("ApiKey"), request.headers.get("Request-Time", ""), request.headers.get("Signature", "")
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
        if not req_time.isdigit() or abs(int(req_time) - self.now_ms()) > 10_000:
            return _err(513, "Invalid request(Request-Time more than 10 seconds different from the server time)")
        return None

    async def _apply(self, fault: Fault, request: web.Request) -> web.StreamResponse:
        if fault.kind == "http500":
            return web.Response(status=500, text="Internal Server Error")
        if fault.kind == "html":
            return web.Response(status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html")
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

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.name or ""
        self.calls[route] += 1
        body = await request.text() if request.method == "POST" else ""
        request[BODY] = body
        if request.path.startswith("/api/v1/private/"):
            refused = self._check_auth(request, body)
            if refused is not None:
                return refused
        fault = self.faults[route].pop(0) if self.faults.get(route) else None
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
        r.add_get(f"{pub}/ticker", lambda q: _ok({"symbol": q.query.get("symbol"), "lastPrice": 60000.5, "bid1": 60000.4,
                                                  "ask1": 60000.6, "fairPrice": 60001.1, "indexPrice": 60000.9, "fundingRate": 0.0001}), name="ticker")
        r.add_get(f"{pub}/fair_price/{{symbol}}", lambda q: _ok({"symbol": q.match_info["symbol"], "fairPrice": 60001.1, "timestamp": 1}), name="fair")
        r.add_get(f"{pub}/index_price/{{symbol}}", lambda q: _ok({"symbol": q.match_info["symbol"], "indexPrice": 60000.9, "timestamp": 1}), name="index")
        r.add_get(f"{pub}/depth/{{symbol}}", lambda q: web.json_response({"asks": [[60000.6, 10, 1]], "bids": [[60000.4, 12, 2]], "version": 5}), name="depth")
        r.add_get(f"{pub}/kline/{{symbol}}", lambda q: _ok({"time": [1700000000, 1700000060], "open": [1, 2], "close": [2, 3],
                                                            "high": [2, 3], "low": [1, 2], "vol": [10, 11], "amount": [5, 6]}), name="kline")
        r.add_get(f"{pub}/funding_rate/{{symbol}}", lambda q: _ok({"symbol": q.match_info["symbol"], "fundingRate": 0.0001,
                                                                   "nextSettleTime": 1700028800000}), name="funding")
        r.add_get(f"{prv}/account/assets", lambda q: _ok([{"currency": "USDT", "cashBalance": 1000.5, "positionMargin": 100,
                                                           "frozenBalance": 10, "availableBalance": 890.5, "unrealized": 5.25, "equity": 1005.75}]), name="assets")
        r.add_get(f"{prv}/position/open_positions", lambda q: _ok(self.positions), name="positions")
        r.add_get(f"{prv}/order/list/open_orders/{{symbol}}", self._open_orders, name="open_orders")
        r.add_post(f"{prv}/order/create", self._create, name="create")
        r.add_post(f"{prv}/order/cancel", self._cancel, name="cancel")
        r.add_post(f"{prv}/order/cancel_with_external", self._cancel_external, name="cancel_external")
        r.add_get(f"{prv}/order/get/{{order_id}}", self._get, name="get")
        r.add_get(f"{prv}/order/external/{{symbol}}/{{oid}}", self._external, name="external")
        r.add_post(f"{prv}/position/change_leverage", self._leverage, name="leverage")
        r.add_get(f"{prv}/stoporder/list/orders", lambda q: _ok(self.stop_orders), name="stop_orders")
        r.add_post(f"{prv}/stoporder/change_plan_price", self._stop_change, name="stop_change")
        r.add_get("/edge", self._ws, name="ws")

    async def _detail(self, request: web.Request) -> web.Response:
        sym = request.query.get("symbol")
        if sym is None:
            return _ok(list(self.contracts.values()))
        return _ok(self.contracts[sym]) if sym in self.contracts else _err(1001, "contract not exists")

    async def _create(self, request: web.Request) -> web.Response:
        body = json.loads(request[BODY])
        if body.get("symbol") in self.not_allowed:
            return _err(1002, "Contract not allow place order!")
        oid = next(self._ids)
        self.orders.append({"orderId": oid, "symbol": body["symbol"], "externalOid": body.get("externalOid", ""),
                            "vol": body["vol"], "side": body["side"], "orderType": body["type"], "openType": body["openType"],
                            "leverage": body.get("leverage", 1), "price": body.get("price", 0), "state": 2, "dealVol": 0,
                            "positionId": body.get("positionId", 0), "createTime": self.now_ms(), "updateTime": self.now_ms(),
                            "raw": request[BODY]})
        return _ok({"orderId": str(oid), "ts": self.now_ms()})

    def _public_order(self, o: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in o.items() if k != "raw"}

    async def _open_orders(self, request: web.Request) -> web.Response:
        sym = request.match_info["symbol"]
        return _ok([self._public_order(o) for o in self.orders if o["symbol"] == sym and o["state"] in (1, 2)])

    async def _external(self, request: web.Request) -> web.Response:
        found = [o for o in self.orders if o["symbol"] == request.match_info["symbol"] and o["externalOid"] == request.match_info["oid"]]
        if found:
            return _ok(self._public_order(found[0]))
        return _ok(None) if self.lookup_not_found == "null" else _err(2040, "order not exists")

    async def _get(self, request: web.Request) -> web.Response:
        found = [o for o in self.orders if str(o["orderId"]) == request.match_info["order_id"]]
        return _ok(self._public_order(found[0])) if found else _err(2040, "order not exists")

    async def _cancel(self, request: web.Request) -> web.Response:
        ids = json.loads(request[BODY])
        out = []
        for i in ids:
            hit = [o for o in self.orders if o["orderId"] == i]
            for o in hit:
                o["state"] = 4
            out.append({"orderId": i, "errorCode": 0 if hit else 2040, "errorMsg": "" if hit else "order not exists"})
        return _ok(out)

    async def _cancel_external(self, request: web.Request) -> web.Response:
        body = json.loads(request[BODY])
        hit = [o for o in self.orders if o["symbol"] == body["symbol"] and o["externalOid"] == body["externalOid"]]
        for o in hit:
            o["state"] = 4
        return _ok(None) if hit else _err(2040, "order not exists")

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
            await self._notify()
        return ws

    async def _notify(self) -> None:
        async with self.ws_changed:
            self.ws_changed.notify_all()

    async def _ws_message(self, ws: web.WebSocketResponse, msg: dict[str, Any]) -> None:
        self.ws_received.append(msg)
        await self._notify()
        if self.ws_stalled:
            return
        method = msg.get("method", "")
        if method == "ping":
            await ws.send_str(json.dumps({"channel": "pong", "data": self.now_ms()}))
        elif method.startswith("sub."):
            await ws.send_str(json.dumps({"channel": "rs." + method, "data": "success", "ts": self.now_ms()}))
        elif method == "login":
            p = msg.get("param", {})
            want = hmac.new(SECRET.encode(), f"{API_KEY}{p.get('reqTime')}".encode(), hashlib.sha256).hexdigest()
            ok = p.get("apiKey") == API_KEY and hmac.compare_digest(str(p.get("signature")), want)
            await ws.send_str(json.dumps({"channel": "rs.login", "data": "success" if ok else "signature verification failed"}))

    async def push(self, frame: dict[str, Any] | str | bytes) -> None:
        """Send a frame to every connected WebSocket client (bytes = binary frame); nothing while stalled."""
        if self.ws_stalled:
            return
        for ws in list(self.ws_clients):
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))

    async def close_ws(self) -> None:
        for ws in list(self.ws_clients):
            await ws.close()

    async def wait_ws(self, predicate: Any, timeout: float = 5.0) -> None:
        """Wait (event-driven) until `predicate(self)` is true."""
        async def _wait() -> None:
            async with self.ws_changed:
                await self.ws_changed.wait_for(lambda: predicate(self))
        await asyncio.wait_for(_wait(), timeout)
