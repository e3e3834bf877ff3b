"""Bench: the columnar candle cache (`venues/candle_cache.py`) on a 1 m file tiled to `--bars` bars.

The BCC/BTC recording the package ships, tiled by plain repetition (timestamps 60 000 ms apart),
written once as a plain CSV. Timed, each over `--rounds` runs (median, min, max): the first import
(SHA-256, parse with every check of the reader, write the .npz) into a fresh cache; a later load (stat
index, .npz); a load with `rehash` (what `data import` does again); the SHA-256 of the file alone;
iterating the columns as `Candle` tuples; stream-parsing the CSV (`read_candles`), which a run without
the cache does; the progress bar's bar count (`backtest_cli.count_bars`) by the text scan and from the
cache's stamps. Last line: one JSON object.

    python bench/candle_cache.py [--bars N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reference import load_csv_columns, tile, write_tiled_csv

from tui_trader.app.backtest_cli import count_bars
from tui_trader.venues.candle_cache import file_sha256, load_columns
from tui_trader.venues.candle_files import read_candles
from tui_trader.venues.replay import bundled_data_path


def timed(rounds: int, fn: Callable[[int], object]) -> list[float]:
    out = []
    for r in range(rounds):
        started = time.perf_counter()
        fn(r)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    columns = tile(load_csv_columns(bundled_data_path("bittrex_BCC-BTC_1m_20171104-20171118.csv.gz")), args.bars)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "tiled_1m.csv"
        write_tiled_csv(columns, csv)
        cache = Path(tmp) / "cache"
        loaded = load_columns(csv, cache / "x")  # (iterating is timed alone, not with a load)
        figures = {
            "first_import_ms": timed(args.rounds, lambda r: load_columns(csv, cache / str(r))),
            "later_load_ms": timed(args.rounds, lambda r: load_columns(csv, cache / "0")),
            "rehash_load_ms": timed(args.rounds, lambda r: load_columns(csv, cache / "0", rehash=True)),
            "sha256_ms": timed(args.rounds, lambda r: file_sha256(csv)),
            "iterate_candles_ms": timed(args.rounds, lambda r: sum(1 for _ in loaded.candles())),
            "stream_parse_ms": timed(args.rounds, lambda r: sum(1 for _ in read_candles(csv))),
            "count_bars_scan_ms": timed(args.rounds, lambda r: count_bars([csv], None, None)),
            "count_bars_cached_ms": timed(args.rounds, lambda r: count_bars([csv], None, None, cache / "0")),
        }
        size_mb = csv.stat().st_size / 1e6
    print(f"{args.bars:,} bars, CSV {size_mb:.0f} MB, {args.rounds} rounds: median (min-max) ms".replace(",", " "))
    for name, runs in figures.items():
        print(f"  {name[:-3]:<18} {statistics.median(runs):8.1f}  ({min(runs):.1f}-{max(runs):.1f})")
    summary = {"bars": args.bars, "csv_mb": round(size_mb, 1)}
    summary.update({k: round(statistics.median(v), 1) for k, v in figures.items()})
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
