"""Engine layer: an entry intent's size and prices in the exchange's units (contracts, ticks).

One rule for every venue: the isolated margin is `size_pct` of the available balance; contracts are
floored to the volume unit and capped at the contract's max; SL/TP and a limit price are rounded to
the price unit. Decimal throughout - this is where rounding meets the exchange.
"""

from __future__ import annotations

from tui_trader.domain.errors import RiskRejected
from tui_trader.domain.intents import OpenPosition
from tui_trader.domain.models import Account, Instrument, Order, OrderType
from tui_trader.domain.money import floor_to_unit, quantize_to_unit, to_decimal
from tui_trader.engine.cache import Cache


def size_entry(intent: OpenPosition, base: Order, account: Account, instr: Instrument, cache: Cache) -> Order:
    """The order `intent` asks for; raises `RiskRejected` without a fresh price or below minVol."""
    price = to_decimal(intent.ref_price) if intent.ref_price else cache.reference_price(intent.symbol)
    if price is None or price <= 0:
        raise RiskRejected(f"no fresh price for {intent.symbol}: no order without a price")
    margin = account.available * to_decimal(intent.size_pct) / 100
    contracts = floor_to_unit(margin * intent.leverage / (price * instr.contract_size), instr.vol_unit)
    contracts = min(contracts, instr.max_vol)
    if contracts < instr.min_vol:
        raise RiskRejected(f"size {contracts} contracts is below minVol {instr.min_vol} ({margin:.2f} USDT margin)")
    sign = intent.side.sign
    sl = tp = limit = None
    if intent.stop_loss_pct:
        sl = quantize_to_unit(price * (1 - sign * to_decimal(intent.stop_loss_pct) / 100), instr.price_unit)
    if intent.take_profit_pct:
        tp = quantize_to_unit(price * (1 + sign * to_decimal(intent.take_profit_pct) / 100), instr.price_unit)
    if intent.order_type is OrderType.LIMIT:
        limit = quantize_to_unit(to_decimal(intent.limit_price or price), instr.price_unit)
    return Order(base.client_id, base.symbol, base.side, base.type, contracts, price=limit, leverage=intent.leverage,
                 stop_loss_price=sl, take_profit_price=tp, created_ms=base.created_ms, updated_ms=base.updated_ms,
                 reason=base.reason, tag=base.tag)
