"""Engine layer: the exposure an entry would create - the position, not the order alone.

The risk gate (`risk.py`) checks the new order's own margin against the account; this checks what
the symbol would hold afterwards: the open position, entries still in flight or of unknown outcome,
and the new order. A second entry while one is in flight is refused outright (a re-sent or
unanswered entry must never stack); so is an entry beyond the strategy's `max_positions_per_symbol`.
"""

from __future__ import annotations

from decimal import Decimal

from tui_trader.domain.errors import RiskRejected
from tui_trader.domain.intents import OpenPosition
from tui_trader.domain.liquidation import (
    distance_pct_exact,
    liquidation_price_for_leverage,
    maintenance_margin_rate,
)
from tui_trader.domain.models import Account, Instrument, Order
from tui_trader.domain.money import to_decimal
from tui_trader.engine.cache import Cache


def check_age(intent: OpenPosition, now_ms: int, max_age_s: float | None) -> None:
    """An entry decided on prices older than `max_age_s` (a live venue's `max_entry_age_s`: it waited
    behind a slow account read) is not what the strategy decided: refused, never sent late. Replays
    have none - their fill model is the next tick, however far the data clock has moved."""
    age_s = (now_ms - intent.ts_ms) / 1000
    if max_age_s is not None and age_s > max_age_s:
        raise RiskRejected(f"stale: decided {age_s:.1f} s ago (an entry is sent within {max_age_s:g} s or not)")


def check_exposure(cache: Cache, intent: OpenPosition, order: Order, account: Account, limit_pct: float | None) -> None:
    """The position this entry would make, not the order alone: what is held on the symbol and side,
    plus entries still in flight (or of unknown outcome), plus this order. Raises `RiskRejected`."""
    symbol, side = intent.symbol, intent.side
    in_flight = [o for o in cache.open_orders(symbol) if not o.reduce_only and not o.side.is_close
                 and o.side.position_side is side and o.client_id != order.client_id]
    if in_flight:
        ids = ", ".join(o.client_id for o in in_flight)
        raise RiskRejected(f"an entry on {symbol} {side.value} is in flight ({ids}):"
                           " no second entry until its outcome is known")
    sides = {s for (sym, s) in cache.positions if sym == symbol}
    if side not in sides and len(sides) >= intent.max_per_symbol:
        raise RiskRejected(f"{symbol} already holds {len(sides)} position(s):"
                           f" max_positions_per_symbol is {intent.max_per_symbol}")
    if side in sides and intent.max_per_symbol <= 1:
        raise RiskRejected(f"{symbol} {side.value} is already held: an entry would add to it"
                           " (max_positions_per_symbol 1)")
    held = cache.position(symbol, side)
    contracts = (held.contracts if held is not None else Decimal(0)) + order.qty_contracts
    if limit_pct is None or held is None or account.equity <= 0:
        return  # the order alone was checked by the risk gate
    ref = to_decimal(intent.ref_price) if intent.ref_price else cache.reference_price(symbol)
    price = order.price or ref
    if price is None:
        return
    margin = contracts * held.contract_size * price / max(1, order.leverage)
    pct = margin / account.equity * 100
    if pct > to_decimal(limit_pct):
        raise RiskRejected(f"the resulting {symbol} {side.value} position ({contracts} contracts,"
                           f" margin {pct:.2f} % of equity) is above max_position_pct {limit_pct:g} %")


def check_entry_liquidation(intent: OpenPosition, order: Order, instr: Instrument, cache: Cache,
                            floor_pct: float) -> None:
    """An entry must not start near liquidation: its distance at entry (the exchange's tier table for its
    size, margin = notional / leverage) must reach the strategy's `min_entry_liq_distance_pct` and the
    watchdog's auto-close threshold plus a margin (`floor_pct`) - else the watchdog would close it at
    once, for two taker fees. Raises `RiskRejected` with the figures."""
    need = max(to_decimal(intent.min_liq_distance_pct), to_decimal(floor_pct))
    price = order.price or (to_decimal(intent.ref_price) if intent.ref_price else cache.reference_price(intent.symbol))
    if need <= 0 or not price:
        return
    mmr = maintenance_margin_rate(instr, order.qty_contracts)
    liq = liquidation_price_for_leverage(intent.side, price, order.leverage, mmr)
    distance = distance_pct_exact(intent.side, price, liq)
    if distance is not None and distance < need:
        raise RiskRejected(f"liquidation {distance:.2f} % from entry at {order.leverage}x (maintenance margin"
                           f" {mmr * 100:.2f} %): below the {need:.4g} % an entry needs"
                           f" (min_entry_liq_distance_pct {intent.min_liq_distance_pct:g} %, auto-close"
                           f" threshold + margin {floor_pct:g} %)")
