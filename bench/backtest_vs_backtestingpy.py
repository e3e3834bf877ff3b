"""Bench: our backtester vs backtesting.py (PyPI `backtesting`, bench-only) on the same bars and strategy.

Bars: the tiled real 1 m data of `bench/backtest.py` (`--bars`, default 1,000,000). Ours runs the
default strategy (`pump_short`) through the full engine: every bar as four ticks, the strategy
evaluated at every event and every simulated second where that can change anything (the steps its
indicator bounds prove to be no-ops are skipped, and while flat the ticks they cover stay off the
bus - the trades are the same as stepping everything), paper venue, risk guard, watchdog,
execution.

backtesting.py runs the same rules evaluated once per bar, as that library works (`next()` per
bar, indicators precomputed with numpy in `init()`, which is how it is meant to be used):
* pump = close / close 30 bars ago - 1 (%) (our window: last minute vs the one 29-30 min ago),
  velocity = close-to-close % per second over the last bar, volume surge = bar volume / mean of the
  19 bars before it, RSI(14) of closes;
* S1 pump >= 7, surge >= 3.5, velocity >= 0.1; O1 cancels on pump <= 2 or >= 40 or after 5 bars;
  Z1 sells when the velocity has fallen >= 30 % from its peak since S1 and RSI >= 30, 10 % of equity
  at leverage 3 (margin 1/3), stop 5 %, target 25 %, taker fee 0.06 %;
* E1 closes at -5 % or surge <= 0.5 (cooldown 30 bars), ZE1 at +20 %, 120 bars max hold (cooldown 5).
Reported: both throughputs and ours / theirs, like for like: each reads the same CSV file inside
its timing (ours streams it through `run_backtest`; backtesting.py gets it from `pandas.read_csv`,
the fast C reader, and needs the whole frame in memory). backtesting.py's throughput on a frame
already in memory is printed too, with its load time. Last line: one JSON object.

    python bench/backtest_vs_backtestingpy.py [--bars N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backtest import write_tiled  # noqa: E402  (the same bars as bench/backtest.py)

from tui_trader.backtest.runner import run_backtest  # noqa: E402

try:
    from backtesting import Backtest, Strategy
except ImportError:  # pragma: no cover
    sys.exit("bench: needs backtesting.py - pip install -e '.[bench]'")


def pump_pct(close: np.ndarray) -> np.ndarray:
    out = np.full(len(close), np.nan)
    out[30:] = (close[30:] / close[:-30] - 1) * 100
    return out


def velocity(close: np.ndarray) -> np.ndarray:
    out = np.full(len(close), np.nan)
    out[1:] = (close[1:] / close[:-1] - 1) * 100 / 60
    return out


def volume_surge(volume: np.ndarray) -> np.ndarray:
    base = pd.Series(volume).shift(1).rolling(19).mean().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(base > 0, volume / base, np.nan)


def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    diff = pd.Series(close).diff()
    up = diff.clip(lower=0).ewm(alpha=1 / period, adjust=False).mean()
    down = (-diff.clip(upper=0)).ewm(alpha=1 / period, adjust=False).mean()
    return (100 - 100 / (1 + up / down.replace(0, np.nan))).to_numpy()


class PumpShort(Strategy):
    def init(self) -> None:
        self.pump = self.I(pump_pct, self.data.Close)
        self.vel = self.I(velocity, self.data.Close)
        self.surge = self.I(volume_surge, self.data.Volume)
        self.rsi = self.I(rsi, self.data.Close)
        self.signal_bar, self.peak, self.cooldown_until, self.entry_bar = -1, 0.0, 0, -1

    def next(self) -> None:
        i = len(self.data) - 1
        pump, vel, surge, rsi_now, close = self.pump[-1], self.vel[-1], self.surge[-1], self.rsi[-1], self.data.Close[-1]
        if self.position:
            pnl = self.position.pl_pct * 100
            if pnl <= -5 or surge <= 0.5:
                self.position.close()
                self.cooldown_until = i + 30
            elif pnl >= 20 or i - self.entry_bar >= 120:
                self.position.close()
                self.cooldown_until = i + 5
            return
        if self.signal_bar < 0:
            if i >= self.cooldown_until and pump >= 7 and surge >= 3.5 and vel >= 0.1:
                self.signal_bar, self.peak = i, vel
            return
        self.peak = max(self.peak, vel) if vel == vel else self.peak
        if pump <= 2 or pump >= 40 or i - self.signal_bar >= 5:
            self.signal_bar, self.cooldown_until = -1, i + 5
        elif self.peak >= 0.05 and (vel - self.peak) / self.peak * 100 <= -30 and rsi_now >= 30:
            self.sell(size=0.1, sl=close * 1.05, tp=close * 0.75)
            self.signal_bar, self.entry_bar = -1, i


def load_frame(path: Path) -> pd.DataFrame:
    """The tiled CSV as backtesting.py wants it: OHLCV columns on a datetime index."""
    df = pd.read_csv(path)
    df.index = pd.to_datetime(df.pop("timestamp_ms"), unit="ms")
    df.columns = ["Open", "High", "Low", "Close", "Volume"]
    return df


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_TILED-BTC_1m.csv"
        write_tiled(args.bars, path)
        started = time.perf_counter()
        df = load_frame(path)
        loaded = time.perf_counter()
        stats = Backtest(df, PumpShort, cash=10_000, commission=0.0006, margin=1 / 3, finalize_trades=True).run()
        finished = time.perf_counter()
        started_ours = time.perf_counter()
        result = run_backtest(None, [path])
        ours_s = time.perf_counter() - started_ours
    load_s, run_s = loaded - started, finished - loaded
    theirs, preloaded = len(df) / (load_s + run_s), len(df) / run_s
    print(f"backtesting.py: {len(df):,} bars in {load_s + run_s:.2f} s = {theirs:,.0f} bars/s ({stats['# Trades']} trades); "
          f"reading the CSV {load_s:.2f} s of it (on a frame in memory: {preloaded:,.0f} bars/s)")
    ours = result.bars / ours_s
    print(f"tui-trader:     {result.bars:,} bars in {ours_s:.2f} s = {ours:,.0f} bars/s ({result.metrics['trades']} trades)")
    print(f"ratio (ours / backtesting.py): {ours / theirs:.3f} (vs its run on a frame in memory: {ours / preloaded:.3f})")
    print(json.dumps({"bars": result.bars, "bars_per_s": round(ours, 1), "backtestingpy_bars_per_s": round(theirs, 1),
                      "backtestingpy_load_s": round(load_s, 3), "backtestingpy_in_memory_bars_per_s": round(preloaded, 1),
                      "ratio_vs_backtestingpy": round(ours / theirs, 4)}))


if __name__ == "__main__":
    main()
