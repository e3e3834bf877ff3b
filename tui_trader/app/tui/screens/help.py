"""App layer: the help screen - every binding of every screen, with the keys in effect and its id.

The id is what `[ui] keys` in the config takes to move a key; the list is built from the bindings
themselves, so it cannot fall out of date.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from tui_trader.app.tui.keymap import KeyHelp


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close help", id="help.close"),
    ]

    def __init__(self, rows: list[KeyHelp]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label("Keys (move one with \\[ui] keys = { \"<id>\" = \"<key>\" } in the config;"
                        " ctrl+p finds every action by name)", classes="question")
            yield DataTable(id="help-keys", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("where", "keys", "does", "id")
        for r in self.rows:
            table.add_row(r.scope, r.keys, r.description, r.id)
        table.focus()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
