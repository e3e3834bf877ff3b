"""App layer: confirmations that a stray key cannot give.

`ConfirmDialog` (close one position, delete a session): Cancel has the focus, so Enter or Escape
cancels; only Tab + Enter or the button confirms. With `default_confirm` (retry a command that met
network trouble - safe, commands are idempotent by id) the confirm button has the focus instead.
`TypedConfirmDialog` (close every position): the word must be typed. All dismiss with True (confirmed)
or False.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, question: str, confirm_label: str = "Confirm", *, default_confirm: bool = False) -> None:
        super().__init__()
        self.question, self.confirm_label, self.default_confirm = question, confirm_label, default_confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", variant="default" if self.default_confirm else "primary")
                yield Button(self.confirm_label, id="confirm", variant="primary" if self.default_confirm else "error")

    def on_mount(self) -> None:
        # the default answer is no, unless saying yes is safe (a retry)
        self.query_one("#confirm" if self.default_confirm else "#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)


class TypedConfirmDialog(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, question: str, word: str, on_confirm: Callable[[], object] | None = None) -> None:
        """`on_confirm` runs the moment the word is typed, before the dialog closes (a close-all must not
        wait for the screen behind it to repaint)."""
        super().__init__()
        self.question, self.word, self.on_confirm = question, word, on_confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Label(f"Type {self.word} and press Enter (Escape cancels)", classes="hint")
            yield Input(placeholder=self.word, id="word")

    def on_mount(self) -> None:
        self.query_one("#word", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip().lower() == self.word.lower():
            if self.on_confirm is not None:
                self.on_confirm()
            self.dismiss(True)
        else:
            event.input.value = ""
            self.notify(f"not confirmed: type {self.word}", severity="warning")

    def action_cancel(self) -> None:
        self.dismiss(False)
