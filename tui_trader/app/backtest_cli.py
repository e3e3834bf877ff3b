"""App layer: `tui-trader backtest ...` - run, sweep, list and show backtests, drawn with rich.

    tui-trader backtest --strategy FILE --data FILE [FILE ...] [--from DATE] [--to DATE]
                        [--json FILE] [--csv FILE] [--funding FILE [FILE ...]] [--latency-ms N]
                        [--grid PATH=V1,V2,... ...] [--rank METRIC] [--workers N]
    tui-trader backtest list
    tui-trader backtest show ID [--json FILE] [--csv FILE]

A run shows a progress bar, then a summary table and the equity curve; every run (each grid
combination too) is saved to the database. Bad input exits 2 with one clear line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from rich.markup import escape
from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from tui_trader.domain.config import Settings
from tui_trader.domain.errors import DataError, TraderError
from tui_trader.domain.number_format import metric_text, number_text, price_text
from tui_trader.domain.time_format import utc_minute, utc_short
from tui_trader.venues.candle_cache import cached_columns, default_cache_dir
from tui_trader.venues.candle_files import candle_stamps, is_kline_json, symbol_from_filename

METRIC_ROWS = (
    ("total_return_pct", "Total return", "%"), ("cagr_pct", "CAGR", "%"), ("sharpe", "Sharpe", ""),
    ("sortino", "Sortino", ""), ("calmar", "Calmar", ""), ("max_drawdown_pct", "Max drawdown", "%"),
    ("max_drawdown_duration_s", "Max DD duration", "s"), ("trades", "Trades", ""), ("open_trades", "Open at end", ""),
    ("win_rate_pct", "Win rate", "%"), ("profit_factor", "Profit factor", ""), ("expectancy", "Expectancy", "USDT"),
    ("avg_trade_duration_s", "Avg trade duration", "s"), ("exposure_pct", "Exposure", "%"),
    ("liquidations", "Liquidations", ""), ("fees_paid", "Fees paid", "USDT"), ("funding_paid", "Funding paid", "USDT"),
    ("net_pnl", "Net P&L", "USDT"), ("start_equity", "Start equity", "USDT"), ("end_equity", "End equity", "USDT"),
)  # fmt: skip
BLOCKS = " ▁▂▃▄▅▆▇█"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "backtest", help="backtest a strategy on recorded candles (also: backtest list | show ID)",
        description="Backtest a strategy through the same engine as paper trading; 'list' and 'show ID' read stored runs.",
    )  # fmt: skip
    parser.add_argument("action", nargs="?", default="run", metavar="ACTION", help="run (default), list or show")
    parser.add_argument("run_id", nargs="?", metavar="ID", help="run id (or a unique prefix) for show")
    parser.add_argument("--strategy", type=Path, help="strategy file (default: bundled pump_short)")
    parser.add_argument("--data", type=Path, nargs="+", default=[], metavar="FILE", help="candle files (CSV, .csv.gz, MEXC kline JSON); the symbol comes from the name, and files of one symbol are one series")
    parser.add_argument("--from", dest="date_from", metavar="DATE", help="first candle (UTC: 2017-11-05, 2017-11-05T12:00 or epoch ms)")
    parser.add_argument("--to", dest="date_to", metavar="DATE", help="stop before this time (same formats)")
    parser.add_argument("--funding", type=Path, nargs="+", default=[], metavar="FILE",
                        help="funding-rate series (timestamp_ms,funding_rate), one per symbol, named after it")
    parser.add_argument("--latency-ms", type=int, default=0, help="order latency in data time (default 0)")
    parser.add_argument("--equity-every", type=int, default=60, metavar="MIN", help="equity curve sampling, minutes (default 60)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write all metrics, trades and the equity curve as JSON")
    parser.add_argument("--csv", type=Path, metavar="FILE",
                        help="write the trade list as CSV (with --grid: every run's, to FILE-<run id>.csv)")
    parser.add_argument("--grid", action="append", default=[], metavar="PATH=V1,V2", help="sweep a strategy field (repeatable)")
    parser.add_argument("--rank", default="sharpe", metavar="METRIC", help="metric that ranks a sweep (default sharpe)")
    parser.add_argument("--workers", type=int, help="processes for a sweep (default: all cores)")
    parser.add_argument("--limit", type=int, default=50, help="runs shown by list (default 50)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace, settings: Settings) -> int:
    console = Console(highlight=False)
    try:
        if args.action == "list":
            return asyncio.run(_list(settings, console, args.limit))
        if args.action == "show":
            if not args.run_id:
                raise TraderError("backtest show needs a run ID (see 'tui-trader backtest list')")
            return asyncio.run(_show(settings, console, args))
        if args.action != "run":
            raise TraderError(f"unknown backtest action {args.action!r} (allowed: run, list, show)")
        with _logging_to_file(settings):
            return _run(args, settings, console)
    except TraderError as exc:  # one line however narrow the terminal (soft wrap); brackets in it are not markup
        message = Text.assemble(("error:", "bold red"), " ", str(exc).replace("\n", "; "))
        Console(stderr=True, highlight=False, soft_wrap=True).print(message)
        return 2
    except KeyboardInterrupt:
        return 130


@contextmanager
def _logging_to_file(settings: Settings) -> Iterator[None]:
    """The engine's log (a crashed feed's traceback among it) goes to the log file, as the
    dashboard's does: with no handler Python printed it on the terminal before the one-line error.
    Grid workers are forked inside the block and inherit it. Restored after (tests run in-process)."""
    from tui_trader.app.cli import file_log_handler

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    handler = file_log_handler(settings)
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    try:
        yield
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        handler.close()


# --- input ------------------------------------------------------------------------------------


def parse_date_ms(text: str | None, option: str) -> int | None:
    """UTC date, date-time or epoch milliseconds -> epoch ms; a clear error otherwise."""
    if text is None:
        return None
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TraderError(f"{option} {text!r} is not a date (use 2017-11-05, 2017-11-05T12:00 or epoch ms)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _check_files(args: argparse.Namespace) -> None:
    if not args.data:
        raise TraderError("backtest needs --data FILE [FILE ...] (candle CSV, .csv.gz or MEXC kline JSON)")
    for path in [*args.data, *args.funding, *([args.strategy] if args.strategy else [])]:
        if not path.is_file():
            raise DataError(f"{path}: {'is a directory, not a file' if path.is_dir() else 'file not found'}")
    if args.latency_ms < 0 or args.equity_every <= 0:
        raise TraderError("--latency-ms must be >= 0 and --equity-every > 0")


def count_bars(paths: list[Path], from_ms: int | None, to_ms: int | None, cache_dir: Path | None = None) -> int:
    """Candles in range, for the progress bar: from the candle cache's stamps when it holds the file
    (`cached_columns`: ms for a million bars), else a quick line scan (JSON files are not counted).
    Files of one symbol are one series: a candle an earlier file of it already holds counts once."""
    series: dict[str, list[tuple[int, Path, Any]]] = {}
    for path in paths:
        cached = cached_columns(path, cache_dir)
        if cached is not None:
            if len(cached):
                series.setdefault(symbol_from_filename(path), []).append((int(cached.ts[0]), path, cached.ts))
        elif not is_kline_json(path):
            first = next(candle_stamps(path), None)
            if first is not None:
                series.setdefault(symbol_from_filename(path), []).append((first, path, None))
    lo, hi = -1 if from_ms is None else from_ms - 1, to_ms
    total = 0
    for files in series.values():
        newest = -1
        for _, path, stamps in sorted(files, key=lambda f: f[:2]):
            if stamps is not None:  # (stamps rise: the reader refuses a file where they do not)
                start = int(np.searchsorted(stamps, max(newest, lo), "right"))  # after `newest`, from `from_ms`
                stop = len(stamps) if hi is None else int(np.searchsorted(stamps, hi, "left"))
                total += max(0, stop - start)
                newest = max(newest, int(stamps[-1]))
                continue
            last = newest
            for ts in candle_stamps(path):
                if ts > newest and (from_ms is None or ts >= from_ms) and (to_ms is None or ts < to_ms):
                    total += 1
                last = max(last, ts)
            newest = last
    return total


# --- run and sweep ----------------------------------------------------------------------------


def _run(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from tui_trader.app.wiring import database_path
    from tui_trader.backtest.grid import parse_grid
    from tui_trader.backtest.report import write_csv, write_json
    from tui_trader.engine.strategy_runner import load_strategy

    _check_files(args)
    from_ms, to_ms = parse_date_ms(args.date_from, "--from"), parse_date_ms(args.date_to, "--to")
    if from_ms is not None and to_ms is not None and to_ms <= from_ms:
        raise TraderError("--to must be after --from")
    strategy = load_strategy(args.strategy)
    grid = parse_grid(args.grid)
    options: dict[str, Any] = dict(
        settings=settings, date_from_ms=from_ms, date_to_ms=to_ms, funding_file=args.funding or None,
        latency_ms=args.latency_ms, equity_every_ms=args.equity_every * 60_000,
    )  # fmt: skip
    db = database_path(settings)
    if grid:
        return _sweep(strategy, grid, args, options, db, console)
    from tui_trader.backtest.runner import run_backtest

    total = count_bars(args.data, from_ms, to_ms, default_cache_dir(settings.data_dir))
    with _progress(console) as progress:
        task = progress.add_task("backtest", total=total or None)
        result = run_backtest(strategy, args.data, store_path=db, progress=lambda n, _ts: progress.update(task, completed=n), **options)
        progress.update(task, completed=result.bars, total=result.bars)
    record = result.to_record()
    print_run(console, record)
    if args.json:
        write_json(record, args.json)
    if args.csv:
        write_csv(record, args.csv)
    for line in result.errors[:10]:  # what went wrong, and why orders were refused (a run that trades nothing says why)
        console.print(f"[yellow]{escape(line)}[/]")
    console.print(f"[dim]saved as {result.id} in {db} - {result.bars:,} bars in {result.elapsed_s:.1f} s "
                  f"({result.bars / max(result.elapsed_s, 1e-9):,.0f} bars/s)[/]")
    return 0 if result.status == "finished" else 1


def _sweep(strategy, grid, args, options, db: Path, console: Console) -> int:
    from tui_trader.backtest.grid import LOWER_IS_BETTER, combinations, run_grid
    from tui_trader.backtest.metrics import compute_metrics
    from tui_trader.backtest.report import write_csv, write_json
    from tui_trader.backtest.runner import save_result

    probe = compute_metrics([], [], 60_000)
    if args.rank not in probe:
        raise TraderError(f"--rank {args.rank!r} is not a metric (allowed: {', '.join(probe)})")
    n = len(combinations(strategy, grid))  # validates every combination before anything runs
    with _progress(console) as progress:
        task = progress.add_task(f"{n} runs", total=n)
        results = run_grid(strategy, grid, args.data, metric=args.rank, workers=args.workers,
                           on_done=lambda _r: progress.advance(task), **options)
    for result in results:
        asyncio.run(save_result(result, db))
    order = "lowest" if args.rank in LOWER_IS_BETTER else "highest"
    short = {k: k if len(k) <= 16 else ".".join(k.split(".")[-2:]) for k in grid}  # (full names: --json)
    if len(set(short.values())) < len(short):
        short = {k: k for k in grid}
    cols = ["#", "id", *short.values(), args.rank, "trades", "win rate %", "net P&L", "max DD %"]
    rows = [dict(zip(cols, (str(i), r.id, *(str(r.params["grid"][k]) for k in grid), number_text(r.metrics.get(args.rank)),
                             str(r.metrics["trades"]), number_text(r.metrics["win_rate_pct"]), number_text(r.metrics["net_pnl"]),
                             number_text(r.metrics["max_drawdown_pct"]))))
            for i, r in enumerate(results, 1)]
    priority = {"win rate %": 2, "max DD %": 1, "net P&L": 1}  # the id, the rank, the grid values and the trades stay
    title = f"{n} runs ranked by {args.rank} ({order} first)"
    console.print(fitted_table(console, title, cols, priority, rows, whole=frozenset({"id"})))
    if args.json:
        write_json({"rank": args.rank, "runs": [r.to_record() for r in results]}, args.json)
    if args.csv:  # every run's trades, one file each: a sweep is for comparing runs, the id ties file to row
        for result in results:
            write_csv(result.to_record(), run_csv_path(args.csv, result.id))
        console.print(f"[dim]trades of {n} runs written to {run_csv_path(args.csv, '<run id>')}[/]")
    return 0


def run_csv_path(path: Path, run_id: str) -> Path:
    """`trades.csv` -> `trades-<run id>.csv`: where `--csv` with `--grid` writes one run's trades."""
    return path.with_name(f"{path.stem}-{run_id}{path.suffix}")


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


# --- stored runs ------------------------------------------------------------------------------


async def _list(settings: Settings, console: Console, limit: int) -> int:
    from tui_trader.app.wiring import database_path
    from tui_trader.store.backtests import BacktestRepository
    from tui_trader.store.db import Database

    db = Database(database_path(settings))
    try:
        runs = await BacktestRepository(db).list_runs(limit)
    finally:
        await db.close()
    priority = {"symbols": 1, "max DD %": 1, "win rate %": 2, "from": 3, "to": 4, "strategy": 5, "created": 6}  # id, status, trades, P&L stay
    rows = [{"id": r["id"], "created": utc_minute(r["created_ms"]), "status": r["status"], "strategy": r["strategy"],
             "symbols": ", ".join(r["symbols"]), "from": utc_minute(r["date_from_ms"]),
             "to": utc_minute(r["date_to_ms"]),
             "trades": str(r["trades"]), "win rate %": number_text(r["win_rate_pct"]), "net P&L": number_text(r["net_pnl"]),
             "max DD %": number_text(r["max_drawdown_pct"])} for r in runs]
    order = ["id", "created", "status", "strategy", "symbols", "from", "to", "trades", "win rate %", "net P&L", "max DD %"]
    console.print(fitted_table(console, f"backtests ({len(runs)})", order, priority, rows))
    return 0


def fitted_table(console: Console, title: str, order: list[str], priority: dict[str, int], rows: list[dict[str, str]],
                 left: set[str] = frozenset({"id", "status", "strategy", "symbols"}),  # type: ignore[assignment]
                 whole: frozenset[str] = frozenset()) -> Table:
    """A table of `rows` with the columns of `order` that fit the console: where all do not, the
    columns of the highest `priority` number go first (0: always kept), so an 80-column terminal
    shows fewer columns whole instead of every column cut to a letter. Columns in `whole` (a run
    id: what `show ID` needs) are never cut: if the kept columns still do not fit, the others wrap."""
    shown = list(order)
    while True:
        table = _table(title, shown, rows, left, whole, wrap=False)
        droppable = [col for col in shown if priority.get(col, 0) > 0]
        fits = Measurement.get(console, console.options.update(max_width=1_000_000), table).maximum <= console.width
        if fits or not droppable:
            if not fits and whole:
                table = _table(title, shown, rows, left, whole, wrap=True)
            if len(shown) < len(order):
                table.caption = f"left out for the terminal's width: {', '.join(c for c in order if c not in shown)}"
            return table
        shown.remove(max(droppable, key=lambda col: (priority[col], shown.index(col))))


def _table(title: str, shown: list[str], rows: list[dict[str, str]], left: set[str] | frozenset[str],
           whole: frozenset[str], *, wrap: bool) -> Table:
    table = Table(title=title)
    for col in shown:
        width = max([len(col), *(len(row[col]) for row in rows)]) if col in whole else None
        table.add_column(col, no_wrap=col in whole or not wrap, overflow="fold" if wrap else "ellipsis",
                         min_width=width, justify="left" if col in left else "right")
    for row in rows:
        table.add_row(*(row[col] for col in shown))
    return table


async def _show(settings: Settings, console: Console, args: argparse.Namespace) -> int:
    from tui_trader.app.wiring import database_path
    from tui_trader.backtest.report import write_csv, write_json
    from tui_trader.store.backtests import AmbiguousRunId, BacktestRepository
    from tui_trader.store.db import Database

    db = Database(database_path(settings))
    try:
        record = await BacktestRepository(db).get_run(args.run_id)
    except AmbiguousRunId as exc:
        raise TraderError(str(exc)) from None
    finally:
        await db.close()
    if record is None:
        raise TraderError(f"no backtest run {args.run_id!r} (see 'tui-trader backtest list')")
    print_run(console, record, trades=True)
    if args.json:
        write_json(record, args.json)
    if args.csv:
        write_csv(record, args.csv)
    return 0


# --- views ------------------------------------------------------------------------------------


def print_run(console: Console, record: dict[str, Any], *, trades: bool = False) -> None:
    """Summary table, equity curve (and the trade list when asked) of a run record."""
    m = record["metrics"]
    title = (f"{record['id']}  {record['strategy']} on {', '.join(record['symbols'])}  "
             f"{utc_minute(record['date_from_ms'])} -> {utc_minute(record['date_to_ms'])}  [{record['status']}]")
    table = Table(title=title, show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label, unit in METRIC_ROWS:
        value = m.get(key)
        table.add_row(label, metric_text(value, unit))
    console.print(table)
    values = [float(e) for _, e in record["equity"]]
    if len(values) >= 2:
        console.print("equity (USDT)")
        console.print(equity_chart(values, width=min(100, max(20, console.width - 14)),
                                   times=[int(t) for t, _ in record["equity"]]))
    if trades and record["trades"]:
        console.print(_trades_table(console, record["trades"]))


def equity_chart(values: list[float], width: int = 80, height: int = 8, times: list[int] | None = None) -> str:
    """A block-character area chart of `values` resampled to `width` columns, y labels on the left and,
    given the points' `times` (epoch ms), a UTC time axis below: first, middle and last time."""
    cols = [values[min(len(values) - 1, i * len(values) // width)] for i in range(width)] if len(values) > width else values
    lo, hi = min(cols), max(cols)
    span = (hi - lo) or 1.0
    levels = [(v - lo) / span * height * 8 for v in cols]
    lines = []
    for row in range(height - 1, -1, -1):
        floor = 1 if row == 0 else 0  # the lowest value still shows as a sliver
        cells = "".join(BLOCKS[max(floor, min(8, int(level - row * 8)))] for level in levels)
        label = f"{hi:>12,.2f} " if row == height - 1 else f"{lo:>12,.2f} " if row == 0 else " " * 13
        lines.append(label + "│" + cells)
    if times and len(times) == len(values):
        n = len(cols)
        lines.append(" " * 13 + "└" + "─" * n)
        first, mid, last = utc_minute(times[0]), utc_minute(times[len(times) // 2]), utc_minute(times[-1])
        axis = [" "] * (n + 1)
        for at, text in ((0, first), (max(0, (n - len(mid)) // 2), mid), (max(0, n + 1 - len(last)), last)):
            if all(c == " " for c in axis[at:at + len(text)]) and at + len(text) <= len(axis):
                axis[at:at + len(text)] = list(text)
        lines.append(" " * 13 + "".join(axis).rstrip())
    return "\n".join(lines)


def _trades_table(console: Console, trades: list[dict[str, Any]]) -> Table:
    order = ["symbol", "side", "entry", "entry price", "exit", "exit price", "net P&L", "fees", "funding", "reason"]
    rows = [dict(zip(order, (t["symbol"], t["side"], utc_short(t["entry_ms"]), price_text(t["entry_price"]),
                             utc_short(t["exit_ms"]),
                             price_text(t["exit_price"]) if t["exit_price"] else "", number_text(t["net_pnl"]),
                             number_text(t["fees"]), number_text(t["funding"]),
                             t["exit_reason"] or "open")))
            for t in trades]
    priority = {"funding": 4, "fees": 3, "symbol": 2, "exit": 1}  # prices, P&L and the reason stay
    return fitted_table(console, f"trades ({len(trades)})", order, priority, rows, left={"symbol", "side", "entry", "exit", "reason"})
