"""`tui-trader data import FILE...`: each file parsed and checked once into the columnar cache, one
line per file; a bad file is named with its problem and fails the command, the others still go in."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tui_trader.app.cli import main
from tui_trader.venues.candle_cache import file_sha256, load_columns
from tui_trader.venues.candle_files import read_candles

DATA = Path(__file__).resolve().parents[1] / "data"
BCC = DATA / "bittrex_BCC-BTC_1m_20171104-20171118.csv.gz"
XRP = DATA / "xrp-usdt-perp_5m_20211115-20211121.csv.gz"


def test_import_prints_a_line_per_file_and_fails_on_a_bad_one(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp_ms,open,high,low,close\n60000,1,2,0.5,1.5\n120000,1,2,oops,1\n")
    cache = tmp_path / "cache"
    assert main(["data", "import", str(BCC), str(bad), str(XRP), "--cache-dir", str(cache)]) == 2
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2
    sha = file_sha256(BCC)
    assert re.fullmatch(
        rf"bittrex_BCC-BTC_1m_20171104-20171118\.csv\.gz: 3,000 bars, 2017-11-04 23:02:00 \.\. 2017-11-07 01:38:00 UTC,"
        rf" interval 1m 00s, sha256 {sha[:12]}, {re.escape(str(cache / sha))}\.npz, \d+ ms \(imported\)", lines[0])
    assert lines[1].startswith("xrp-usdt-perp_5m_20211115-20211121.csv.gz: 1,999 bars,")
    assert "interval 5m 00s" in lines[1] and lines[1].endswith("(imported)")
    assert err == f"tui-trader: data import: {bad}:3: field 'low' = 'oops' is not a number\n"
    assert sorted(p.name for p in cache.glob("*.npz")) == sorted(f"{file_sha256(p)}.npz" for p in (BCC, XRP))
    # imported: the next load is the cache's, equal to the file
    cols = load_columns(BCC, cache)
    assert cols.from_cache and list(cols.candles()) == list(read_candles(BCC))


def test_import_again_says_already_cached_and_uses_the_default_dir(isolated_environment, capsys):
    assert main(["data", "import", str(BCC)]) == 0
    assert main(["data", "import", str(BCC)]) == 0
    first, again = capsys.readouterr().out.splitlines()
    assert first.endswith("(imported)") and again.endswith("(already cached)")
    default = isolated_environment / "xdg-data" / "tui-trader" / "candles"  # <data_dir>/candles
    assert f"{default / file_sha256(BCC)}.npz" in again
    index = json.loads((default / "index.json").read_text())
    assert index["files"][str(BCC.resolve())][4] == file_sha256(BCC)


def test_a_missing_file_and_an_empty_one(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("timestamp_ms,open,high,low,close,volume\n")
    missing = tmp_path / "nope.csv"
    assert main(["data", "import", str(missing), str(empty), "--cache-dir", str(tmp_path / "c")]) == 2
    out, err = capsys.readouterr()
    assert err == f"tui-trader: data import: {missing}: file not found\n"
    assert out.startswith("empty.csv: 0 bars, - .. - UTC, interval -, sha256 ") and out.endswith("(imported)\n")


def test_a_cache_that_cannot_be_written_fails_the_command(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["data", "import", str(BCC), "--cache-dir", str(blocker / "cache")]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("bittrex_BCC-BTC_1m_20171104-20171118.csv.gz: 3,000 bars,") and "(NOT cached)" in out
    assert err.startswith("tui-trader: data import: WARNING: ") and "cannot write the candle cache (" in err
    assert len(err.splitlines()) == 1
