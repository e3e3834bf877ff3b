"""App layer: the form that creates a paper session (strategy, symbols, balance, leverage, data source).

Why a form of its own: leverage is the value that hurts when mistyped, so it is checked as the person
types (the field is marked with the reason before they can submit), and submit is refused while it is
wrong. Everything else is the service's to judge; its refusal names the field (`FieldInvalid`) and
`errors.show_error` marks that input. Widget ids are the facade's field ids; each input is followed by
its `#<id>-error` label, as `errors.mark_field` expects. Dismisses with the new session
(`{"id", "name", "status"}`) or None (cancelled).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Checkbox, Input, Label

from tui_trader.app.form_values import leverage_problem
from tui_trader.app.sessions_facade import (
    BUNDLED,
    LIVE,
    SessionsFacade,
)
from tui_trader.app.tui.errors import mark_field, show_error

# widget id, caption, initial value, placeholder
FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("name", "Name", "paper", ""),
    ("strategy", "Strategy file", "", "empty: the bundled pump_short"),
    ("symbols", "Symbols", "", "e.g. BTC_USDT; empty: from the data file"),
    ("balance", "Balance (USDT)", "10000", ""),
    ("leverage", "Leverage (1-200)", "", "empty: the strategy's own"),
    ("data", "Data", BUNDLED, f"{BUNDLED}, {LIVE} (MEXC public feed) or a candle file path"),
    ("speed", "Replay speed", "0", "0: as fast as possible, 1: real time, N: N x"),
)


class LeverageRange(Validator):
    """The facade's leverage rule, so the form and the facade cannot disagree on the bounds or the words."""

    def validate(self, value: str) -> ValidationResult:
        problem = leverage_problem(value)
        return self.success() if problem is None else self.failure(problem)


class SessionFormDialog(ModalScreen[dict[str, str] | None]):
    CSS_PATH = "../screens/sessions.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Close the form, create nothing"),
    ]

    def __init__(self, facade: SessionsFacade) -> None:
        super().__init__()
        self.facade = facade

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog session-form"):
            yield Label("New paper session", classes="question")
            with VerticalScroll(classes="fields"):
                for field, caption, value, placeholder in FIELDS:
                    with Horizontal(classes="field"):
                        yield Label(caption, classes="caption")
                        yield self._input(field, value, placeholder)
                    yield Label(id=f"{field}-error", classes="field-error")
                yield Checkbox("Start it now", value=True, id="start", compact=True)
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Create", id="create", variant="primary")

    @staticmethod
    def _input(field: str, value: str, placeholder: str) -> Input:
        if field == "leverage":  # checked on every keystroke, not only on submit
            return Input(value, placeholder, id=field, compact=True, validators=[LeverageRange()],
                         validate_on=["changed", "blur", "submitted"])
        return Input(value, placeholder, id=field, compact=True)

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        field = event.input.id or ""
        result = event.validation_result
        # a value the service refused stays marked only until the person edits it
        mark_field(self, field, None if result is None or result.is_valid else "; ".join(result.failure_descriptions))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()  # Enter in any field submits the form
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "create":
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def values(self) -> dict[str, str]:
        """What the person typed, by field id."""
        return {field: self.query_one(f"#{field}", Input).value for field, *_ in FIELDS}

    def submit(self) -> None:
        """Refused while the leverage is wrong; else the facade is called in a worker (it writes the store)."""
        problem = leverage_problem(self.query_one("#leverage", Input).value)
        if problem is not None:
            mark_field(self, "leverage", problem)
            self.query_one("#leverage", Input).focus()
            return
        button = self.query_one("#create", Button)
        if button.disabled:  # already creating: Enter twice must not make two sessions
            return
        button.disabled = True
        self.run_worker(self._create(self.values(), self.query_one("#start", Checkbox).value),
                        group="session-form", exit_on_error=False)

    async def _create(self, values: dict[str, str], start: bool) -> None:
        try:
            summary = await self.facade.create(values, start=start)
        except Exception as exc:  # noqa: BLE001 - a worker boundary: shown by its type, the form stays open
            self.query_one("#create", Button).disabled = False
            show_error(self, exc, retry=self.submit)
            return
        self.dismiss({"id": summary.id, "name": summary.name, "status": summary.status})
