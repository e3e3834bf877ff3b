"""One price format and one money rounding on every screen: the same value reads the same on the
positions, sessions and backtests screens and in the header (all call `domain/number_format.py`)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_trader.app.backtests_facade import TradeView
from tui_trader.app.facade import ConsoleSnapshot, PositionView
from tui_trader.app.sessions_facade import (
    SessionFillView,
    SessionOrderView,
    SessionPositionView,
    SessionSummary,
)
from tui_trader.app.tui.bridge import HeaderState
from tui_trader.app.tui.event_log import format_event
from tui_trader.app.tui.screens.backtests import TRADE_COLUMNS, fmt_number, trade_cells
from tui_trader.app.tui.screens.sessions import (
    POSITION_COLUMNS,
    order_row,
    position_row,
    session_row,
)
from tui_trader.app.tui.view_models import COLUMNS, position_rows
from tui_trader.app.tui.widgets.status_header import header_text
from tui_trader.domain.events import OrderFilled
from tui_trader.domain.models import ClientOrderId, Fill, OrderSide, Side
from tui_trader.domain.number_format import fee_text, money_text, price_text

# an exchange price, a tiny coin's price, a computed liquidation price with all its digits
PRICES = ["46319.5", "0.00003283", "0.0000433142027838247905534665875", "91407678", "2.675"]


def shown(entry: D, upnl: D) -> dict[str, tuple[str, str]]:
    """(entry price, uPnL / net P&L) as each screen writes them."""
    view = PositionView("X_USDT", Side.SHORT, D(1), D(1), entry, None, None, 3, None, None, None, None,
                        float(upnl), None, None, None, 0, "watching", "")
    positions = dict(zip(COLUMNS, position_rows(ConsoleSnapshot("paper", "ACTIVE", 0, [view]))[0].cells))
    session = dict(zip([c[0] for c in POSITION_COLUMNS], position_row(
        SessionPositionView("X_USDT", "SHORT", D(1), entry, None, None, 3, D(1), upnl))))
    trade = dict(zip(TRADE_COLUMNS, trade_cells(TradeView("X_USDT", "SHORT", 0, entry, None, None, D(1), upnl, D(0),
                                                          D(0), ""))))
    return {"positions": (positions["entry"], positions["uPnL"]), "sessions": (session["entry"], session["upnl"]),
            "backtests": (trade["entry price"], trade["net P&L"])}


@pytest.mark.parametrize("price", PRICES)
def test_a_price_reads_the_same_on_every_screen(price):
    texts = {entry for entry, _ in shown(D(price), D(1)).values()}
    assert texts == {price_text(D(price))}
    assert "E" not in price_text(D(price)) and len(price_text(D(price)).replace(".", "").lstrip("0")) <= 8


@pytest.mark.parametrize(("amount", "cents"), [("0.125", "0.13"), ("2.675", "2.68"), ("-0.125", "-0.13"),
                                                ("1234.005", "1,234.01")])
def test_money_is_rounded_half_up_to_the_cent_on_every_screen(amount, cents):
    on_screens = shown(D(1), D(amount))
    assert on_screens["backtests"][1] == cents and fmt_number(D(amount)) == cents
    assert on_screens["sessions"][1] == on_screens["positions"][1] == ("+" if cents[0] != "-" else "") + cents
    summary = SessionSummary("s", "n", "running", "x", D(amount), D(amount), D(amount), 0, 0.0)
    assert session_row(summary)[4] == cents
    header = header_text(HeaderState(), ConsoleSnapshot("paper", "ACTIVE", 0, equity=D(amount)), 0, 0).plain
    assert f"equity {cents}" in header


@given(st.decimals(min_value=D("1e-12"), max_value=D("1e9"), allow_nan=False, allow_infinity=False, places=14))
def test_price_text_is_positional_keeps_8_significant_digits_and_a_float_reads_as_printed(value):
    text = price_text(value)
    assert "E" not in text and "e" not in text
    if value:
        assert abs(D(text) - value) <= abs(value) * D("5e-8")  # half-up at the 8th significant digit
    assert price_text(float(value)) == price_text(D(repr(float(value))))
    assert money_text(value) == f"{value.quantize(D('0.01'), rounding='ROUND_HALF_UP'):,}"


@pytest.mark.parametrize(("fee", "text"), [("0.00357", "0.0036"), ("0.00005", "0.0001"), ("1.23456", "1.2346")])
def test_a_fills_fee_reads_the_same_in_the_event_log_and_the_sessions_screen(fee, text):
    """A small fill's fee is mostly below a cent: the log wrote 0.00, the screen 0.0036, the CLI 0.003570."""
    assert fee_text(D(fee)) == text
    fill = Fill("f1", ClientOrderId("c1"), "X_USDT", OrderSide.OPEN_SHORT, D(1), D("59.5"), D(fee), 0)
    assert f"fee {text} " in format_event(OrderFilled(0, fill))
    fills = (SessionFillView(0, D(1), D("59.5"), D(fee), D(0)),)
    order = SessionOrderView(0, "c1", "OPEN_SHORT", D(1), "filled", "", fills)
    assert order_row(order)[-1] == f"1 @ 59.5, {text}"
