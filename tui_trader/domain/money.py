"""Domain layer: exact money helpers - quantising to exchange units, float-to-Decimal at the edge."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal

CENT = Decimal("0.01")


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """Exact-looking Decimal of a wire/market value: `0.1` becomes Decimal('0.1'), not the binary float."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def quantize_to_unit(value: Decimal, unit: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round `value` to a whole multiple of `unit` (price unit or volume unit).

    Idempotent: quantising an on-unit value returns it unchanged.
    """
    if unit <= 0:
        raise ValueError(f"unit must be > 0, got {unit}")
    steps = (value / unit).to_integral_value(rounding=rounding)
    return (steps * unit).normalize() if steps else Decimal(0)


def floor_to_unit(value: Decimal, unit: Decimal) -> Decimal:
    """Largest multiple of `unit` not above `value` (sizing: never exceed the budget)."""
    return quantize_to_unit(value, unit, ROUND_DOWN)


def ceil_to_unit(value: Decimal, unit: Decimal) -> Decimal:
    return quantize_to_unit(value, unit, ROUND_UP)


def is_on_unit(value: Decimal, unit: Decimal) -> bool:
    return unit > 0 and (value % unit) == 0


def cents(value: Decimal, unit: Decimal = CENT) -> Decimal:
    """Round to the cent (or a finer `unit`), half-up: how reports and reconciliation compare money,
    and how every screen writes it (`number_format.money_text`)."""
    return value.quantize(unit, rounding=ROUND_HALF_UP)
