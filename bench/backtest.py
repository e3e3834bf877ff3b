"""Bench: backtest throughput - the default strategy (pump_short) over one-minute bars of real data.

Bars: the three real pump-positive alt/BTC 1 m files of the shared data (Bittrex BCC/BTC and
NXT/BTC, freqtrade's UNITTEST/BTC; 47,174 bars; all three in the repository, so it runs on a fresh clone) tiled to `--bars` (default 1,000,000): every copy
is rescaled so its first open is 100 (the files' relative moves are kept, their BTC price levels
are not) and the bars are re-timed one minute apart, so the result is one continuous minute series.
The tiled CSV is written once to a temp file and streamed by the backtest like any data file.

Reported: bars per second of `run_backtest` (engine start to result, file reading included, the
tiling not), peak RSS of the process (it does not grow with the bar count: the feed streams the
file; the equity curve is hourly), and the trades made. With `--counts`, after the timed run: the
cost of reading the CSV alone (us per bar), and from a second, instrumented run the strategy steps
per phase and the bound analyses (`StrategyMachine.quiet_until` calls) - the work the speed-ups
remove - and the split of the time: candles taken whole in stretches (while flat and provably
quiet) vs candles ticked one by one through the full engine (near a signal, in a position), each
in us per candle. Last line: one JSON object.

    python bench/backtest.py [--bars N] [--profile] [--counts]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

from tui_trader.backtest.runner import run_backtest
from tui_trader.venues.candle_files import Candle, read_candles

ROOT = Path(__file__).resolve().parents[1]
FILES = (  # in the repository: the package's two bundled files and bench/data's copy of the third
    ROOT / "tui_trader" / "data" / "bittrex_BCC-BTC_1m_20171104-20171118.csv.gz",
    ROOT / "tui_trader" / "data" / "bittrex_NXT-BTC_1m_20171130-20171210.csv.gz",
    ROOT / "bench" / "data" / "freqtrade_UNITTEST-BTC_1m_20171104-20171114.csv.gz",
)  # (the shared data set's files, gzip-compressed, byte for byte: bench/data/SOURCE.md)
START_MS = 1_509_840_000_000  # 2017-11-05 00:00 UTC


def tiled(n: int) -> Iterator[Candle]:
    """`n` real bars, copies of the three files in turn, rescaled to open at 100, one minute apart."""
    i = 0
    while True:
        for path in FILES:
            k = None
            for c in read_candles(path):
                if k is None:
                    k = 100.0 / c.open
                yield Candle(START_MS + i * 60_000, c.open * k, c.high * k, c.low * k, c.close * k, c.volume)
                i += 1
                if i >= n:
                    return


def write_tiled(n: int, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("timestamp_ms,open,high,low,close,volume\n")
        for c in tiled(n):
            fh.write(f"{c.ts_ms},{c.open:.10g},{c.high:.10g},{c.low:.10g},{c.close:.10g},{c.volume:.10g}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="print a pyinstrument profile of the run")
    parser.add_argument("--counts", action="store_true", help="also count CSV cost, steps and bound analyses")
    args = parser.parse_args()
    counts: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_TILED-BTC_1m.csv"
        write_tiled(args.bars, path)
        profiler = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler()
            profiler.start()
        started = time.perf_counter()
        result = run_backtest(None, [path])
        elapsed = time.perf_counter() - started
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False))
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss: KiB
        if args.counts:
            counts = count_work(path)
    bars_per_s = result.bars / elapsed
    print(f"bars: {result.bars:,} in {elapsed:.2f} s")
    print(f"throughput: {bars_per_s:,.0f} bars/s")
    print(f"peak RSS: {rss_mib:.1f} MiB")
    print(f"trades: {result.metrics['trades']}, equity points: {len(result.equity)}, status: {result.status}")
    for key, value in counts.items():
        print(f"{key}: {value:,}")
    print(json.dumps({"bars": result.bars, "elapsed_s": round(elapsed, 3), "bars_per_s": round(bars_per_s, 1),
                      "peak_rss_mib": round(rss_mib, 1), "trades": result.metrics["trades"], **counts}))


def count_work(path: Path) -> dict[str, float]:
    """CSV cost per bar, then from one more, instrumented run: strategy steps per phase, bound
    analyses, and where the time goes - candles taken whole in stretches vs candles ticked one
    by one (near signals, in positions: the full engine)."""
    from tui_trader.backtest.quiet_ticks import QuietTicks
    from tui_trader.domain.strategy.machine import StrategyMachine

    started = time.perf_counter()
    bars = sum(1 for _ in read_candles(path))
    csv_s = time.perf_counter() - started
    steps: Counter[str] = Counter()
    spent = {"stretch_s": 0.0, "stretch_candles": 0}
    on_tick, quiet_until = StrategyMachine.on_tick, StrategyMachine.quiet_until
    flush, on_step = QuietTicks._flush_stretches, QuietTicks.on_step

    def counted_tick(self, *a, **k):  # type: ignore[no-untyped-def]
        steps[self.state.phase.value.lower()] += 1
        return on_tick(self, *a, **k)

    def counted_quiet(self, *a, **k):  # type: ignore[no-untyped-def]
        steps["bound_analyses"] += 1
        return quiet_until(self, *a, **k)

    def counted_flush(self, *a, **k):  # type: ignore[no-untyped-def]  (timed by its callers: on_step, finish)
        spent["stretch_candles"] += sum(len(s.candles) for s in self.stretches.values())
        return flush(self, *a, **k)

    def timed(fn):  # type: ignore[no-untyped-def]
        def run(self, *a, **k):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return fn(self, *a, **k)
            finally:
                spent["stretch_s"] += time.perf_counter() - t
        return run

    timed_step = timed(on_step)

    def stretch_step(self, *a, **k):  # type: ignore[no-untyped-def]  (a stretch goes on, or is handed over)
        return timed_step(self, *a, **k) if self.stretches else on_step(self, *a, **k)

    # stretch work: starting one (take_candle), going on / handing it over (on_step while one is
    # pending), the last one at the end (finish); the rest of the run is the ticked candles'
    patches = {(StrategyMachine, "on_tick"): counted_tick, (StrategyMachine, "quiet_until"): counted_quiet,
               (QuietTicks, "_flush_stretches"): counted_flush, (QuietTicks, "on_step"): stretch_step,
               (QuietTicks, "take_candle"): timed(QuietTicks.take_candle),
               (QuietTicks, "finish"): timed(QuietTicks.finish)}
    originals = {key: getattr(*key) for key in patches}
    for (cls, name), fn in patches.items():
        setattr(cls, name, fn)
    try:
        started = time.perf_counter()
        run_backtest(None, [path])
        total_s = time.perf_counter() - started
    finally:
        for (cls, name), fn in originals.items():
            setattr(cls, name, fn)
    analyses = steps.pop("bound_analyses", 0)
    out: dict[str, float] = {"csv_read_us_per_bar": round(csv_s / bars * 1e6, 2), "strategy_steps_count": sum(steps.values())}
    out.update({f"{phase}_steps_count": n for phase, n in sorted(steps.items())})
    out["bound_analyses_count"] = analyses
    stretch_n = int(spent["stretch_candles"])
    ticked_n = bars - stretch_n
    out["stretch_candles_count"] = stretch_n
    out["ticked_candles_count"] = ticked_n
    # CSV reading is charged to every bar alike; the rest of the run outside stretches to the ticked candles
    out["stretch_us_per_candle"] = round(spent["stretch_s"] / max(1, stretch_n) * 1e6, 2)
    out["ticked_us_per_candle"] = round((total_s - spent["stretch_s"] - csv_s) / max(1, ticked_n) * 1e6, 1)
    out["ticked_share_of_time_pct"] = round((total_s - spent["stretch_s"] - csv_s) / total_s * 100, 1)
    return out


if __name__ == "__main__":
    main()
