"""SQLAlchemy 2.0 tables of the trace store: sessions, steps, per-model usage, annotations.

Rollups (totals, per-model usage, EM/F1/reward) are written as steps arrive, so listing
and filtering 100k sessions never aggregates steps at query time.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

LABELS: tuple[str, ...] = ("wrong_model", "bad_decomposition", "candidate_wrong", "aggregation_error",
                           "format_error", "other")
LABEL_TEXT = {"wrong_model": "wrong model chosen", "bad_decomposition": "bad decomposition",
              "candidate_wrong": "candidate answer wrong", "aggregation_error": "aggregation error",
              "format_error": "format error", "other": "other"}
SESSION_STATUSES: tuple[str, ...] = ("running", "done", "stopped", "error", "interrupted")


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


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
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
    status: Mapped[str] = mapped_column(String(16), index=True)
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
    host: Mapped[str | None] = mapped_column(String(255))               # writer, to detect dead ones
    pid: Mapped[int | None] = mapped_column(Integer)
    pid_start: Mapped[str | None] = mapped_column(String(40))

    # Each filter has an index that also serves the page's ORDER BY created_at (see bench/store.py).
    __table_args__ = (Index("ix_sessions_status_created", "status", "created_at"),
                      Index("ix_sessions_dataset_created", "dataset", "created_at"),
                      Index("ix_sessions_run_created", "run_id", "created_at"),
                      Index("ix_sessions_em_created", "em", "created_at"),
                      Index("ix_sessions_alpha_created", "alpha", "created_at", "id"),
                      Index("ix_sessions_cost_created", "cost_usd", "created_at", "id"))


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


class ModelUsageRow(Base):
    """Per-session, per-model rollup; makes 'sessions that used model X' an index lookup."""

    __tablename__ = "session_models"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (Index("ix_session_models_model", "model", "session_id"),)


class AnnotationRow(Base):
    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    step_idx: Mapped[int | None] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_annotations_label_session", "label", "session_id"),)
