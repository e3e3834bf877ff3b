"""Bench: engines like for like - the same bars, the same strategy, the same trades, then throughput.

The strategy is the bench "bar pump-short" of `/work/shared/reference/bench_strategy.md`; the bars
are a real 1 m file (default: the full Bittrex BCC/BTC recording in the repo,
`tui_trader/data/bittrex_BCC-BTC_1m_20171104-20171118.csv.gz`, the copy the package ships; `--data FILE` for another) tiled
by plain repetition to `--bars` (default 1,000,000) and written once to a temporary CSV.

* reference (`bench/bench_reference.py`, numpy indicators + a plain per-bar loop): the check, not
  a contestant. Every engine's (entry bar, exit bar, reason) list must equal it, or this exits 1.
* backtesting.py (PyPI `backtesting`, bench-only): a port of the rules. `init()` precomputes
  pump and surge with pandas through `self.I`; `next()` sells at the close with the bracket
  `sl=close*1.005, tp=close*0.98` (`trade_on_close=True`; the library checks the stop before the
  target, so the stop wins when both touch; a stop gapped through fills at the open) and closes at
  the close of bar e+120. Entry/exit bars come from `stats._trades` (EntryBar/ExitBar); the reason
  from the exit price against the entry's SL/TP. Timed twice, each in a process of its own:
  in memory = `Backtest(...)` + `run()` on a DataFrame built before the timer; from disk = its
  preferred on-disk form, `pandas.read_csv` of the tiled CSV (+ the datetime index) + the same.
  One edge it cannot express: a time stop due on the very last bar (its close order waits for a
  next bar); the bench says so when it happens (the real data never hits it). An order it refuses
  for margin is reported too (the fixed size is far below the cash, so none should be).
* ours: the hook `run_ours(csv_path, columns)` below (our bar-mode engine); "not available" while
  it raises NotImplementedError, and then no figure of ours is printed. Its exit prices must be the
  reference's within `PRICE_TOLERANCE` (ours are rounded to the price unit): a stop or target that
  a bar's path goes through fills at its trigger, one the bar opens beyond at the open.

Each (engine, mode) runs in its own subprocess, so its peak RSS (`ru_maxrss`) is its own. Printed:
a table (bars/s in memory and from disk, trades, SL, TP, fingerprint, peak RSS), the ratios
ours / backtesting.py when ours is available. Last line: one JSON object.

    python bench/compare_engines.py [--bars N] [--data FILE]
    python bench/compare_engines.py --counts      # ours only, in-process: where its time goes
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reference import (
    BAR_MS,
    MAX_HOLD_BARS,
    SL_FACTOR,
    TP_FACTOR,
    Columns,
    Trade,
    fingerprint,
    load_csv_columns,
    reasons,
    reference_fills,
    tile,
    write_tiled_csv,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "tui_trader" / "data" / "bittrex_BCC-BTC_1m_20171104-20171118.csv.gz"
ENGINES = {"bt": "backtesting.py", "ours": "ours"}
MODES = ("memory", "disk")
BT_UNITS = 1_000  # a fixed short size, tiny against the cash: no order refused for margin at any price < 1e9
BT_CASH = 1e12
PRICE_TOLERANCE = 1e-6  # ours: prices rounded to the instrument's price unit (1e-8 here): relative, far above it


# ---- ours: the hook ----------------------------------------------------------------------------


def run_ours(csv_path: Path, columns: Columns | None) -> tuple[list[Trade], float, list[float]]:
    """HOOK for the lead engineer: run our bar-mode engine on the bench strategy.

    csv_path: the tiled CSV (header `timestamp_ms,open,high,low,close,volume`, one row per bar).
    columns:  the same bars already in memory (`load_csv_columns(csv_path)`: "ts" int64 ms,
              "open" .. "volume" float64), or None: load them from `csv_path` inside the timing.
    Returns:  (trades, seconds, exit prices) - trades as (entry_bar, exit_bar, reason) in order, reason "SL",
              "TP" or "time", bars counted from 0 in the file; seconds: the timed run (from disk:
              reading included; in memory: the run alone), measured by this function.
    Ours: the full engine (`run_backtest`: strategy machine, risk, watchdog, execution, paper venue,
    recorder) on the shipped `bar_pump_short.toml`, its preferred on-disk form being the columnar
    cache (`tui-trader data import`, done once before the timing as backtesting.py's CSV is written
    before its own); in memory: `columns` themselves, handed over as backtesting.py is handed its frame.
    """
    from tui_trader.backtest.runner import run_backtest
    from tui_trader.engine.strategy_runner import bundled_strategy_path
    from tui_trader.venues.candle_cache import (
        CandleColumns,
        default_cache_dir,
        load_columns,
    )

    data_dir = csv_path.parent / "ours-data"
    preloaded = None
    if columns is None:  # the import (untimed, as the CSV's writing); the run loads the cache itself
        ts0 = int(load_columns(csv_path, default_cache_dir(data_dir)).ts[0])
    else:
        ts0 = int(columns["ts"][0])
        preloaded = CandleColumns(columns["ts"], columns["open"], columns["high"], columns["low"], columns["close"],
                                  columns["volume"], source=csv_path, checksum="", interval_s=BAR_MS // 1000)
    settings = bench_settings(data_dir)
    strategy = bundled_strategy_path("bar_pump_short.toml")
    started = time.perf_counter()
    result = run_backtest(strategy, [csv_path], settings=settings, columns=preloaded)
    seconds = time.perf_counter() - started
    trades: list[Trade] = []
    exit_prices: list[float] = []
    for t in result.trades:
        if t.exit_ms is None:
            continue  # open at the end: not counted
        exit_prices.append(float(t.exit_price or 0))
        entry = (t.entry_ms - ts0) // 60_000 - 1  # filled at the entry bar's close
        exit_ = (t.exit_ms - ts0) // 60_000 - (1 if t.exit_reason == "TIME" else 0)  # time stop: at the close
        trades.append((entry, exit_, "time" if t.exit_reason == "TIME" else t.exit_reason))
    return trades, seconds, exit_prices


def bench_settings(data_dir: Path) -> Any:
    """The bench's terms: no spread, no slippage, 0.06 % taker; the watchdog's auto-close at 3 % (a 10x
    short starts 8.9 % from liquidation; the default 10 % would close it at once) and no daily-loss
    or drawdown kill switch (the peers have none)."""
    from tui_trader.domain.config import Settings

    st = Settings()
    return st.model_copy(update={
        "data_dir": data_dir,
        "replay": st.replay.model_copy(update={"spread_bps": 0.0}),
        "paper": st.paper.model_copy(update={"slippage_bps": 0.0}),
        "fees": st.fees.model_copy(update={"taker_rate": 0.0006}),
        "watchdog": st.watchdog.model_copy(update={"autoclose_distance_pct": 3.0, "red_band_pct": 5.0,
                                                   "yellow_band_pct": 8.0}),
        "risk": st.risk.model_copy(update={"daily_loss_limit_pct": 100.0, "max_drawdown_pct": 100.0}),
    })


# ---- backtesting.py ----------------------------------------------------------------------------


def bt_frame(csv_path: Path) -> Any:
    """The CSV as backtesting.py wants it: OHLCV columns on a datetime index."""
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the dev venv

    df = pd.read_csv(csv_path)
    df.index = pd.to_datetime(df.pop("timestamp_ms"), unit="ms")
    df.columns = ["Open", "High", "Low", "Close", "Volume"]
    return df


def bt_pump(close: np.ndarray) -> np.ndarray:
    """close / min of the 60 closes before - 1; 0.0 (no pump) where undefined."""
    import pandas as pd  # type: ignore[import-untyped]

    c = pd.Series(close)
    pump = (c / c.shift(1).rolling(60).min() - 1.0).to_numpy()
    return np.where(np.isnan(pump), 0.0, pump)


def bt_surge(volume: np.ndarray) -> np.ndarray:
    """mean of the last 5 volumes / mean of the 60 before them; zero base: met (inf) when the last 5
    sum to > 0; 0.0 (not met) where undefined."""
    import pandas as pd  # type: ignore[import-untyped]

    v = pd.Series(volume)
    recent, base = v.rolling(5).sum().to_numpy(), v.shift(5).rolling(60).sum().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        surge = np.where(base == 0, np.where(recent > 0, np.inf, 0.0), (recent / 5) / (base / 60))
    return np.where(np.isnan(surge), 0.0, surge)


def bt_strategy() -> type:
    from backtesting import Strategy  # type: ignore[import-untyped]  # it ships no type hints

    class BenchPumpShort(Strategy):
        def init(self) -> None:
            # NaN-free on purpose: backtesting.py starts calling next() after the longest run of
            # leading NaNs of any indicator, which would skip bar 64, the first that can signal
            self.pump = self.I(bt_pump, self.data.Close, name="pump")
            self.surge = self.I(bt_surge, self.data.Volume, name="surge")
            self.held = False  # a short was open (or its entry pending) after the previous next()
            self.time_stopped = False  # ... and its time stop was sent
            self.last_time_stop_bar = -1

        def next(self) -> None:
            i = len(self.data) - 1
            if self.trades:
                trade = self.trades[0]
                if i - trade.entry_bar >= MAX_HOLD_BARS:
                    # the exit is due at this close; with trade_on_close the library fills this
                    # close order in its next bar's pass, at this bar's close. The bracket is
                    # cancelled first, else that pass would check it against the next bar
                    trade.sl = None
                    trade.tp = None
                    trade.close()
                    self.time_stopped, self.last_time_stop_bar = True, i
                return
            if self.held:  # the short closed in this bar's order pass
                self.held = False
                if not self.time_stopped:
                    return  # its stop or target filled on this bar: no entry on an exit bar
                # a time stop filled at the previous bar's close: this bar may enter
            if i >= 64 and self.pump[-1] >= 0.07 and self.surge[-1] >= 3.0:
                close = self.data.Close[-1]
                self.sell(size=BT_UNITS, sl=close * SL_FACTOR, tp=close * TP_FACTOR)
                self.held, self.time_stopped = True, False

    return BenchPumpShort


def run_bt(csv_path: Path, from_disk: bool) -> tuple[list[Trade], list[float], float, str]:
    """(trades, exit prices, seconds, note) of backtesting.py on the tiled CSV."""
    from backtesting import Backtest  # type: ignore[import-untyped]

    strategy = bt_strategy()
    df = None if from_disk else bt_frame(csv_path)
    started = time.perf_counter()
    if df is None:
        df = bt_frame(csv_path)
    with warnings.catch_warnings(record=True) as caught:  # its orders refused for margin are reported
        warnings.simplefilter("always")
        stats = Backtest(df, strategy, cash=BT_CASH, commission=0.0006, margin=0.1, trade_on_close=True,
                         exclusive_orders=False, hedging=False).run()
    seconds = time.perf_counter() - started
    done = stats["_trades"]
    entry_bars, exit_bars = done["EntryBar"].tolist(), done["ExitBar"].tolist()
    entry_prices, exit_prices = done["EntryPrice"].tolist(), done["ExitPrice"].tolist()
    trades: list[Trade] = []
    for e, x, p, px in zip(entry_bars, exit_bars, entry_prices, exit_prices):
        reason = "SL" if px >= p * SL_FACTOR else "TP" if px <= p * TP_FACTOR else "time"
        trades.append((int(e), int(x), reason))
    notes = [str(w.message) for w in caught if "canceled" in str(w.message)][:3]
    if stats["_strategy"].last_time_stop_bar == len(df) - 1:
        notes.append("a time stop due on the last bar: backtesting.py fills it on a next bar that does not exist")
    return trades, exit_prices, seconds, "; ".join(notes)


# ---- one engine in one process -----------------------------------------------------------------


def child(engine: str, mode: str, csv_path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"engine": engine, "mode": mode, "available": True}
    if engine == "bt":
        trades, exit_prices, seconds, note = run_bt(csv_path, from_disk=mode == "disk")
        out.update(exit_prices=exit_prices, note=note)
    else:
        columns = None if mode == "disk" else load_csv_columns(csv_path)
        try:
            trades, seconds, exit_prices = run_ours(csv_path, columns)
        except NotImplementedError as exc:
            return {"engine": engine, "mode": mode, "available": False, "why": str(exc)}
        out.update(exit_prices=exit_prices, price_tolerance=PRICE_TOLERANCE)
    out.update(trades=[list(t) for t in trades], seconds=seconds,
               peak_rss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return out


def spawn(engine: str, mode: str, csv_path: Path) -> dict[str, Any]:
    """Run one (engine, mode) in a fresh interpreter; its last stdout line is its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--engine", engine, "--mode", mode, "--csv", str(csv_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        sys.exit(f"bench: {ENGINES[engine]} ({mode}) failed, exit {proc.returncode}:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["trades"] = [(int(e), int(x), str(r)) for e, x, r in result.get("trades", [])]
    return result


# ---- the comparison ----------------------------------------------------------------------------


def first_difference(want: list[Trade], got: list[Trade]) -> str:
    for k, (w, g) in enumerate(zip(want, got)):
        if w != g:
            return f"trade {k}: reference {w}, got {g}"
    k = min(len(want), len(got))
    return f"trade {k}: reference {want[k] if k < len(want) else None}, got {got[k] if k < len(got) else None}"


def fmt(x: float | None, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec).replace(",", " ")


def counts(columns: Columns) -> None:
    """Ours once, instrumented from outside (the bench wraps the methods; nothing in the engine
    counts): bars replayed through the engine vs left out, the time each side takes, the trades,
    and the timer firings by callback - where the time goes."""
    from collections import Counter

    from tui_trader.backtest import bar_replay
    from tui_trader.backtest import runner as backtest_runner
    from tui_trader.engine.clock import SimClock

    tally: Counter[str] = Counter()
    spent: Counter[str] = Counter()

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[name] += time.perf_counter() - t
                tally[name] += 1
        return wrapper

    def timed_async(name: str, fn: Any) -> Any:
        async def wrapper(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*a, **kw)
            finally:
                spent[name] += time.perf_counter() - t
                tally[name] += 1
        return wrapper

    call_later = SimClock.call_later

    def counted_call_later(self: Any, delay: float, callback: Any) -> Any:
        tally["timer:" + getattr(callback, "__qualname__", "?")] += 1
        return call_later(self, delay, callback)

    bar_replay.BarReplay._leave_out = timed("left out", bar_replay.BarReplay._leave_out)  # type: ignore[method-assign]
    bar_replay.BarReplay._bar = timed_async("replayed", bar_replay.BarReplay._bar)  # type: ignore[method-assign]
    SimClock.call_later = counted_call_later  # type: ignore[method-assign]
    backtest_runner.s1_may_fire = timed("pre-screen", backtest_runner.s1_may_fire)  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "bench_tiled_1m.csv"
        write_tiled_csv(columns, csv_path)
        trades, seconds, _ = run_ours(csv_path, columns)
    bars = len(columns["ts"])
    left_out, replayed = bars - tally["replayed"], tally["replayed"]
    print(f"ours: {fmt(bars)} bars in {seconds:.2f} s, {len(trades)} trades")
    print(f"  left out: {fmt(left_out)} bars in {fmt(tally['left out'])} stretches, {spent['left out']:.2f} s "
          f"({spent['left out'] / max(1, left_out) * 1e6:.2f} us a bar); the pre-screen {spent['pre-screen']:.2f} s")
    print(f"  replayed: {fmt(replayed)} bars through the full engine, {spent['replayed']:.2f} s "
          f"({spent['replayed'] / max(1, replayed) * 1e6:.0f} us a bar, timers and trades included), "
          f"{spent['replayed'] / seconds * 100:.0f} % of the run; "
          f"{spent['replayed'] / max(1, len(trades)) * 1e3:.2f} ms a trade")
    timers = {k[6:]: v for k, v in tally.most_common() if k.startswith("timer:")}
    print("  timers armed: " + ", ".join(f"{k} {fmt(v)}" for k, v in list(timers.items())[:6]))
    print(json.dumps({"bars": bars, "trades": len(trades), "ours_s": round(seconds, 3), "left_out_bars": left_out,
                      "left_out_s": round(spent["left out"], 3),
                      "pre_screen_s": round(spent["pre-screen"], 3), "replayed_bars": tally["replayed"],
                      "replayed_s": round(spent["replayed"], 3), "timers_armed": timers}))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000, help="bars after tiling (default 1,000,000)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the OHLCV CSV (plain or .gz) to tile")
    parser.add_argument("--engine", choices=sorted(ENGINES), help=argparse.SUPPRESS)  # child process mode
    parser.add_argument("--mode", choices=MODES, default="memory", help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--counts", action="store_true", help="ours only, in this process: where the time goes")
    args = parser.parse_args()
    if args.engine:
        print(json.dumps(child(args.engine, args.mode, args.csv)))
        return
    if args.counts:
        counts(tile(load_csv_columns(args.data), args.bars))
        return

    columns = tile(load_csv_columns(args.data), args.bars)
    bars = len(columns["ts"])
    started = time.perf_counter()
    fills = reference_fills(columns)
    reference_s = time.perf_counter() - started
    ref: list[Trade] = [(f.entry_bar, f.exit_bar, f.reason) for f in fills]
    ref_fp, ref_by = fingerprint(ref), reasons(ref)
    print(f"data: {args.data.name} tiled to {bars:,} bars".replace(",", " "))
    print(f"reference: {len(ref)} trades ({ref_by['SL']} SL, {ref_by['TP']} TP, {ref_by['time']} time), "
          f"fingerprint {ref_fp} ({reference_s:.2f} s, the check, not timed as an engine)")

    runs: dict[tuple[str, str], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "bench_tiled_1m.csv"
        write_tiled_csv(columns, csv_path)
        del columns
        for engine in ENGINES:
            for mode in MODES:
                result = spawn(engine, mode, csv_path)
                if not result["available"]:
                    print(f"{engine}: not available ({result['why']})")
                    break
                runs[engine, mode] = result

    failures: list[str] = []
    summary_prices: dict[tuple[str, str], float] = {}  # the largest relative exit-price difference vs the reference
    for (engine, mode), result in runs.items():
        got = result["trades"]
        if len(got) != len(ref) or fingerprint(got) != ref_fp or got != ref:
            failures.append(f"{ENGINES[engine]} ({mode}): {len(got)} trades, fingerprint {fingerprint(got)} "
                            f"!= reference {len(ref)}, {ref_fp}; first difference at {first_difference(ref, got)}")
        elif "exit_prices" in result:
            worst = max((abs(x / f.exit_price - 1) for x, f in zip(result["exit_prices"], fills)), default=0.0)
            summary_prices[engine, mode] = worst
            if worst > result.get("price_tolerance", 0.0):
                failures.append(f"{ENGINES[engine]} ({mode}): the same trades at different exit prices "
                                f"(up to {worst:.2e} apart, relatively)")
        if result.get("note"):
            print(f"note, {ENGINES[engine]} ({mode}): {result['note']}")

    header = (f"{'engine':<18}{'bars/s mem':>12}{'bars/s disk':>13}{'trades':>8}{'SL':>7}{'TP':>7}{'time':>6}"
              f"  {'fingerprint':<14}{'RSS MiB mem/disk':>17}")
    print(header)
    print(f"{'reference (check)':<18}{'-':>12}{'-':>13}{len(ref):>8}{ref_by['SL']:>7}{ref_by['TP']:>7}"
          f"{ref_by['time']:>6}  {ref_fp:<14}{'-':>17}")
    summary: dict[str, Any] = {"bars": bars, "reference_trades": len(ref), "reference_sl": ref_by["SL"],
                               "reference_tp": ref_by["TP"], "reference_fingerprint": ref_fp,
                               "reference_s": round(reference_s, 3)}
    speed: dict[tuple[str, str], float] = {}
    for engine, name in ENGINES.items():
        if (engine, "memory") not in runs:
            continue
        mem, disk = runs[engine, "memory"], runs.get((engine, "disk"))
        trades = mem["trades"]
        by = reasons(trades)
        speed[engine, "memory"] = bars / mem["seconds"]
        if disk is not None:
            speed[engine, "disk"] = bars / disk["seconds"]
        rss_mem = mem["peak_rss_kib"] / 1024
        rss_disk = disk["peak_rss_kib"] / 1024 if disk is not None else None
        print(f"{name:<18}{fmt(speed[engine, 'memory']):>12}{fmt(speed.get((engine, 'disk'))):>13}{len(trades):>8}"
              f"{by['SL']:>7}{by['TP']:>7}{by['time']:>6}  {fingerprint(trades):<14}"
              f"{fmt(rss_mem) + ' / ' + fmt(rss_disk):>17}")
        summary.update({
            f"{engine}_bars_per_s": round(speed[engine, "memory"], 1),
            f"{engine}_disk_bars_per_s": round(speed[engine, "disk"], 1) if disk is not None else None,
            f"{engine}_s": round(mem["seconds"], 3),
            f"{engine}_disk_s": round(disk["seconds"], 3) if disk is not None else None,
            f"{engine}_trades": len(trades), f"{engine}_sl": by["SL"], f"{engine}_tp": by["TP"],
            f"{engine}_fingerprint": fingerprint(trades),
            f"{engine}_peak_rss_mib": round(rss_mem, 1),
            f"{engine}_disk_peak_rss_mib": round(rss_disk, 1) if rss_disk is not None else None,
            f"{engine}_exit_price_rel_diff_max": summary_prices.get((engine, "memory")),
        })
        if (engine, "memory") in summary_prices:
            print(f"  {name}: exit prices within {summary_prices[engine, 'memory']:.1e} of the reference's, relatively")
    if ("ours", "memory") in speed and ("bt", "memory") in speed:
        summary["ratio_vs_backtestingpy"] = round(speed["ours", "memory"] / speed["bt", "memory"], 3)
        print(f"ratio ours / backtesting.py, in memory: {summary['ratio_vs_backtestingpy']:.3f}")
    if ("ours", "disk") in speed and ("bt", "disk") in speed:
        summary["ratio_vs_backtestingpy_disk"] = round(speed["ours", "disk"] / speed["bt", "disk"], 3)
        print(f"ratio ours / backtesting.py, from disk: {summary['ratio_vs_backtestingpy_disk']:.3f}")
    summary["trades_match"] = not failures
    for failure in failures:
        print(f"MISMATCH {failure}")
    print(json.dumps({k: v for k, v in summary.items() if v is not None}))
    if failures:
        sys.exit(f"bench: {len(failures)} engine run(s) disagree with the reference trade list (see MISMATCH above)")


if __name__ == "__main__":
    main()
