"""Any config file (TOML text or bytes, real keys with odd values, unknown keys) ends in `Settings` or a
`ConfigError` naming the file - never another exception (issue 23); the CLI turns it into exit 2."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tests.toml_text import toml_value
from tui_trader.app.cli import main
from tui_trader.app.settings import load_settings
from tui_trader.domain.config import Settings
from tui_trader.domain.errors import ConfigError

_DIR = Path(tempfile.mkdtemp(prefix="config-props-"))
SECTIONS = {name: list(type(f.default).model_fields) for name, f in Settings.model_fields.items()
            if isinstance(f.default, BaseModel)}
TOP = [name for name in Settings.model_fields if name not in SECTIONS]

_scalar = st.one_of(st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=8),
                    st.sampled_from(["paper", "live", "DEBUG", "http://x", "ws://x", "", "/tmp", "-1"]))
_value = st.recursive(_scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                      max_leaves=6)


@st.composite
def _config_text(draw) -> str:
    """Top-level keys and [sections] of the real schema (plus a stray one) with any TOML value."""
    lines = [f"{key} = {toml_value(draw(_value))}" for key in draw(st.lists(st.sampled_from([*TOP, "bogus"]), max_size=3,
                                                                        unique=True))]
    for section in draw(st.lists(st.sampled_from([*SECTIONS, "nope"]), max_size=3, unique=True)):
        keys = draw(st.lists(st.sampled_from([*SECTIONS.get(section, []), "typo"]), max_size=4, unique=True))
        lines += [f"[{section}]", *(f"{k} = {toml_value(draw(_value))}" for k in keys)]
    return "\n".join(lines) + "\n"


_content = st.one_of(_config_text().map(str.encode), st.text(max_size=200).map(str.encode), st.binary(max_size=100))


@settings(max_examples=300, deadline=None)
@given(_content)
def test_any_config_file_gives_settings_or_a_config_error_naming_it(content):
    path = _DIR / "config.toml"
    path.write_bytes(content)
    try:
        loaded, found = load_settings(path, env={})
    except ConfigError as exc:
        assert str(path) in str(exc)
        return
    assert isinstance(loaded, Settings) and found == path


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe[risk]", "not UTF-8 text (byte 0xff)"),
    (b"a = " + b"[" * 5000, "nested too deeply"),
], ids=["binary", "deep"])
def test_unreadable_config_is_exit_2_and_one_line(tmp_path, capsys, content, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_bytes(content)
    assert main(["--config", str(cfg), "--no-ui", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(cfg) in err and message in err, err


@pytest.mark.parametrize("section, key, make", [
    ("replay", "file", lambda p: p / "missing.csv"),
    ("replay", "file", lambda p: p),
    ("strategy", "file", lambda p: p / "missing.toml"),
], ids=["replay-missing", "replay-directory", "strategy-missing"])
def test_a_config_naming_a_file_that_is_not_there_is_exit_2_naming_the_key(tmp_path, capsys, section, key, make):
    target = make(tmp_path)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[{section}]\n{key} = {json.dumps(str(target))}\n")
    assert main(["--config", str(cfg), "--no-ui", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{cfg}: {section}.{key}: {target}:" in err and "Traceback" not in err, err


@pytest.mark.parametrize("content, suffix, message", [
    (b"\xff\xfe\x00", ".csv", "not UTF-8 text"),
    (b"not gzip", ".csv.gz", "not a gzip file"),
], ids=["binary-replay", "fake-gzip-replay"])
def test_a_replay_file_that_is_not_candles_is_exit_2_naming_it(tmp_path, capsys, content, suffix, message):
    data = tmp_path / f"BTC_USDT{suffix}"
    data.write_bytes(content)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[replay]\nfile = {json.dumps(str(data))}\n")
    assert main(["--config", str(cfg), "--no-ui", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(data) in err and message in err, err
