"""Settings: lookup order, env secrets, and one clear message (exit 2, no traceback) per bad file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from tui_trader.app.cli import main
from tui_trader.app.settings import load_settings, render_example
from tui_trader.domain.config import Settings
from tui_trader.domain.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_run_paper_mode_with_xdg_data_dir(isolated_environment):
    settings, path = load_settings(None)
    assert path is None
    assert settings.mode == "paper"
    assert settings.data_dir == isolated_environment / "xdg-data" / "tui-trader"
    assert (settings.retry.attempts, settings.retry.initial_s, settings.retry.multiplier) == (3, 1.0, 2.0)
    assert (settings.breaker.fail_max, settings.breaker.reset_timeout_s, settings.breaker.call_timeout_s) == (5, 60.0, 10.0)
    assert (settings.watchdog.yellow_band_pct, settings.watchdog.red_band_pct) == (20.0, 10.0)
    r = settings.risk
    assert (r.max_position_pct, r.max_open_positions, r.daily_loss_limit_pct, r.max_drawdown_pct) == (10.0, 3, 5.0, 15.0)


def test_lookup_order_explicit_then_cwd_then_user_dir(isolated_environment):
    user = write(isolated_environment / "xdg-config" / "tui-trader" / "config.toml", "log_level = 'ERROR'\n")
    assert load_settings(None)[1] == user
    local = write(Path.cwd() / "tui-trader.toml", "log_level = 'WARNING'\n")
    settings, path = load_settings(None)
    assert path == local and settings.log_level == "WARNING"
    explicit = write(isolated_environment / "x.toml", "log_level = 'DEBUG'\n")
    settings, path = load_settings(explicit)
    assert path == explicit and settings.log_level == "DEBUG"


def test_explicit_missing_file_is_an_error(isolated_environment):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(isolated_environment / "nope.toml")


def test_secrets_from_env_override_file_and_are_never_shown(isolated_environment):
    cfg = write(isolated_environment / "c.toml", "[mexc]\napi_key = 'file-key'\napi_secret = 'file-secret'\n")
    settings, _ = load_settings(cfg, env={"TUI_TRADER_MEXC_API_KEY": "env-key-123", "TUI_TRADER_MEXC_API_SECRET": "env-secret-456"})
    assert settings.mexc.api_key.get_secret_value() == "env-key-123"
    assert settings.mexc.api_secret.get_secret_value() == "env-secret-456"
    assert "env-secret-456" not in repr(settings) and "env-secret-456" not in str(settings.model_dump())


def test_wrong_type_for_a_secret_does_not_echo_it(isolated_environment):
    cfg = write(isolated_environment / "c.toml", "[mexc]\napi_secret = 987654321\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert "987654321" not in str(err.value) and "mexc.api_secret" in str(err.value) and "***" in str(err.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[risk]\nmax_levrage = 5\n", ["risk.max_levrage: unknown key", "max_leverage"]),
        ("[risk]\nmax_leverage = 300\n", ["risk.max_leverage", "300", "less than or equal to 200"]),
        ("[risk]\nmax_open_positions = 'three'\n", ["risk.max_open_positions", "'three'", "valid integer"]),
        ("[fees]\ntaker_rate = -0.001\n", ["fees.taker_rate", "-0.001", "greater than or equal to 0"]),
        ("[watchdog]\nred_band_pct = 30\n", ["watchdog", "red_band_pct (30.0) must be below yellow_band_pct (20.0)"]),
        ("mode = 'yolo'\n", ["mode", "'yolo'", "'paper' or 'live'"]),
        ("[mexc]\nrest_base = 'ftp://x'\n", ["mexc.rest_base", "must start with http://"]),
        ("[risk\nmax_leverage = 5\n", ["TOML syntax error", "line 1"]),
        ("bogus_section = 1\n", ["bogus_section: unknown key", "allowed: breaker"]),
    ],
)
def test_bad_config_gives_clear_message_and_exit_2(isolated_environment, capsys, text, expected):
    cfg = write(isolated_environment / "bad.toml", text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    for fragment in expected:
        assert fragment in str(err.value)
    assert main(["--config", str(cfg), "--no-ui", "--duration", "1"]) == 2
    captured = capsys.readouterr()
    assert "configuration error" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_bad_config_exit_code_from_real_process(isolated_environment):
    cfg = write(isolated_environment / "bad.toml", "[risk]\nmax_leverage = 300\n")
    proc = subprocess.run([sys.executable, "-m", "tui_trader", "--config", str(cfg), "--no-ui"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "risk.max_leverage: 300 is not allowed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_live_mode_needs_flag_and_keys(isolated_environment, capsys):
    cfg = write(isolated_environment / "live.toml", "mode = 'live'\n")
    assert main(["--config", str(cfg), "--no-ui"]) == 2
    assert "--live" in capsys.readouterr().err
    assert main(["--config", str(cfg), "--no-ui", "--live"]) == 2
    assert "api_key" in capsys.readouterr().err
    assert main(["--live", "--no-ui"]) == 2  # --live with a paper config


def test_headless_live_trading_needs_yes_live(isolated_environment, capsys, monkeypatch):
    cfg = write(isolated_environment / "live.toml", "mode = 'live'\n")
    monkeypatch.setenv("TUI_TRADER_MEXC_API_KEY", "k-not-shown")
    monkeypatch.setenv("TUI_TRADER_MEXC_API_SECRET", "s-not-shown")
    assert main(["--config", str(cfg), "--no-ui", "--live"]) == 2
    err = capsys.readouterr().err
    assert "--yes-live" in err and "--monitor-only" in err and "not-shown" not in err


def test_example_file_is_in_sync_and_loads_to_defaults():
    example = REPO / "config.example.toml"
    assert example.read_text() == render_example(), "regenerate: python -c 'from tui_trader.app.settings import render_example; print(render_example(), end=\"\")' > config.example.toml"
    settings, _ = load_settings(example)
    assert settings.model_dump(exclude={"data_dir"}) == Settings().model_dump(exclude={"data_dir"})


def test_example_documents_every_key():
    text = (REPO / "config.example.toml").read_text()
    for section, field in Settings.model_fields.items():
        model = type(field.default) if isinstance(field.default, BaseModel) else None
        if model is None:
            assert f"{section} =" in text
            continue
        assert f"[{section}]" in text
        for key in model.model_fields:
            assert f"{key} =" in text, f"{section}.{key} missing from config.example.toml"
