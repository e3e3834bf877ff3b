"""Database: one connection for any number of racing first callers, migrations, batching, durability."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal

import pytest

from tui_trader.domain.models import ClientOrderId, Fill, Order, OrderSide, OrderState, OrderType
from tui_trader.store.db import Database
from tui_trader.store.migrations import LATEST_VERSION
from tui_trader.store.orders import OrderRepository
from tui_trader.store.state import StateRepository


@pytest.fixture
async def db(tmp_path):
    database = Database(tmp_path / "t.sqlite", batch_size=10, flush_interval_ms=10)
    yield database
    await database.close()


async def test_fifty_concurrent_first_callers_share_one_connection(db):
    conns = await asyncio.gather(*(db.connection() for _ in range(50)))
    assert db.opens == 1
    assert all(c is conns[0] for c in conns)


async def test_new_database_is_migrated_with_wal(db, tmp_path):
    assert await db.schema_version() == LATEST_VERSION
    row = await db.fetchone("PRAGMA journal_mode")
    assert row[0] == "wal"
    tables = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "orders", "fills", "position_snapshots", "events", "backtest_runs", "state"} <= tables


async def test_reopening_existing_database_keeps_data_and_does_not_remigrate(tmp_path):
    path = tmp_path / "re.sqlite"
    first = Database(path)
    await StateRepository(first).put_state("k", {"a": 1})
    await first.close()
    second = Database(path)
    assert await second.schema_version() == LATEST_VERSION
    assert await StateRepository(second).get_state("k") == {"a": 1}
    await second.close()


async def test_migration_from_older_version_applies_only_missing_steps(tmp_path, monkeypatch):
    from tui_trader.store import db as dbmod

    path = tmp_path / "old.sqlite"
    old = Database(path)
    await old.connection()
    await old.close()
    extra = (LATEST_VERSION + 1, "CREATE TABLE extra_thing (id INTEGER PRIMARY KEY)")
    monkeypatch.setattr(dbmod, "MIGRATIONS", dbmod.MIGRATIONS + [extra])
    new = Database(path)
    assert await new.schema_version() == LATEST_VERSION + 1
    names = {r[0] for r in await new.fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "extra_thing" in names
    await new.close()


async def test_enqueued_rows_are_batched_and_flushed(db):
    for i in range(25):
        db.enqueue("INSERT INTO events (ts_ms, type, payload) VALUES (?, ?, ?)", (i, "t", "{}"))
    assert db.queued == 25
    written = await db.flush()
    assert written == 25 and db.queued == 0
    rows = await db.fetchall("SELECT COUNT(*) FROM events")
    assert rows[0][0] == 25


async def test_writer_loop_commits_without_explicit_flush(db):
    task = asyncio.create_task(db.run())
    try:
        db.enqueue("INSERT INTO events (ts_ms, type, payload) VALUES (?, ?, ?)", (1, "t", "{}"))
        await asyncio.wait_for(db.flushed.wait(), 5)  # the writer commits on its own
        rows = await db.fetchall("SELECT COUNT(*) FROM events")
        assert rows[0][0] == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_durable_write_is_visible_to_another_connection_immediately(db, tmp_path):
    repo = OrderRepository(db)
    order = Order(ClientOrderId("c-1"), "BTC_USDT", OrderSide.OPEN_SHORT, OrderType.MARKET, Decimal("5"), leverage=3, created_ms=1, updated_ms=1)
    await repo.save_order(order)
    other = sqlite3.connect(tmp_path / "t.sqlite")
    assert other.execute("SELECT state FROM orders WHERE client_id='c-1'").fetchone() == ("new",)
    other.close()


async def test_order_upsert_and_fill_deduplication(db):
    repo = OrderRepository(db)
    order = Order(ClientOrderId("c-2"), "BTC_USDT", OrderSide.OPEN_LONG, OrderType.LIMIT, Decimal("2"), price=Decimal("100.5"),
                  leverage=5, created_ms=1, updated_ms=1, tag="s1")
    await repo.save_order(order, "sess")
    await repo.save_order(order.with_state(OrderState.FILLED, 2, filled_contracts=Decimal("2"), avg_fill_price=Decimal("100.5")), "sess")
    [loaded] = await repo.load_orders("sess")
    assert loaded.state is OrderState.FILLED and loaded.avg_fill_price == Decimal("100.5") and loaded.price == Decimal("100.5")
    assert await repo.load_orders("sess", open_only=True) == []
    fill = Fill("f-1", ClientOrderId("c-2"), "BTC_USDT", OrderSide.OPEN_LONG, Decimal("2"), Decimal("100.5"), Decimal("0.0402"), 2)
    assert await repo.save_fill(fill, "sess") is True
    assert await repo.save_fill(fill, "sess") is False
    assert await repo.load_fills("sess") == [fill]


async def test_same_ids_in_two_sessions_do_not_collide(db):
    repo = OrderRepository(db)
    order = Order(ClientOrderId("s-1-O"), "X", OrderSide.OPEN_SHORT, OrderType.MARKET, Decimal("1"), created_ms=1, updated_ms=1)
    fill = Fill("s-1-O-f1", ClientOrderId("s-1-O"), "X", OrderSide.OPEN_SHORT, Decimal("1"), Decimal("2"), Decimal("0.1"), 2)
    for session in ("a", "b"):
        await repo.save_order(order, session)
        assert await repo.save_fill(fill, session) is True
    assert [o.client_id for o in await repo.load_orders("a")] == ["s-1-O"]
    assert await repo.load_fills("b") == [fill]


async def test_v2_database_with_data_migrates_to_composite_keys(tmp_path, monkeypatch):
    from tui_trader.store import db as dbmod

    path = tmp_path / "v2.sqlite"
    monkeypatch.setattr(dbmod, "MIGRATIONS", dbmod.MIGRATIONS[:2])
    old = Database(path)
    from tui_trader.store.orders import order_params

    order = Order(ClientOrderId("k"), "X", OrderSide.OPEN_LONG, OrderType.MARKET, Decimal("3"), created_ms=1, updated_ms=1)
    await old.execute_durable("INSERT INTO orders (client_id, session_id, symbol, side, type, qty, price, leverage, margin_mode,"
                              " reduce_only, state, venue_order_id, filled, avg_price, stop_loss, take_profit, trigger_price,"
                              " position_id, reason, tag, created_ms, updated_ms) VALUES (" + ",".join("?" * 22) + ")",
                              order_params(order, "sess"))
    await old.close()
    monkeypatch.undo()
    new = Database(path)
    assert await new.schema_version() == LATEST_VERSION
    [o] = await OrderRepository(new).load_orders("sess")
    assert o.client_id == "k" and o.qty_contracts == Decimal("3")
    await new.close()


async def test_a_cancel_at_any_point_of_a_write_leaves_it_whole_and_raises_only_cancelled(db):
    """Issue 20 (CI, full-speed replay): a cancel landing while COMMIT ran in aiosqlite's thread sent
    ROLLBACK after the commit; `cannot rollback - no transaction is active` then reached the task instead
    of its CancelledError, the risk service restarted instead of stopping, and the process hung."""
    await db.execute_durable("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    conn = await db.connection()
    for turns in range(40):  # cancel after 0, 1, 2 ... loop turns: before BEGIN, mid-INSERT, mid-COMMIT, after
        task = asyncio.create_task(db.execute_durable("INSERT INTO t (k) VALUES (?)", (turns,)))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        assert not conn.in_transaction, turns
        async with db._write_lock:  # whatever was in flight has ended: the write is there or it is not
            assert not conn.in_transaction
    rows = await db.fetchall("SELECT k FROM t ORDER BY k")
    assert [r["k"] for r in rows] == sorted({r["k"] for r in rows})  # each at most once
    assert await db.execute_durable("INSERT INTO t (k) VALUES (1000)") == 1  # the connection still works


async def test_a_failing_write_leaves_nothing_and_no_transaction_open(db):
    """One statement runs without BEGIN / COMMIT (SQLite commits or undoes it whole); several are all or nothing."""
    await db.execute_durable("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    assert await db.execute_durable("INSERT INTO t (k) VALUES (1)") == 1
    with pytest.raises(sqlite3.IntegrityError):
        await db.execute_durable("INSERT INTO t (k) VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError):
        await db.execute_many_durable([("INSERT INTO t (k) VALUES (2)", ()), ("INSERT INTO t (k) VALUES (1)", ())])
    conn = await db.connection()
    assert not conn.in_transaction
    assert [r["k"] for r in await db.fetchall("SELECT k FROM t")] == [1]
    assert await db.execute_durable("INSERT INTO t (k) VALUES (3)") == 1  # the connection still works
