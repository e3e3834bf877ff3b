"""`tui-trader strategy check FILE`: a table of the sections when valid, error lines and exit 2 when not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_trader.app.cli import main
from tui_trader.engine.strategy_runner import bundled_strategy_path


def test_bundled_strategy_prints_its_sections(capsys):
    assert main(["strategy", "check", str(bundled_strategy_path())]) == 0
    out = capsys.readouterr().out
    for text in ("pump_short", "S1 signal", "O1 cancel", "Z1 entry", "ZE1 close", "E1 emergency exit",
                 "pump >= 7", "vsurge >= 3.5", "unrealized_pnl_pct <= -5", "pump_magnitude_pct", "baseline=[1800, 1740]", "3x (max 5x)"):  # fmt: skip
        assert text in out, text


def test_empty_section_is_shown_as_never_firing(tmp_path: Path, capsys):
    text = bundled_strategy_path().read_text().replace(
        'conditions = [\n  { indicator = "unrealized_pnl_pct", operator = ">=", value = 20.0 },\n]', "conditions = []"
    )
    path = tmp_path / "no_ze1.toml"
    path.write_text(text)
    assert main(["strategy", "check", str(path)]) == 0
    assert "(empty: never fires)" in capsys.readouterr().out


def test_bad_file_prints_error_lines_and_returns_2(tmp_path: Path, capsys):
    text = bundled_strategy_path().read_text().replace("leverage = 3", "leverage = 500").replace('operator = ">=", value = 7.0', 'operator = "=>", value = 7.0')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["strategy", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "z1_entry.order.leverage: 500 is outside 1..200" in captured.err
    assert "s1_signal.conditions[0].operator: '=>' is not allowed (allowed: '>', '<', '>=' or '<=')" in captured.err


def test_missing_file_returns_2(tmp_path: Path, capsys):
    assert main(["strategy", "check", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cross_margin_is_refused_by_strategy_check(tmp_path: Path, capsys):
    """Issue 19: `margin_mode = "cross"` was accepted and every order went isolated anyway."""
    path = tmp_path / "cross.toml"
    path.write_text(bundled_strategy_path().read_text().replace('margin_mode = "isolated"', 'margin_mode = "cross"'))
    assert main(["strategy", "check", str(path)]) == 2
    assert "z1_entry.order.margin_mode: cross margin is not supported" in capsys.readouterr().err


@pytest.mark.parametrize("name, content, message", [
    ("binary.toml", b"\xce\xff\x00", "invalid strategy: not UTF-8 text (byte 0xce) - a strategy file is TOML or JSON"),
    ("binary.json", b"\xce\xff\x00", "invalid strategy: not UTF-8 text (byte 0xce)"),
    ("list.json", b"[1, 2]", "invalid strategy: a strategy must be a JSON object; this file is a JSON list"),
    ("deep.json", b"[" * 100_000, "invalid strategy: not a strategy: JSON nested too deeply"),
    ("folder.toml", None, "invalid strategy: is a directory, not a file"),
], ids=["binary-toml", "binary-json", "json-list", "deep-json", "directory"])
def test_a_file_that_is_no_strategy_is_exit_2_and_one_line_naming_it(tmp_path: Path, capsys, name, content, message):
    """Issue 23: a binary file was a UnicodeDecodeError traceback (exit 1)."""
    path = tmp_path / name
    path.mkdir() if content is None else path.write_bytes(content)
    assert main(["strategy", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"tui-trader: {path}: {message}\n" if message.endswith("file is TOML or JSON") else (
        err.count("\n") == 1 and f"{path}: {message}" in err), err
