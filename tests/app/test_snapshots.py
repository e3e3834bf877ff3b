"""Issue 21: snapshot tests of every screen and dialog at a fixed size with deterministic data.

The app runs over a core that is built but not started (no feed, nothing moving) with a stub facade
that returns fixed positions - one in each liquidation band - and a fixed UTC clock. The pictures
live in `__snapshots__/`; after a deliberate change to the look, review and refresh them with
`pytest tests/app/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tui_trader.app.facade import ConsoleSnapshot, PositionView, StopLossRules
from tui_trader.app.settings import load_settings
from tui_trader.app.tui.app import TraderApp
from tui_trader.app.tui.dialogs.confirm import ConfirmDialog, TypedConfirmDialog
from tui_trader.app.tui.dialogs.stop_loss import StopLossDialog
from tui_trader.app.wiring import build_core
from tui_trader.domain.events import (
    BreakerChanged,
    ErrorRaised,
    FeedStateChanged,
    LiquidationWarning,
    TradeTick,
    TradingStateChanged,
)
from tui_trader.domain.liquidation import Band
from tui_trader.domain.models import Side
from tui_trader.engine.clock import SimClock

pytest.importorskip("pytest_textual_snapshot")

NOW = 1_765_000_000_000  # 2025-12-06 05:46:40 UTC
SIZE = (180, 34)
HOUR = 3_600_000

POSITIONS = [
    PositionView("BTC_USDT", Side.SHORT, D(40), D("0.004"), D(60000), 61000.0, 61001.5, 5, 73000.0, 73000.0,
                 19.67, Band.YELLOW, -4.0, -8.3, D(63000), D(57000), NOW - 2 * HOUR,
                 "watching", ""),
    PositionView("ETH_USDT", Side.LONG, D(12), D("0.12"), D(3000), 3150.0, 3151.0, 3, 2010.0, 2010.0,
                 36.19, Band.GREEN, 18.0, 15.0, None, None, NOW - 26 * HOUR, "watching", ""),
    PositionView("SOL_USDT", Side.SHORT, D(5), D(5), D(130), 151.0, 151.2, 10, 160.5, 160.0,
                 6.29, Band.RED, -105.0, -161.5, None, D(120), NOW - 300_000, "closing", ""),
    PositionView("DOGE_USDT", Side.LONG, D(1000), D(10000), D("0.2"), 0.1865, 0.1866, 20, 0.1910, None,
                 -2.36, Band.LIQUIDATED, -135.0, -135.0, None, None, NOW - 60_000, "close failed", ""),
]


class StubFacade:
    """Fixed data: what the real facade would show, without a running core."""

    mode = "paper"

    def snapshot(self) -> ConsoleSnapshot:
        return ConsoleSnapshot("paper", "ACTIVE", NOW, POSITIONS, equity=D("10234.56"), daily_pnl=D("-42.10"))


def _app() -> TraderApp:
    settings, _ = load_settings(None)
    clock = SimClock(NOW)
    core = build_core(settings, clock=clock)
    app = TraderApp(core, wall_ms=clock.now_ms)
    app.facade = StubFacade()  # type: ignore[assignment]
    bus = core.bus
    bus.publish(FeedStateChanged(NOW, "replay", "replaying"))
    bus.publish(BreakerChanged(NOW, "mexc", "closed", "half-open"))
    bus.publish(TradeTick(NOW, "BTC_USDT", 61001.5, 0.1, "buy"))
    bus.publish(TradingStateChanged(NOW, "ACTIVE", "start"))
    bus.publish(LiquidationWarning(NOW, "SOL_USDT", "SHORT", 6.29, "red", "CRITICAL", 151.0, 160.5))
    bus.publish(ErrorRaised(NOW, "venue", "order refused: insufficient balance (2005)"))
    return app


def test_positions_screen_with_a_position_in_each_band(snap_compare):
    assert snap_compare(_app(), terminal_size=SIZE)


async def test_a_120_column_terminal_shows_the_liquidation_bar_and_the_pnl_of_every_position():
    """The columns a trader needs most come first: on 120 columns the P&L and the watchdog's state are in view,
    the least needed columns left out (and named) rather than scrolled off."""
    import re
    import time

    wanted = ("YELLOW 19.7 %", "-4.00", "-8.3 %", "RED 6.3 %", "-105.00", "-161.5 %", "LIQUIDATED", "-135.0 %",
              "close failed", "closing", "left out for width: fair, entry")  # the watchdog's state, not scrolled off
    app = _app()
    async with app.run_test(size=(120, 34)) as pilot:
        text, deadline = "", time.monotonic() + 15  # every row drawn, or fail after the deadline
        while time.monotonic() < deadline:
            await pilot.pause()
            text = re.sub(r"<[^>]+>", "", app.export_screenshot()).replace("&#160;", " ")
            if all(w in text for w in wanted):
                break
    for w in wanted:
        assert w in text, w


async def test_resizing_the_terminal_leaves_columns_out_and_brings_them_back():
    import time

    from tui_trader.app.tui.widgets.positions_table import PositionsTable

    app = _app()
    async with app.run_test(size=(180, 34)) as pilot:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not app.screen.query(PositionsTable).first().row_count:
            await pilot.pause()
        table = app.screen.query_one(PositionsTable)
        assert table.row_count == 4 and not table.border_subtitle  # every column fits 180
        await pilot.resize_terminal(110, 34)
        await pilot.pause()
        left_out = str(table.border_subtitle).removeprefix("left out for width: ").split(", ")
        assert set(left_out) == {"ROE", "fair", "entry", "last", "lev", "coins", "SL / TP", "in trade"}
        assert table.virtual_size.width <= table.size.width  # nothing to scroll sideways for
        await pilot.resize_terminal(180, 34)
        await pilot.pause()
        assert not table.border_subtitle


def test_event_log_screen(snap_compare):
    assert snap_compare(_app(), terminal_size=SIZE, press=["4"])


def test_event_log_screen_filtered_to_errors(snap_compare):
    async def run_before(pilot) -> None:
        await pilot.press("4")
        await pilot.pause()
        pilot.app.screen.query_one("#kind").value = "errors"
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare):
    assert snap_compare(_app(), terminal_size=(180, 50), press=["question_mark"])


def _with_dialog(screen_factory):
    async def run_before(pilot) -> None:
        await pilot.pause()
        pilot.app.push_screen(screen_factory())
        await pilot.pause()

    return run_before


def test_close_one_confirmation(snap_compare):
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_with_dialog(
        lambda: ConfirmDialog("Close SOL_USDT short at market (reduce-only)?", "Close it")))


def test_close_all_typed_confirmation(snap_compare):
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_with_dialog(
        lambda: TypedConfirmDialog("Close EVERY position at market and HALT trading?", "CLOSE")))


def test_stop_loss_dialog_with_a_refused_value(snap_compare):
    rules = StopLossRules("BTC_USDT", Side.SHORT, D(61000), D("0.5"), D(63000), D(57000))

    async def run_before(pilot) -> None:
        await pilot.pause()
        pilot.app.push_screen(StopLossDialog(rules))
        await pilot.pause()
        await pilot.press(*"60000.3")  # below a short's price and off the 0.5 unit
        error = pilot.app.screen.query_one("#stop_loss-error")
        for _ in range(100):  # the check runs per keystroke: wait for the message (a loaded CI machine is slow)
            if str(error.render()).strip():
                break
            await pilot.pause(0.02)
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=SIZE, run_before=run_before)


def test_retry_dialog(snap_compare):
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_with_dialog(
        lambda: ConfirmDialog("MEXC did not answer in 10 s (network)\n\nRetry?", "Retry", default_confirm=True)))


# --- paper sessions --------------------------------------------------------------------------------

def _sessions_stub():
    from tui_trader.app.sessions_facade import (
        SessionDetail,
        SessionFillView,
        SessionOrderView,
        SessionPositionView,
        SessionSummary,
    )

    running = SessionSummary("a1b2c3d4", "nxt pumps", "running", "bundled sample", D(10000), D("10042.17"),
                             D("42.17"), 7, 57.1)
    failed = SessionSummary("e5f6a7b8", "bad csv", "failed", "prices.csv", D(5000), D(5000), D(0), 0, 0.0,
                            error="prices.csv line 12: close is not a number")
    fill = SessionFillView(NOW - 600_000, D(91407678), D("0.00003283"), D("1.80"), D(0))
    detail = SessionDetail(running, D("48.10"), D("-3.66"), D("12.60"), D("0.00"), 1.8, NOW,
                           (SessionPositionView("NXT_BTC", "SHORT", D(91407678), D("0.00003283"), D("0.00003287"),
                                                D("0.00004331"), 3, D("1000.30"), D("-3.66")),),
                           (SessionOrderView(NOW - 600_000, "pump_short-NXT-1-O", "OPEN_SHORT", D(91407678), "filled",
                                             "Z1", (fill,)),), 1)

    class Stub:
        async def list(self):
            return [running, failed]

        async def detail(self, session_id, max_orders=50):
            return detail

        async def read(self, selected, max_orders=50):
            return await self.list(), await self.detail(selected, max_orders)

    return Stub()


def _sessions_app():
    app = _app()
    stub = _sessions_stub()
    type(app.facade).sessions = property(lambda self: stub)  # type: ignore[attr-defined]
    return app


async def _wait_rows(pilot, selector: str, n: int) -> None:
    table = pilot.app.screen.query_one(selector)
    for _ in range(100):
        if table.row_count >= n:
            break
        await pilot.pause(0.02)
    await pilot.pause()


def test_sessions_screen_with_a_running_and_a_failed_session(snap_compare):
    async def run_before(pilot) -> None:
        await pilot.press("2")
        await pilot.pause()
        await _wait_rows(pilot, "#sessions-table", 2)
        await _wait_rows(pilot, "#session-orders", 1)

    assert snap_compare(_sessions_app(), terminal_size=SIZE, run_before=run_before)


def test_session_form_with_leverage_refused_as_typed(snap_compare):
    async def run_before(pilot) -> None:
        await pilot.press("2")
        await pilot.pause()
        await _wait_rows(pilot, "#sessions-table", 2)
        await pilot.press("n")
        await pilot.pause()
        pilot.app.screen.query_one("#leverage").focus()
        await pilot.press(*"201")
        await pilot.pause()

    assert snap_compare(_sessions_app(), terminal_size=(180, 44), run_before=run_before)


# --- backtests -------------------------------------------------------------------------------------

def _backtests_app():
    """A real backtest of two days of the bundled data (deterministic), its id and time fixed for the picture."""
    from tui_trader.app.backtests_facade import detail_from_record, summary_from_record
    from tui_trader.backtest.runner import run_backtest
    from tui_trader.venues.replay import bundled_data_path

    settings, _ = load_settings(None)
    result = run_backtest(None, [bundled_data_path()], settings=settings, date_from_ms=1_512_172_800_000,
                          date_to_ms=1_512_345_600_000, equity_every_ms=900_000)
    record = {**result.to_record(), "id": "bt-5f3a91c2", "created_ms": NOW}
    detail = detail_from_record(record)
    summary = summary_from_record(record, record["metrics"])

    class Stub:
        job = None

        async def list_runs(self, limit=50):
            return [summary]

        async def get_run(self, run_id):
            return detail

    app = _app()
    stub = Stub()
    type(app.facade).backtests = property(lambda self: stub)  # type: ignore[attr-defined]
    return app


@pytest.mark.parametrize("tab", ["tab-summary", "tab-trades", "tab-equity"])
def test_backtests_screen_tabs(snap_compare, tab):
    async def run_before(pilot) -> None:
        from textual.widgets import TabbedContent

        await pilot.press("3")
        await pilot.pause()
        await _wait_rows(pilot, "#runs", 1)
        for _ in range(50):
            await pilot.pause(0.02)
        pilot.app.screen.query_one(TabbedContent).active = tab
        await pilot.pause(0.2)

    assert snap_compare(_backtests_app(), terminal_size=(180, 44), run_before=run_before)


def test_backtest_form(snap_compare):
    async def run_before(pilot) -> None:
        await pilot.press("3")
        await pilot.pause()
        await _wait_rows(pilot, "#runs", 1)
        await pilot.press("n")
        await pilot.pause(0.2)

    assert snap_compare(_backtests_app(), terminal_size=(180, 44), run_before=run_before)
