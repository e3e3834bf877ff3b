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


S1 = """[s1_signal]
conditions = [
  { indicator = "pump",     operator = ">=", value = 7.0 },
  { indicator = "vsurge",   operator = ">=", value = 3.5 },
  { indicator = "velocity", operator = ">=", value = 0.1 },
]"""


@pytest.mark.parametrize("old, new, warning", [
    (S1, "[s1_signal]\nconditions = []", "s1_signal: it has no conditions (an empty section never fires)"),
    (S1, ('[s1_signal]\nconditions = [{ indicator = "pump", operator = ">=", value = 7.0 },'
          ' { indicator = "pump", operator = "<", value = 2.0 }]'),
     "s1_signal: pump >= 7 and pump < 2 can never all hold"),
    ('{ indicator = "rsi",    operator = ">=", value = 30.0 }', '{ indicator = "rsi", operator = ">", value = 100.0 }',
     "z1_entry: rsi > 100 can never all hold (rsi is always within 0..100)"),
    ("enabled = true", "enabled = false", "can never trade: enabled = false"),
], ids=["no-s1", "s1-excludes-itself", "rsi-above-100", "disabled"])
def test_a_strategy_that_can_never_trade_is_valid_with_a_warning(tmp_path: Path, capsys, old, new, warning):
    """Issue 23: a strategy with no S1 conditions passed `strategy check` silently. It is valid (exit 0, see --help)."""
    text = bundled_strategy_path().read_text()
    assert old in text
    path = tmp_path / "inert.toml"
    path.write_text(text.replace(old, new))
    assert main(["strategy", "check", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"tui-trader: warning: {path} can never trade: " in err and warning in err, err


def test_the_bundled_strategy_can_trade_and_ranges_are_judged_at_their_ends(capsys):
    from tui_trader.domain.strategy.conditions import section_never_fires
    from tui_trader.domain.strategy.schema import Section

    assert main(["strategy", "check", str(bundled_strategy_path())]) == 0
    assert capsys.readouterr().err == ""

    def never(match, *conds):
        section = Section(match=match, conditions=[{"indicator": i, "operator": o, "value": v} for i, o, v in conds])
        return section_never_fires(section, lambda name: name)

    assert never("all", ("x", ">=", 5), ("x", "<=", 5)) is None and never("all", ("rsi", ">=", 100)) is None
    assert never("all", ("x", ">", 5), ("x", "<=", 5)) and never("all", ("rsi", "<", 0))
    assert never("any", ("rsi", ">", 100), ("rsi", "<", 0)) and never("any", ("rsi", ">", 100), ("x", "<", 0)) is None
    assert never("all", ("x", ">", 5), ("y", "<", 0)) is None
