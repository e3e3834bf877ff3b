"""Rebuild the data slices in this folder from the full recordings they were cut from (a folder holding
the original CSVs, named as in the table below; not part of the repository).

    python tests/data/make_slices.py SOURCE_DIR

The tests that guard money (funding charged, backtest parity, indicators against naive references) read
these slices, so they run on every clone; each slice holds exactly what its tests read.
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

HEAD = {  # file: rows kept from the start (the tests' largest `limit`)
    "binance_XRP-ETH_aggtrades_20191011-20191013.csv": 6000,
    "ftx_BTC-PERP_1m_20211231-20220201.csv": 8000,
    "bittrex_BCC-BTC_1m_20171104-20171118.csv": 3000,
}
WHOLE = ["binance_BTC-USDT_trades_20210108.csv", "xrp-usdt-perp_5m_20211115-20211121.csv"]
WINDOW = {  # file: [from, to) by the first column (ms): the parity test's two days, one day of lead-in
    "freqtrade_UNITTEST-BTC_1m_20171104-20171114.csv": (1_510_185_600_000, 1_510_444_800_000),
}
PLAIN = ["xrp-usdt-perp_funding_8h_20211118-20211218.csv"]  # small: kept as it is


def main(source: Path) -> None:
    for name in PLAIN:
        shutil.copyfile(source / name, HERE / name)
    for name in [*HEAD, *WHOLE, *WINDOW]:
        lines = (source / name).read_text(encoding="utf-8").splitlines(keepends=True)
        header, rows = lines[0], lines[1:]
        if name in HEAD:
            rows = rows[: HEAD[name]]
        elif name in WINDOW:
            lo, hi = WINDOW[name]
            rows = [r for r in rows if lo <= int(r.split(",", 1)[0]) < hi]
        with gzip.GzipFile(HERE / f"{name}.gz", "wb", mtime=0) as out:  # mtime 0: the same bytes every run
            out.write((header + "".join(rows)).encode("utf-8"))
        print(f"{name}.gz: {len(rows)} rows")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/data/make_slices.py SOURCE_DIR  (the folder of the full recordings)")
    main(Path(sys.argv[1]))
