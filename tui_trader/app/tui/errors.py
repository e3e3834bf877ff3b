"""App layer: how an error from the core is shown - one rule for every screen and form.

Errors are typed, so the dashboard branches on the class, never on message text:
- `FieldInvalid`: the form's widget with that id gets the `-invalid` class and its message is shown in
  the label `#<field>-error` (forms follow that naming); the field takes the focus.
- `Retryable` (network trouble, timeout, rate limit): a dialog offers to retry the same command.
- any other `TraderError`: an error notification with its message.
Anything else is a bug: logged with its traceback, shown as a notification, the app keeps running.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Button, Label

from tui_trader.app.facade import FieldInvalid
from tui_trader.domain.errors import Retryable, TraderError

log = logging.getLogger(__name__)


class RetryDialog(ModalScreen[bool]):
    """'Could not reach ...: retry?' - Retry has the focus (retrying is safe: commands are idempotent by id)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.message, classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Retry", id="retry", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#retry", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "retry")

    def action_cancel(self) -> None:
        self.dismiss(False)


def mark_field(form: Widget | Screen, field: str, message: str | None) -> None:
    """Highlight `#field` with `message` in `#field-error`, or clear both (message None)."""
    try:
        widget = form.query_one(f"#{field}")
    except NoMatches:
        widget = None
    if widget is not None:
        widget.set_class(message is not None, "-invalid")
    try:
        form.query_one(f"#{field}-error", Label).update(message or "")
    except NoMatches:
        if message is not None and widget is None:  # no such field on this form: say it anyway
            form.app.notify(f"{field}: {message}", severity="error")


def show_error(form: Widget | Screen, exc: BaseException, retry: Callable[[], object] | None = None) -> None:
    """Show `exc` the way its type asks for (see the module docstring)."""
    app = form.app
    if isinstance(exc, FieldInvalid):
        mark_field(form, exc.field, str(exc))
        try:
            form.query_one(f"#{exc.field}").focus()
        except NoMatches:
            pass
    elif isinstance(exc, Retryable) and retry is not None:
        def answered(yes: bool | None) -> None:
            if yes:
                retry()

        app.push_screen(RetryDialog(f"{exc}\n\nRetry?"), answered)
    elif isinstance(exc, TraderError):
        app.notify(str(exc), severity="error", timeout=8)
    else:
        log.error("unexpected error in the dashboard", exc_info=exc)
        app.notify(f"unexpected error: {type(exc).__name__}: {exc} (details in the log file)", severity="error",
                   timeout=10)
