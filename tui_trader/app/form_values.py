"""App layer: the numbers a person types into the dashboard's forms (leverage, balance), checked one way.

Why one module: the paper-session form and the backtest form ask for the same leverage and balance,
and each facade used to check them with its own copy (and its own words). Both facades and the
session form's as-you-type validator call these. No Textual here.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from tui_trader.app.facade import FieldInvalid
from tui_trader.domain.config import MAX_LEVERAGE, MIN_LEVERAGE

BALANCE_HINT = "a number of USDT, e.g. 10000"


def leverage_problem(text: str) -> str | None:
    """Why `text` is not a usable leverage, or None. Empty means "the strategy's own leverage"."""
    text = text.strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        return f"a whole number from {MIN_LEVERAGE} to {MAX_LEVERAGE}"
    if not MIN_LEVERAGE <= value <= MAX_LEVERAGE:
        return f"{value} is out of range: {MIN_LEVERAGE} to {MAX_LEVERAGE}"
    return None


def parse_leverage(text: str) -> int | None:
    """The typed leverage; None when empty (the strategy's own).

    Raises:
        FieldInvalid: on the `leverage` field, with `leverage_problem`'s words.
    """
    problem = leverage_problem(text)
    if problem is not None:
        raise FieldInvalid("leverage", problem)
    return int(text) if text.strip() else None


def parse_balance(text: str) -> Decimal | None:
    """The typed balance in USDT (`10_000` too); None when empty (the caller's default).

    Whether it must be above 0 is the caller's rule: a session request checks its own range and names
    its own field.

    Raises:
        FieldInvalid: on the `balance` field, when the text is not a finite number.
    """
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text.replace("_", ""))
    except InvalidOperation:
        raise FieldInvalid("balance", BALANCE_HINT) from None
    if not value.is_finite():
        raise FieldInvalid("balance", BALANCE_HINT)
    return value
