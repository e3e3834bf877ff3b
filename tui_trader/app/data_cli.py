"""App layer: `tui-trader data import FILE...` - candle files parsed and checked once into the columnar cache.

Each file (CSV, .csv.gz, MEXC kline JSON, .json.gz) is hashed, read by the streaming reader with
all its checks and stored as `<cache dir>/<sha256>.npz` (`venues/candle_cache.py`); a file
already there is only hashed and its entry checked. One line per file on stdout; a bad file is
one line on stderr naming it and the problem, and the other files are still imported. Exit 0 when
every file is in the cache, 2 when a file is bad, 1 when one could not be cached (a warning says why).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from tui_trader.domain.config import Settings
from tui_trader.domain.errors import DataError
from tui_trader.domain.time_format import duration_text, utc_second

DESCRIPTION = (
    "Parse and check candle files (CSV, .csv.gz, MEXC kline JSON) once into the columnar cache, keyed by each"
    " file's SHA-256, so that later loads take milliseconds. Prints each file's bars, time range, interval,"
    " checksum and cache entry; a bad file is named with its problem (exit 2) and the others still imported."
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="candle files: import into the columnar cache",
                            description="Candle data tools.")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    imports = actions.add_parser("import", help="parse and check candle files once into the columnar cache",
                                 description=DESCRIPTION)
    imports.add_argument("files", type=Path, nargs="+", metavar="FILE")
    imports.add_argument("--cache-dir", type=Path, metavar="DIR", help="the cache (default: <data_dir>/candles)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace, settings: Settings) -> int:
    # (imported here: numpy is loaded for this command only, not for every start of the console)
    from tui_trader.venues.candle_cache import default_cache_dir

    assert settings.data_dir is not None, "load_settings() fills data_dir"
    cache_dir = args.cache_dir or default_cache_dir(settings.data_dir)
    warnings = logging.StreamHandler(sys.stderr)  # the cache's warnings (a damaged entry rebuilt, a failed write)
    warnings.setFormatter(logging.Formatter("tui-trader: data import: %(levelname)s: %(message)s"))
    warnings.setLevel(logging.WARNING)
    cache_log = logging.getLogger("tui_trader.venues.candle_cache")
    cache_log.addHandler(warnings)
    try:
        return _import(args.files, cache_dir)
    finally:
        cache_log.removeHandler(warnings)


def _import(files: list[Path], cache_dir: Path) -> int:
    from tui_trader.venues.candle_cache import load_columns

    bad = uncached = 0
    for path in files:
        started = time.perf_counter()
        try:
            cols = load_columns(path, cache_dir, rehash=True)
        except DataError as exc:
            print(f"tui-trader: data import: {exc}", file=sys.stderr, flush=True)
            bad += 1
            continue
        ms = (time.perf_counter() - started) * 1000
        first, last = (int(cols.ts[0]), int(cols.ts[-1])) if len(cols) else (None, None)
        interval = duration_text(cols.interval_s) if len(cols) > 1 else "-"
        status = "already cached" if cols.from_cache else "imported" if cols.cache_path else "NOT cached"
        print(f"{path.name}: {len(cols):,} bars, {utc_second(first)} .. {utc_second(last)} UTC, interval {interval},"
              f" sha256 {cols.checksum[:12]}, {cols.cache_path or '-'}, {ms:.0f} ms ({status})", flush=True)
        uncached += cols.cache_path is None
    return 2 if bad else 1 if uncached else 0
