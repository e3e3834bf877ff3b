"""App layer: the Backtests screen - stored runs, the selected run's analytics, trades and equity, new runs.

The runs table is keyed by run id and updated in place (a running run's row turns into its stored
row when it ends). For the selected run: analytics, performance summary and risk metrics side by
side, the trade list, and the equity and drawdown plot. `n` opens the form; the run goes to a
child process (`BacktestsFacade`), followed by a worker that only awaits it, its progress shown in a
`ProgressBar`; `x` cancels it. Every figure is formatted here by pure functions (the `*_rows`,
`run_cells`, `trade_cells`), tested without a terminal; database reads run in workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Footer,
    Label,
    ProgressBar,
    TabbedContent,
    TabPane,
)

from tui_trader.app.backtests_facade import (
    BacktestJob,
    BacktestRequest,
    BacktestsFacade,
    RunDetail,
    RunSummary,
    TradeView,
)
from tui_trader.app.tui.dialogs.backtest_form import BacktestFormDialog
from tui_trader.app.tui.errors import show_error
from tui_trader.app.tui.widgets.equity_plot import EquityPlot
from tui_trader.app.tui.widgets.status_header import StatusHeader
from tui_trader.domain.errors import TraderError
from tui_trader.domain.number_format import (
    metric_text,
    number_text,
    price_text,
    quantity_text,
)
from tui_trader.domain.time_format import utc_minute, utc_short

MISSING = "-"
RUN_COLUMNS = ("id", "status", "symbols", "from", "to", "strategy", "trades", "win rate %", "net P&L", "max DD %")
TRADE_COLUMNS = ("symbol", "side", "entry", "entry price", "exit", "exit price", "contracts", "net P&L", "fees",
                 "funding", "reason")
STATUS_STYLE = {"finished": "green", "failed": "bold red", "cancelled": "yellow", "running": "bold cyan",
                "starting": "cyan"}
# (metric key, label, unit) per panel; "s" is a duration
ANALYTICS = (("total_return_pct", "Total return", "%"), ("win_rate_pct", "Win rate", "%"), ("sharpe", "Sharpe", ""),
             ("sortino", "Sortino", ""), ("max_drawdown_pct", "Max drawdown", "%"))
PERFORMANCE = (("net_pnl", "Net P&L", "USDT"), ("start_equity", "Start equity", "USDT"),
               ("end_equity", "End equity", "USDT"), ("cagr_pct", "CAGR", "%"), ("trades", "Trades", ""),
               ("open_trades", "Open at end", ""), ("profit_factor", "Profit factor", ""),
               ("expectancy", "Expectancy", "USDT"), ("avg_trade_duration_s", "Avg trade duration", "s"))
RISK = (("max_drawdown_pct", "Max drawdown", "%"), ("max_drawdown_duration_s", "Max DD duration", "s"),
        ("calmar", "Calmar", ""), ("exposure_pct", "Exposure", "%"), ("liquidations", "Liquidations", ""),
        ("fees_paid", "Fees paid", "USDT"), ("funding_paid", "Funding paid", "USDT"))
PANELS = {"analytics": ANALYTICS, "performance": PERFORMANCE, "risk": RISK}


# --- formatting (pure) ------------------------------------------------------------------------


fmt_number = number_text  # (the one report-figure format, shared with `tui-trader backtest show`)


def metric_rows(detail: RunDetail, panel: Sequence[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """(key, label, value text) for one panel of the detail."""
    return [(key, label, metric_text(detail.metrics.get(key), unit)) for key, label, unit in panel]


def status_text(run: RunSummary, job: BacktestJob | None = None) -> str:
    """`finished`, or `running 42 %` for the run in progress."""
    if job is not None and job.run_id == run.id and job.status in ("starting", "running"):
        if job.bars_total:
            return f"running {min(100, job.bars_done * 100 // job.bars_total)} %"
        return job.status
    return run.status


def run_cells(run: RunSummary, job: BacktestJob | None = None) -> tuple[str, ...]:
    """One row of the runs table, in `RUN_COLUMNS` order."""
    return (run.id, status_text(run, job), ", ".join(run.symbols), utc_minute(run.date_from_ms),
            utc_minute(run.date_to_ms), run.strategy, fmt_number(run.trades), fmt_number(run.win_rate_pct),
            fmt_number(run.net_pnl), fmt_number(run.max_drawdown_pct))


def trade_cells(t: TradeView) -> tuple[str, ...]:
    """One row of the trade list, in `TRADE_COLUMNS` order."""
    return (t.symbol, t.side, utc_short(t.entry_ms), price_text(t.entry_price), utc_short(t.exit_ms),
            price_text(t.exit_price), quantity_text(t.contracts), fmt_number(t.net_pnl), fmt_number(t.fees),
            fmt_number(t.funding), t.exit_reason or "open")


def progress_text(job: BacktestJob) -> str:
    """The line beside the progress bar."""
    bars = f"{job.bars_done:,} / {job.bars_total:,} bars" if job.bars_total else f"{job.bars_done:,} bars"
    if job.status in ("starting", "running"):
        return f"{job.run_id} {job.status}: {bars}  (x cancels)"
    return f"{job.run_id} {job.status}: {bars}"


# --- the screen -------------------------------------------------------------------------------


class BacktestsScreen(Screen[None]):
    CSS_PATH = "backtests.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_backtest", "New backtest", id="backtests.new",
                tooltip="Start a backtest from a form (strategy, data, dates, balance, leverage)"),
        Binding("x", "cancel_backtest", "Cancel run", id="backtests.cancel",
                tooltip="Stop the running backtest (its process ends; the run is stored as cancelled)"),
        Binding("r", "reload", "Reload", id="backtests.reload", tooltip="Read the stored runs again"),
    ]

    def __init__(self, facade: BacktestsFacade) -> None:
        super().__init__()
        self.facade = facade
        self.detail_id: str | None = None  # the run whose detail is shown

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status")  # the app keeps it current
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="job"):
            yield Label("no backtest running (n starts one)", id="job-status")
            yield ProgressBar(id="progress", show_eta=True)
        with TabbedContent(id="detail"):
            with TabPane("Summary", id="tab-summary"), Horizontal():
                for panel in PANELS:
                    yield DataTable(id=panel, classes="metrics", cursor_type="none", show_cursor=False)
            with TabPane("Trades", id="tab-trades"):
                yield DataTable(id="trades", cursor_type="row")
            with TabPane("Equity & drawdown", id="tab-equity"):
                yield EquityPlot(id="equity")
        yield Footer()

    def on_mount(self) -> None:
        runs = self.query_one("#runs", DataTable)
        for name in RUN_COLUMNS:
            runs.add_column(name, key=name)
        for panel, rows in PANELS.items():
            table = self.query_one(f"#{panel}", DataTable)
            table.add_column(panel, key="label")
            table.add_column("", key="value")
            for key, label, _ in rows:
                table.add_row(label, MISSING, key=key)
        trades = self.query_one("#trades", DataTable)
        for name in TRADE_COLUMNS:
            trades.add_column(name, key=name)
        job = self.facade.job
        self.query_one("#progress", ProgressBar).display = job is not None  # idle: no bar bouncing for nothing
        self.action_reload()

    # --- runs table -----------------------------------------------------------------------

    def action_reload(self) -> None:
        self._load_runs()

    @work(group="backtests-list", exit_on_error=False)  # not exclusive: a cancel must not land mid-SQLite call
    async def _load_runs(self) -> None:
        try:
            runs = await self.facade.list_runs()
        except TraderError as exc:
            show_error(self, exc, retry=self.action_reload)
            return
        self.show_runs(runs)

    def show_runs(self, runs: list[RunSummary]) -> None:
        """Diff the table by run id: vanished rows go, new ones are added, changed cells updated."""
        table = self.query_one("#runs", DataTable)
        job = self.facade.job
        keys = {run.id for run in runs}
        for key in [k for k in table.rows if k.value not in keys]:
            table.remove_row(key)
        present = {k.value for k in table.rows}
        for run in runs:
            cells = run_cells(run, job)
            styled = [Text(c, style=STATUS_STYLE.get(run.status, "")) if col == "status" else Text(c)
                      for col, c in zip(RUN_COLUMNS, cells)]
            if run.id in present:
                for col, value in zip(RUN_COLUMNS, styled):
                    if str(table.get_cell(run.id, col)) != str(value):
                        table.update_cell(run.id, col, value, update_width=True)
            else:
                table.add_row(*styled, key=run.id)
        if runs and self.detail_id is None:
            self._load_detail(runs[0].id)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "runs" and event.row_key.value is not None:
            self._load_detail(event.row_key.value)

    # --- detail -----------------------------------------------------------------------------

    def _load_detail(self, run_id: str) -> None:
        self.detail_id = run_id
        self._fetch_detail(run_id)

    @work(group="backtests-detail", exit_on_error=False)  # (a stale answer is dropped by `detail_id`)
    async def _fetch_detail(self, run_id: str) -> None:
        try:
            detail = await self.facade.get_run(run_id)
        except TraderError as exc:
            show_error(self, exc)
            return
        if self.detail_id == run_id:
            self.show_detail(detail)

    def show_detail(self, detail: RunDetail | None) -> None:
        """The selected run's panels, trades and plot (None: not stored yet - a run in progress)."""
        for panel, rows in PANELS.items():
            table = self.query_one(f"#{panel}", DataTable)
            for key, _, value in (metric_rows(detail, rows) if detail else [(k, "", MISSING) for k, _, _ in rows]):
                table.update_cell(key, "value", Text(value, justify="right"), update_width=True)
        trades = self.query_one("#trades", DataTable)
        trades.clear()  # a different run: a new list, not an update of the old one
        for i, trade in enumerate(detail.trades if detail else ()):
            trades.add_row(*trade_cells(trade), key=str(i))
        self.query_one("#equity", EquityPlot).show(detail.equity if detail else ())

    # --- running a backtest -------------------------------------------------------------------

    def action_new_backtest(self) -> None:
        def answered(request: BacktestRequest | None) -> None:
            if request is not None:
                self.start(request)

        self.app.push_screen(BacktestFormDialog(self.facade), answered)

    def start(self, request: BacktestRequest) -> None:
        try:
            job = self.facade.start(request)
        except TraderError as exc:
            show_error(self, exc)
            return
        self._show_progress(job)
        self.run_worker(self._follow(job), name=f"backtest {job.run_id}", group="backtests-run", exit_on_error=False)

    async def _follow(self, job: BacktestJob) -> None:
        """Await the child process to its end (the CPU work is its, not this loop's)."""
        self.action_reload()  # its row, as running
        try:
            status = await job.run(self._show_progress)
        except Exception as exc:  # noqa: BLE001 - a worker boundary: shown by its type, the app goes on
            show_error(self, exc)
        else:
            self.notify(f"backtest {job.run_id} {status}",
                        severity="information" if status == "finished" else "warning")
        self._show_progress(job)
        self.action_reload()
        if self.detail_id == job.run_id:  # shown while it ran: now its stored detail
            self._load_detail(job.run_id)

    def _show_progress(self, job: BacktestJob) -> None:
        bar = self.query_one("#progress", ProgressBar)
        bar.display = True
        bar.update(total=job.bars_total, progress=job.bars_done)
        self.query_one("#job-status", Label).update(progress_text(job))
        table = self.query_one("#runs", DataTable)
        if job.status in ("starting", "running") and job.run_id in {k.value for k in table.rows}:  # (its end: reload)
            table.update_cell(job.run_id, "status", Text(status_text(job.summary(), job),
                                                         style=STATUS_STYLE.get(job.status, "")))

    def action_cancel_backtest(self) -> None:
        job = self.facade.job
        if job is None or job.status not in ("starting", "running"):
            self.notify("no backtest is running", severity="warning")
            return
        job.cancel()
        self.query_one("#job-status", Label).update(f"{job.run_id} cancelling...")
