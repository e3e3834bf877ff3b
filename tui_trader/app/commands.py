"""App layer: implementations of CLI sub-commands that are not the console itself.

`strategy check FILE` validates a strategy file and prints its five sections as a rich table, so
a user sees exactly what the engine will evaluate (match mode, conditions, resolved indicators,
order settings) before running it. Exit code 0 when valid, 2 with one line per problem when not.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tui_trader.domain.errors import StrategyFileError
from tui_trader.domain.strategy.conditions import never_trades
from tui_trader.domain.strategy.schema import Strategy
from tui_trader.domain.strategy.warmup import warmup_s
from tui_trader.engine.strategy_runner import load_strategy

SECTION_TITLES = {
    "s1_signal": "S1 signal",
    "o1_cancel": "O1 cancel",
    "z1_entry": "Z1 entry",
    "ze1_close": "ZE1 close",
    "emergency_exit": "E1 emergency exit",
}


def strategy_check(path: Path) -> int:
    """`tui-trader strategy check FILE`: 0 and a table when valid, 2 and the problems when not."""
    try:
        strategy = load_strategy(path)
    except StrategyFileError as exc:
        if len(exc.problems) == 1:
            print(f"tui-trader: {exc}", file=sys.stderr)
            return 2
        print(f"tui-trader: {path}: invalid strategy", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    console = Console(highlight=False, width=max(120, Console().width))
    console.print(_summary(strategy, path))
    console.print(sections_table(strategy))
    console.print(indicators_table(strategy))
    console.print(_order_table(strategy))
    for reason in never_trades(strategy):  # valid: still exit 0 (see cli.CHECK_HELP)
        print(f"tui-trader: warning: {path} can never trade: {reason}", file=sys.stderr)
    return 0


def _summary(s: Strategy, path: Path) -> str:
    state = "enabled" if s.enabled else "disabled"
    return f"[bold]{s.strategy_name}[/bold] ({s.direction}, {state}) - warm-up {warmup_s(s):g} s - valid: {path}"


def _plain(v: object) -> str:
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_plain(x) for x in v) + "]"
    return f"{v:g}" if isinstance(v, float) else str(v)


def sections_table(s: Strategy) -> Table:
    """One row per condition; an empty section is shown as never firing."""
    table = Table(title=f"{s.strategy_name}: sections (E1 is checked before ZE1)", title_justify="left")
    for col in ("section", "match", "condition", "indicator type"):
        table.add_column(col, no_wrap=True)
    for key, section in s.sections().items():
        title = SECTION_TITLES[key]
        if not section.conditions:
            table.add_row(title, "-", "(empty: never fires)", "")
            continue
        for i, cond in enumerate(section.conditions):
            first = i == 0
            spec_type = s.resolve(cond.indicator).type  # type: ignore[attr-defined]
            table.add_row(title if first else "", section.match if first else "", f"{cond.indicator} {cond.operator} {cond.value:g}", spec_type)
    return table


def indicators_table(s: Strategy) -> Table:
    """The indicator instances the sections use (only these are computed), with their parameters."""
    table = Table(title="indicators", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("parameters")
    for name, spec in s.used_indicators().items():
        params = {k: v for k, v in spec.model_dump().items() if k != "type"}
        table.add_row(name, spec.type, ", ".join(f"{k}={_plain(v)}" for k, v in params.items()) or "-")  # type: ignore[attr-defined]
    return table


def _order_table(s: Strategy) -> Table:
    o, g = s.z1_entry.order, s.global_limits
    table = Table(title="order and limits", title_justify="left", show_header=False)
    table.add_column("key", no_wrap=True)
    table.add_column("value")
    rows = [
        ("size", f"{o.size_pct:g} % of available USDT as {o.margin_mode} margin"),
        ("leverage", f"{o.leverage}x (max {g.max_leverage}x)"),
        ("order type", o.order_type + (f", offset {o.limit_offset_pct:g} %" if o.order_type == "limit" else "")),
        ("stop loss / take profit", f"{o.stop_loss_pct:g} % / {o.take_profit_pct:g} % from the fill"),
        ("fill timeout", f"{o.fill_timeout_s:g} s"),
        ("O1 entry window / cooldown", f"{s.o1_cancel.timeout_s:g} s / {s.o1_cancel.cooldown_s:g} s"),
        ("E1 cooldown", f"{s.emergency_exit.cooldown_s:g} s, cancel pending orders: {'yes' if s.emergency_exit.cancel_pending else 'no'}"),
        ("normal exit cooldown", f"{g.normal_exit_cooldown_s:g} s (after ZE1 / TP / time exit)"),
        ("positions", f"max {g.max_open_positions} open, {g.max_positions_per_symbol} per symbol, {g.max_daily_trades} entries a day"),
        ("max hold / stale data", f"{g.max_hold_s:g} s / {g.max_stale_data_s:g} s"),
        ("symbols", ", ".join(g.symbols) or "(from the app config)"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table
