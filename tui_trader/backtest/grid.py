"""Backtest layer: parameter sweeps - strategy fields by dotted path, every combination in parallel, ranked.

A grid spec is `path=v1,v2,...`; the path addresses a field of the strategy document as it is
validated (`z1_entry.order.leverage`, `s1_signal.conditions[0].value`, `indicators.pump.current`
is not splittable by commas, so list values are not supported). Values are read as int, float,
true/false, else text. Each combination is applied to the strategy and validated by the strategy
schema before anything runs, so an unknown path or a value the schema refuses fails up front.
Runs go to a `ProcessPoolExecutor` (one process per core by default: backtests are CPU-bound and
the GIL would serialise threads) and come back ranked by one metric.
"""

from __future__ import annotations

import copy
import itertools
import os
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

from tui_trader.backtest.runner import BacktestResult, run_backtest
from tui_trader.domain.errors import StrategyError, TraderError
from tui_trader.domain.strategy.schema import Strategy, strategy_from_dict

LOWER_IS_BETTER = {"max_drawdown_pct", "max_drawdown_duration_s", "fees_paid", "funding_paid", "liquidations"}
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class GridError(TraderError):
    """A grid spec that cannot be parsed or applied."""


def parse_value(text: str) -> Any:
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """`["a.b=1,2", "c=x"]` -> `{"a.b": [1, 2], "c": ["x"]}`."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        path, sep, values = spec.partition("=")
        items = [v for v in values.split(",") if v.strip()]
        if not sep or not path.strip() or not items:
            raise GridError(f"grid spec {spec!r}: expected name=v1,v2,... (e.g. z1_entry.order.leverage=2,3)")
        if path.strip() in grid:
            raise GridError(f"grid spec {spec!r}: {path.strip()} is given twice")
        grid[path.strip()] = [parse_value(v) for v in items]
    return grid


def _tokens(path: str) -> list[str | int]:
    out: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        if m.start() != pos and path[pos:m.start()] != ".":
            raise GridError(f"grid parameter {path!r}: cannot read the path")
        out.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if pos != len(path) or not out:
        raise GridError(f"grid parameter {path!r}: cannot read the path")
    return out


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set an existing field of a strategy document; an unknown field is a `GridError`."""
    node: Any = doc
    tokens = _tokens(path)
    for i, token in enumerate(tokens):
        known = (isinstance(node, dict) and isinstance(token, str) and token in node) or (
            isinstance(node, list) and isinstance(token, int) and token < len(node))
        if not known:
            where = ".".join(str(t) for t in tokens[: i + 1])
            raise GridError(f"grid parameter {path!r}: the strategy has no {where!r}")
        if i == len(tokens) - 1:
            node[token] = value
        else:
            node = node[token]


def combinations(strategy: Strategy, grid: dict[str, list[Any]]) -> list[tuple[dict[str, Any], Strategy]]:
    """Every combination as (its parameters, the validated strategy)."""
    base = strategy.model_dump(mode="json")
    out = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        doc = copy.deepcopy(base)
        for path, value in params.items():
            set_path(doc, path, value)
        try:
            out.append((params, strategy_from_dict(doc)))
        except StrategyError as exc:
            raise GridError(f"grid combination {params}: {exc}") from None
    return out


def _run_one(doc: dict[str, Any], params: dict[str, Any], data: list[str], options: dict[str, Any]) -> BacktestResult:
    return run_backtest(strategy_from_dict(doc), data, params={"grid": params}, **options)


def rank(results: list[BacktestResult], metric: str) -> list[BacktestResult]:
    """Best first by `metric`; runs where it is undefined last."""
    lower = metric in LOWER_IS_BETTER
    defined = [r for r in results if r.metrics.get(metric) is not None]
    missing = [r for r in results if r.metrics.get(metric) is None]
    return sorted(defined, key=lambda r: float(r.metrics[metric]), reverse=not lower) + missing


def run_grid(
    strategy: Strategy,
    grid: dict[str, list[Any]],
    data: Sequence[Path | str],
    *,
    metric: str = "sharpe",
    workers: int | None = None,
    on_done: Callable[[BacktestResult], None] | None = None,
    **options: Any,
) -> list[BacktestResult]:
    """Run every combination in parallel processes; return the results ranked by `metric`."""
    combos = combinations(strategy, grid)
    workers = max(1, min(workers or os.cpu_count() or 1, len(combos)))
    results: list[BacktestResult] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_run_one, s.model_dump(mode="json"), p, [str(d) for d in data], options) for p, s in combos]
        for future in futures:
            result = future.result()
            results.append(result)
            if on_done is not None:
                on_done(result)
    return rank(results, metric)
