"""Fixtures the app tests share."""

from __future__ import annotations

import asyncio

import pytest

from tui_trader.app.sessions import SessionService
from tui_trader.app.settings import load_settings
from tui_trader.store.db import Database


@pytest.fixture
async def service(tmp_path):
    """A session service on its own database, shut down in order after the test."""
    settings, _ = load_settings(None)
    db = Database(tmp_path / "sessions.sqlite")
    writer = asyncio.create_task(db.run())
    svc = SessionService(settings, db)
    yield svc
    await svc.shutdown()
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    await db.shutdown()
