"""Opening the store waits for another connection's lock (busy_timeout is set before anything else),
instead of failing at once with "database is locked" - e.g. while the last connection to the file
checkpoints on close, or another process holds a write."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

from tui_trader.store.db import Database


async def test_an_open_waits_for_a_lock_held_elsewhere(tmp_path):
    path = tmp_path / "held.sqlite"
    first = Database(path)
    await first.connection()  # the file exists, migrated, in WAL
    await first.close()
    other = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    other.execute("PRAGMA journal_mode=DELETE")  # a file another tool left in rollback mode
    other.execute("BEGIN EXCLUSIVE")  # ... and holds its lock for a moment
    release = threading.Timer(0.3, lambda: (other.execute("COMMIT"), other.close()))
    release.start()
    try:
        db = Database(path)
        conn = await asyncio.wait_for(db.connection(), 10)  # waits for the lock, then switches to WAL
        async with conn.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone())[0] == "wal"
        await db.close()
    finally:
        release.join()
