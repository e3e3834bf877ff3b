"""Issue 21: the dashboard's structure - event log (every event, filter, search), header, alerts,
keymap by binding id, help, command palette. Pure parts without a terminal; the rest with a pilot."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from textual.widgets import Input, RichLog, Select

from tests.conftest import favour
from tui_trader.app.facade import ConsoleSnapshot
from tui_trader.app.settings import load_settings
from tui_trader.app.tui.app import TraderApp
from tui_trader.app.tui.bridge import Bridge, alert_for
from tui_trader.app.tui.dialogs.confirm import ConfirmDialog, TypedConfirmDialog
from tui_trader.app.tui.event_log import EventLog, logged_types
from tui_trader.app.tui.keymap import check_keymap, key_help
from tui_trader.app.tui.screens.help import HelpScreen
from tui_trader.app.tui.widgets.status_header import header_text
from tui_trader.app.wiring import build_core
from tui_trader.domain.errors import ConfigError
from tui_trader.domain.events import (
    BreakerChanged,
    ErrorRaised,
    FeedStateChanged,
    LiquidationWarning,
    MarkPriceTick,
    OrderFilled,
    OrderUpdated,
    PositionLiquidated,
    TradeTick,
    TradingStateChanged,
)
from tui_trader.domain.models import Fill, Order, OrderSide, OrderState, OrderType
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock

T0 = 1_765_000_000_000  # 2025-12-06 05:46:40 UTC


def _order(state: OrderState) -> Order:
    return Order("c-1", "BTC_USDT", OrderSide.OPEN_SHORT, OrderType.MARKET, Decimal(1), leverage=3, state=state)


# --- pure: event log, bridge, alerts, header -------------------------------------------------------


def test_the_log_keeps_every_event_in_order_and_no_market_data():
    """Two updates of one order are two lines (the tables keep the latest; the log keeps both); ticks are not logged."""
    bus = EventBus()
    bridge = Bridge(bus, "paper")
    for i in range(3):
        bus.publish(TradeTick(T0 + i, "BTC_USDT", 60000.0 + i, 1.0, "buy"))
        bus.publish(MarkPriceTick(T0 + i, "BTC_USDT", 60000.0 + i))
    bus.publish(OrderUpdated(T0 + 5, _order(OrderState.SUBMITTED)))
    bus.publish(OrderUpdated(T0 + 6, _order(OrderState.FILLED)))
    bus.publish(ErrorRaised(T0 + 7, "venue", "rate limited", level="WARNING"))
    update = bridge.take()
    assert [e.kind for e in update.entries] == ["orders", "orders", "warnings"]
    assert "submitted" in update.entries[0].text.lower() and "filled" in update.entries[1].text.lower()
    assert bridge.header.last_price["BTC_USDT"] == 60002.0  # the header still saw the ticks
    assert TradeTick not in logged_types() and OrderFilled in logged_types()


def test_each_log_entry_has_the_kind_the_filter_offers():
    log = EventLog(100)
    log.add(ErrorRaised(T0, "venue", "Order REJECTED: balance"))
    log.add(ErrorRaised(T0, "feed", "late frame", level="WARNING"))
    log.add(FeedStateChanged(T0, "mexc", "reconnecting"))
    log.add(OrderFilled(T0, Fill("f1", "c-1", "BTC_USDT", OrderSide.OPEN_SHORT, Decimal(1), Decimal(60000),
                                 Decimal("0.01"), T0)))
    assert [e.kind for e in log.entries] == ["errors", "warnings", "feed", "fills"]  # (the screen filters on it)


def test_the_log_is_bounded_by_its_line_count():
    log = EventLog(10)
    for i in range(25):
        log.add(ErrorRaised(T0 + i, "x", f"e{i}"))
    assert len(log.entries) == 10 and log.entries[0].text.endswith("e15 level=ERROR")


@pytest.mark.parametrize(("event", "wanted"), [
    (LiquidationWarning(T0, "BTC_USDT", "SHORT", 8.0, "red", "CRITICAL", 1.0, 2.0), "entered RED"),
    (LiquidationWarning(T0, "BTC_USDT", "SHORT", 4.0, "red", "AUTOCLOSE", 1.0, 2.0), "AUTO-CLOSE"),
    (PositionLiquidated(T0, "BTC_USDT", "SHORT", Decimal(79760), Decimal(100)), "LIQUIDATED"),
    (TradingStateChanged(T0, "REDUCING", "daily loss"), "KILL SWITCH"),
])
def test_alerts_for_red_autoclose_liquidation_and_kill_switch(event, wanted):
    alert = alert_for(event)
    assert alert is not None and wanted in alert.message


def test_no_alert_for_yellow_or_recovery():
    assert alert_for(LiquidationWarning(T0, "BTC_USDT", "SHORT", 15.0, "yellow", "WARNING", 1.0, 2.0)) is None
    assert alert_for(LiquidationWarning(T0, "BTC_USDT", "SHORT", 25.0, "green", "INFO", 1.0, 2.0)) is None
    assert alert_for(TradingStateChanged(T0, "ACTIVE", "reset")) is None


def test_header_shows_money_clock_reconnects_and_breaker():
    bus, clock = EventBus(), SimClock(T0)
    bridge = Bridge(bus, "live", clock.now_ms)
    for state in ("connected", "reconnecting", "connected", "stalled", "reconnecting", "connected"):
        bus.publish(FeedStateChanged(T0, "mexc", state))
    bus.publish(BreakerChanged(T0, "mexc", "closed", "open"))
    bridge.take()
    snap = ConsoleSnapshot("live", "REDUCING", T0, equity=Decimal("10234.5"), daily_pnl=Decimal("-120.25"))
    text = header_text(bridge.header, snap, T0, T0).plain
    assert text.startswith(" LIVE ") and "trading REDUCING" in text
    assert "equity 10,234.50" in text and "today -120.25" in text and "2025-12-06 05:46:40 UTC" in text
    assert "feed mexc connected (2 reconnects)" in text and "mexc breaker open" in text


# --- keymap and help -------------------------------------------------------------------------------


def test_an_unknown_binding_id_in_the_config_is_an_error_naming_it():
    with pytest.raises(ConfigError, match="'positions.klose' is not a binding id"):
        check_keymap({"positions.klose": "x"}, TraderApp.binding_owners())
    check_keymap({"positions.close": "x"}, TraderApp.binding_owners())


def test_every_binding_has_a_unique_id_and_a_description():
    rows = key_help(TraderApp.binding_owners(), {})
    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids))
    assert all(r.description for r in rows)
    assert {"app.close-all", "positions.close", "positions.stop-loss", "events.search"} <= set(ids)


def _settings(**ui):
    settings, _ = load_settings(None)
    return settings.model_copy(update={
        "replay": settings.replay.model_copy(update={"speed": 0.0}),
        "ui": settings.ui.model_copy(update=ui),
    })


async def _wait(pilot, cond, tries: int = 100) -> bool:
    for _ in range(tries):
        if cond():
            return True
        await pilot.pause(0.05)
    return cond()


async def test_a_key_moved_in_the_config_works_and_the_old_one_no_longer_does(isolated_environment):
    core = build_core(_settings(keys={"positions.close": "x", "app.help": "f1"}))
    app = TraderApp(core)
    async with core, app.run_test(size=(160, 40), notifications=True) as pilot:
        await pilot.pause(0.2)
        await pilot.press("c")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog)
        await pilot.press("x")  # nothing selected in an empty table: it says so
        assert await _wait(pilot, lambda: any("no position selected" in str(n.message)
                                              for n in app._notifications))
        await pilot.press("f1")
        assert await _wait(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_rows = app.screen.rows
        assert next(r for r in help_rows if r.id == "positions.close").keys == "x"
        await pilot.press("escape")
        await pilot.press("q")


async def test_help_lists_every_binding_of_every_screen(isolated_environment):
    core = build_core(_settings())
    app = TraderApp(core)
    async with core, app.run_test(size=(160, 50)) as pilot:
        await pilot.press("question_mark")
        assert await _wait(pilot, lambda: isinstance(app.screen, HelpScreen))
        from textual.widgets import DataTable

        table = app.screen.query_one(DataTable)
        assert table.row_count == len(key_help(TraderApp.binding_owners(), {}))
        await pilot.press("escape")
        await pilot.press("q")


# --- screens, log, palette, alerts -----------------------------------------------------------------


async def test_event_log_screen_filters_by_kind_and_searches(isolated_environment):
    core = build_core(_settings())
    app = TraderApp(core)
    async with core, app.run_test(size=(160, 40)) as pilot:
        core.bus.publish(ErrorRaised(T0, "venue", "order refused: balance"))
        core.bus.publish(ErrorRaised(T0, "feed", "late frame dropped", level="WARNING"))
        await pilot.press("4")
        assert await _wait(pilot, lambda: app.current_mode == "events")
        log = app.screen.query_one("#event-log", RichLog)

        def lines() -> str:
            return "\n".join(line.text for line in log.lines)

        assert await _wait(pilot, lambda: "order refused" in lines() and "core_state" in lines())
        app.screen.query_one("#kind", Select).value = "errors"
        assert await _wait(pilot, lambda: "order refused" in lines() and "core_state" not in lines())
        assert "late frame" not in lines()
        app.screen.query_one("#kind", Select).value = "all"
        await pilot.press("slash", *"LATE")  # searched case-insensitively, as typed
        assert await _wait(pilot, lambda: "late frame" in lines() and "order refused" not in lines())
        app.screen.query_one("#kind", Select).value = "errors"  # the kind and the search both apply
        assert await _wait(pilot, lambda: "late frame" not in lines())
        assert "order refused" not in lines()
        app.screen.query_one("#kind", Select).value = "warnings"
        assert await _wait(pilot, lambda: "late frame" in lines())
        app.screen.query_one("#kind", Select).value = "all"
        assert app.current_mode == "events"  # typing in the search field switched nothing, quit nothing
        await pilot.press("q")  # into the search field, not quitting the app
        await pilot.pause()
        assert app.is_running and app.screen.query_one("#search", Input).value == "LATEq"
        await pilot.press("ctrl+k")  # close-all from anywhere, even a text field
        assert await _wait(pilot, lambda: isinstance(app.screen, TypedConfirmDialog))
        await pilot.press("escape")
        app.screen.query_one("#event-log", RichLog).focus()
        await pilot.press("1")
        assert await _wait(pilot, lambda: app.current_mode == "positions")
        await pilot.press("q")
        assert app.return_value == 0


async def test_the_palette_lists_the_screens_actions_and_runs_them(isolated_environment):
    core = build_core(_settings())
    app = TraderApp(core)
    async with core, app.run_test(size=(160, 40), notifications=True) as pilot:
        await pilot.pause(0.2)
        titles = [t for t, _, _ in app.palette_actions()]
        assert any(t.startswith("Close the selected position") for t in titles)
        assert any(t.startswith("Paper sessions screen") for t in titles)
        run = next(r for t, _, r in app.palette_actions() if t.startswith("HALTED -> ACTIVE"))
        await run()  # the same action as R: nothing to reset, and it says so
        assert await _wait(pilot, lambda: any("already ACTIVE" in str(n.message) for n in app._notifications))
        await pilot.press("q")


async def test_an_autoclose_rings_the_bell_and_shows_a_toast(isolated_environment):
    core = build_core(_settings())
    app = TraderApp(core)
    rung: list[int] = []
    app.bell = lambda: rung.append(1)  # type: ignore[method-assign]
    async with core, app.run_test(size=(160, 40), notifications=True) as pilot:
        await pilot.pause(0.2)
        core.bus.publish(LiquidationWarning(T0, "BTC_USDT", "SHORT", 4.0, "red", "AUTOCLOSE", 1.0, 2.0))
        assert await _wait(pilot, lambda: any("AUTO-CLOSE BTC_USDT" in str(n.message)
                                              for n in app._notifications))
        assert rung == [1]
        await pilot.press("q")


def test_a_first_start_shows_a_position_on_the_bundled_data_within_10_s(isolated_environment):
    """Acceptance: `tui-trader` on a fresh install shows the positions screen with a position within 10 s
    (the bundled replay is paced from just before its first entry). `--screenshot` runs the very dashboard
    without a terminal and writes what it shows; it returns once a position is in the table."""
    import subprocess
    import sys
    import time

    shot = isolated_environment / "shot.svg"
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tui_trader", "--screenshot", str(shot), "--duration", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    favour(proc.pid)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill() if proc.poll() is None else None
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, err
    svg = shot.read_text()
    assert "Positions" in svg and "NXT_BTC" in svg and "SHORT" in svg and "watching" in svg
    assert elapsed < 10 + 3  # 10 s to a position, plus the second the picture waits and the exit


def test_orders_fills_positions_and_the_account_read_as_a_trader_reads_them():
    """Not `order={'client_id': ...}` dicts: one line each, prices and money as every screen writes them."""
    from tui_trader.app.tui.event_log import format_event
    from tui_trader.domain.events import AccountUpdated, FundingCharged, PositionChanged
    from tui_trader.domain.models import Position, Side

    order = Order("s-1-O", "NXT_BTC", OrderSide.OPEN_SHORT, OrderType.MARKET, Decimal(91407678), leverage=3,
                  state=OrderState.FILLED, filled_contracts=Decimal(91407678), avg_fill_price=Decimal("0.00003283"),
                  reason="Z1", tag="pump_short:NXT_BTC")
    close = Fill("s-1-X-f2", "s-1-X", "NXT_BTC", OrderSide.CLOSE_SHORT, Decimal(91407678), Decimal("0.0000322"),
                 Decimal("1.765"), T0, realized_pnl=Decimal("57.5868"))
    held = Position("NXT_BTC", Side.SHORT, Decimal(91407678), Decimal(1), Decimal("0.00003283"), 3,
                    margin=Decimal("1000.3"), liquidation_price=Decimal("0.0000433142027838"), tag="pump_short:NXT_BTC")
    lines = [format_event(e)[20:] for e in (
        OrderUpdated(T0, order), OrderFilled(T0, close), PositionChanged(T0, held, "FILLED"),
        PositionChanged(T0, replace(held, contracts=Decimal(0), realized_pnl=Decimal("57.5868")), "TP"),
        AccountUpdated(T0, Decimal("10055.785"), Decimal("10055.785"), Decimal("10055.785"), Decimal(0)),
        FundingCharged(T0, "NXT_BTC", 0.0001, Decimal("-0.125")))]
    assert [line.split(None, 1)[1] for line in lines] == [
        "s-1-O NXT_BTC open short market 91407678 -> filled 91407678/91407678 @ 0.00003283 (Z1) [pump_short:NXT_BTC]",
        "s-1-X NXT_BTC close short 91407678 @ 0.0000322 fee 1.7650 (taker) P&L +57.59 gross",
        "NXT_BTC SHORT 91407678 @ 0.00003283 3x liq 0.000043314203 margin 1,000.30 (FILLED) [pump_short:NXT_BTC]",
        "NXT_BTC SHORT flat, P&L +57.59 gross (TP) [pump_short:NXT_BTC]",
        "equity 10,055.79 available 10,055.79 uPnL +0.00",
        "NXT_BTC rate 0.0100% paid -0.13",
    ]
    assert [line.split(None, 1)[0] for line in lines] == ["order", "fill", "position", "position", "account", "funding"]
