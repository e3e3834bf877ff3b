"""Shared fixtures. Autouse: tests never see the developer's real config, data dir or API keys."""

from __future__ import annotations

import asyncio
import contextlib
import os

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


def favour(pid: int) -> None:
    """For a child whose wall-clock deadline a test checks (a first start within 10 s, a stop within 2 s):
    niceness 5 below the test's where the system allows it (root, as in CI), so the suite's other workers
    sharing the machine's two cores do not decide a deadline meant for a person's machine. Unprivileged:
    unchanged. The child does the same work either way."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, 0) - 5)
