"""Domain layer: liquidation maths for isolated positions (see shared reference `liquidation.md`).

MEXC liquidates an isolated position when margin + unrealised P&L <= maintenance margin +
liquidation fee, all at the fair (mark) price. Solving that for the price gives the *mark form*;
MEXC's own worked example charges maintenance on the entry value, the *entry form*. The two differ
by < 0.05 % of price; `LiqForm.CONSERVATIVE` takes the one nearer to the market (the lower for a
short, the higher for a long). The naive `E(1 -/+ 1/L)` is deliberately absent: it promises room
that does not exist.

Distance sign convention: positive = room left, <= 0 = at or through the liquidation price; the
denominator is the *current* price (how far the market must move from here).
"""

from __future__ import annotations

import math
from decimal import Decimal
from enum import StrEnum

from tui_trader.domain.models import Instrument, Side

ONE = Decimal(1)
HUNDRED = Decimal(100)


class LiqForm(StrEnum):
    MARK = "mark"
    ENTRY = "entry"
    CONSERVATIVE = "conservative"


class Band(StrEnum):
    """Liquidation-distance band, ordered from safe to liquidated."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"
    LIQUIDATED = "liquidated"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Band.GREEN: 0, Band.YELLOW: 1, Band.RED: 2, Band.LIQUIDATED: 3}


def maintenance_margin_rate(instrument: Instrument, vol_contracts: Decimal) -> Decimal:
    """Maintenance-margin rate of the risk tier a position of `vol_contracts` falls in.

    level 1 if vol <= riskBaseVol, else ceil((vol - base) / incr) + 1, capped at riskLevelLimit;
    mmr = base mmr + (level - 1) * riskIncrMmr.
    """
    base, incr = instrument.risk_base_vol, instrument.risk_incr_vol
    if base <= 0 or incr <= 0 or vol_contracts <= base:
        level = 1
    else:
        level = math.ceil((vol_contracts - base) / incr) + 1
        level = min(level, max(1, instrument.risk_level_limit))
    return instrument.maintenance_margin_rate + (level - 1) * instrument.risk_incr_mmr


def liquidation_price(
    side: Side,
    entry: Decimal,
    qty_coins: Decimal,
    margin: Decimal,
    mmr: Decimal,
    fee_rate: Decimal = Decimal(0),
    form: LiqForm = LiqForm.CONSERVATIVE,
) -> Decimal | None:
    """Isolated liquidation price, or None when the position cannot be liquidated (1x long).

    Args:
        entry: average entry price; qty_coins: size in coins (contracts x contract size);
        margin: isolated position margin (MEXC `im`); mmr: maintenance-margin rate;
        fee_rate: liquidation fee rate (count it only if `margin` holds the fee reserve).
    """
    if qty_coins <= 0:
        raise ValueError("qty_coins must be > 0")
    m_per_coin = margin / qty_coins
    k = mmr + fee_rate
    if side is Side.LONG:
        mark = (entry - m_per_coin) / (ONE - k)
        at_entry = entry - m_per_coin + entry * k
        values = {LiqForm.MARK: mark, LiqForm.ENTRY: at_entry, LiqForm.CONSERVATIVE: max(mark, at_entry)}
    else:
        mark = (entry + m_per_coin) / (ONE + k)
        at_entry = entry + m_per_coin - entry * k
        values = {LiqForm.MARK: mark, LiqForm.ENTRY: at_entry, LiqForm.CONSERVATIVE: min(mark, at_entry)}
    price = values[form]
    return price if price > 0 else None


def liquidation_price_for_leverage(
    side: Side,
    entry: Decimal,
    leverage: int | Decimal,
    mmr: Decimal,
    fee_rate: Decimal = Decimal(0),
    form: LiqForm = LiqForm.CONSERVATIVE,
) -> Decimal | None:
    """Liquidation price of a fresh position whose margin is exactly notional / leverage."""
    lev = Decimal(leverage)
    if lev <= 0:
        raise ValueError("leverage must be > 0")
    return liquidation_price(side, entry, ONE, entry / lev, mmr, fee_rate, form)


def distance_pct(side: Side, price: float, liq: float | None) -> float:
    """Distance to liquidation in % of the current price; +inf when there is no liquidation price."""
    if liq is None:
        return math.inf
    if side is Side.SHORT:
        return (liq - price) / price * 100.0
    return (price - liq) / price * 100.0


def distance_pct_exact(side: Side, price: Decimal, liq: Decimal | None) -> Decimal | None:
    """`distance_pct` in Decimal for reports and tests; None when there is no liquidation price."""
    if liq is None:
        return None
    diff = (liq - price) if side is Side.SHORT else (price - liq)
    return diff / price * HUNDRED


def band_for(distance: float, yellow_pct: float = 20.0, red_pct: float = 10.0) -> Band:
    """Band without memory: green > yellow_pct >= yellow >= red_pct > red > 0 >= liquidated."""
    if distance <= 0:
        return Band.LIQUIDATED
    if distance < red_pct:
        return Band.RED
    if distance <= yellow_pct:
        return Band.YELLOW
    return Band.GREEN


def runway_used(entry: Decimal, price: Decimal, liq: Decimal) -> Decimal:
    """0 at entry, 1 at liquidation; clamped at 0 while in profit."""
    gap = abs(entry - liq)
    if gap == 0:
        return ONE
    return max(Decimal(0), ONE - abs(price - liq) / gap)


def margin_ratio_pct(maintenance: Decimal, liq_fee: Decimal, margin: Decimal, upnl: Decimal) -> Decimal:
    """MEXC "margin rate": (maintenance + liquidation fee) / (margin + uPnL) x 100; 100 % = liquidation."""
    equity = margin + upnl
    if equity <= 0:
        return Decimal("Infinity")
    return (maintenance + liq_fee) / equity * HUNDRED


def buffered_liquidation_price(side: Side, entry: Decimal, liq: Decimal, buffer: Decimal) -> Decimal:
    """Liquidation price moved toward entry by `buffer` x the entry-to-liquidation gap."""
    gap = abs(entry - liq)
    return liq - buffer * gap if side is Side.SHORT else liq + buffer * gap


def buffered_liquidation_price_fast(short: bool, entry: float, liq: float, buffer: float) -> float:
    """`buffered_liquidation_price` in float for the watchdog (the runway trigger; tested against it)."""
    gap = abs(entry - liq)
    return liq - buffer * gap if short else liq + buffer * gap


def autoclose_trigger_price(
    side: Side, entry: Decimal, liq: Decimal, autoclose_distance_pct: Decimal, runtime_buffer: Decimal
) -> Decimal:
    """Price at which the watchdog closes: whichever of the distance and runway triggers comes first.

    SHORT: min(liq / (1 + a/100), liq - b(liq - E)); LONG: max(liq / (1 - a/100), liq + b(E - liq)).
    """
    a = autoclose_distance_pct / HUNDRED
    if side is Side.SHORT:
        return min(liq / (ONE + a), liq - runtime_buffer * (liq - entry))
    return max(liq / (ONE - a), liq + runtime_buffer * (entry - liq))


def band_edge_price(side: Side, liq: Decimal, distance: Decimal) -> Decimal:
    """Price at which the distance equals `distance` %: for a short liq / (1 + d), for a long liq / (1 - d)."""
    d = distance / HUNDRED
    return liq / (ONE + d) if side is Side.SHORT else liq / (ONE - d)


def band_edge_price_fast(short: bool, liq: float, distance: float) -> float:
    """`band_edge_price` in float for the watchdog's hot path (tested against the Decimal one); a long's
    edge at 100 % or more is +inf (no positive price is that far above its liquidation)."""
    if short:
        return liq / (1.0 + distance / 100.0)
    denom = 1.0 - distance / 100.0
    return liq / denom if denom > 0 else math.inf
