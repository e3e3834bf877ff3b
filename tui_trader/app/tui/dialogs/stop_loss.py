"""App layer: move the stop-loss of one position - a dialog checked as the user types, and the flow around it.

`StopLossDialog` shows the position, the current price and the price unit, and marks the field (the
`-invalid` class and the message under it) at each keystroke when the value is not a number, not
above 0, off the price unit or on the wrong side of the current price (a short's stop above it, a
long's below) - read live, so a price that moved while the dialog was open counts. Enter with a valid
value dismisses with it; Escape dismisses with None.

`ask_stop_loss` is what a key binding calls: it reads the rules (the price unit may need the venue,
so in a worker), pushes the dialog and sends the value through the facade, which returns at once;
every error is shown the way its type asks (`errors.show_error`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from tui_trader.app.facade import STOP_LOSS_FIELD, FieldInvalid, StopLossRules
from tui_trader.app.tui.errors import mark_field, show_error
from tui_trader.domain.models import Side


class StopLossCommands(Protocol):
    """The part of `ConsoleFacade` this flow uses (tests pass a fake)."""

    async def stop_loss_rules(self, symbol: str, side: Side) -> StopLossRules: ...

    def current_price(self, symbol: str) -> Decimal | None: ...

    def set_stop_loss(self, symbol: str, side: Side, stop_loss: Decimal | None) -> asyncio.Task[None]: ...


class StopLossDialog(ModalScreen[Decimal | None]):
    """Asks for a new stop-loss; dismisses with the checked value, or None (Escape)."""

    DEFAULT_CSS = "StopLossDialog { align: center middle; }"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, rules: StopLossRules, price_now: Callable[[], Decimal | None] | None = None) -> None:
        super().__init__()
        self.rules = rules
        self.price_now = price_now or (lambda: rules.price)

    def compose(self) -> ComposeResult:
        r = self.rules
        current = f"{r.stop_loss:f}" if r.stop_loss is not None else ""
        with Vertical(classes="dialog"):
            yield Label(f"Stop-loss of {r.symbol} {r.side.value.lower()}", classes="question")
            yield Label(self._hint(), id="stop_loss-hint", classes="hint")
            yield Input(value=current, placeholder="price", id=STOP_LOSS_FIELD)
            yield Label(id=f"{STOP_LOSS_FIELD}-error", classes="field-error")
            yield Label("Enter sets it, Escape cancels", classes="hint")

    def _hint(self) -> str:
        price = self.price_now()
        where = "above" if self.rules.side is Side.SHORT else "below"
        shown = f"{price:f}" if price is not None else "n/a"
        return f"{where} the current price {shown}, a multiple of {self.rules.price_unit:f}"

    def on_mount(self) -> None:
        self.query_one(f"#{STOP_LOSS_FIELD}", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.value.strip():
            self.check(event.value)
        else:  # an empty field is not an error until Enter
            mark_field(self, STOP_LOSS_FIELD, None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = self.check(event.value)
        if value is not None:
            self.dismiss(value)

    def check(self, text: str) -> Decimal | None:
        """The value in `text`, or None with the field marked with the reason."""
        self.query_one("#stop_loss-hint", Label).update(self._hint())
        try:
            value = self.rules.parse(text, self.price_now())
        except FieldInvalid as exc:
            mark_field(self, exc.field, str(exc))
            return None
        mark_field(self, STOP_LOSS_FIELD, None)
        return value

    def action_cancel(self) -> None:
        self.dismiss(None)


def ask_stop_loss(app: App[Any], facade: StopLossCommands, symbol: str, side: Side) -> None:
    """Ask for a new stop-loss of `symbol` `side` and send it; returns at once (a key handler calls it)."""

    def done(task: asyncio.Task[None], value: Decimal) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            app.notify(f"{symbol} {side.value.lower()} stop-loss set to {value:f}")
        else:
            show_error(app.screen, exc, retry=lambda: send(value))

    def send(value: Decimal | None) -> None:
        if value is None:  # cancelled
            return
        try:
            task = facade.set_stop_loss(symbol, side, value)
        except Exception as exc:  # noqa: BLE001 - shown by its type (a bug is logged with its traceback)
            show_error(app.screen, exc)
            return
        task.add_done_callback(lambda t: done(t, value))

    async def ask() -> None:
        try:
            rules = await facade.stop_loss_rules(symbol, side)
        except Exception as exc:  # noqa: BLE001 - a worker boundary: shown by its type, the app goes on
            show_error(app.screen, exc, retry=lambda: ask_stop_loss(app, facade, symbol, side))
            return
        app.push_screen(StopLossDialog(rules, lambda: facade.current_price(symbol)), send)

    app.run_worker(ask(), name=f"stop-loss rules {symbol} {side.value}", group="stop-loss", exit_on_error=False)
