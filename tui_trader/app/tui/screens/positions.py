"""App layer: the positions screen (the default) - every position with its liquidation-distance bar.

The table shows the facade's snapshot, the newest events run below it. Keys act on the selected row:
`c` closes it (a confirmation whose default is Cancel), `s` moves its stop-loss (a validated dialog).
Close-all and the kill-switch reset are the app's keys: they work from every screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, RichLog

from tui_trader.app.facade import NotAvailable
from tui_trader.app.tui.dialogs.confirm import ConfirmDialog
from tui_trader.app.tui.view_models import position_rows
from tui_trader.app.tui.widgets.positions_table import PositionsTable
from tui_trader.app.tui.widgets.status_header import StatusHeader
from tui_trader.domain.models import Side

if TYPE_CHECKING:
    from tui_trader.app.tui.app import Frame, TraderApp

RECENT_LINES = 200


class PositionsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "close_selected", "Close position", id="positions.close",
                tooltip="Close the selected position (reduce-only market), after a confirmation"),
        Binding("s", "stop_loss", "Stop-loss", id="positions.stop-loss",
                tooltip="Move the selected position's stop-loss (validated: side of the price, price unit)"),
    ]

    _written = 0  # log entries written so far (EventLog.added)

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status")
        yield PositionsTable(id="positions")
        yield RichLog(id="recent-events", max_lines=RECENT_LINES, markup=False, wrap=False, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(PositionsTable).border_title = "Positions"
        self.query_one("#recent-events", RichLog).border_title = "Events (4: the full log)"
        self.on_screen_resume()

    def on_screen_resume(self) -> None:
        """Back from another screen or a dialog: write what came meanwhile (appended: a close-all's
        dialog closing must not cost a rewrite of the log)."""
        self._write_since()

    def _write_since(self) -> None:
        log, events = self.query_one("#recent-events", RichLog), self._app.bridge.log
        for entry in events.since(self._written, RECENT_LINES):
            log.write(Text(entry.text))
        self._written = events.added

    @property
    def _app(self) -> TraderApp:
        return self.app  # type: ignore[return-value]

    def repaint(self, frame: Frame) -> None:
        self.query_one(PositionsTable).show(position_rows(frame.snapshot))
        self._write_since()

    def _selected(self) -> tuple[str, Side] | None:
        key = self.query_one(PositionsTable).selected_key
        if key is None:
            self.notify("no position selected", severity="warning")
            return None
        symbol, side = key.rsplit(":", 1)
        return symbol, Side(side)

    def action_close_selected(self) -> None:
        selected = self._selected()
        if selected is None:
            return
        symbol, side = selected

        def answered(yes: bool | None) -> None:
            if yes:
                try:
                    self._app.facade.close_position(symbol, side, "KEY")
                    self.notify(f"closing {symbol} {side.value.lower()} (reduce-only)...", severity="warning")
                except NotAvailable as exc:
                    self.notify(str(exc), severity="error")

        self.app.push_screen(ConfirmDialog(f"Close {symbol} {side.value.lower()} at market (reduce-only)?",
                                           "Close it"), answered)

    def action_stop_loss(self) -> None:
        selected = self._selected()
        if selected is None:
            return
        from tui_trader.app.tui.dialogs.stop_loss import ask_stop_loss

        ask_stop_loss(self.app, self._app.facade, *selected)
