"""Schema versions as a plain ordered list of migrations (no Alembic needed at this size).

A new database is created at the latest version in one step; an older file is brought
forward one migration at a time, each in its own transaction, so a file written by an
older release opens in a newer one. A file newer than this code is refused, not guessed at.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

from sqlalchemy import Connection, inspect, text

from .models import AnnotationRow, Base, SessionRow

FTS_TABLE = "sessions_fts"


def pool_hash(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def create_text_index(conn: Connection) -> bool:
    """SQLite only: a trigram FTS5 table for substring search over question and answer.

    Rows are written when a session reaches its final status (the answer is known then), so
    no update trigger is needed; running sessions are searched with LIKE. Returns False
    where this SQLite lacks FTS5 trigram, and the store falls back to LIKE.
    """
    if conn.dialect.name != "sqlite":
        return False
    try:
        conn.exec_driver_sql(f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} "
                             "USING fts5(id UNINDEXED, question, answer, tokenize='trigram')")
    except Exception:
        return False
    return True


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


def _v3_pools_indexes_text(conn: Connection) -> None:
    """v3: pool snapshots stored once (narrow session rows), filter+sort indexes, text index."""
    from .models import PoolRow
    PoolRow.__table__.create(conn, checkfirst=True)
    cols = {c["name"] for c in inspect(conn).get_columns("sessions")}
    if "pool_hash" not in cols:
        conn.execute(text("ALTER TABLE sessions ADD COLUMN pool_hash VARCHAR(64) REFERENCES pools(hash)"))
    if "pool" in cols:
        seen: set[str] = set()
        rows = conn.execute(text("SELECT id, pool FROM sessions")).all()
        for sid, raw in rows:
            snap = json.loads(raw) if isinstance(raw, str) else (raw or {})
            h = pool_hash(snap)
            if h not in seen:
                conn.execute(text("INSERT INTO pools (hash, name, snapshot) VALUES (:h, :n, :s)"),
                             {"h": h, "n": str(snap.get("name", "")), "s": json.dumps(snap)})
                seen.add(h)
            conn.execute(text("UPDATE sessions SET pool_hash = :h WHERE id = :id"), {"h": h, "id": sid})
        conn.execute(text("ALTER TABLE sessions DROP COLUMN pool"))
    for old in ("ix_sessions_dataset", "ix_sessions_alpha", "ix_sessions_cost_usd", "ix_sessions_run_id",
                "ix_annotations_label"):
        conn.execute(text(f"DROP INDEX IF EXISTS {old}"))
    for table in (SessionRow.__table__, AnnotationRow.__table__):
        for ix in table.indexes:
            ix.create(conn, checkfirst=True)
    if create_text_index(conn):
        conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE} (id, question, answer) "
                             "SELECT id, question, coalesce(answer, '') FROM sessions WHERE status != 'running'")


# (version, description, upgrade from version-1). Version 1 is the first released schema.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (2, "per-model usage table and eval run ids", _v2_usage_and_runs),
    (3, "pool snapshots by hash, filter indexes, trigram text index", _v3_pools_indexes_text),
]
LATEST = 1 + len(MIGRATIONS)
