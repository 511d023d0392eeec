"""Schema versions as a plain ordered list of migrations (no Alembic needed at this size).

A new database is created at the latest version in one step; an older file is brought
forward one migration at a time, each in its own transaction, so a file written by an
older release opens in a newer one. A file newer than this code is refused, not guessed at.
"""
from __future__ import annotations

from typing import Callable

from sqlalchemy import Connection, inspect, text

from .models import Base


def _v2_usage_and_runs(conn: Connection) -> None:
    """v2: per-model usage rollup table (fast 'model used' filter) and eval run ids."""
    cols = {c["name"] for c in inspect(conn).get_columns("sessions")}
    if "run_id" not in cols:
        conn.execute(text("ALTER TABLE sessions ADD COLUMN run_id VARCHAR(64)"))
        conn.execute(text("CREATE INDEX IF NOT EXISTS ix_sessions_run_id ON sessions (run_id)"))
    Base.metadata.tables["session_models"].create(conn, checkfirst=True)
    conn.execute(text(
        "INSERT INTO session_models (session_id, model, calls, input_tokens, output_tokens, cost_usd) "
        "SELECT session_id, request_model, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_usd) "
        "FROM steps WHERE kind = 'route' AND request_model IS NOT NULL GROUP BY session_id, request_model"))


# (version, description, upgrade from version-1). Version 1 is the first released schema.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (2, "per-model usage table and eval run ids", _v2_usage_and_runs),
]
LATEST = 1 + len(MIGRATIONS)
