"""App layer: implementations of CLI sub-commands that are not the console itself."""

from __future__ import annotations

from pathlib import Path


def strategy_check(path: Path) -> int:
    """`tui-trader strategy check FILE` (implemented with the strategy engine)."""
    raise NotImplementedError("strategy check arrives with the strategy engine")
