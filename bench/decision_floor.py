"""Bench: the floor under a bar backtest that keeps the strategy machine as its one decision engine.

Issue 22 asks for 10x backtesting.py on the like-for-like bench while keeping one engine for
decisions. Ours runs every trade through the full stack (risk, watchdog, execution, paper venue,
recorder): `compare_engines.py` measures that. This measures what is left when all of that is
taken away - the option the owner would have to allow, since the guide has backtests run the same
risk, watchdog and execution code as live: the same pre-screen (`bar_screen.s1_may_fire`) and
catch-up (`BarIndicatorSet.extend`) as our bar backtest, the real `StrategyMachine` stepped on
every bar the screen keeps, and exits decided inline by the bench's own rules (entry at the close;
the stop when the high reaches it before the target when the low does; no exit prices, fees, equity,
orders or records - the trade list is what is checked). Nothing
here is product code and nothing in the product uses it; it exists to put a number on option (b).

It checks its trade list against the reference (`bench_reference.py`: exit 1 on a difference) and
times backtesting.py on the same bars in its own process (`compare_engines.spawn`), so the ratio
is of one run. Last line: one JSON object.

    python bench/decision_floor.py [--bars N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reference import (
    Trade,
    fingerprint,
    load_csv_columns,
    reference_fills,
    tile,
    write_tiled_csv,
)
from compare_engines import DEFAULT_DATA, spawn

from tui_trader.backtest.bar_screen import s1_may_fire
from tui_trader.domain.indicators.bar_set import FIELDS, BarIndicatorSet
from tui_trader.domain.intents import OpenPosition
from tui_trader.domain.models import (
    ClientOrderId,
    Order,
    OrderSide,
    OrderState,
    OrderType,
    Position,
    Side,
)
from tui_trader.domain.strategy.machine import StrategyMachine
from tui_trader.domain.strategy.state import Phase
from tui_trader.engine.strategy_runner import bundled_strategy_path, load_strategy
from tui_trader.venues.candle_cache import CandleColumns

SYMBOL = "X_USDT"
MINUTE = 60_000


def machine_only(cols: CandleColumns) -> list[Trade]:
    """The bench strategy's trades: our machine decides, the fills are the bench's rules inline."""
    strat = load_strategy(bundled_strategy_path("bar_pump_short.toml"))
    order = strat.z1_entry.order
    sl_k, tp_k = 1 + order.stop_loss_pct / 100, 1 - order.take_profit_pct / 100
    may = s1_may_fire(strat, cols)
    keep = np.flatnonzero(may)
    bars, m = BarIndicatorSet.for_strategy(strat), StrategyMachine(strat, SYMBOL)
    ts: Any = cols.ts  # (numpy arrays: `extend` takes any sequence)
    o, h, low, close, v = cols.open, cols.high, cols.low, cols.close, cols.volume
    n, i, trades = len(ts), 0, []
    held: tuple[int, float, float, float] | None = None  # entry bar, price, SL, TP
    while i < n:
        if held is None and i > 0 and not may[i] and m.phase is Phase.MONITORING and m.state.exit_bar <= m.bar:
            k = int(np.searchsorted(keep, i))
            j = int(keep[k]) if k < len(keep) else n
            bars.extend(ts[i:j], {f: getattr(cols, f)[i:j] for f in FIELDS})
            i = j
            continue
        if held is not None:
            entry_bar, price, sl, tp = held
            reason = "SL" if h[i] >= sl else "TP" if low[i] <= tp else None
            if reason is not None:
                trades.append((entry_bar, i, reason))
                held = None
                gone = Position(SYMBOL, Side.SHORT, Decimal(0), Decimal(1), Decimal(repr(price)), order.leverage,
                                tag=m.tag)
                m.on_position_changed(int(ts[i]) + MINUTE // 2, gone, reason)
        bars.on_bar(int(ts[i]), float(o[i]), float(h[i]), float(low[i]), float(close[i]), float(v[i]))
        now = int(ts[i]) + MINUTE
        for intent in m.on_bar(now, bars.values(), price=float(close[i]), bar=bars.bars):
            if isinstance(intent, OpenPosition):
                price = float(close[i])
                held = (i, price, price * sl_k, price * tp_k)
                filled = Order(ClientOrderId(intent.client_id), SYMBOL, OrderSide.OPEN_SHORT, OrderType.MARKET,
                               Decimal(1), leverage=order.leverage, state=OrderState.FILLED,
                               filled_contracts=Decimal(1), avg_fill_price=Decimal(repr(price)), tag=m.tag)
                m.on_order_update(now, filled)
        i += 1
    return trades


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    args = parser.parse_args()
    c = tile(load_csv_columns(DEFAULT_DATA), args.bars)
    ref: list[Trade] = [(f.entry_bar, f.exit_bar, f.reason) for f in reference_fills(c)]
    cols = CandleColumns(c["ts"], c["open"], c["high"], c["low"], c["close"], c["volume"], source=DEFAULT_DATA,
                         checksum="", interval_s=60)
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        trades = machine_only(cols)
        runs.append(time.perf_counter() - started)
        if trades != ref:
            sys.exit(f"decision floor: {len(trades)} trades, fingerprint {fingerprint(trades)} != the reference's "
                     f"{len(ref)}, {fingerprint(ref)}")
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "bench_tiled.csv"
        write_tiled_csv(c, csv_path)
        bt = spawn("bt", "memory", csv_path)
    middle = sorted(runs)[1]
    bars_per_s, bt_per_s = args.bars / middle, args.bars / bt["seconds"]
    print(f"machine only (pre-screen + catch-up + StrategyMachine, fills inline): {len(ref)} trades = the reference, "
          f"{', '.join(f'{s:.3f}' for s in runs)} s -> {bars_per_s:,.0f} bars/s (the median of 3)")
    print(f"backtesting.py, same bars, in memory: {bt['seconds']:.3f} s -> {bt_per_s:,.0f} bars/s")
    print(f"ratio: {bars_per_s / bt_per_s:.2f}")
    print(json.dumps({"bars": args.bars, "trades": len(ref), "fingerprint": fingerprint(ref),
                      "bars_per_s": round(bars_per_s, 1), "bt_bars_per_s": round(bt_per_s, 1),
                      "ratio_vs_backtestingpy": round(bars_per_s / bt_per_s, 3)}))


if __name__ == "__main__":
    main()
