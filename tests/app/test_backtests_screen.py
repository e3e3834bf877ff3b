"""Backtests screen: stored runs with analytics, trades and plot; runs started from the form in a child
process, with progress, equal to a direct run; cancel ends the child; wrong fields are marked.
Formatting and field checks are pure and tested without a terminal."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, ProgressBar, TabbedContent

from tui_trader.app.backtests_facade import (
    EQUITY_EVERY_MS,
    BacktestsFacade,
    RunSummary,
    TradeView,
)
from tui_trader.app.facade import FieldInvalid
from tui_trader.app.settings import load_settings
from tui_trader.app.tui.dialogs.backtest_form import BacktestFormDialog
from tui_trader.app.tui.screens.backtests import (
    ANALYTICS,
    BacktestsScreen,
    fmt_number,
    metric_rows,
    run_cells,
    trade_cells,
)
from tui_trader.app.tui.widgets.equity_plot import (
    EquityPlot,
    drawdown_pct,
    time_label,
    time_step_s,
)
from tui_trader.backtest.runner import run_backtest_async
from tui_trader.domain.number_format import price_text
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import WallClock
from tui_trader.engine.core import TraderCore
from tui_trader.venues.candle_files import read_candles
from tui_trader.venues.replay import bundled_data_path

# 2017-12-02 00:00 -> 12-04 00:00 UTC of the bundled NXT/BTC bars: 2,879 bars, two pump shorts
FROM_MS, TO_MS = 1_512_172_800_000, 1_512_345_600_000
SIZE = (140, 44)


@pytest.fixture
def facade(isolated_environment) -> BacktestsFacade:
    settings, _ = load_settings(None)  # as the app loads them (data dir in the test's XDG folder)
    core = TraderCore(EventBus(), WallClock())
    core.components["settings"] = settings
    return BacktestsFacade(core)


@pytest.fixture
def slice_file(isolated_environment) -> Path:
    path = isolated_environment / "bittrex_NXT-BTC_1m_slice.csv"
    rows = ["timestamp_ms,open,high,low,close,volume"]
    rows += [f"{c.ts_ms},{c.open!r},{c.high!r},{c.low!r},{c.close!r},{c.volume!r}"
             for c in read_candles(bundled_data_path()) if FROM_MS <= c.ts_ms < TO_MS]
    path.write_text("\n".join(rows) + "\n")
    return path


class ScreenApp(App[None]):
    def __init__(self, facade: BacktestsFacade) -> None:
        super().__init__()
        self.facade = facade

    def on_mount(self) -> None:
        self.push_screen(BacktestsScreen(self.facade))


async def until(pilot: Pilot, condition: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    """Poll `condition` (letting the app run) until it holds; fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def row_keys(table: DataTable) -> set[str]:
    return {str(k.value) for k in table.rows}


def cell(table: DataTable, row: str, col: str) -> str:
    return str(table.get_cell(row, col))


async def test_a_stored_run_shows_its_analytics_trades_and_plot(facade, slice_file):
    result = await run_backtest_async(None, [slice_file], settings=facade.settings, store_path=facade.store_path,
                                      equity_every_ms=900_000)
    assert result.metrics["trades"] >= 1
    app = ScreenApp(facade)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        runs = screen.query_one("#runs", DataTable)
        trades = screen.query_one("#trades", DataTable)
        await until(pilot, lambda: result.id in row_keys(runs) and trades.row_count > 0, "the run and its trades")
        assert cell(runs, result.id, "status") == "finished"
        assert cell(runs, result.id, "trades") == str(result.metrics["trades"])
        assert cell(runs, result.id, "symbols") == "NXT_BTC"
        assert cell(runs, result.id, "from").startswith("2017-12-02")
        analytics = screen.query_one("#analytics", DataTable)
        assert cell(analytics, "sharpe", "value") == fmt_number(result.metrics["sharpe"])
        assert cell(analytics, "total_return_pct", "value") == f"{result.metrics['total_return_pct']:,.2f} %"
        assert cell(screen.query_one("#performance", DataTable), "net_pnl", "value") == \
            f"{result.metrics['net_pnl'].quantize(Decimal('0.01')):,} USDT"
        assert cell(screen.query_one("#risk", DataTable), "liquidations", "value") == "0"
        assert trades.row_count == len(result.trades)
        first = result.trades[0]
        assert cell(trades, "0", "net P&L") == fmt_number(first.net_pnl)
        assert cell(trades, "0", "entry price") == price_text(first.entry_price)

        plot = screen.query_one("#equity", EquityPlot)
        assert plot.equity == [float(e) for _, e in result.equity]
        assert -min(plot.drawdown) == pytest.approx(result.metrics["max_drawdown_pct"])
        screen.query_one(TabbedContent).active = "tab-equity"
        await until(pilot, lambda: plot.query_one("#equity-chart").size.height > 5, "the plot on screen")
        await pilot.pause()
        drawn = app.export_screenshot()
        assert any("\u2801" <= ch <= "\u28ff" for ch in drawn)  # the braille line of the curves


async def test_b_a_run_from_the_form_shows_progress_and_equals_a_direct_run(facade, slice_file):
    app = ScreenApp(facade)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, BacktestFormDialog), "the form")
        app.screen.query_one("#data", Input).value = str(slice_file)
        app.screen.query_one("#balance", Input).value = "5000"
        await pilot.click("#start")
        await until(pilot, lambda: facade.job is not None, "the job")
        job = facade.job
        assert job is not None
        runs = screen.query_one("#runs", DataTable)
        bar = screen.query_one("#progress", ProgressBar)
        seen_running = False
        deadline = time.monotonic() + 15
        while job.status != "finished":
            seen_running |= job.run_id in row_keys(runs) and cell(runs, job.run_id, "status").startswith(
                ("starting", "running"))
            assert time.monotonic() < deadline, "the run did not finish"
            await pilot.pause(0.02)
        await until(pilot, lambda: cell(runs, job.run_id, "status") == "finished", "the stored row")
        assert seen_running  # its row was there, as running, while the child worked
        assert bar.total == bar.progress == 2_879  # the child's count of the bars in range, and all of them done
        assert "2,879 / 2,879 bars" in str(screen.query_one("#job-status", Label).content)

        direct = await run_backtest_async(None, [slice_file], equity_every_ms=EQUITY_EVERY_MS,
                                          settings=facade.settings.model_copy(update={
                                              "paper": facade.settings.paper.model_copy(
                                                  update={"starting_balance": 5000.0})}))
        stored = await facade.get_run(job.run_id)
        assert stored is not None and stored.metrics["start_equity"] == Decimal(5000)
        assert cell(runs, job.run_id, "trades") == str(direct.metrics["trades"])
        assert [(t.entry_ms, t.exit_ms, t.net_pnl) for t in stored.trades] == \
            [(t.entry_ms, t.exit_ms, t.net_pnl) for t in direct.trades]


async def test_c_cancel_ends_the_child_and_the_run_shows_cancelled(facade, isolated_environment):
    files = []  # 20 symbols of the bundled bars: several seconds of work, cancelled long before the end
    for i in range(20):
        files.append(isolated_environment / f"bittrex_S{i:02d}-BTC_1m_20171130-20171210.csv.gz")
        shutil.copyfile(bundled_data_path(), files[-1])
    app = ScreenApp(facade)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        screen.start(facade.validate({"data": " ".join(str(f) for f in files)}))
        job = facade.job
        assert job is not None
        await until(pilot, lambda: job.bars_done > 0, "the first progress from the child")
        assert job.alive and job.pid is not None
        await pilot.press("x")
        await until(pilot, lambda: job.status == "cancelled", "the cancel")
        assert not job.alive
        with pytest.raises(ProcessLookupError):
            os.kill(job.pid, 0)  # gone and reaped
        assert job.bars_total is not None and job.bars_done < job.bars_total
        runs = screen.query_one("#runs", DataTable)
        await until(pilot, lambda: cell(runs, job.run_id, "status") == "cancelled", "the row shown as cancelled")
        stored = await facade.get_run(job.run_id)
        assert stored is not None and stored.summary.status == "cancelled"


async def test_d_wrong_values_highlight_their_fields(facade):
    app = ScreenApp(facade)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, BacktestFormDialog), "the form")
        form = app.screen

        def marked(field: str) -> str | None:
            return str(form.query_one(f"#{field}-error", Label).content) if form.query_one(f"#{field}").has_class(
                "-invalid") else None

        form.query_one("#date-from", Input).value = "2017-13-45"  # checked as typed
        for bad in ("0", "201", "ten"):
            form.query_one("#leverage", Input).value = bad
            await pilot.pause()
            assert "1 to 200" in (marked("leverage") or ""), bad
        form.query_one("#leverage", Input).value = "3"
        await pilot.pause()
        assert "is not a date" in (marked("date-from") or "")
        assert marked("leverage") is None
        form.query_one("#date-from", Input).value = "2017-12-02"
        form.query_one("#data", Input).value = "no-such-file.csv"
        await pilot.click("#start")
        await pilot.pause()
        assert "file not found" in (marked("data") or "")
        assert marked("date-from") is None
        assert app.screen is form and facade.job is None  # nothing started


# --- pure parts -----------------------------------------------------------------------------


def test_numbers_and_prices_read_as_a_trader_expects():
    assert fmt_number(None) == "-"
    assert fmt_number(Decimal("-272.831312837046")) == "-272.83"
    assert fmt_number(Decimal("12345.678")) == "12,345.68"
    assert fmt_number(0.004567) == "0.00457"
    assert fmt_number(3) == "3"
    assert price_text(Decimal("0.0000213400000000000001")) == "0.00002134"
    assert price_text(Decimal("100.000")) == "100"
    assert fmt_number(Decimal("0.125")) == "0.13" and fmt_number(Decimal("2.675")) == "2.68"  # half-up, as sessions


def test_run_and_trade_rows():
    run = RunSummary("bt-1", "finished", 0, "pump_short", ("NXT_BTC",), FROM_MS, TO_MS, 4, 50.0,
                     Decimal("-272.8313"), -2.7, 3.4685)
    assert run_cells(run) == ("bt-1", "finished", "NXT_BTC", "2017-12-02 00:00", "2017-12-04 00:00", "pump_short",
                              "4", "50.00", "-272.83", "3.47")
    trade = TradeView("NXT_BTC", "SHORT", FROM_MS, Decimal("0.00002134"), None, None, Decimal(10),
                      Decimal("-1.5"), Decimal("0.25"), Decimal(0), "")
    assert trade_cells(trade)[:6] == ("NXT_BTC", "SHORT", "12-02 00:00:00", "0.00002134", "-", "-")
    assert trade_cells(trade)[-1] == "open"


def test_metric_rows_carry_units_and_dashes():
    from tui_trader.app.backtests_facade import RunDetail

    run = RunSummary("bt-1", "finished", 0, "s", (), None, None, 0, None, None, None, 0.0)
    detail = RunDetail(run, {"total_return_pct": 1.234, "win_rate_pct": None, "sharpe": -9.03,
                             "sortino": None, "max_drawdown_pct": 3.4}, (), (), {})
    assert metric_rows(detail, ANALYTICS) == [
        ("total_return_pct", "Total return", "1.23 %"), ("win_rate_pct", "Win rate", "-"),
        ("sharpe", "Sharpe", "-9.03"), ("sortino", "Sortino", "-"), ("max_drawdown_pct", "Max drawdown", "3.40 %")]


def test_drawdown_and_time_axis():
    assert drawdown_pct([100, 110, 99, 121]) == pytest.approx([0.0, 0.0, -10.0, 0.0])
    assert time_step_s(86_400, 8) == 6 * 3600
    assert time_step_s(2 * 86_400, 8) == 12 * 3600
    assert time_step_s(30 * 86_400, 8) == 7 * 86_400
    assert time_label(FROM_MS / 1000, 3600) == "12-02 00:00"
    assert time_label(FROM_MS / 1000, 86_400) == "12-02"


@pytest.mark.parametrize("field, text, message", [
    ("date-from", "yesterday", "is not a date"), ("date-to", "2017-02-30", "is not a date"),
    ("balance", "-5", "more than 0"), ("balance", "lots", "a number"), ("leverage", "2.5", "whole number"),
])
def test_fields_are_checked_as_typed(facade, field, text, message):
    with pytest.raises(FieldInvalid) as caught:
        facade.check(field, text)
    assert caught.value.field == field and message in str(caught.value)


def test_submit_checks_order_and_the_strategy(facade, slice_file, isolated_environment):
    with pytest.raises(FieldInvalid, match="after the start") as caught:
        facade.validate({"data": str(slice_file), "date-from": "2017-12-03", "date-to": "2017-12-02"})
    assert caught.value.field == "date-to"
    with pytest.raises(FieldInvalid) as caught:  # above the strategy's own global_limits.max_leverage (5)
        facade.validate({"data": str(slice_file), "leverage": "10"})
    assert caught.value.field == "leverage" and "max_leverage" in str(caught.value)
    bad = isolated_environment / "bad.toml"
    bad.write_text("strategy_name = 1\n")
    with pytest.raises(FieldInvalid) as caught:
        facade.validate({"strategy": str(bad), "data": str(slice_file)})
    assert caught.value.field == "strategy"
    request = facade.validate({"data": str(slice_file), "leverage": "2", "balance": "2500.50"})
    assert request.leverage == 2 and request.strategy.z1_entry.order.leverage == 2
    assert request.starting_balance == Decimal("2500.50")


def test_binding_ids_are_unique_and_namespaced():
    ids = [b.id for b in BacktestsScreen.BINDINGS]  # type: ignore[union-attr]
    assert all(i and i.startswith("backtests.") for i in ids) and len(ids) == len(set(ids))
