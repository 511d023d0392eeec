"""SQLAlchemy 2.0 tables of the trace store: sessions, steps, per-model usage, annotations.

Rollups (totals, per-model usage, EM/F1/reward) are written as steps arrive, so listing
and filtering 100k sessions never aggregates steps at query time.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from router_core.step import DERIVED, Step

LABELS: tuple[str, ...] = ("wrong_model", "bad_decomposition", "candidate_wrong", "aggregation_error",
                           "format_error", "other")
LABEL_TEXT = {"wrong_model": "wrong model chosen", "bad_decomposition": "bad decomposition",
              "candidate_wrong": "candidate answer wrong", "aggregation_error": "aggregation error",
              "format_error": "format error", "other": "other"}


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class PoolRow(Base):
    """Pool snapshots, stored once per distinct content (sessions refer to them by hash)."""

    __tablename__ = "pools"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)


LIST_INDEX_COLUMNS = ("created_at", "id", "status", "dataset", "em", "alpha", "cost_usd", "models_mask", "run_id",
                      "text_rowid", "policy", "failure", "calls")


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    question: Mapped[str] = mapped_column(Text)
    gold: Mapped[list[Any]] = mapped_column(JSON, default=list)
    dataset: Mapped[str | None] = mapped_column(String(200))
    item_id: Mapped[str | None] = mapped_column(String(200))
    run_id: Mapped[str | None] = mapped_column(String(64))   # eval run tag
    policy: Mapped[str] = mapped_column(String(200))
    engine: Mapped[str] = mapped_column(String(40))
    pool_name: Mapped[str] = mapped_column(String(200))
    pool_hash: Mapped[str | None] = mapped_column(ForeignKey("pools.hash"))  # snapshot, no secrets
    alpha: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    answer: Mapped[str | None] = mapped_column(Text)
    em: Mapped[float | None] = mapped_column(Float)
    f1: Mapped[float | None] = mapped_column(Float)
    reward: Mapped[float | None] = mapped_column(Float)
    format_ok: Mapped[bool | None] = mapped_column()
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)       # candidate tokens
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    router_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    n_steps: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # the run settings this session ran with: {"interventions": [names], "run": {settings off their defaults}}
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # why a finished wrong session is wrong, suggested from its steps and gold (router_core.failures); people's
    # labels (annotations) say otherwise where they disagree
    failure: Mapped[str | None] = mapped_column(String(32))
    host: Mapped[str | None] = mapped_column(String(255))               # writer, to detect dead ones
    pid: Mapped[int | None] = mapped_column(Integer)
    pid_start: Mapped[str | None] = mapped_column(String(40))
    # One bit per model called (bits from model_bits), so "used model X" needs no join.
    models_mask: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # This session's row in the SQLite text index (an integer: the index hands back rowids, not ids).
    text_rowid: Mapped[int | None] = mapped_column(Integer)

    # ix_sessions_list holds every filter column in newest-first order: a page walks it and stops
    # after one page, and a count never reads more than this one narrow index, whatever the mix
    # of filters (per-filter indexes let the planner pick plans that read most of the table).
    # ix_sessions_status_list is the same led by status, so "only failed sessions" reads only those.
    __table_args__ = (Index("ix_sessions_list", *LIST_INDEX_COLUMNS),
                      Index("ix_sessions_status_list", "status", *(c for c in LIST_INDEX_COLUMNS if c != "status")),
                      # the same led by the suggested failure kind, over wrong sessions only: a rare kind is found
                      # (and counted) among its own sessions, not by a pass over every session
                      Index("ix_sessions_failure_list", "failure", *(c for c in LIST_INDEX_COLUMNS if c != "failure"),
                            sqlite_where=text("failure IS NOT NULL"), postgresql_where=text("failure IS NOT NULL")),
                      # and led by the eval run, over eval sessions only: a run is a few hundred of a million
                      Index("ix_sessions_run_list", "run_id", *(c for c in LIST_INDEX_COLUMNS if c != "run_id"),
                            sqlite_where=text("run_id IS NOT NULL"), postgresql_where=text("run_id IS NOT NULL")),
                      # and led by the method (policy): a baseline is a tenth of an eval run's sessions, found and
                      # counted among its own, not by a walk that tests the whole store
                      Index("ix_sessions_method_list", "policy", *(c for c in LIST_INDEX_COLUMNS if c != "policy")),
                      # a text filter's matches (index rowids) → their sessions, without walking the list index;
                      # with every list column, so other filters and the order are tested without reading a row
                      Index("ix_sessions_text_rowid", "text_rowid",
                            *(c for c in LIST_INDEX_COLUMNS if c != "text_rowid")),
                      Index("ix_sessions_running", "id", sqlite_where=text("status = 'running'"),
                            postgresql_where=text("status = 'running'")))


# Columns that only mean something inside one database file: never shown, exported or imported.
SESSION_LOCAL_COLUMNS: tuple[str, ...] = ("host", "pid", "pid_start", "pool_hash", "models_mask", "text_rowid")


class StepRow(Base):
    __tablename__ = "steps"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    turn: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text, default="")
    request_model: Mapped[str | None] = mapped_column(String(200))
    written_model: Mapped[str | None] = mapped_column(String(200))
    query: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    router_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    router_output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    call_started_at: Mapped[float | None] = mapped_column(Float)
    call_ended_at: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    choice: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Step fields that have no column of their own (added after this schema): a new Step field
    # is stored, exported and imported without a migration.
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)


STEP_COLUMNS = frozenset(c.name for c in StepRow.__table__.columns) - {"idx", "extra"}


def step_row(step: Step) -> dict[str, Any]:
    """A Step as a `steps` row, from the codec (`Step.to_dict`): fields without a column go to `extra`
    (those left empty are not written: reading them back gives the same default)."""
    d = step.to_dict()
    for k in DERIVED:
        d.pop(k, None)
    row: dict[str, Any] = {"idx": d.pop("index")}
    extra = {k: v for k in list(d) if k not in STEP_COLUMNS and (v := d.pop(k)) is not None}
    row.update(d)
    row["extra"] = extra or None
    return row


def row_step(mapping: Any) -> Step:
    """A `steps` row back into a Step (the inverse of step_row)."""
    d = dict(mapping)
    d["index"] = d.pop("idx")
    d.update(d.pop("extra", None) or {})
    return Step.from_dict(d)


class ModelUsageRow(Base):
    """Per-session, per-model rollup; makes 'sessions that used model X' an index lookup."""

    __tablename__ = "session_models"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)

    # WITHOUT ROWID (SQLite): the rows live in their primary-key tree, not in a table plus a copy of the key
    __table_args__ = (Index("ix_session_models_model", "model", "session_id"), {"sqlite_with_rowid": False})


class ModelBitRow(Base):
    """Which bit of sessions.models_mask stands for which model (assigned once, never reused).

    Bits 0-62 fit a signed 64-bit integer; a model past the 63rd gets no bit (NULL) and its
    filter falls back to session_models.
    """

    __tablename__ = "model_bits"
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    bit: Mapped[int | None] = mapped_column(Integer, unique=True)


class AnnotationRow(Base):
    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    step_idx: Mapped[int | None] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_annotations_label_session", "label", "session_id"),)


class TrainingRunRow(Base):
    """One `app.py train` run: what it trains on and with, its status as it goes, and its card once done."""

    __tablename__ = "training_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20))        # running | done | error | interrupted
    base: Mapped[str] = mapped_column(String(500))
    out_dir: Mapped[str | None] = mapped_column(Text)
    source_runs: Mapped[list[Any]] = mapped_column(JSON, default=list)   # the eval runs trained on
    alphas: Mapped[list[Any]] = mapped_column(JSON, default=list)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    max_steps: Mapped[int | None] = mapped_column(Integer)
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)


class TrainingPointRow(Base):
    """One optimizer step of a training run: the curves the Training tab draws."""

    __tablename__ = "training_points"

    run_id: Mapped[str] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[float] = mapped_column(Float)
    loss: Mapped[float] = mapped_column(Float)
    learning_rate: Mapped[float] = mapped_column(Float)
    tokens: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)


class TrainingTrajectoryRow(Base):
    """A trajectory (a stored session) at one training α: kept or dropped, why, and its reward's terms there."""

    __tablename__ = "training_trajectories"

    run_id: Mapped[str] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    alpha: Mapped[float] = mapped_column(Float, primary_key=True)
    reason: Mapped[str] = mapped_column(String(20))
    kept: Mapped[bool] = mapped_column()
    reward: Mapped[float] = mapped_column(Float)
    em: Mapped[float] = mapped_column(Float)
    r_cost: Mapped[float] = mapped_column(Float)
    format_ok: Mapped[bool] = mapped_column()
    raw_cost: Mapped[float] = mapped_column(Float)
    source_alpha: Mapped[float] = mapped_column(Float)     # the α the session ran at
    source_run: Mapped[str | None] = mapped_column(String(64))  # the collected run it came from (its round)
    policy: Mapped[str | None] = mapped_column(String(200))     # who ran it: the teacher, or a trained policy
    dataset: Mapped[str | None] = mapped_column(String(200))
    item_id: Mapped[str | None] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    models: Mapped[list[Any]] = mapped_column(JSON, default=list)
