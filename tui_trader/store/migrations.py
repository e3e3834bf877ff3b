"""Store layer: versioned schema migrations, applied in order and recorded in `PRAGMA user_version`.

Append a new entry to `MIGRATIONS` for every schema change; never edit an applied one. Money is
stored as TEXT (exact Decimal strings), times as integer milliseconds.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,                 -- paper | live | backtest
            status TEXT NOT NULL,               -- created | running | stopped | finished | failed
            config_json TEXT NOT NULL DEFAULT '{}',
            cursor_ms INTEGER NOT NULL DEFAULT 0,  -- data time reached (replay resume point)
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            stopped_ms INTEGER
        );
        CREATE TABLE orders (
            client_id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL DEFAULT '',
            symbol TEXT NOT NULL,
            side INTEGER NOT NULL,
            type TEXT NOT NULL,
            qty TEXT NOT NULL,
            price TEXT,
            leverage INTEGER NOT NULL,
            margin_mode TEXT NOT NULL,
            reduce_only INTEGER NOT NULL,
            state TEXT NOT NULL,
            venue_order_id TEXT,
            filled TEXT NOT NULL DEFAULT '0',
            avg_price TEXT,
            stop_loss TEXT,
            take_profit TEXT,
            trigger_price TEXT,
            position_id TEXT,
            reason TEXT NOT NULL DEFAULT '',
            tag TEXT NOT NULL DEFAULT '',
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL
        );
        CREATE INDEX orders_session ON orders(session_id, created_ms);
        CREATE TABLE fills (
            fill_id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL DEFAULT '',
            client_id TEXT NOT NULL,
            venue_order_id TEXT,
            symbol TEXT NOT NULL,
            side INTEGER NOT NULL,
            qty TEXT NOT NULL,
            price TEXT NOT NULL,
            fee TEXT NOT NULL,
            realized_pnl TEXT NOT NULL DEFAULT '0',
            liquidity TEXT NOT NULL,
            ts_ms INTEGER NOT NULL
        );
        CREATE INDEX fills_session ON fills(session_id, ts_ms);
        CREATE TABLE position_snapshots (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL DEFAULT '',
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            contracts TEXT NOT NULL,
            entry_price TEXT NOT NULL,
            leverage INTEGER NOT NULL,
            margin TEXT NOT NULL,
            liquidation_price TEXT,
            realized_pnl TEXT NOT NULL DEFAULT '0',
            reason TEXT NOT NULL DEFAULT '',
            ts_ms INTEGER NOT NULL
        );
        CREATE INDEX positions_session ON position_snapshots(session_id, ts_ms);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts_ms INTEGER NOT NULL,
            type TEXT NOT NULL,
            payload TEXT NOT NULL
        );
        CREATE INDEX events_ts ON events(ts_ms);
        CREATE TABLE backtest_runs (
            id TEXT PRIMARY KEY,
            created_ms INTEGER NOT NULL,
            status TEXT NOT NULL,
            strategy TEXT NOT NULL,
            symbols TEXT NOT NULL,
            date_from_ms INTEGER,
            date_to_ms INTEGER,
            params_json TEXT NOT NULL DEFAULT '{}',
            metrics_json TEXT NOT NULL DEFAULT '{}',
            trades_json TEXT NOT NULL DEFAULT '[]',
            equity_json TEXT NOT NULL DEFAULT '[]'
        );
        CREATE TABLE state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_ms INTEGER NOT NULL
        );
        """,
    ),
]

MIGRATIONS.append(
    (
        2,
        """
        -- paper sessions: resume point (checkpoint), the process that runs it, equity and funding history
        ALTER TABLE sessions ADD COLUMN checkpoint_json TEXT;
        ALTER TABLE sessions ADD COLUMN owner_pid INTEGER;
        CREATE TABLE session_equity (
            session_id TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            equity TEXT NOT NULL,
            cash TEXT NOT NULL,
            PRIMARY KEY (session_id, ts_ms)
        );
        CREATE TABLE session_funding (
            session_id TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            symbol TEXT NOT NULL,
            amount TEXT NOT NULL,
            PRIMARY KEY (session_id, ts_ms, symbol)
        );
        """,
    )
)

MIGRATIONS.append(
    (
        3,
        """
        -- client and fill ids are unique per session, not globally: two paper sessions replaying the
        -- same data make the same deterministic ids
        CREATE TABLE orders_v3 (
            client_id TEXT NOT NULL,
            session_id TEXT NOT NULL DEFAULT '',
            symbol TEXT NOT NULL, side INTEGER NOT NULL, type TEXT NOT NULL, qty TEXT NOT NULL, price TEXT,
            leverage INTEGER NOT NULL, margin_mode TEXT NOT NULL, reduce_only INTEGER NOT NULL, state TEXT NOT NULL,
            venue_order_id TEXT, filled TEXT NOT NULL DEFAULT '0', avg_price TEXT, stop_loss TEXT, take_profit TEXT,
            trigger_price TEXT, position_id TEXT, reason TEXT NOT NULL DEFAULT '', tag TEXT NOT NULL DEFAULT '',
            created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
            PRIMARY KEY (session_id, client_id)
        );
        INSERT INTO orders_v3 SELECT client_id, session_id, symbol, side, type, qty, price, leverage, margin_mode,
            reduce_only, state, venue_order_id, filled, avg_price, stop_loss, take_profit, trigger_price, position_id,
            reason, tag, created_ms, updated_ms FROM orders;
        DROP TABLE orders;
        ALTER TABLE orders_v3 RENAME TO orders;
        CREATE INDEX orders_session ON orders(session_id, created_ms);
        CREATE TABLE fills_v3 (
            fill_id TEXT NOT NULL,
            session_id TEXT NOT NULL DEFAULT '',
            client_id TEXT NOT NULL, venue_order_id TEXT, symbol TEXT NOT NULL, side INTEGER NOT NULL,
            qty TEXT NOT NULL, price TEXT NOT NULL, fee TEXT NOT NULL, realized_pnl TEXT NOT NULL DEFAULT '0',
            liquidity TEXT NOT NULL, ts_ms INTEGER NOT NULL,
            PRIMARY KEY (session_id, fill_id)
        );
        INSERT INTO fills_v3 SELECT fill_id, session_id, client_id, venue_order_id, symbol, side, qty, price, fee,
            realized_pnl, liquidity, ts_ms FROM fills;
        DROP TABLE fills;
        ALTER TABLE fills_v3 RENAME TO fills;
        CREATE INDEX fills_session ON fills(session_id, ts_ms);
        """,
    )
)

MIGRATIONS.append(
    (
        4,
        """
        -- why a session failed (a bad row in its data file, a crashed part), shown by list / show
        ALTER TABLE sessions ADD COLUMN error TEXT;
        """,
    )
)

LATEST_VERSION = MIGRATIONS[-1][0]
