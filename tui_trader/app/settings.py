"""App layer: load `Settings` from TOML + environment, with one clear message per problem.

Lookup order: `--config PATH`, else `./tui-trader.toml`, else `$XDG_CONFIG_HOME/tui-trader/config.toml`,
else built-in defaults (paper mode on the bundled data). Secrets come from the file or from
`TUI_TRADER_MEXC_API_KEY` / `TUI_TRADER_MEXC_API_SECRET` (env wins) and are never echoed: an
error about a secret key shows `'***'` instead of its value.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tui_trader.domain.config import Settings
from tui_trader.domain.errors import ConfigError

ENV_API_KEY = "TUI_TRADER_MEXC_API_KEY"
ENV_API_SECRET = "TUI_TRADER_MEXC_API_SECRET"
SECRET_KEYS = {"api_key", "api_secret"}


def user_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tui-trader"


def user_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tui-trader"


def find_config(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """The config file to use, or None for built-in defaults. An explicit path must exist."""
    if explicit is not None:
        if explicit.is_dir():
            raise ConfigError(f"config file {explicit} is a directory, not a file")
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        return explicit
    local = (cwd or Path.cwd()) / "tui-trader.toml"
    if local.is_file():
        return local
    user = user_config_dir() / "config.toml"
    return user if user.is_file() else None


def load_settings(explicit: Path | None = None, *, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[Settings, Path | None]:
    """Settings and the file they came from (None = defaults). Raises `ConfigError`."""
    env = os.environ if env is None else env
    path = find_config(explicit, cwd)
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{path}: TOML nested too deeply to be a config") from None
        except UnicodeDecodeError as exc:
            byte = exc.object[exc.start]
            raise ConfigError(f"{path}: not UTF-8 text (byte {byte:#04x}) - a config file is TOML") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    mexc = raw.get("mexc")
    if env.get(ENV_API_KEY) or env.get(ENV_API_SECRET):
        if mexc is None:
            mexc = raw["mexc"] = {}
        if isinstance(mexc, dict):
            if env.get(ENV_API_KEY):
                mexc["api_key"] = env[ENV_API_KEY]
            if env.get(ENV_API_SECRET):
                mexc["api_secret"] = env[ENV_API_SECRET]
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from None
    if settings.data_dir is None:
        settings = settings.model_copy(update={"data_dir": user_data_dir()})
    return settings, path


def check_input_files(settings: Settings, path: Path | None, flags: dict[str, str] | None = None) -> None:
    """The files the console will read exist: a path with a typo is a config error named by its key (or
    by the command-line flag that set it, `flags`: key -> flag), like a key with a typo (exit 2), not a
    crash at start-up. What is in them is their readers' part."""
    files = {"strategy.file": settings.strategy.file if settings.strategy.enabled else None}
    if settings.mode == "paper":
        files["replay.file"] = settings.replay.file
    for key, file in files.items():
        if file is not None and not file.is_file():
            problem = "is a directory, not a file" if file.is_dir() else "file not found"
            where = (flags or {}).get(key) or f"{path or 'built-in defaults'}: {key}"
            raise ConfigError(f"{where}: {file}: {problem}")


def format_validation_error(exc: ValidationError, path: Path | None, model: type | None = None) -> str:
    """One line per problem: `key: value is not allowed - rule`; secrets shown as '***'."""
    where = f"{path}: " if path else ""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        leaf = str(err["loc"][-1]) if err["loc"] else ""
        value = "'***'" if leaf in SECRET_KEYS else _show(err.get("input"))
        kind = err["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model or Settings, err["loc"][:-1])
            hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
            lines.append(f"{where}{loc}: unknown key{hint}")
        elif kind == "missing":
            lines.append(f"{where}{loc}: required key is missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}{loc}: {value} is not allowed - {msg}")
    return "\n".join(lines)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(model: type, loc: tuple) -> list[str]:
    """Field names of the (nested) model at `loc`, for 'unknown key' hints."""
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = fields[part].annotation
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def render_example() -> str:
    """The text of `config.example.toml`: every key, its default and its description."""
    from pydantic import BaseModel

    out = [
        "# tui-trader configuration. Every key is optional; the values shown are the defaults.",
        "# Lookup: --config PATH, ./tui-trader.toml, $XDG_CONFIG_HOME/tui-trader/config.toml.",
        "# Unknown keys and out-of-range values are errors (exit code 2) - a typo must not be ignored.",
        "",
    ]
    sections = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, BaseModel):
            sections.append((name, type(default), default))
            continue
        out.extend(_render_field(name, field.description or "", default))
    for name, model, default in sections:
        out.append("")
        out.append(f"# {(model.__doc__ or '').strip().splitlines()[0]}")
        out.append(f"[{name}]")
        for key, field in model.model_fields.items():
            out.extend(_render_field(key, field.description or "", getattr(default, key)))
    return "\n".join(out) + "\n"


def _render_field(key: str, description: str, value: Any) -> list[str]:
    lines = [f"# {description}"]
    if value is None:
        lines.append(f'# {key} = ""')
    else:
        lines.append(f"{key} = {_toml_value(value)}")
    return lines


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_value(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
