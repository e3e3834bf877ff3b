"""Store layer: aiosqlite persistence (WAL, versioned migrations, one batched writer)."""
