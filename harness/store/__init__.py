"""The 48-hour log: SQLite in WAL mode. `db` opens and writes, `writer` is the run's trio task
that batches rows through `trio.to_thread`, `queries` and `export` read with their own
connections."""
