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

from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Label

from tui_trader.app.facade import FieldInvalid
from tui_trader.app.tui.dialogs.confirm import ConfirmDialog
from tui_trader.domain.errors import Retryable, TraderError

log = logging.getLogger(__name__)


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

        # Retry has the focus: retrying is safe, commands are idempotent by id
        app.push_screen(ConfirmDialog(f"{exc}\n\nRetry?", "Retry", default_confirm=True), answered)
    elif isinstance(exc, TraderError):
        app.notify(str(exc), severity="error", timeout=8)
    else:
        log.error("unexpected error in the dashboard", exc_info=exc)
        app.notify(f"unexpected error: {type(exc).__name__}: {exc} (details in the log file)", severity="error",
                   timeout=10)
