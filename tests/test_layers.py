"""Layering: nothing below `tui_trader.app` imports Textual (or rich), checked two ways."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "tui_trader"
LAYERS = ["domain", "engine", "venues", "store", "backtest"]
# Which layers each layer may import (arrows point one way).
ALLOWED = {
    "domain": {"domain"},
    "engine": {"domain", "engine"},
    "venues": {"domain", "engine", "venues"},
    "store": {"domain", "engine", "store"},
    "backtest": {"domain", "engine", "venues", "store", "backtest"},
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):  # includes imports deferred inside functions
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_textual_or_rich_import_outside_app_statically():
    offenders = []
    for layer in LAYERS:
        for path in (PKG / layer).rglob("*.py"):
            for name in _imports(path):
                if name.split(".")[0] in ("textual", "rich"):
                    offenders.append(f"{path.relative_to(PKG)} imports {name}")
    assert not offenders, offenders


def test_layers_import_only_downwards():
    offenders = []
    for layer, allowed in ALLOWED.items():
        for path in (PKG / layer).rglob("*.py"):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "tui_trader" and len(parts) > 1 and parts[1] not in allowed and parts[1] != "__init__":
                    offenders.append(f"{path.relative_to(PKG)} imports {name}")
    assert not offenders, offenders


def test_core_layers_do_not_load_textual_at_runtime():
    modules = [p.relative_to(PKG.parent).with_suffix("").as_posix().replace("/", ".") for layer in LAYERS for p in (PKG / layer).rglob("*.py")]
    modules = [m.removesuffix(".__init__") for m in modules]
    code = "import sys, importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + (
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual',))\nprint(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_headless_path_does_not_load_textual():
    code = "import sys; import tui_trader.app.headless, tui_trader.app.wiring, tui_trader.app.cli; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_module_size_limit():
    too_big = [str(p.relative_to(PKG)) for p in PKG.rglob("*.py") if len(p.read_text(encoding="utf-8").splitlines()) > 500]
    assert not too_big, f"modules over 500 lines: {too_big}"
