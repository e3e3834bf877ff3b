"""The forms' numbers: the session form and the backtest form check leverage and balance with one rule
and say the same words (both facades call `app/form_values.py`)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tui_trader.app.backtests_facade import BacktestsFacade
from tui_trader.app.facade import FieldInvalid
from tui_trader.app.form_values import leverage_problem, parse_balance, parse_leverage
from tui_trader.app.sessions_facade import request_from_form
from tui_trader.app.settings import load_settings
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import WallClock
from tui_trader.engine.core import TraderCore


@pytest.fixture
def backtests(isolated_environment) -> BacktestsFacade:
    settings, _ = load_settings(None)
    core = TraderCore(EventBus(), WallClock())
    core.components["settings"] = settings
    return BacktestsFacade(core)


def refusal(check, *args) -> tuple[str, str]:
    with pytest.raises(FieldInvalid) as caught:
        check(*args)
    return caught.value.field, str(caught.value)


@pytest.mark.parametrize(("typed", "words"), [
    ("0", "0 is out of range: 1 to 200"), ("201", "201 is out of range: 1 to 200"),
    ("-1", "-1 is out of range: 1 to 200"), ("abc", "a whole number from 1 to 200"),
    ("2.5", "a whole number from 1 to 200"),
])
def test_both_forms_refuse_a_leverage_with_the_same_words(backtests, typed, words):
    assert leverage_problem(typed) == words
    assert refusal(backtests.check, "leverage", typed) == ("leverage", words)  # as typed in the backtest form
    assert refusal(request_from_form, {"leverage": typed}) == ("leverage", words)  # the session form's submit


def test_a_leverage_in_range_or_empty_is_taken():
    assert [parse_leverage(t) for t in ("", " ", "1", " 50 ", "200")] == [None, None, 1, 50, 200]
    assert request_from_form({"leverage": " 7 "})["leverage"] == 7


@pytest.mark.parametrize("typed", ["lots", "1e", "NaN", "inf"])
def test_both_forms_refuse_a_balance_that_is_no_number_with_the_same_words(backtests, typed):
    words = ("balance", "a number of USDT, e.g. 10000")
    assert refusal(backtests.check, "balance", typed) == words
    assert refusal(request_from_form, {"balance": typed}) == words


def test_a_balance_is_a_decimal_and_only_the_backtest_form_checks_its_range_itself(backtests):
    assert [parse_balance(t) for t in ("", "2500.50", "10_000")] == [None, Decimal("2500.50"), Decimal(10000)]
    assert refusal(backtests.check, "balance", "-5") == ("balance", "must be more than 0 USDT")
    assert request_from_form({"balance": "-5"})["starting_balance"] == -5.0  # the session service names its field
    assert request_from_form({"balance": ""})["starting_balance"] == 10000.0
