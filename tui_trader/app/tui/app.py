"""App layer: the Textual dashboard shell - status header, live event log, key footer.

The app is one subscriber of the core, never an owner of trading logic: it drains the bridge on a
timer (at most `ui.refresh_hz` repaints per second) and key handlers only call core commands that
return at once. The panels (positions, sessions, backtests) build on this shell.
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, RichLog, Static

from tui_trader.app.facade import ConsoleFacade, NotAvailable
from tui_trader.app.tui.bridge import Bridge, HeaderState, format_price, format_time
from tui_trader.app.tui.dialogs.confirm import ConfirmDialog, TypedConfirmDialog
from tui_trader.app.tui.view_models import position_rows
from tui_trader.app.tui.widgets.positions_table import PositionsTable
from tui_trader.domain.models import Side
from tui_trader.engine.core import TraderCore


STALE_AGE_S = 3.0  # a stream price older than this shows its age (the watchdog's default stale_after_s)


class StatusHeader(Static):
    """Mode (PAPER/LIVE), core and feed state, kill-switch state, last prices."""

    def show(self, h: HeaderState, now_ms: int = 0) -> None:
        text = Text()
        text.append(f" {h.mode.upper()} ", style="bold black on green" if h.mode == "paper" else "bold white on red")
        text.append(f"  core {h.core}")
        for feed, state in h.feeds.items():
            text.append(f"  feed {feed}: ")
            text.append(state.upper() if state == "failed" else state,
                        style="green" if state in ("connected", "replaying", "resynced")
                        else "bold white on red" if state == "failed" else "yellow")
        text.append("  trading ")
        text.append(h.trading, style="green" if h.trading == "ACTIVE" else "bold red")
        for venue, state in h.breakers.items():
            text.append(f"  {venue} breaker ")
            text.append(state, style="green" if state == "closed" else "bold red" if state == "open" else "yellow")
        for symbol, price in h.last_price.items():
            text.append(f"  {symbol} {format_price(price)}")
            age, source = h.price_age_s(symbol, now_ms), h.price_source.get(symbol, "stream")
            if age is not None and (source != "stream" or age >= STALE_AGE_S):
                text.append(f" ({source} {age:.1f} s)", style="bold yellow")
        if h.data_time_ms:
            text.append(f"  data {format_time(h.data_time_ms)}", style="dim")
        self.update(text)


class TraderApp(App[int]):
    TITLE = "tui-trader"
    CSS_PATH = "tui.tcss"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit", priority=True, tooltip="Stop the core in order and quit"),
        Binding("c", "close_selected", "Close position", id="positions.close",
                tooltip="Close the selected position (reduce-only market), after a confirmation"),
        Binding("K", "close_all", "Close ALL", id="app.close-all", priority=True,
                tooltip="Emergency: block entries, cancel orders, close every position reduce-only (type CLOSE)"),
        Binding("R", "reset_kill_switch", "Reset kill switch", id="app.reset-kill-switch",
                tooltip="HALTED/REDUCING -> ACTIVE (explicit user action)"),
    ]

    def __init__(self, core: TraderCore) -> None:
        super().__init__()
        self.core = core
        self.facade = ConsoleFacade(core)  # every command the dashboard gives goes through it
        settings = core.components.get("settings")
        self.refresh_s = 1.0 / (settings.ui.refresh_hz if settings else 10.0)
        self.log_lines = settings.ui.log_lines if settings else 1000
        self.bridge = Bridge(core.bus, core.mode, core.clock.now_ms)
        self._alarms_rung = 0

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status")
        yield PositionsTable(id="positions")
        yield RichLog(id="event-log", max_lines=self.log_lines, markup=False, wrap=False, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#event-log", RichLog).border_title = "Events"
        self.query_one(PositionsTable).border_title = "Positions"
        self.set_interval(self.refresh_s, self.flush)
        self.flush()

    def flush(self) -> None:
        """The one place the dashboard repaints from."""
        lines = self.bridge.take()
        if self.bridge.header.alarms > self._alarms_rung:  # a close the console cannot send: ring
            self._alarms_rung = self.bridge.header.alarms
            self.bell()
        with self.batch_update():
            self.query_one(StatusHeader).show(self.bridge.header, self.core.clock.now_ms())
            self.query_one(PositionsTable).show(position_rows(self.facade.snapshot()))
            log = self.query_one("#event-log", RichLog)
            for line in lines:
                log.write(Text(line))
        if self.core.stop_requested:
            self.exit(self.core.exit_code)

    async def action_quit(self) -> None:
        self.exit(0)

    def action_close_selected(self) -> None:
        key = self.query_one(PositionsTable).selected_key
        if key is None:
            self.notify("no position selected", severity="warning")
            return
        symbol, side = key.rsplit(":", 1)

        def answered(yes: bool | None) -> None:
            if yes:
                try:
                    self.facade.close_position(symbol, Side(side), "KEY")
                    self.notify(f"closing {symbol} {side.lower()} (reduce-only)...", severity="warning")
                except NotAvailable as exc:
                    self.notify(str(exc), severity="error")

        self.push_screen(ConfirmDialog(f"Close {symbol} {side.lower()} at market (reduce-only)?", "Close it"), answered)

    def action_close_all(self) -> None:
        """Panic button: a typed confirmation, then the emergency close returns at once (progress as events)."""
        self.push_screen(TypedConfirmDialog("Close EVERY position at market and HALT trading?", "CLOSE"),
                         lambda yes: self._send_close_all() if yes else None)

    def _send_close_all(self) -> None:
        try:
            self.facade.close_all("KEY")
        except NotAvailable as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify("closing every position (reduce-only)...", severity="warning")

    def action_reset_kill_switch(self) -> None:
        try:
            self.facade.reset_kill_switch("dashboard")
        except NotAvailable as exc:
            self.notify(str(exc), severity="warning")
            return
        self.notify("trading state reset to ACTIVE")


async def run_tui(core: TraderCore, *, duration_s: float | None = None) -> int:
    """Run the dashboard on top of a started core; quitting the UI stops the core in order."""
    app = TraderApp(core)
    loop = asyncio.get_running_loop()
    async with core:
        timer = loop.call_later(duration_s, app.exit) if duration_s else None
        try:
            await app.run_async()
        finally:
            if timer is not None:
                timer.cancel()
    return core.exit_code
