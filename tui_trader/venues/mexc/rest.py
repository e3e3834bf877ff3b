"""Venues layer: one MEXC REST request per call over one aiohttp session - no retry here.

Public calls are unsigned; private ones carry ApiKey / Request-Time / Signature (auth.py) with
Request-Time = local clock + the server offset measured from `contract/ping`. A 513 re-measures
the offset before raising `ClockSkew`, so the caller's retry goes out with a corrected clock.
Transport failures become `NetworkError` / `RequestTimeout`; everything else goes through
`web_utils.unwrap`. Retry and breaker policy is `client.py`'s job.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from yarl import URL

from tui_trader.domain.config import MexcConfig
from tui_trader.domain.errors import VenueError
from tui_trader.engine.clock import Clock
from tui_trader.venues.mexc import constants as C
from tui_trader.venues.mexc.auth import Signer
from tui_trader.venues.mexc.errors import (
    AuthError,
    ClockSkew,
    NetworkError,
    RequestTimeout,
)
from tui_trader.venues.mexc.rate_limit import RequestBudget
from tui_trader.venues.mexc.web_utils import dumps, unwrap, url

log = logging.getLogger(__name__)


class MexcRest:
    """Thin typed wrapper of the REST endpoints. Returns the envelope's `data` (Decimals for numbers)."""

    def __init__(self, config: MexcConfig, clock: Clock, *, session: aiohttp.ClientSession | None = None) -> None:
        self.config = config
        self.clock = clock
        self.offset_ms = 0
        self._session = session
        self._own_session = session is None
        key, secret = config.api_key, config.api_secret
        self._signer = Signer(key.get_secret_value(), secret.get_secret_value(), config.recv_window_s) if key and secret else None
        self.requests_sent = 0
        self.budget = RequestBudget(clock, scale=config.rate_limit_scale)  # MEXC's limits, closes first

    @property
    def has_keys(self) -> bool:
        return self._signer is not None

    @property
    def signer(self) -> Signer | None:
        return self._signer

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.config.request_timeout_s, connect=self.config.connect_timeout_s)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout())
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session and not self._session.closed:
            await self._session.close()

    def request_time_ms(self) -> int:
        return self.clock.now_ms() + self.offset_ms

    async def sync_time(self) -> int:
        """Measure server - local clock offset (ms) with `contract/ping`, midpoint of the round trip."""
        before = self.clock.now_ms()
        server_ms = int(await self.public(C.PING))
        after = self.clock.now_ms()
        self.offset_ms = server_ms - (before + after) // 2
        log.info("MEXC clock offset %d ms", self.offset_ms)
        return self.offset_ms

    # --- transport --------------------------------------------------------------------------

    async def public(self, path: str, params: dict[str, Any] | None = None) -> Any:
        await self.budget.take(path)
        full, _ = url(self.config.rest_base, path, params)
        return await self._send("GET", full, {}, None, path)

    async def private(self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        """Signed call. GET: `params` in the query; POST: `body` (a dict/list, or pre-serialised text)."""
        if self._signer is None:
            raise AuthError("MEXC API key and secret are not configured", code=None)
        await self.budget.take(path)  # before signing: the timestamp is not spent in the queue
        if method == "GET":
            full, payload = url(self.config.rest_base, path, params)
            text = None
        else:
            full = f"{self.config.rest_base}{path}"
            payload = text = body if isinstance(body, str) else dumps(body if body is not None else {})
        headers = self._signer.headers(self.request_time_ms(), payload)
        try:
            return await self._send(method, full, headers, text, path)
        except ClockSkew:
            await self._resync_quietly()
            raise

    async def _resync_quietly(self) -> None:
        try:
            await self.sync_time()
        except VenueError as exc:
            log.warning("clock resync after 513 failed: %s", exc)

    async def _send(self, method: str, full: str, headers: dict[str, str], body: str | None, where: str) -> Any:
        self.requests_sent += 1
        try:
            async with self.session().request(
                method, URL(full, encoded=True), headers=headers, data=body.encode() if body is not None else None,
                timeout=self._timeout(),
            ) as resp:
                text = await resp.text(errors="replace")
                if self._signer is not None:  # an error text echoing the key must not reach a log, event or store
                    text = self._signer.scrub(text)
                return unwrap(resp.status, text, resp.headers.get("Content-Type", ""), where=f"{method} {where}")
        except TimeoutError as exc:
            raise RequestTimeout(f"{method} {where}: no answer within {self.config.request_timeout_s:g} s") from exc
        except aiohttp.ClientError as exc:  # connection refused/reset/dropped, payload errors
            raise NetworkError(f"{method} {where}: {type(exc).__name__}") from exc

    # --- public endpoints -------------------------------------------------------------------

    async def contract_detail(self, symbol: str | None = None) -> Any:
        return await self.public(C.DETAIL, {"symbol": symbol})

    async def ticker(self, symbol: str | None = None) -> Any:
        return await self.public(C.TICKER, {"symbol": symbol})

    async def fair_price(self, symbol: str) -> Any:
        return await self.public(C.FAIR_PRICE.format(symbol=symbol))

    async def index_price(self, symbol: str) -> Any:
        return await self.public(C.INDEX_PRICE.format(symbol=symbol))

    async def depth(self, symbol: str, limit: int | None = None) -> Any:
        return await self.public(C.DEPTH.format(symbol=symbol), {"limit": limit})

    async def klines(self, symbol: str, interval: str = "Min1", start_s: int | None = None, end_s: int | None = None) -> Any:
        if interval not in C.KLINE_INTERVALS:
            raise ValueError(f"interval must be one of {C.KLINE_INTERVALS}, got {interval!r}")
        return await self.public(C.KLINE.format(symbol=symbol), {"interval": interval, "start": start_s, "end": end_s})

    async def funding_rate(self, symbol: str) -> Any:
        return await self.public(C.FUNDING_RATE.format(symbol=symbol))

    # --- private endpoints ------------------------------------------------------------------

    async def assets(self) -> Any:
        return await self.private("GET", C.ASSETS)

    async def open_positions(self, symbol: str | None = None) -> Any:
        return await self.private("GET", C.OPEN_POSITIONS, {"symbol": symbol})

    async def open_orders(self, symbol: str, page_size: int = 100) -> Any:
        return await self.private("GET", C.OPEN_ORDERS.format(symbol=symbol), {"page_num": 1, "page_size": page_size})

    async def create_order(self, body_text: str) -> Any:
        """POST the already-serialised order body (signed text == sent text)."""
        return await self.private("POST", self.config.order_path, body=body_text)

    async def cancel_orders(self, order_ids: list[str]) -> Any:
        return await self.private("POST", C.ORDER_CANCEL, body=[int(i) for i in order_ids])

    async def cancel_by_external(self, symbol: str, external_oid: str) -> Any:
        return await self.private("POST", C.ORDER_CANCEL_EXTERNAL, body={"symbol": symbol, "externalOid": external_oid})

    async def history_orders(self, symbol: str, states: str = "3", page_size: int = 20) -> Any:
        """The symbol's newest finished orders (states 3: filled), every category: liquidations, TP/SL too."""
        return await self.private("GET", C.HISTORY_ORDERS,
                                  {"symbol": symbol, "states": states, "page_num": 1, "page_size": page_size})

    async def get_order(self, order_id: str) -> Any:
        return await self.private("GET", C.ORDER_GET.format(order_id=order_id))

    async def get_order_by_external(self, symbol: str, external_oid: str) -> Any:
        return await self.private("GET", C.ORDER_EXTERNAL.format(symbol=symbol, external_oid=external_oid))

    async def change_leverage(self, body: dict[str, Any]) -> Any:
        return await self.private("POST", C.CHANGE_LEVERAGE, body=body)

    async def stop_orders(self, symbol: str | None = None) -> Any:
        return await self.private("GET", C.STOP_ORDERS, {"symbol": symbol, "is_finished": 0, "page_num": 1, "page_size": 100})

    async def change_stop_price(self, order_id: str, stop_loss: Any = None, take_profit: Any = None) -> Any:
        body = {"orderId": int(order_id), "stopLossPrice": stop_loss, "takeProfitPrice": take_profit}
        return await self.private("POST", C.STOP_CHANGE_PRICE, body=body)

    async def change_stop_plan_price(self, stop_plan_order_id: str, stop_loss: Any = None, take_profit: Any = None) -> Any:
        body = {"stopPlanOrderId": int(stop_plan_order_id), "stopLossPrice": stop_loss, "takeProfitPrice": take_profit}
        return await self.private("POST", C.STOP_CHANGE_PLAN_PRICE, body=body)
