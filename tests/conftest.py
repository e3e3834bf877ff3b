"""Shared fixtures. Autouse: tests never see the developer's real config, data dir or API keys."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """Point XDG dirs at a temp folder, drop real keys, run in an empty cwd."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("TUI_TRADER_MEXC_API_KEY", raising=False)
    monkeypatch.delenv("TUI_TRADER_MEXC_API_SECRET", raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


async def settle(rounds: int = 5) -> None:
    """Let queued callbacks and woken tasks run (no wall time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
