"""Schema versions as a plain ordered list of migrations (no Alembic needed at this size).

A new database is created at the latest version in one step; an older file is brought
forward one migration at a time, each in its own transaction, so a file written by an
older release opens in a newer one. A file newer than this code is refused, not guessed at.
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Callable

from sqlalchemy import Connection, bindparam, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from .models import (AnnotationRow, Base, ModelBitRow, SessionRow, TrainingPointRow, TrainingRunRow,
                     TrainingTrajectoryRow)

FTS_TABLE = "sessions_fts"
log = logging.getLogger(__name__)


def pool_hash(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def create_text_index(conn: Connection) -> bool:
    """SQLite: a trigram FTS5 table for substring search over question and answer (PostgreSQL: trigram indexes).

    Rows are written when a session reaches its final status (the answer is known then), so
    no update trigger is needed; running sessions are searched with LIKE. Returns False
    where this SQLite lacks FTS5 trigram, and the store falls back to LIKE.
    """
    if conn.dialect.name == "postgresql":
        return create_trigram_indexes(conn)
    if conn.dialect.name != "sqlite":
        return False
    try:
        conn.exec_driver_sql(f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} "
                             "USING fts5(id UNINDEXED, question, answer, tokenize='trigram')")
    except Exception:
        return False
    return True


def create_trigram_indexes(conn: Connection) -> bool:
    """PostgreSQL: trigram GIN indexes (pg_trgm) under the text filter's ILIKE on question and answer, so a rare word
    is found without reading every session. pg_trgm is a trusted extension (a database owner may create it); where it
    cannot be created the filter still works, by a scan. Returns whether the indexes exist."""
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_sessions_question_trgm ON sessions "
                                 "USING gin (question gin_trgm_ops)")
            conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_sessions_answer_trgm ON sessions "
                                 "USING gin ((coalesce(answer, '')) gin_trgm_ops)")
    except SQLAlchemyError as e:
        log.warning("text filter without trigram indexes (pg_trgm unavailable: %s); it scans the sessions", e)
        return False
    return True


def _v11_postgres_trigrams(conn: Connection) -> None:
    """v11 (PostgreSQL): the trigram indexes of `create_trigram_indexes` on an existing database."""
    if conn.dialect.name == "postgresql":
        create_trigram_indexes(conn)


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
    # v3 also made one (filter, created_at) index per filter; v4 replaces them all, so they are not
    # built here only to be dropped (and the current SessionRow indexes need v4's columns).
    for ix in AnnotationRow.__table__.indexes:
        ix.create(conn, checkfirst=True)
    if create_text_index(conn):
        conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE} (id, question, answer) "
                             "SELECT id, question, coalesce(answer, '') FROM sessions WHERE status != 'running'")


MAX_MODEL_BITS = 63   # bits 0-62 of a signed 64-bit models_mask


def _v4_list_index(conn: Connection) -> None:
    """v4: model bitmask and text-index rowid on sessions, covering list indexes for every filter.

    The per-filter (filter, created_at) indexes of v3 let the planner drive a count from, say,
    status = 'done' and read nine rows in ten from the table; an index holding all filter
    columns bounds any page or count by a pass over that index (bench/store.py).
    """
    cols = {c["name"] for c in inspect(conn).get_columns("sessions")}
    if "models_mask" not in cols:
        conn.execute(text("ALTER TABLE sessions ADD COLUMN models_mask BIGINT NOT NULL DEFAULT 0"))
    if "text_rowid" not in cols:
        conn.execute(text("ALTER TABLE sessions ADD COLUMN text_rowid INTEGER"))
    ModelBitRow.__table__.create(conn, checkfirst=True)
    # most used models first, so the bits go to the models filtered on most
    models = conn.execute(text("SELECT model FROM session_models GROUP BY model ORDER BY COUNT(*) DESC, model")
                          ).scalars().all()
    if models:
        conn.execute(text("INSERT INTO model_bits (model, bit) VALUES (:m, :b)"),
                     [{"m": m, "b": i if i < MAX_MODEL_BITS else None} for i, m in enumerate(models)])
        conn.execute(text(
            "UPDATE sessions SET models_mask = (SELECT coalesce(SUM(CAST(1 AS BIGINT) << b.bit), 0) "
            "FROM session_models u JOIN model_bits b ON b.model = u.model "
            "WHERE u.session_id = sessions.id AND b.bit IS NOT NULL)"))
    if conn.dialect.name == "sqlite" and inspect(conn).has_table(FTS_TABLE):
        pairs = conn.execute(text(f"SELECT rowid, id FROM {FTS_TABLE}")).all()
        if pairs:
            conn.execute(text("UPDATE sessions SET text_rowid = :r WHERE id = :sid").bindparams(
                bindparam("r"), bindparam("sid")), [{"r": r, "sid": i} for r, i in pairs])
    for old in ("ix_sessions_created_at", "ix_sessions_status", "ix_sessions_status_created",
                "ix_sessions_dataset_created", "ix_sessions_run_created", "ix_sessions_em_created",
                "ix_sessions_alpha_created", "ix_sessions_cost_created"):
        conn.execute(text(f"DROP INDEX IF EXISTS {old}"))
    have = {c["name"] for c in inspect(conn).get_columns("sessions")}
    for ix in SessionRow.__table__.indexes:
        if {c.name for c in ix.columns} <= have:  # an index over a later version's columns: that version builds it
            ix.create(conn, checkfirst=True)


def _v5_step_extra(conn: Connection) -> None:
    """v5: steps.extra holds Step fields without a column of their own (new fields need no migration)."""
    cols = {c["name"] for c in inspect(conn).get_columns("steps")}
    if "extra" not in cols:
        conn.execute(text("ALTER TABLE steps ADD COLUMN extra JSON"))


def _v6_session_settings(conn: Connection) -> None:
    """v6: sessions.settings, the run settings a session ran with (older sessions have none recorded)."""
    cols = {c["name"] for c in inspect(conn).get_columns("sessions")}
    if "settings" not in cols:
        conn.execute(text("ALTER TABLE sessions ADD COLUMN settings JSON"))


def _v7_failure_kind(conn: Connection) -> None:
    """v7: sessions.failure, the suggested failure kind of a finished wrong session, computed for the stored ones
    (500 sessions at a time, from their steps)."""
    from sqlalchemy import select, update

    from router_core.failures import failure_kind

    from .models import StepRow, row_step
    cols = {c["name"] for c in inspect(conn).get_columns("sessions")}
    if "failure" not in cols:
        conn.execute(text("ALTER TABLE sessions ADD COLUMN failure VARCHAR(32)"))
    S = SessionRow
    last = ""
    while True:
        rows = conn.execute(select(S.id, S.question, S.gold).where(
            S.id > last, S.status != "running", (S.em.is_(None)) | (S.em < 1)).order_by(S.id).limit(500)).all()
        if not rows:
            return
        ids = [r[0] for r in rows]
        steps: dict[str, list[Any]] = {i: [] for i in ids}
        for srow in conn.execute(select(StepRow.__table__).where(StepRow.session_id.in_(ids))
                                 .order_by(StepRow.session_id, StepRow.idx)):
            steps[srow.session_id].append(row_step(srow._mapping))
        updates = [{"sid": sid, "kind": kind} for sid, question, gold in rows
                   if (kind := failure_kind(steps[sid], question, list(gold or [])))]
        if updates:
            conn.execute(update(S).where(S.id == bindparam("sid")).values(failure=bindparam("kind")), updates)
        last = ids[-1]


def _indexes_as_declared(conn: Connection) -> None:
    """v8: the list indexes also hold method (policy), failure kind and calls, so the analyst's filters are answered
    from the index like the others; list indexes led by failure kind and by eval run, so a rare kind or one run is
    found among its own sessions; an index on sessions.text_rowid, so a text filter's matches reach their sessions
    without a walk. v9: that index holds every list column, so the other filters are tested on it too. v12: a list
    index led by the method.
    An index whose columns differ from models.py is rebuilt (a minute or two at a million sessions)."""
    have = {ix["name"]: ix["column_names"] for ix in inspect(conn).get_indexes("sessions")}
    for ix in SessionRow.__table__.indexes:
        want = [c.name for c in ix.columns]
        if ix.name in have and have[ix.name] != want:
            conn.execute(text(f"DROP INDEX {ix.name}"))
        ix.create(conn, checkfirst=True)


def _v10_usage_without_rowid(conn: Connection) -> None:
    """v10 (SQLite): session_models becomes a WITHOUT ROWID table, kept in its primary-key tree alone (a rowid table
    holds every row twice over: the table and its key's index). Copied once (seconds at a million sessions)."""
    if conn.dialect.name != "sqlite":
        return
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'session_models'"
                               ).scalar() or ""
    if "WITHOUT ROWID" in sql.upper():
        return
    from .models import ModelUsageRow
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_session_models_model")
    conn.exec_driver_sql("ALTER TABLE session_models RENAME TO session_models_v9")
    ModelUsageRow.__table__.create(conn)
    cols = ", ".join(c.name for c in ModelUsageRow.__table__.columns)
    conn.exec_driver_sql(f"INSERT INTO session_models ({cols}) SELECT {cols} FROM session_models_v9")
    conn.exec_driver_sql("DROP TABLE session_models_v9")


# (version, description, upgrade from version-1). Version 1 is the first released schema.
def _v13_training(conn: Connection) -> None:
    for table in (TrainingRunRow, TrainingPointRow, TrainingTrajectoryRow):
        table.__table__.create(conn, checkfirst=True)


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (2, "per-model usage table and eval run ids", _v2_usage_and_runs),
    (3, "pool snapshots by hash, filter indexes, trigram text index", _v3_pools_indexes_text),
    (4, "model bitmask, text-index rowid, covering list indexes", _v4_list_index),
    (5, "steps.extra for Step fields without a column", _v5_step_extra),
    (6, "sessions.settings: the run settings a session ran with", _v6_session_settings),
    (7, "sessions.failure: the suggested failure kind of a wrong session", _v7_failure_kind),
    (8, "method, failure kind and calls in the list indexes; an index on text_rowid", _indexes_as_declared),
    (9, "the text_rowid index holds every list column", _indexes_as_declared),
    (10, "session_models without a rowid (one copy of each row, not two)", _v10_usage_without_rowid),
    (11, "PostgreSQL: trigram indexes under the text filter", _v11_postgres_trigrams),
    (12, "a list index led by the method", _indexes_as_declared),
    (13, "training runs: their steps and the trajectories kept or dropped", _v13_training),
]
LATEST = 1 + len(MIGRATIONS)
