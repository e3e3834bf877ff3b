"""Venues layer: local checks of an order / leverage against the contract before any request.

A bad size or off-tick price costs a round trip and, repeated, a rate limit; catching it here gives
the user a message naming the field (`ParameterError.field`) instead of MEXC's 600/2011/2015.
"""

from __future__ import annotations

from decimal import Decimal

from tui_trader.domain.config import MAX_LEVERAGE, MIN_LEVERAGE
from tui_trader.domain.models import Instrument, Order, OrderType
from tui_trader.domain.money import is_on_unit
from tui_trader.venues.mexc import constants as C
from tui_trader.venues.mexc.errors import ParameterError


def _fail(field: str, text: str) -> ParameterError:
    return ParameterError(f"{field}: {text}", field=field)


def validate_leverage(leverage: int, inst: Instrument) -> None:
    """1..200 and not above the contract's maxLeverage."""
    if isinstance(leverage, bool) or not isinstance(leverage, int):
        raise _fail("leverage", f"must be an integer, got {leverage!r}")
    if not MIN_LEVERAGE <= leverage <= MAX_LEVERAGE:
        raise _fail("leverage", f"{leverage} outside {MIN_LEVERAGE}..{MAX_LEVERAGE}")
    if leverage > inst.max_leverage:
        raise _fail("leverage", f"{leverage} above {inst.symbol} maxLeverage {inst.max_leverage}")


def validate_volume(vol: Decimal, inst: Instrument) -> None:
    """A multiple of volUnit, >= minVol, <= maxVol (contracts)."""
    if not vol.is_finite() or vol <= 0:
        raise _fail("vol", f"{vol} must be > 0 contracts")
    if not is_on_unit(vol, inst.vol_unit):
        raise _fail("vol", f"{vol} is not a multiple of volUnit {inst.vol_unit}")
    if vol < inst.min_vol:
        raise _fail("vol", f"{vol} below minVol {inst.min_vol}")
    if vol > inst.max_vol:
        raise _fail("vol", f"{vol} above maxVol {inst.max_vol}")


def validate_price(price: Decimal | None, inst: Instrument, field: str = "price") -> None:
    if price is None:
        return
    if not price.is_finite() or price <= 0:
        raise _fail(field, f"{price} must be > 0")
    if not is_on_unit(price, inst.price_unit):
        raise _fail(field, f"{price} is not on priceUnit {inst.price_unit}")


def validate_order(order: Order, inst: Instrument) -> None:
    """Everything MEXC would reject for form, checked locally. Raises ParameterError naming the field."""
    if not order.client_id or len(order.client_id) > C.MAX_EXTERNAL_OID_LEN:
        raise _fail("externalOid", f"client id must be 1..{C.MAX_EXTERNAL_OID_LEN} characters")
    if order.symbol != inst.symbol:
        raise _fail("symbol", f"{order.symbol} does not match contract {inst.symbol}")
    validate_volume(order.qty_contracts, inst)
    if order.type is OrderType.LIMIT and order.price is None:
        raise _fail("price", "a limit order needs a price")
    validate_price(order.price, inst)
    validate_price(order.stop_loss_price, inst, "stopLossPrice")
    validate_price(order.take_profit_price, inst, "takeProfitPrice")
    if not order.side.is_close:
        validate_leverage(order.leverage, inst)
