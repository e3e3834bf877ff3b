"""App layer: the event log screen - every event, filtered by kind and searched as you type.

The log keeps every event the console publishes (the bridge's EVERY subscription, none coalesced);
this screen shows the ones matching the filter. A new filter redraws from the kept entries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Input, RichLog, Select

from tui_trader.app.tui.event_log import KINDS, LogEntry
from tui_trader.app.tui.widgets.status_header import StatusHeader

if TYPE_CHECKING:
    from tui_trader.app.tui.app import Frame, TraderApp

KIND_STYLE = {"errors": "bold red", "warnings": "yellow", "fills": "green"}


class EventLogScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search", id="events.search", tooltip="Search the log (as you type)"),
        Binding("f", "filter", "Filter", id="events.filter", tooltip="Filter the log by kind"),
        Binding("escape", "clear", "Clear filter", id="events.clear", tooltip="Show every event again"),
    ]

    kind = "all"
    search = ""

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status")
        with Horizontal(id="log-filters"):
            yield Select([(k, k) for k in KINDS], value="all", allow_blank=False, id="kind")
            yield Input(placeholder="search (/)", id="search")
        yield RichLog(id="event-log", markup=False, wrap=False, auto_scroll=True,
                      max_lines=self._app.bridge.log.entries.maxlen)
        yield Footer()

    @property
    def _app(self) -> TraderApp:
        return self.app  # type: ignore[return-value]

    def on_mount(self) -> None:
        log = self.query_one("#event-log", RichLog)
        log.border_title = "Events (f: filter by kind, /: search)"  # (drawn when shown: on_screen_resume)
        log.focus()  # not the filter: digits switch screens, the Select would take them

    def on_screen_resume(self) -> None:
        self._redraw()  # what came while another screen was in view

    def _write(self, entries: list[LogEntry]) -> None:
        log = self.query_one("#event-log", RichLog)
        for e in entries:
            if e.matches(self.kind, self.search):
                log.write(Text(e.text, style=KIND_STYLE.get(e.kind, "")))

    def _redraw(self) -> None:
        self.query_one("#event-log", RichLog).clear()
        self._write(list(self._app.bridge.log.entries))
        shown = "every event" if self.kind == "all" and not self.search else f"{self.kind}, '{self.search}'"
        self.query_one("#event-log", RichLog).border_subtitle = shown

    def repaint(self, frame: Frame) -> None:
        self._write(frame.entries)

    def on_select_changed(self, event: Select.Changed) -> None:
        if str(event.value) != self.kind:  # (the Select announces its first value too: nothing changed)
            self.kind = str(event.value)
            self._redraw()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.search = event.value.strip()
        self._redraw()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_filter(self) -> None:
        self.query_one("#kind", Select).focus()

    def action_clear(self) -> None:
        self.query_one("#search", Input).value = ""
        self.query_one("#kind", Select).value = "all"
        self.query_one("#event-log", RichLog).focus()
