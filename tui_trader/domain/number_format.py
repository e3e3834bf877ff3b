"""Domain layer: how prices, money and sizes are written for people - one rule for every screen.

Every screen, table, header and alert that shows a price or an amount of money calls these, so the
same price reads the same on the positions, sessions and backtests screens, and money is rounded one
way everywhere: half-up to the cent, as reports and reconciliation round (`money.cents`).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from tui_trader.domain.money import CENT, cents, to_decimal
from tui_trader.domain.time_format import duration_text

MISSING = "-"
FEE_UNIT = Decimal("0.0001")  # one fill's fee: 1/100 of a cent (0.0036 USDT on a small fill would read 0.00)
PRICE_DIGITS = 8  # significant digits: more than MEXC quotes, and a computed price is cut to it


def price_text(value: Decimal | float | None, digits: int = PRICE_DIGITS) -> str:
    """Positional notation, at most `digits` significant digits, half-up; "-" for None.

    0.00003283, not 3.283E-5 nor 0.00; 46319.5, not 46319.50; a computed liquidation price of
    0.0000433142027838 reads 0.000043314203, not all its digits. A float is read as it prints
    (`to_decimal`), so 1.714e-05 is 0.00001714.
    """
    if value is None:
        return MISSING
    d = to_decimal(value)
    if d and d.adjusted() < digits:
        d = d.quantize(Decimal(1).scaleb(d.adjusted() - digits + 1), rounding=ROUND_HALF_UP)
    return format(d.normalize(), "f")


def money_text(value: Decimal | float, signed: bool = False, unit: Decimal = CENT) -> str:
    """`value` to the cent (or `unit`), half-up (`money.cents`), with thousands separators; `signed` shows + on gains.

    A plain format would round half-even (Decimal) or from the binary value (float): 0.125 would read
    0.12 on one screen and 0.13 on another.
    """
    rounded = cents(to_decimal(value), unit)
    return f"{rounded:+,}" if signed else f"{rounded:,}"


def fee_text(value: Decimal | float) -> str:
    """One fill's fee, to 1/100 of a cent (`FEE_UNIT`), half-up: the same on every screen and report."""
    return money_text(value, unit=FEE_UNIT)


def number_text(value: Any) -> str:
    """A figure of a report: whole numbers with separators; money (a Decimal, or the exact decimal string a
    stored report holds) to the cent, half-up; ratios (floats) to two decimals; a non-zero figure too small
    for that to three significant digits (a 0.00357 USDT fee is not 0.00); None as "-"."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except InvalidOperation:
            return value
    if isinstance(value, bool | int):
        return f"{value:,}"
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return money_text(value) if abs(value) >= CENT or not value else f"{value:.3g}"
    return f"{value:,.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.3g}"


def metric_text(value: Any, unit: str) -> str:
    """A report's metric with its unit ("12.50 USDT", "3.10 %"; a duration in seconds as `duration_text`)."""
    if unit == "s":
        return duration_text(value)
    return MISSING if value is None else f"{number_text(value)} {unit}".rstrip()


def quantity_text(value: Decimal) -> str:
    """Contracts or coins as held, every digit, positional (a size is never rounded for display)."""
    return format(value.normalize(), "f")
