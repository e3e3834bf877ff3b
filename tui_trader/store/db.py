"""Store layer: the one SQLite connection, opened lazily, plus the batching writer.

* Lazy initialisation is guarded by an `asyncio.Lock`, so any number of concurrent first callers
  share exactly one connection (the original system opened one per racing caller).
* WAL journal, `synchronous=FULL`: a committed row survives `kill -9` and power loss.
* `enqueue()` queues a row for the background writer, which commits in batches (`batch_size` rows
  or `flush_interval_ms`, whichever first): cheap for high-rate rows such as events.
* `execute_durable()` writes and commits one statement and returns only when it is on disk: for
  rows that must exist before an action (an order intent before it is sent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Coroutine, Iterable, Sequence

import aiosqlite

from tui_trader.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)


class Database:
    name = "store"

    def __init__(self, path: Path | str, *, batch_size: int = 500, flush_interval_ms: int = 200) -> None:
        self.path = Path(path) if str(path) != ":memory:" else path
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_ms / 1000.0
        self.opens = 0  # connections opened (tests assert it stays 1)
        self._conn: aiosqlite.Connection | None = None
        self._init_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._queue: list[tuple[str, Sequence[Any]]] = []
        self._queued = asyncio.Event()
        self.flushed = asyncio.Event()  # set after each background commit (tests and shutdown wait on it)
        self._closed = False

    async def connection(self) -> aiosqlite.Connection:
        """The shared connection, opened and migrated on first use."""
        conn = self._conn
        if conn is not None:
            return conn
        async with self._init_lock:
            if self._conn is None:
                if self._closed:
                    raise RuntimeError("database is closed")
                self._conn = await self._open()
            return self._conn

    async def _open(self) -> aiosqlite.Connection:
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(self.path), isolation_level=None)  # explicit transactions
        self.opens += 1
        conn.row_factory = aiosqlite.Row
        try:
            await conn.execute("PRAGMA busy_timeout=5000")  # first: what follows may wait on another connection
            async with conn.execute("PRAGMA journal_mode") as cur:
                mode = (await cur.fetchone() or ["?"])[0]
            if str(mode).lower() != "wal":  # set once per file: WAL persists, and switching needs the lock that
                await conn.execute("PRAGMA journal_mode=WAL")  # a closing connection's checkpoint holds
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await _migrate(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def schema_version(self) -> int:
        conn = await self.connection()
        async with conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # --- writes ---------------------------------------------------------------------------

    async def execute_durable(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute one write and commit it; returns the affected row count."""
        return await _whole(self._transaction([(sql, params)]))

    async def execute_many_durable(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """Several writes in one transaction (all or nothing)."""
        await _whole(self._transaction(list(statements)))

    async def _transaction(self, statements: list[tuple[str, Sequence[Any]]]) -> int:
        """One statement runs on its own: SQLite commits it (synchronous=FULL: durable) or rolls it back
        whole, so BEGIN / COMMIT around it would only cost two more trips to the connection's thread.
        Several run in BEGIN IMMEDIATE ... COMMIT, all or nothing."""
        conn = await self.connection()
        count = 0
        async with self._write_lock:
            if len(statements) == 1 and not conn.in_transaction:
                cur = await conn.execute(*statements[0])
                return cur.rowcount
            await conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    cur = await conn.execute(sql, params)
                    count += cur.rowcount
                await conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
        return count

    def enqueue(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Queue a write for the batching writer (never blocks)."""
        self._queue.append((sql, params))
        if len(self._queue) >= self.batch_size:
            self._queued.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def flush(self) -> int:
        """Commit everything queued so far; returns the number of rows written."""
        written = 0
        while self._queue:
            batch, self._queue = self._queue[: self.batch_size], self._queue[self.batch_size :]
            await self.execute_many_durable(batch)
            written += len(batch)
        return written

    async def run(self) -> None:
        """Writer loop: commit queued rows every `flush_interval_ms` or when a batch is full."""
        while not self._closed:
            try:  # (asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancellation)
                async with asyncio.timeout(self.flush_interval_s):
                    await self._queued.wait()
            except TimeoutError:
                pass
            self._queued.clear()
            if self._queue and not self._closed:
                await self.flush()
                self.flushed.set()

    async def shutdown(self) -> None:
        """Flush and close (the core calls this last)."""
        try:
            await self.flush()
        finally:
            await self.close()

    async def close(self) -> None:
        self._closed = True
        async with self._init_lock, self._write_lock:  # a commit in flight finishes first
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    # --- reads ----------------------------------------------------------------------------

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        conn = await self.connection()
        async with conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None


async def _whole(transaction: Coroutine[Any, Any, int]) -> int:
    """Run a transaction to its end even if the caller is cancelled meanwhile.

    aiosqlite cannot stop a statement its thread already runs: a cancel that lands while COMMIT is
    in flight used to send ROLLBACK after the commit ("cannot rollback - no transaction is active"),
    and that error, not the cancel, reached the task (a supervised service then restarted instead of
    stopping and the process hung). Now the caller waits the few ms for commit or rollback, then sees
    its CancelledError; the row is either committed or not, never half-handled.
    """
    task = asyncio.ensure_future(transaction)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:  # nobody else will see it: logged here
            log.warning("a write whose caller was cancelled failed: %r", task.exception())
        raise


async def _migrate(conn: aiosqlite.Connection) -> None:
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row else 0
    for version, script in MIGRATIONS:
        if version <= current:
            continue
        started = time.perf_counter()
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {int(version)}")
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        log.info("schema migrated to v%d in %.1f ms", version, (time.perf_counter() - started) * 1000)


def _statements(script: str) -> list[str]:
    """Split a migration script on ';' (our scripts hold no ';' inside strings or triggers)."""
    return [s.strip() for s in script.split(";") if s.strip() and not _only_comments(s)]


def _only_comments(s: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in s.splitlines())
