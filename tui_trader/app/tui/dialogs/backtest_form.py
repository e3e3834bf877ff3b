"""App layer: the form that starts a backtest - strategy file, data file(s), date range, balance, leverage.

Each Input's id is the facade's field id and is followed by `Label(id=f"{field}-error")`, so a
`FieldInvalid` from the facade lands on its field (`errors.show_error`). Dates, balance and
leverage are checked as they are typed; files and the strategy when the form is submitted. A
blank field means the default its placeholder shows. Dismisses with the validated
`BacktestRequest`, or None when cancelled.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from tui_trader.app.backtests_facade import FIELDS, BacktestRequest, BacktestsFacade
from tui_trader.app.facade import FieldInvalid
from tui_trader.app.tui.errors import mark_field, show_error
from tui_trader.domain.errors import TraderError

LABELS = {"strategy": "Strategy file", "data": "Data file(s)", "date-from": "From (UTC)", "date-to": "To (UTC)",
          "balance": "Balance USDT", "leverage": "Leverage"}
HINTS = {"data": "candle CSV / .csv.gz / MEXC kline JSON; several: separate with spaces",
         "date-to": "exclusive: candles opening before it"}


class BacktestFormDialog(ModalScreen[BacktestRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    DEFAULT_CSS = """
    BacktestFormDialog { align: center middle; }
    BacktestFormDialog > VerticalScroll {
        width: 96; height: auto; max-height: 100%; border: thick $primary; background: $surface; padding: 0 2;
    }
    BacktestFormDialog .title { text-style: bold; margin-bottom: 1; }
    BacktestFormDialog .row { height: auto; }
    BacktestFormDialog .row Label { width: 16; padding-top: 1; }
    BacktestFormDialog .row Input { width: 1fr; }
    BacktestFormDialog .field-error { color: $error; margin-left: 16; height: auto; }
    BacktestFormDialog .buttons { height: auto; align-horizontal: right; }
    BacktestFormDialog Button { margin-left: 2; }
    """

    def __init__(self, facade: BacktestsFacade) -> None:
        super().__init__()
        self.facade = facade

    def compose(self) -> ComposeResult:
        defaults = self.facade.defaults()
        with VerticalScroll():
            yield Label("New backtest (blank = the default shown)", classes="title")
            for field in FIELDS:
                with Horizontal(classes="row"):
                    yield Label(LABELS[field])
                    yield Input(placeholder=defaults[field], id=field, tooltip=HINTS.get(field))
                yield Label("", id=f"{field}-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Start", id="start", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#strategy", Input).focus()

    def values(self) -> dict[str, str]:
        return {field: self.query_one(f"#{field}", Input).value for field in FIELDS}

    def on_input_changed(self, event: Input.Changed) -> None:
        field = event.input.id
        if field is None:
            return
        try:
            self.facade.check(field, event.value)
        except FieldInvalid as exc:
            mark_field(self, exc.field, str(exc))
        else:
            mark_field(self, field, None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.submit()
        else:
            self.dismiss(None)

    def submit(self) -> None:
        for field in FIELDS:
            mark_field(self, field, None)
        try:
            request = self.facade.validate(self.values())
        except TraderError as exc:  # FieldInvalid marks its field; anything else is a notification
            show_error(self, exc)
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
