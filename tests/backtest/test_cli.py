"""`tui-trader backtest`: run, export, list, show, sweep, and a clear exit 2 on bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.backtest.scenarios import STRATEGY, candles
from tui_trader.app.cli import main

BARS = [(100, 100, 88, 89), (89, 89, 89, 89)]  # the short hits its 10 % target (90) in bar 1


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    config = tmp_path / "cwd" / "tui-trader.toml"  # found in the working directory: prices are candle prices
    config.write_text("[replay]\nspread_bps = 0\n[paper]\nslippage_bps = 0\n")
    strat = tmp_path / "hand.toml"
    strat.write_text(STRATEGY.format(leverage=2, stop_loss_pct=5.0, ze1="", e1=""))
    return strat, candles(tmp_path, BARS)


def test_run_exports_json_and_csv_then_list_and_show(tmp_path, files, capsys):
    strat, data = files
    out_json, out_csv = tmp_path / "run.json", tmp_path / "trades.csv"
    assert main(["backtest", "--strategy", str(strat), "--data", str(data), "--json", str(out_json), "--csv", str(out_csv)]) == 0
    shown = capsys.readouterr().out
    assert "Win rate" in shown and "Sharpe" in shown and "equity (USDT)" in shown and "saved as bt-" in shown
    record = json.loads(out_json.read_text())
    assert record["metrics"]["trades"] == 1 and record["metrics"]["win_rate_pct"] == 100.0
    assert {"sharpe", "sortino", "calmar", "cagr_pct", "exposure_pct", "fees_paid", "funding_paid"} <= set(record["metrics"])
    rows = list(csv.DictReader(out_csv.open()))
    assert [(r["side"], r["entry_price"], r["exit_price"], r["exit_reason"]) for r in rows] == [("SHORT", "100", "90", "TP")]  # the target, crossed on the way to the low

    assert main(["backtest", "list"]) == 0
    assert record["id"] in capsys.readouterr().out
    assert main(["backtest", "show", record["id"][:-2], "--csv", str(tmp_path / "again.csv")]) == 0
    assert "TP" in capsys.readouterr().out
    assert (tmp_path / "again.csv").read_text() == out_csv.read_text()


def test_from_and_to_limit_the_bars(tmp_path, files, capsys):
    strat, data = files
    out = tmp_path / "r.json"
    assert main(["backtest", "--strategy", str(strat), "--data", str(data), "--to", "1699977360000", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["params"]["bars"] == 1 and record["metrics"]["open_trades"] == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--data", "missing.csv"], "missing.csv: file not found"),
        (["--from", "yesterday"], "--from 'yesterday' is not a date"),
        (["--grid", "z1_entry.order.leverage"], "expected name=v1,v2"),
        (["--grid", "z1_entry.order.leverag=2,3"], "the strategy has no 'z1_entry.order.leverag'"),
        (["--grid", "s1_signal.conditions[5].value=1"], "the strategy has no 's1_signal.conditions.5'"),
        (["--grid", "z1_entry.order.leverage=2,500"], "z1_entry.order.leverage: 500 is outside 1..200"),
        (["--grid", "z1_entry.order.leverage=2", "--rank", "luck"], "--rank 'luck' is not a metric"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(files, capsys, extra, message):
    strat, data = files
    args = ["backtest", "--strategy", str(strat), "--data", str(data), *extra]
    assert main(args) == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_show_unknown_id_exits_2(capsys):
    assert main(["backtest", "show", "bt-nope"]) == 2
    assert "no backtest run 'bt-nope'" in capsys.readouterr().err


def test_grid_runs_every_combination_in_processes_and_ranks_them(tmp_path, files, capsys):
    strat, data = files
    out = tmp_path / "grid.json"
    args = ["backtest", "--strategy", str(strat), "--data", str(data), "--grid", "z1_entry.order.leverage=1,2,3",
            "--grid", "z1_entry.order.size_pct=5,10", "--rank", "net_pnl", "--workers", "2", "--json", str(out)]
    assert main(args) == 0
    runs = json.loads(out.read_text())["runs"]
    assert len(runs) == 6 and len({r["id"] for r in runs}) == 6
    pnl = [float(r["metrics"]["net_pnl"]) for r in runs]
    assert pnl == sorted(pnl, reverse=True)
    assert runs[0]["params"]["grid"] == {"z1_entry.order.leverage": 3, "z1_entry.order.size_pct": 10}  # biggest winning short
    assert "6 runs ranked by net_pnl" in capsys.readouterr().out
    assert main(["backtest", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(r["id"] in listed for r in runs), listed


def test_a_sweep_at_80_columns_shows_every_run_id_and_writes_every_runs_trades(tmp_path, files, capsys, monkeypatch):
    """Issue 23: --csv was silently ignored with --grid, and at 80 columns the id column was the first dropped."""
    strat, data = files
    monkeypatch.setenv("COLUMNS", "80")
    out_json, out_csv = tmp_path / "grid.json", tmp_path / "trades.csv"
    args = ["backtest", "--strategy", str(strat), "--data", str(data), "--grid", "z1_entry.order.leverage=1,2",
            "--grid", "s1_signal.conditions[0].value=0.0,0.5", "--workers", "2", "--json", str(out_json),
            "--csv", str(out_csv)]
    assert main(args) == 0
    shown = capsys.readouterr().out
    runs = json.loads(out_json.read_text())["runs"]
    assert len(runs) == 4 and max(len(line) for line in shown.splitlines()) <= 80
    assert all(r["id"] in shown for r in runs), shown  # whole, on their rows
    for r in runs:
        rows = list(csv.DictReader((tmp_path / f"trades-{r['id']}.csv").open()))
        assert [(t["side"], t["exit_reason"]) for t in rows] == [("SHORT", "TP")], r["id"]
    assert not out_csv.exists()
    # wrapped at 80 columns where the path allows (its length varies: pytest-N, xdist's popen-gwN): compare unwrapped
    said = f"trades of 4 runs written to {tmp_path}/trades-<run id>.csv"
    assert "".join(said.split()) in "".join(shown.split()), shown


def test_bad_line_in_the_middle_of_the_data_stops_the_run_with_exit_2(tmp_path, files, capsys):
    strat, _ = files
    data = candles(tmp_path, [(100, 100, 100, 100)] * 59)
    lines = data.read_text().splitlines()
    lines[56] = lines[56].rsplit(",", 2)[0] + ",oops,1"  # bar 56: past the 50 read to detect the interval
    data.write_text("\n".join(lines) + "\n")
    assert main(["backtest", "--strategy", str(strat), "--data", str(data)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "stopped at bar 56" in err and ":57: field 'close' = 'oops' is not a number" in err
    assert main(["backtest", "list"]) == 0
    assert "failed" in capsys.readouterr().out


def test_a_bad_line_in_the_real_cli_is_one_line_on_stderr_and_the_traceback_goes_to_the_log(tmp_path):
    """Issue 23: Python's last-resort log handler printed the crashed feed's traceback (or its log line)
    on the terminal before the error."""
    data = candles(tmp_path, [(100, 100, 100, 100)] * 59)
    lines = data.read_text().splitlines()
    lines[56] = lines[56].rsplit(",", 2)[0] + ",oops,1"
    data.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "COLUMNS": "60"}
    proc = subprocess.run([sys.executable, "-m", "tui_trader", "backtest", "--data", str(data)], capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert f"{data}:57: field 'close' = 'oops' is not a number" in proc.stderr
    assert "oops" in (tmp_path / "data" / "tui-trader" / "tui-trader.log").read_text()


@pytest.mark.parametrize("option, content, message", [
    ("--data", b"\xff\xfe\x00", "not UTF-8 text (byte 0xff)"),
    ("--data", b"not gzip", "not a gzip file"),
    ("--data", b"timestamp_ms,open,high,low,close\n", "nothing to test: no candle in"),
    ("--data", b"", "header is ''"),
    ("--data", None, "is a directory, not a file"),
    ("--strategy", b"\xff\xfe\x00", "invalid strategy: not UTF-8 text (byte 0xff)"),
    ("--strategy", b"[1, 2]", "invalid strategy: a strategy must be a JSON object; this file is a JSON list"),
    ("--strategy", b"", "invalid strategy: strategy_name: required key is missing; direction:"),
    ("--strategy", None, "is a directory, not a file"),
    ("--funding", b"\xff\xfe\x00", "not UTF-8 text (byte 0xff)"),
], ids=["binary-data", "fake-gzip", "header-only", "empty-data", "data-dir", "binary-strategy", "json-list",
        "empty-strategy", "strategy-dir", "binary-funding"])
def test_a_file_that_is_not_what_it_should_be_is_exit_2_and_one_line_naming_it(tmp_path, files, capsys, monkeypatch,
                                                                               option, content, message):
    strat, data = files
    suffix = {"--data": ".csv.gz" if content == b"not gzip" else ".csv", "--funding": ".csv"}.get(
        option, ".json" if content == b"[1, 2]" else ".toml")
    bad = tmp_path / f"bad{suffix}"
    bad.mkdir() if content is None else bad.write_bytes(content)
    given = {"--strategy": str(strat), "--data": str(data), "--funding": None, option: str(bad)}
    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal does not wrap the line
    assert main(["backtest", *(x for k, v in given.items() if v for x in (k, v))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and bad.name in err and message in err, err


def test_a_bad_line_after_a_quiet_stretch_counts_every_good_bar_before_it(tmp_path):
    """Quiet candles go over in stretches; the bad line ends the file mid-stretch: the candles
    held for the stretch were read fine and count."""
    from tui_trader.backtest.runner import run_backtest
    from tui_trader.domain.errors import DataError

    data = tmp_path / "bittrex_ABC-BTC_1m_x.csv"
    rows = ["timestamp_ms,open,high,low,close,volume"]
    rows += [f"{1_600_000_000_000 + i * 60_000},100,100.5,99.5,100,10" for i in range(300)]
    rows.append(f"{1_600_000_000_000 + 300 * 60_000},100,100,100,oops,1")
    data.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"stopped at bar 301: .*:302: field 'close' = 'oops'"):
        run_backtest(None, [data])


def test_a_bad_line_in_one_of_two_files_stops_at_the_same_bar_on_the_fast_path(tmp_path):
    """The files' last candles go over together (a slot); the first file then turns bad. The
    stream never reached the second file's close at that instant: neither path counts it."""
    from tui_trader.backtest.runner import run_backtest
    from tui_trader.domain.errors import DataError

    t0 = 1_600_000_000_000
    rows = ["timestamp_ms,open,high,low,close,volume"] + [f"{t0 + i * 60_000},100,100.5,99.5,100,10" for i in range(200)]
    a, b = tmp_path / "x_AAA-BTC_1m.csv", tmp_path / "x_BBB-BTC_1m.csv"
    a.write_text("\n".join(rows + ["garbage,1,1,1,1,1"]) + "\n")
    b.write_text("\n".join(rows + [f"{t0 + i * 60_000},100,100.5,99.5,100,10" for i in range(200, 210)]) + "\n")
    messages = []
    for fast_path in (True, False):  # shipped, then every step run
        with pytest.raises(DataError) as err:
            run_backtest(None, [a, b], fast_path=fast_path)
        messages.append(str(err.value).split(" ", 2)[2])  # (without the run id)
    assert messages[0] == messages[1] and messages[0].startswith("stopped at bar 400: ")


def test_list_fits_a_narrow_terminal_with_whole_columns(files, capsys, monkeypatch):
    strat, data = files
    assert main(["backtest", "--strategy", str(strat), "--data", str(data)]) == 0
    run_id = capsys.readouterr().out.split("saved as ")[1].split()[0]
    assert main(["backtest", "list"]) == 0  # 200 columns (the fixture): every column
    wide = capsys.readouterr().out
    for header in ("created", "strategy", "symbols", "from", "to", "trades", "win rate %", "net P&L", "max DD %"):
        assert header in wide
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["backtest", "list"]) == 0
    narrow = capsys.readouterr().out
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert run_id in narrow and "status" in narrow and "net P&L" in narrow and "…" not in narrow  # whole, not cut to a letter
    assert "left out for the terminal's width: created" in " ".join(narrow.split())
    assert main(["backtest", "show", run_id]) == 0  # the trade list too: prices whole
    shown = capsys.readouterr().out
    assert max(len(line) for line in shown.splitlines()) <= 80 and "…" not in shown
    trade = next(line for line in shown.splitlines() if "SHORT" in line)
    assert "100" in trade and "90" in trade and "TP" in trade


def test_durations_read_as_days_hours_minutes():
    from tui_trader.domain.time_format import duration_text as duration

    assert [duration(v) for v in (None, 0.4, 59, 191.25, 3661, 86_400, 125_220_900)] == [
        "-", "0s", "59s", "3m 11s", "1h 01m", "1d 00h", "1449d 07h"]


def test_the_equity_chart_has_a_utc_time_axis():
    """Issue 23: the chart had no time axis."""
    from tui_trader.app.backtest_cli import equity_chart

    t0 = 1_512_000_000_000  # 2017-11-30 00:00 UTC
    times = [t0 + i * 3_600_000 for i in range(48)]
    chart = equity_chart([10_000 + i for i in range(48)], width=60, times=times).splitlines()
    assert chart[-2].strip() == "└" + "─" * 48  # (48 points: one column each)
    axis = chart[-1]
    assert axis.strip().startswith("2017-11-30 00:00") and axis.rstrip().endswith("2017-12-01 23:00")
    assert "2017-12-01 00:00" in axis and len(axis) <= 13 + 49
    assert len(equity_chart([1.0, 2.0], width=40).splitlines()) == 8  # no times: no axis


def test_the_cli_writes_prices_and_money_as_the_screens_do():
    """`backtest show`'s trade list and summary and `sessions show` use `domain/number_format.py` too:
    0.125 USDT is 0.13 (half-up) everywhere, a tiny price is positional, not 3.283e-05."""
    from rich.console import Console

    from tui_trader.app.backtest_cli import _trades_table
    from tui_trader.domain.number_format import money_text, number_text, price_text

    trade = {"symbol": "X_USDT", "side": "SHORT", "entry_ms": 0, "entry_price": "0.00003283", "exit_ms": 60_000,
             "exit_price": "0.00003100", "net_pnl": "0.125", "fees": "0.0149", "funding": "0", "exit_reason": "TP"}
    console = Console(width=200, record=True)
    console.print(_trades_table(console, [trade]))
    row = console.export_text()
    assert "0.00003283" in row and "0.000031 " in row and "0.13" in row and "0.01" in row and "e-05" not in row
    assert number_text("0.125") == money_text("0.125") == "0.13" and number_text(None) == "-"
    tiny = dict(trade, fees="0.00357")  # a fee below a cent is not 0.00: as the backtests screen writes it
    console = Console(width=200, record=True)
    console.print(_trades_table(console, [tiny]))
    assert " 0.00357 " in console.export_text() and number_text("0.00357") == "0.00357"
    assert price_text("0.00003100") == "0.000031"
