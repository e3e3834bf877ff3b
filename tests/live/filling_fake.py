"""Test support: the fake MEXC with its account model switched on (`FakeMexc(fills=True)`).

The account (fills, hedge positions, liquidation on the fair price, private pushes, faults) lives in
`tests/venues/mexc/fake_exchange.py`, one model for every test and for `bench/soak.py`; this module
only names the switched-on variant the live end-to-end tests use.
"""

from __future__ import annotations

from tests.venues.mexc.fake_exchange import FakeMexc

LONG, SHORT = 1, 2


class FillingMexc(FakeMexc):
    def __init__(self) -> None:
        super().__init__(fills=True)

    def release_held(self) -> None:
        """Let every held reply ('hang' / 'hold_*' faults) go."""
        self._release.set()

    def open_position(self, symbol: str, position_type: int, vol: int, price: float | None = None,
                      leverage: int = 3) -> dict:
        """A position made by someone else's fill (another device, before a restart): the account has it."""
        if price is not None:
            self.set_price(symbol, price)
        side = 1 if position_type == LONG else 3
        order = {"orderId": next(self._ids), "symbol": symbol, "externalOid": "", "vol": vol, "side": side,
                 "orderType": 5, "openType": 1, "leverage": leverage, "price": 0, "state": 2, "dealVol": 0,
                 "dealAvgPrice": 0, "takerFee": 0, "makerFee": 0, "profit": 0, "positionId": 0, "category": 1,
                 "createTime": self.now_ms(), "updateTime": self.now_ms(), "raw": "", "_engine": True}
        self.orders.append(order)
        self._fill(order, self._last(symbol), taker=True)
        held = self.position(symbol, position_type)
        assert held is not None
        return held
