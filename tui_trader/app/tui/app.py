"""App layer: the Textual dashboard - four screens over one core, reached through one facade.

The app is one subscriber of the core, never an owner of trading logic: it drains the bridge on a
timer (at most `ui.refresh_hz` repaints per second, whatever the tick rate) and hands the screen in
view one `Frame`; key handlers call facade commands that return at once (their progress arrives as
events). Screens: 1 positions (default), 2 paper sessions, 3 backtests, 4 event log; ? help; ctrl+p
every action by name. Close-all (K, or ctrl+k from anywhere, even a text field) asks for CLOSE typed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from tui_trader.app.facade import ConsoleFacade, ConsoleSnapshot, NotAvailable
from tui_trader.app.tui.bridge import Alert, Bridge, HeaderState
from tui_trader.app.tui.dialogs.confirm import TypedConfirmDialog
from tui_trader.app.tui.event_log import LogEntry
from tui_trader.app.tui.keymap import check_keymap, key_help
from tui_trader.app.tui.palette import ActionsProvider
from tui_trader.app.tui.screens.events import EventLogScreen
from tui_trader.app.tui.screens.help import HelpScreen
from tui_trader.app.tui.screens.positions import PositionsScreen
from tui_trader.app.tui.widgets.status_header import StatusHeader
from tui_trader.engine.core import TraderCore

MAX_TOASTS = 3  # per repaint; more alerts than that are summed up in one


@dataclass(frozen=True)
class Frame:
    """What one repaint shows (the screen in view lays it out)."""

    header: HeaderState
    snapshot: ConsoleSnapshot
    now_ms: int  # the core's clock (ages)
    wall_ms: int  # the header's UTC clock
    entries: list[LogEntry] = field(default_factory=list)  # new since the last repaint


def _screen_classes() -> dict[str, Any]:
    """Mode name -> screen class (sessions and backtests take their facade)."""
    from tui_trader.app.tui.screens.backtests import BacktestsScreen
    from tui_trader.app.tui.screens.sessions import SessionsScreen

    return {"positions": PositionsScreen, "sessions": SessionsScreen, "backtests": BacktestsScreen,
            "events": EventLogScreen}


class TraderApp(App[int]):
    TITLE = "tui-trader"
    CSS_PATH = "tui.tcss"
    COMMANDS = App.COMMANDS | {ActionsProvider}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Stop the core in order and quit"),
        Binding("K", "close_all", "Close ALL", id="app.close-all",
                tooltip="Emergency: block entries, cancel orders, close every position reduce-only (type CLOSE)"),
        Binding("ctrl+k", "close_all", "Close ALL", id="app.close-all-anywhere", priority=True, show=False,
                tooltip="Close-all from anywhere, even while typing in a field (type CLOSE)"),
        Binding("R", "reset_kill_switch", "Reset kill switch", id="app.reset-kill-switch",
                tooltip="HALTED -> ACTIVE (explicit user action)"),
        Binding("1", "switch_mode('positions')", "Positions", id="app.positions", tooltip="Positions screen"),
        Binding("2", "switch_mode('sessions')", "Sessions", id="app.sessions", tooltip="Paper sessions screen"),
        Binding("3", "switch_mode('backtests')", "Backtests", id="app.backtests", tooltip="Backtests screen"),
        Binding("4", "switch_mode('events')", "Events", id="app.events", tooltip="Event log screen"),
        Binding("question_mark", "help", "Help", id="app.help", tooltip="Every key, with its id"),
    ]

    def __init__(self, core: TraderCore, *, wall_ms: Callable[[], int] | None = None) -> None:
        super().__init__()
        self.core = core
        self.facade = ConsoleFacade(core)  # every command the dashboard gives goes through it
        settings = core.components.get("settings")
        self.refresh_s = 1.0 / (settings.ui.refresh_hz if settings else 10.0)
        self.keys: dict[str, str] = dict(settings.ui.keys) if settings else {}
        check_keymap(self.keys, self.binding_owners())
        self.bridge = Bridge(core.bus, core.mode, core.clock.now_ms, settings.ui.log_lines if settings else 10_000)
        self.wall_ms = wall_ms or core.clock.now_ms

    @staticmethod
    def binding_owners() -> dict[str, type]:
        return {"app": TraderApp, **_screen_classes()}

    def on_mount(self) -> None:
        if self.keys:
            self.set_keymap(self.keys)
        facade = self.facade
        screens = _screen_classes()
        self.add_mode("positions", PositionsScreen)
        self.add_mode("sessions", lambda: screens["sessions"](facade.sessions))
        self.add_mode("backtests", lambda: screens["backtests"](facade.backtests))
        self.add_mode("events", EventLogScreen)
        self.switch_mode("positions")
        self.set_interval(self.refresh_s, self.flush)

    def flush(self) -> None:
        """The one place the dashboard repaints from."""
        update = self.bridge.take()
        self._alert(update.alerts)
        frame = Frame(self.bridge.header, self.facade.snapshot(), self.core.clock.now_ms(), self.wall_ms(),
                      update.entries)
        base = self.screen_stack[0] if self.screen_stack else None
        if base is None or not base.is_mounted:  # (a screen being switched to: next time)
            return
        with self.batch_update():
            for header in base.query(StatusHeader):  # every screen has one
                header.show(frame.header, frame.snapshot, frame.now_ms, frame.wall_ms)
            repaint = getattr(base, "repaint", None)  # the screens that show the frame's positions or events
            if repaint is not None:
                repaint(frame)
        if self.core.stop_requested:
            self.exit(self.core.exit_code)

    def _alert(self, alerts: list[Alert]) -> None:
        """Bell and toast for each alert (a burst rings once and shows at most MAX_TOASTS)."""
        if not alerts:
            return
        self.bell()
        for a in alerts[:MAX_TOASTS]:
            self.notify(a.message, severity="error", timeout=15)
        if len(alerts) > MAX_TOASTS:
            self.notify(f"and {len(alerts) - MAX_TOASTS} more alerts (4: event log)", severity="error")

    def palette_actions(self) -> list[tuple[str, str, Callable[[], Any]]]:
        """(title, help, run) for the screen in view's bindings and the app's: what the palette lists."""
        base = self.screen_stack[0] if self.screen_stack else None
        found: list[tuple[str, str, Callable[[], Any]]] = []
        for row in key_help({"app": TraderApp, "screen": type(base)}, self.keys):
            target = self if row.scope == "app" else base
            if target is None or row.id.endswith("-anywhere"):
                continue
            title = f"{row.description} ({row.keys})"
            found.append((title, row.id, partial(target.run_action, row.action)))
        return found

    # --- actions ----------------------------------------------------------------------------

    async def action_quit(self) -> None:
        self.exit(0)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(key_help(self.binding_owners(), self.keys)))

    def action_close_all(self) -> None:
        """Panic button: a typed confirmation, then the emergency close returns at once (progress as events)."""
        if isinstance(self.screen, TypedConfirmDialog):
            return
        self.push_screen(TypedConfirmDialog("Close EVERY position at market and HALT trading?", "CLOSE",
                                            on_confirm=self._send_close_all))

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


async def save_screenshot(core: TraderCore, path: Path, *, after_s: float, size: tuple[int, int] = (200, 40)) -> int:
    """Run the dashboard without a terminal until a position is open (plus a second, so prices move)
    or `after_s` seconds have passed, then write what it shows as SVG (`tui-trader --screenshot FILE`:
    the README's picture is made this way, on the bundled data)."""
    app = TraderApp(core)
    loop = asyncio.get_running_loop()
    async with core, app.run_test(size=size) as pilot:
        deadline = loop.time() + after_s
        while loop.time() < deadline and not app.facade.snapshot().positions:
            await pilot.pause(0.1)
        await pilot.pause(min(1.0, max(0.0, deadline - loop.time())))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(app.export_screenshot(title="tui-trader"), encoding="utf-8")
        await pilot.press("q")
    return core.exit_code


async def run_tui(core: TraderCore, *, duration_s: float | None = None) -> int:
    """Run the dashboard on top of a started core; quitting the UI stops the core in order."""
    app = TraderApp(core)  # a bad [ui] keys entry fails here, before the core starts
    loop = asyncio.get_running_loop()
    async with core:
        timer = loop.call_later(duration_s, app.exit) if duration_s else None
        try:
            await app.run_async()
        finally:
            if timer is not None:
                timer.cancel()
    return core.exit_code
