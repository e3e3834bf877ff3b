"""Bench: the backtest fast path (quiet steps, ticks kept off the bus while flat) changes no trade.

Runs the default strategy over every shared real candle file, and over two overlapping ones merged
(two symbols at once), twice: as shipped, and with every strategy step run and every tick published
(`fast_path=False`: no `QuietStepAccelerator`, as paper trading runs), and checks that trades,
equity curve and metrics are identical. Prints both throughputs per run.
Last line: one JSON object.

    python bench/quiet_parity.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tui_trader.backtest.runner import run_backtest

DATA_DIRS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data", Path("/work/shared/data"))

RUNS = (
    ("bittrex_BCC-BTC_1m_20171104-20171118.csv",),
    ("bittrex_NXT-BTC_1m_20171130-20171210.csv",),
    ("freqtrade_UNITTEST-BTC_1m_20171104-20171114.csv",),
    ("ftx_BTC-PERP_1m_20211231-20220201.csv",),
    ("xrp-usdt-perp_5m_20211115-20211121.csv",),
    ("bittrex_BCC-BTC_1m_20171104-20171118.csv", "freqtrade_UNITTEST-BTC_1m_20171104-20171114.csv"),
)


def data_dir() -> Path:
    """The shared real data set (its ftx and xrp files are not in the repository)."""
    for candidate in DATA_DIRS:
        if (candidate / RUNS[0][0]).exists():
            return candidate
    sys.exit("bench: the shared real data files are not found (see /work/shared/data/README.md)")


def timed(paths: list[Path], fast_path: bool):
    started = time.perf_counter()
    result = run_backtest(None, paths, fast_path=fast_path)
    return result, result.bars / (time.perf_counter() - started)


def main() -> None:
    identical, speedups = 0, []
    for names in RUNS:
        paths = [data_dir() / name for name in names]
        fast, fast_rate = timed(paths, True)
        every, every_rate = timed(paths, False)
        same = ([t.to_dict() for t in fast.trades] == [t.to_dict() for t in every.trades]
                and fast.equity == every.equity and fast.metrics == every.metrics)
        identical += same
        speedups.append(fast_rate / every_rate)
        print(f"{' + '.join(names)}: {fast.bars:,} bars, {len(fast.trades)} trades - {'identical' if same else 'DIFFERENT'}; "
              f"{fast_rate:,.0f} bars/s vs {every_rate:,.0f} bars/s stepping everything ({fast_rate / every_rate:.1f}x)")
    print(json.dumps({"runs_count": len(RUNS), "identical_count": identical,
                      "min_speedup_ratio": round(min(speedups), 2), "max_speedup_ratio": round(max(speedups), 2)}))


if __name__ == "__main__":
    main()
