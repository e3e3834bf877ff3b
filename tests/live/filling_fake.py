"""Test support: the fake MEXC with an account that fills - market orders at the last price, hedge-mode
positions (holdVol, holdAvgPrice, im, liquidatePrice from the isolated formula and the contract's size),
cumulative dealVol / dealAvgPrice / takerFee / profit on the order, deals, and the private pushes
(`push.personal.order`, `push.personal.order.deal`, `push.personal.position`) MEXC sends.

Faults on top of `FakeMexc`'s: `push_loss` (private pushes dropped), `push_delay_s` (delivered late).
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.venues.mexc.fake_exchange import BODY, FakeMexc, _err, _ok

LONG, SHORT = 1, 2


def _num(x: Decimal) -> float | int:
    return int(x) if x == x.to_integral_value() else float(x)


class FillingMexc(FakeMexc):
    def __init__(self) -> None:
        super().__init__()
        self.prices: dict[str, Decimal] = {"BTC_USDT": Decimal("60000.5"), "ETH_USDT": Decimal(3000)}
        self.deals: list[dict[str, Any]] = []
        self.push_loss = False
        self.push_delay_s = 0.0
        self.peak_hold_vol: dict[tuple[str, int], Decimal] = {}
        self._position_ids = iter(range(9_000_001, 10_000_000))
        self._late: set[asyncio.Task[None]] = set()

    def release_held(self) -> None:
        """Let every held reply ('hang' faults) go."""
        self._release.set()

    def set_price(self, symbol: str, price: float | Decimal) -> None:
        self.prices[symbol] = Decimal(str(price))

    def position(self, symbol: str, position_type: int) -> dict[str, Any] | None:
        return next((p for p in self.positions if p["symbol"] == symbol and p["positionType"] == position_type
                     and p["state"] == 1), None)

    # --- orders ------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        body = json.loads(request[BODY])
        symbol, side, vol = body["symbol"], int(body["side"]), Decimal(str(body["vol"]))
        if symbol in self.not_allowed:
            return _err(1002, "Contract not allow place order!")
        ptype = LONG if side in (1, 4) else SHORT
        held = self.position(symbol, ptype)
        if side in (2, 4) and held is None:
            return _err(2009, "position not exist")
        oid = next(self._ids)
        now = self.now_ms()
        order = {"orderId": oid, "symbol": symbol, "externalOid": body.get("externalOid", ""), "vol": body["vol"],
                 "side": side, "orderType": body["type"], "openType": body["openType"],
                 "leverage": body.get("leverage", 1), "price": body.get("price", 0), "state": 2, "dealVol": 0,
                 "dealAvgPrice": 0, "takerFee": 0, "makerFee": 0, "profit": 0, "positionId": body.get("positionId", 0),
                 "createTime": now, "updateTime": now, "raw": request[BODY]}
        self.orders.append(order)
        if int(body["type"]) in (5, 6):  # market: fills now at the last price
            self._fill(order, vol if held is None or side in (1, 3) else min(vol, Decimal(str(held["holdVol"]))))
        return _ok({"orderId": str(oid), "ts": now})

    def _fill(self, order: dict[str, Any], vol: Decimal) -> None:
        symbol, side = order["symbol"], int(order["side"])
        c = self.contracts[symbol]
        size, price = Decimal(str(c["contractSize"])), self.prices[symbol]
        fee = (vol * size * price * Decimal(str(c["takerFeeRate"]))).quantize(Decimal("1e-8"))
        ptype = LONG if side in (1, 4) else SHORT
        pos = self.position(symbol, ptype)
        profit = Decimal(0)
        now = self.now_ms()
        lev = int(order["leverage"] or 1)
        if side in (1, 3):
            if pos is None:
                pos = {"positionId": next(self._position_ids), "symbol": symbol, "positionType": ptype, "openType": 1,
                       "state": 1, "holdVol": 0, "holdAvgPrice": 0, "openAvgPrice": 0, "leverage": lev, "im": 0,
                       "liquidatePrice": 0, "realised": 0, "createTime": now, "updateTime": now}
                self.positions.append(pos)
            old = Decimal(str(pos["holdVol"]))
            avg = (old * Decimal(str(pos["holdAvgPrice"])) + vol * price) / (old + vol)
            pos["holdVol"], pos["holdAvgPrice"] = _num(old + vol), float(avg)
        else:
            assert pos is not None
            avg = Decimal(str(pos["holdAvgPrice"]))
            sign = 1 if ptype == LONG else -1
            profit = (sign * (price - avg) * vol * size).quantize(Decimal("1e-8"))
            pos["holdVol"] = _num(Decimal(str(pos["holdVol"])) - vol)
        self._reprice(pos, c)
        pos["realised"] = float(Decimal(str(pos["realised"])) + profit - fee)
        pos["updateTime"] = now
        if Decimal(str(pos["holdVol"])) <= 0:
            pos["state"], pos["holdVol"] = 3, 0
        key = (symbol, ptype)
        self.peak_hold_vol[key] = max(self.peak_hold_vol.get(key, Decimal(0)), Decimal(str(pos["holdVol"])))
        filled = Decimal(str(order["dealVol"])) + vol
        order["dealAvgPrice"] = float((Decimal(str(order["dealVol"])) * Decimal(str(order["dealAvgPrice"]))
                                       + vol * price) / filled)
        order["dealVol"], order["state"], order["updateTime"] = _num(filled), 3, now
        order["takerFee"] = float(Decimal(str(order["takerFee"])) + fee)
        order["profit"] = float(Decimal(str(order["profit"])) + profit)
        order["positionId"] = pos["positionId"]
        deal = {"id": len(self.deals) + 1, "symbol": symbol, "side": side, "vol": _num(vol), "price": float(price),
                "fee": float(fee), "feeCurrency": "USDT", "profit": float(profit), "taker": True, "timestamp": now,
                "orderId": str(order["orderId"]), "externalOid": order["externalOid"]}
        self.deals.append(deal)
        self._push_private("push.personal.order.deal", deal)
        self._push_private("push.personal.order", self._public_order(order))
        self._push_private("push.personal.position", dict(pos))
        if pos["state"] == 3:
            self.positions.remove(pos)

    def _reprice(self, pos: dict[str, Any], c: dict[str, Any]) -> None:
        vol, avg = Decimal(str(pos["holdVol"])), Decimal(str(pos["holdAvgPrice"]))
        lev, mmr = Decimal(int(pos["leverage"])), Decimal(str(c["maintenanceMarginRate"]))
        pos["im"] = float(vol * Decimal(str(c["contractSize"])) * avg / lev)
        sign = 1 if pos["positionType"] == LONG else -1
        pos["liquidatePrice"] = float(avg * (1 - sign * (1 / lev - mmr)))

    # --- private pushes ----------------------------------------------------------------------

    def _push_private(self, channel: str, data: dict[str, Any]) -> None:
        if self.push_loss:
            return
        frame = {"channel": channel, "data": data, "ts": self.now_ms()}

        async def send() -> None:
            if self.push_delay_s:
                await asyncio.sleep(self.push_delay_s)
            await self.push(frame)

        task = asyncio.get_running_loop().create_task(send())
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    async def stop(self) -> None:
        for task in list(self._late):
            task.cancel()
        await asyncio.gather(*self._late, return_exceptions=True)
        await super().stop()
