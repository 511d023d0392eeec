"""The trace store: every session written step by step as it happens, in SQLite or any database by URL.

SQLite runs in WAL mode with a busy timeout and foreign keys on; write transactions start
with BEGIN IMMEDIATE so concurrent writers queue on the busy timeout instead of failing
with "database is locked" when a read transaction tries to upgrade.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

import pandas as pd
from platformdirs import user_data_dir
from sqlalchemy import (BigInteger, ColumnElement, Connection, and_, bindparam, column, create_engine, delete, event,
                        exists, false, func, insert, literal, literal_column, or_, select, text, update)
from sqlalchemy.exc import DatabaseError, DataError, IntegrityError, OperationalError, SQLAlchemyError

from router_core.step import Choice, Step

from .migrations import FTS_TABLE, LATEST, MAX_MODEL_BITS, MIGRATIONS, create_text_index, pool_hash
from .models import (LABELS, SESSION_LOCAL_COLUMNS, SESSION_STATUSES, AnnotationRow, Base, Meta, ModelBitRow,
                     ModelUsageRow, PoolRow, SessionRow, StepRow)

EXPORT_FORMAT = "router-r1-studio/session@1"
SORTABLE = ("created_at", "cost_usd", "alpha", "em", "f1", "latency_s", "calls", "n_steps", "status", "reward")
STALE_OTHER_HOST_S = 6 * 3600
COUNT_LIMIT = 10_000
# A text filter matching at least this many sessions is searched by scanning (LIKE) instead of
# through the text index: its matches are then common enough that a page is found after a short
# walk and the capped count stops early, while fetching that many index matches costs more.
DENSE_TEXT = 20_000
SPARSE_TEXT = 1_000  # below this many matches, a text filter starts from the matching sessions' ids
# A literal, not a bound parameter, so that SQLite can use the partial index ix_sessions_running.
IS_RUNNING = SessionRow.status == literal_column("'running'")


class StoreError(RuntimeError):
    """A database that cannot be used; the message names the file or URL."""


def default_url() -> str:
    env = os.environ.get("ROUTER_STUDIO_DB")
    if env:
        return env if "://" in env else f"sqlite:///{Path(env).expanduser().resolve()}"
    d = Path(user_data_dir("router-r1-studio"))
    d.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{d / 'traces.sqlite'}"


def as_url(db: str | None) -> str:
    """`--db` accepts a URL or a plain file path."""
    if not db:
        return default_url()
    return db if "://" in db else f"sqlite:///{Path(db).expanduser().resolve()}"


def _proc_start(pid: int) -> str | None:
    """Process start time from /proc, so a recycled pid is not mistaken for the writer."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent: dead all the same
        return None
    return fields[19]


@dataclass
class SessionFilter:
    text: str | None = None
    dataset: str | None = None
    correct: bool | None = None          # EM == 1 (True) or EM == 0 (False)
    model: str | None = None             # a candidate the session called
    alpha_min: float | None = None
    alpha_max: float | None = None
    cost_min: float | None = None
    cost_max: float | None = None
    status: str | None = None
    label: str | None = None
    run_id: str | None = None
    ids: list[str] | None = None


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0                     # already present (import is idempotent by session id)
    errors: list[tuple[int, str]] = field(default_factory=list)


def _usage_of(step: Step) -> tuple[str, int, int, float] | None:
    if step.kind == "route" and step.request_model:
        return step.request_model, step.input_tokens, step.output_tokens, step.cost_usd
    return None


def usage_rows(session_id: str, steps: Iterable[Step]) -> list[dict[str, Any]]:
    """session_models rows for a whole session, as append_step would have left them."""
    usage: dict[str, list[Any]] = {}
    for step in steps:
        u = _usage_of(step)
        if u:
            agg = usage.setdefault(u[0], [0, 0, 0, 0.0])
            for i in range(3):
                agg[i + 1] += u[i + 1]
            agg[0] += 1
    return [{"session_id": session_id, "model": m, "calls": a[0], "input_tokens": a[1], "output_tokens": a[2],
             "cost_usd": a[3]} for m, a in usage.items()]


def _step_row(s: Step) -> dict[str, Any]:
    return {"session_id": s.session_id, "idx": s.index, "kind": s.kind, "turn": s.turn, "text": s.text,
            "request_model": s.request_model, "written_model": s.written_model, "query": s.query,
            "response": s.response, "input_tokens": s.input_tokens, "output_tokens": s.output_tokens,
            "router_input_tokens": s.router_input_tokens, "router_output_tokens": s.router_output_tokens,
            "cost_usd": s.cost_usd, "started_at": s.started_at, "ended_at": s.ended_at,
            "call_started_at": s.call_started_at, "call_ended_at": s.call_ended_at, "status": s.status,
            "flags": list(s.flags), "error": s.error, "choice": s.choice.to_dict() if s.choice else None,
            "decision": s.decision}


def _row_step(r: Any) -> Step:
    m = r._mapping
    return Step(session_id=m["session_id"], index=m["idx"], kind=m["kind"], turn=m["turn"], text=m["text"] or "",
                request_model=m["request_model"], written_model=m["written_model"], query=m["query"],
                response=m["response"], input_tokens=m["input_tokens"], output_tokens=m["output_tokens"],
                router_input_tokens=m["router_input_tokens"], router_output_tokens=m["router_output_tokens"],
                cost_usd=m["cost_usd"], started_at=m["started_at"], ended_at=m["ended_at"],
                call_started_at=m["call_started_at"], call_ended_at=m["call_ended_at"], status=m["status"],
                flags=list(m["flags"] or []), error=m["error"],
                choice=Choice.from_dict(m["choice"]) if m["choice"] else None, decision=m["decision"])


class TraceStore:
    """Open a store by URL (default: a SQLite file in the per-user data directory)."""

    def __init__(self, url: str | None = None, *, recover: bool = True) -> None:
        self.url = as_url(url)
        self.where = self.url
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self._check_sqlite_file()
            self.engine = create_engine(self.url, connect_args={"timeout": 30, "check_same_thread": False},
                                        pool_size=8, max_overflow=8)
            event.listen(self.engine, "connect", self._sqlite_connect)
            event.listen(self.engine, "begin", self._sqlite_begin)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True)
        try:
            self._migrate()
            if recover:
                self.recover_interrupted()
        except StoreError:
            self.engine.dispose()
            raise
        except (OperationalError, DatabaseError) as e:
            self.engine.dispose()
            raise StoreError(f"{self.where}: cannot open the trace store ({_short(e)})") from None

    # ------------------------------------------------------------------ connection setup

    def _check_sqlite_file(self) -> None:
        path = self.url.split(":///", 1)[1] if ":///" in self.url else ""
        if not path or path == ":memory:":
            return
        p = Path(path)
        self.where = str(p)
        try:
            present = p.exists()
            if present:
                with open(p, "rb") as f:
                    head = f.read(16)
        except OSError as e:
            raise StoreError(f"{p}: cannot read the database ({e.strerror or e})") from None
        if present:
            if head and head != b"SQLite format 3\x00":
                raise StoreError(f"{p}: not a SQLite database (corrupt, or another kind of file)")
            if not os.access(p, os.W_OK) or not os.access(p.parent, os.W_OK):
                raise StoreError(f"{p}: the database file (or its folder) is read-only; "
                                 "the store needs to write it (and its -wal file)")
        elif not p.parent.exists():
            raise StoreError(f"{p}: folder {p.parent} does not exist")
        elif not os.access(p.parent, os.W_OK):
            raise StoreError(f"{p}: cannot create the database, folder {p.parent} is read-only")

    @staticmethod
    def _sqlite_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA cache_size = -32768")  # 32 MiB, on demand: the list index of 100k sessions stays cached
        cur.close()

    @staticmethod
    def _sqlite_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite); database failures name the file."""
        try:
            with self.engine.connect().execution_options(write=True) as conn, conn.begin():
                yield conn
        except (IntegrityError, DataError):
            raise  # bad data: the caller decides (import reports the line)
        except (OperationalError, DatabaseError) as e:
            raise StoreError(f"{self.where}: write failed ({_short(e)})") from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except (OperationalError, DatabaseError) as e:
            raise StoreError(f"{self.where}: read failed ({_short(e)})") from None

    def _migrate(self) -> None:
        with self._tx() as conn:
            Meta.__table__.create(conn, checkfirst=True)
            row = conn.execute(select(Meta.value).where(Meta.key == "schema_version")).scalar()
            has_sessions = self.engine.dialect.has_table(conn, "sessions")
            if row is None and not has_sessions:
                Base.metadata.create_all(conn)
                create_text_index(conn)
                conn.execute(insert(Meta).values(key="schema_version", value=str(LATEST)))
                return
            version = int(row) if row is not None else 1
            if version > LATEST:
                raise StoreError(f"{self.where}: schema version {version} is newer than this code knows "
                                 f"({LATEST}); upgrade Router-R1 Studio to open it")
        for target, _desc, upgrade in MIGRATIONS:
            if target <= version:
                continue
            with self._tx() as conn:
                upgrade(conn)
                conn.execute(delete(Meta).where(Meta.key == "schema_version"))
                conn.execute(insert(Meta).values(key="schema_version", value=str(target)))
            version = target
        if self.is_sqlite:
            with self._read() as conn:
                conn.exec_driver_sql("PRAGMA optimize")  # keep the planner's statistics current

    @property
    def has_text_index(self) -> bool:
        if not self.is_sqlite:
            return False
        if not hasattr(self, "_fts"):
            with self._read() as conn:
                self._fts = self.engine.dialect.has_table(conn, FTS_TABLE)
        return self._fts

    def _index_text(self, conn: Any, session_ids: list[str]) -> None:
        """Add sessions that just left `running` to the text index (their answer is final now).

        Callers index a session exactly once, on that transition (or after _unindex_text), so no
        delete is needed here. Each session keeps its index rowid in sessions.text_rowid: a search
        then matches sessions by integer, and a delete finds its index row directly (`id` is not
        an indexed FTS column). Writers are serialized (BEGIN IMMEDIATE), so the rows above the
        previous largest rowid are exactly the ones inserted here.
        """
        if not self.has_text_index or not session_ids:
            return
        last = conn.execute(text(f"SELECT rowid FROM {FTS_TABLE} ORDER BY rowid DESC LIMIT 1")).scalar() or 0
        conn.execute(text(f"INSERT INTO {FTS_TABLE} (id, question, answer) SELECT id, question, "
                          "coalesce(answer, '') FROM sessions WHERE id = :id"), [{"id": i} for i in session_ids])
        added = conn.execute(text(f"SELECT rowid, id FROM {FTS_TABLE} WHERE rowid > :last"), {"last": last}).all()
        if added:
            conn.execute(update(SessionRow).where(SessionRow.id == bindparam("sid"))
                         .values(text_rowid=bindparam("rid")), [{"sid": i, "rid": r} for r, i in added])

    def _unindex_text(self, conn: Any, session_id: str) -> None:
        conn.execute(text(f"DELETE FROM {FTS_TABLE} WHERE rowid = "
                          "(SELECT text_rowid FROM sessions WHERE id = :id)"), {"id": session_id})
        conn.execute(update(SessionRow).where(SessionRow.id == session_id).values(text_rowid=None))

    def _models_mask(self, conn: Any, models: Iterable[str]) -> int:
        """sessions.models_mask bits for these models, giving a bit to each model not seen before.

        A model's bit never changes once given. Past MAX_MODEL_BITS models a new one gets no
        bit (NULL) and filters on it use session_models instead.
        """
        names = set(models)
        B = ModelBitRow
        known: dict[str, int | None] = dict(conn.execute(select(B.model, B.bit).where(B.model.in_(names))).all()) \
            if names else {}
        for name in sorted(names - known.keys()):
            for _ in range(5):  # another writer (PostgreSQL) may take the same bit or model first
                top = conn.execute(select(func.max(B.bit))).scalar()
                bit = 0 if top is None else top + 1
                try:
                    with conn.begin_nested():
                        conn.execute(insert(B).values(model=name, bit=bit if bit < MAX_MODEL_BITS else None))
                    known[name] = bit if bit < MAX_MODEL_BITS else None
                    break
                except IntegrityError:
                    got = conn.execute(select(B.bit).where(B.model == name)).first()
                    if got is not None:
                        known[name] = got[0]
                        break
            else:
                raise StoreError(f"{self.where}: could not register model '{name}' in model_bits")
        return sum(1 << b for b in known.values() if b is not None)

    def _put_pool(self, conn: Any, snapshot: dict[str, Any]) -> str:
        h = pool_hash(snapshot)
        if conn.execute(select(PoolRow.hash).where(PoolRow.hash == h)).first() is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(PoolRow).values(hash=h, name=str(snapshot.get("name", "")), snapshot=snapshot))
            except SQLAlchemyError:
                pass  # another writer stored the same snapshot first
        return h

    def schema_version(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(Meta.value).where(Meta.key == "schema_version")).scalar_one())

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "TraceStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ writing a session

    def start_session(self, *, session_id: str, question: str, alpha: float, policy: str, engine: str,
                      pool: dict[str, Any], gold: Iterable[str] = (), dataset: str | None = None,
                      item_id: str | None = None, run_id: str | None = None) -> str:
        now = time.time()
        pid = os.getpid()
        with self._tx() as conn:
            h = self._put_pool(conn, pool)
            conn.execute(insert(SessionRow).values(
                id=session_id, created_at=now, updated_at=now, question=question, gold=list(gold),
                dataset=dataset, item_id=item_id, run_id=run_id, policy=policy, engine=engine,
                pool_name=str(pool.get("name", "")), pool_hash=h, alpha=alpha, status="running",
                host=socket.gethostname(), pid=pid, pid_start=_proc_start(pid)))
        return session_id

    def append_step(self, step: Step) -> None:
        """Insert one step and update the session's rollups, committed at once."""
        usage = _usage_of(step)
        with self._tx() as conn:
            conn.execute(insert(StepRow).values(**_step_row(step)))
            S = SessionRow
            end = step.ended_at or step.started_at
            mask = self._models_mask(conn, [usage[0]]) if usage else 0
            conn.execute(update(S).where(S.id == step.session_id).values(
                updated_at=time.time(), n_steps=S.n_steps + 1, cost_usd=S.cost_usd + step.cost_usd,
                input_tokens=S.input_tokens + step.input_tokens, output_tokens=S.output_tokens + step.output_tokens,
                router_tokens=S.router_tokens + step.router_input_tokens + step.router_output_tokens,
                calls=S.calls + (1 if usage else 0), models_mask=S.models_mask.op("|")(literal(mask, BigInteger)),
                latency_s=func.max(S.latency_s, end - S.created_at) if self.is_sqlite
                else func.greatest(S.latency_s, end - S.created_at)))
            if usage:
                model, it, ot, cost = usage
                U = ModelUsageRow
                n = conn.execute(update(U).where(U.session_id == step.session_id, U.model == model).values(
                    calls=U.calls + 1, input_tokens=U.input_tokens + it, output_tokens=U.output_tokens + ot,
                    cost_usd=U.cost_usd + cost)).rowcount
                if not n:
                    conn.execute(insert(U).values(session_id=step.session_id, model=model, calls=1,
                                                  input_tokens=it, output_tokens=ot, cost_usd=cost))

    def finish(self, session_id: str, *, status: str, answer: str | None = None, em: float | None = None,
               f1: float | None = None, reward: float | None = None, format_ok: bool | None = None,
               error: str | None = None) -> None:
        if status not in SESSION_STATUSES:
            raise ValueError(f"status must be one of {SESSION_STATUSES}, got '{status}'")
        with self._tx() as conn:
            was = conn.execute(select(SessionRow.status).where(SessionRow.id == session_id)).scalar()
            if was is None:
                raise KeyError(f"no session '{session_id}' in {self.where}")
            conn.execute(update(SessionRow).where(SessionRow.id == session_id).values(
                status=status, answer=answer, em=em, f1=f1, reward=reward, format_ok=format_ok, error=error,
                updated_at=time.time()))
            if was == "running":
                self._index_text(conn, [session_id])
            elif self.has_text_index:  # finished twice (rare): refresh its entry
                self._unindex_text(conn, session_id)
                self._index_text(conn, [session_id])

    def recover_interrupted(self) -> int:
        """Mark sessions left `running` by a dead process as `interrupted`; returns how many."""
        host, now = socket.gethostname(), time.time()
        with self._read() as conn:
            rows = conn.execute(select(SessionRow.id, SessionRow.host, SessionRow.pid, SessionRow.pid_start,
                                       SessionRow.updated_at).where(IS_RUNNING)).all()
        dead = []
        for sid, h, pid, start, updated in rows:
            if h == host:
                if pid is None or _proc_start(pid) is None or _proc_start(pid) != start:
                    dead.append(sid)
            elif now - (updated or 0) > STALE_OTHER_HOST_S:
                dead.append(sid)
        if dead:
            with self._tx() as conn:
                conn.execute(update(SessionRow).where(SessionRow.id.in_(dead), IS_RUNNING)
                             .values(status="interrupted", error="the writing process died mid-session"))
                self._index_text(conn, dead)
        return len(dead)

    # ------------------------------------------------------------------ annotations and deletion

    def annotate(self, session_id: str, label: str, note: str = "", step_idx: int | None = None) -> int:
        if label not in LABELS:
            raise ValueError(f"label must be one of {', '.join(LABELS)}, got '{label}'")
        with self._tx() as conn:
            if conn.execute(select(SessionRow.id).where(SessionRow.id == session_id)).first() is None:
                raise KeyError(f"no session '{session_id}' in {self.where}")
            if step_idx is not None and conn.execute(select(StepRow.idx).where(
                    StepRow.session_id == session_id, StepRow.idx == step_idx)).first() is None:
                raise KeyError(f"session '{session_id}' has no step {step_idx}")
            return int(conn.execute(insert(AnnotationRow).values(
                session_id=session_id, step_idx=step_idx, label=label, note=note, created_at=time.time())
            ).inserted_primary_key[0])

    def delete(self, session_id: str) -> bool:
        with self._tx() as conn:
            if self.has_text_index:
                self._unindex_text(conn, session_id)
            return conn.execute(delete(SessionRow).where(SessionRow.id == session_id)).rowcount > 0

    # ------------------------------------------------------------------ reading

    def _where(self, conn: Connection, f: SessionFilter) -> ColumnElement[bool] | None:
        """The filters as one condition; `conn` looks up model bits and text-index matches.

        Plain column tests come first and set lookups (text, label, ids) last: SQLite tests the
        terms in this order, so most rows are ruled out before the dearer probes.
        """
        S = SessionRow
        conds: list[ColumnElement[bool]] = []
        if f.dataset:
            conds.append(S.dataset == f.dataset)
        if f.correct is not None:
            conds.append(S.em == (1.0 if f.correct else 0.0))
        if f.status:
            conds.append(S.status == f.status)
        if f.run_id:
            conds.append(S.run_id == f.run_id)
        if f.alpha_min is not None:
            conds.append(S.alpha >= f.alpha_min)
        if f.alpha_max is not None:
            conds.append(S.alpha <= f.alpha_max)
        if f.cost_min is not None:
            conds.append(S.cost_usd >= f.cost_min)
        if f.cost_max is not None:
            conds.append(S.cost_usd <= f.cost_max)
        if f.model:
            conds.append(self._model_cond(conn, f.model))
        if f.text:
            conds.append(self._text_cond(conn, f.text))
        if f.label:
            conds.append(S.id.in_(select(AnnotationRow.session_id).where(AnnotationRow.label == f.label)))
        if f.ids is not None:
            conds.append(S.id.in_(f.ids))
        return and_(*conds) if conds else None

    @staticmethod
    def _model_cond(conn: Connection, model: str) -> ColumnElement[bool]:
        """A bit test on sessions.models_mask: no join, and evaluated on the list index alone."""
        bit = conn.execute(select(ModelBitRow.bit).where(ModelBitRow.model == model)).scalar()
        if bit is None:  # no bit (past the 63rd model, or never called): ask session_models
            return exists().where(ModelUsageRow.session_id == SessionRow.id, ModelUsageRow.model == model)
        return SessionRow.models_mask.op("&")(literal(1 << bit, BigInteger)) != 0

    @staticmethod
    def _phrase(needle: str) -> str:
        return '"' + needle.replace('"', '""') + '"'

    def _uses_text_index(self, needle: str | None) -> bool:
        return bool(needle) and self.has_text_index and len(needle) >= 3

    def _text_cond(self, conn: Connection, needle: str) -> ColumnElement[bool]:
        """Substring search in question and answer: trigram FTS5 on SQLite, ILIKE elsewhere.

        The index is asked once, here, and its answer bound into the query, by how many match:
          * fewer than SPARSE_TEXT: their session ids, so the query starts from those rows;
          * fewer than DENSE_TEXT: their index rowids, tested against sessions.text_rowid while
            walking the list index (fetching that many ids, then rows, costs more);
          * more: LIKE, as without the index: the matches are then common enough that a page is
            found after a short walk and the capped count stops early (bench/store.py).
        Running sessions are not in the index yet; they are few and searched with LIKE.
        """
        S = SessionRow
        like = self._like(needle)
        if not self._uses_text_index(needle):
            return like
        match = {"q": self._phrase(needle)}
        rowids = conn.execute(text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :q LIMIT :n"),
                              {**match, "n": DENSE_TEXT}).scalars().all()
        if len(rowids) >= DENSE_TEXT:
            return like
        running = conn.execute(select(S.id).where(IS_RUNNING, like)).scalars().all()
        if len(rowids) >= SPARSE_TEXT:
            return or_(_in_json(S.text_rowid, rowids), _in_json(S.id, running))
        ids = conn.execute(text(f"SELECT id FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :q"), match).scalars().all()
        return _in_json(S.id, [*ids, *running])

    def _like(self, needle: str) -> ColumnElement[bool]:
        """`needle` anywhere in question or answer, ignoring case, wildcards taken literally."""
        S = SessionRow
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if self.is_sqlite:  # SQLite's LIKE already ignores (ASCII) case, as its lower() does: skip ilike's lower()
            return or_(S.question.like(pattern, escape="\\"), func.coalesce(S.answer, "").like(pattern, escape="\\"))
        return or_(S.question.ilike(pattern, escape="\\"), func.coalesce(S.answer, "").ilike(pattern, escape="\\"))

    LIST_COLUMNS = ("id", "created_at", "status", "question", "answer", "em", "f1", "reward", "alpha", "cost_usd",
                    "calls", "n_steps", "latency_s", "input_tokens", "output_tokens", "router_tokens", "dataset",
                    "item_id", "run_id", "policy", "pool_name")

    def list_sessions(self, filters: SessionFilter | None = None, *, sort: str = "created_at", desc: bool = True,
                      page: int = 0, page_size: int = 50,
                      count_limit: int | None = COUNT_LIMIT) -> tuple[pd.DataFrame, int]:
        """One page of sessions as a DataFrame, and how many sessions match the filters.

        Counting stops after `count_limit` matches (the page itself stops after one page), so
        a broad filter over a large store stays fast; then the total is `count_limit` and
        `df.attrs["total_capped"]` is True ("10,000+"). `count_limit=None` counts exactly.
        Every filter column is in ix_sessions_list, so on SQLite both queries walk that one index
        and read no table rows (but for a LIKE text search), whatever the mix of filters.
        """
        if sort not in SORTABLE:
            raise ValueError(f"sort must be one of {', '.join(SORTABLE)}, got '{sort}'")
        f = filters or SessionFilter()
        S = SessionRow
        cols = [getattr(S, c) for c in self.LIST_COLUMNS]
        order = getattr(S, sort)
        ordering = (order.desc() if desc else order.asc(), S.id)
        with self._read() as conn:
            where = self._where(conn, f)
            # Deferred join: find the page's ids on narrow index entries, then fetch those rows.
            ids = select(S.id)
            matching = select(literal(1)).select_from(S)
            if where is not None:
                ids = ids.where(where)
                matching = matching.where(where)
            ids = ids.order_by(*ordering).limit(page_size).offset(page * page_size)
            if count_limit is not None:
                matching = matching.limit(count_limit)
            rows = conn.execute(select(*cols).where(S.id.in_(ids)).order_by(*ordering)).all()
            total = int(conn.execute(select(func.count()).select_from(matching.subquery())).scalar_one())
        df = pd.DataFrame([r._mapping for r in rows], columns=list(self.LIST_COLUMNS))
        df.attrs["total_capped"] = count_limit is not None and total >= count_limit
        return df, total

    def get_session(self, session_id: str) -> dict[str, Any]:
        with self._read() as conn:
            cols = [c for c in SessionRow.__table__.columns if c.name not in SESSION_LOCAL_COLUMNS]
            row = conn.execute(select(*cols, PoolRow.snapshot.label("pool"))
                               .outerjoin(PoolRow, PoolRow.hash == SessionRow.pool_hash)
                               .where(SessionRow.id == session_id)).first()
        if row is None:
            raise KeyError(f"no session '{session_id}' in {self.where}")
        d = dict(row._mapping)
        d["pool"] = d["pool"] or {}
        return d

    def load_steps(self, session_id: str) -> list[Step]:
        with self._read() as conn:
            rows = conn.execute(select(StepRow).where(StepRow.session_id == session_id).order_by(StepRow.idx)).all()
        return [_row_step(r) for r in rows]

    def annotations(self, session_id: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(select(AnnotationRow).where(AnnotationRow.session_id == session_id)
                                .order_by(AnnotationRow.id)).all()
        return [{k: v for k, v in r._mapping.items() if k != "id"} | {"id": r._mapping["id"]} for r in rows]

    def model_usage(self, session_id: str) -> dict[str, dict[str, float]]:
        with self._read() as conn:
            rows = conn.execute(select(ModelUsageRow).where(ModelUsageRow.session_id == session_id)).all()
        return {r._mapping["model"]: {k: r._mapping[k] for k in ("calls", "input_tokens", "output_tokens", "cost_usd")}
                for r in rows}

    def load_session(self, session_id: str) -> tuple[dict[str, Any], list[Step], list[dict[str, Any]]]:
        """Everything needed to replay a session exactly as it ran."""
        return self.get_session(session_id), self.load_steps(session_id), self.annotations(session_id)

    # ------------------------------------------------------------------ export / import

    def iter_ids(self, filters: SessionFilter | None = None, batch: int = 500) -> Iterator[str]:
        with self._read() as conn:
            where = self._where(conn, filters or SessionFilter())
            q = select(SessionRow.id).order_by(SessionRow.created_at, SessionRow.id)
            if where is not None:
                q = q.where(where)
            ids = [r[0] for r in conn.execute(q)]
        yield from ids

    def export_jsonl(self, out: IO[str], filters: SessionFilter | None = None) -> int:
        n = 0
        for sid in self.iter_ids(filters):
            sess, steps, notes = self.load_session(sid)
            rec = {"format": EXPORT_FORMAT, "session": sess, "model_usage": self.model_usage(sid),
                   "steps": [s.to_dict() for s in steps], "annotations": notes}
            out.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
            n += 1
        return n

    def import_jsonl(self, lines: Iterable[str], source: str = "<input>") -> ImportReport:
        """Idempotent by session id; each session is imported whole or not at all."""
        rep = ImportReport()
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict) or rec.get("format") != EXPORT_FORMAT:
                    raise ValueError(f"not a session record (expected format '{EXPORT_FORMAT}')")
                sess, steps, notes = rec["session"], rec.get("steps") or [], rec.get("annotations") or []
                sid = sess["id"]
                if not isinstance(sid, str) or not sid:
                    raise ValueError("session.id must be a non-empty string")
                step_objs = [Step.from_dict({**s, "session_id": sid}) for s in steps]
                if [s.index for s in step_objs] != list(range(len(step_objs))):
                    raise ValueError("steps must be numbered 0..n-1 in order")
                for n in notes:
                    if n.get("label") not in LABELS:
                        raise ValueError(f"annotation label '{n.get('label')}' is not one of {', '.join(LABELS)}")
                cols = {c.name for c in SessionRow.__table__.columns} - set(SESSION_LOCAL_COLUMNS)
                row = {k: v for k, v in sess.items() if k in cols}
                missing = {"question", "alpha", "status", "created_at", "policy", "engine"} - set(row)
                if not isinstance(sess.get("pool"), dict):
                    missing.add("pool")
                if missing:
                    raise ValueError(f"session lacks field(s) {', '.join(sorted(missing))}")
                if row["status"] not in SESSION_STATUSES:
                    raise ValueError(f"session.status '{row['status']}' is not one of {', '.join(SESSION_STATUSES)}")
                row.setdefault("updated_at", row["created_at"])
                row.setdefault("pool_name", str(sess["pool"].get("name", "")))
                row.update(host=None, pid=None, pid_start=None)
            except (ValueError, KeyError, TypeError) as e:
                msg = str(e) if not isinstance(e, KeyError) else f"missing field {e}"
                rep.errors.append((no, f"{source}:{no}: {msg}"))
                continue
            try:
                with self._tx() as conn:
                    if conn.execute(select(SessionRow.id).where(SessionRow.id == sid)).first() is not None:
                        rep.skipped += 1
                        continue
                    row["pool_hash"] = self._put_pool(conn, sess["pool"])
                    usage = usage_rows(sid, step_objs)
                    row["models_mask"] = self._models_mask(conn, [u["model"] for u in usage])
                    conn.execute(insert(SessionRow).values(**row))
                    if step_objs:
                        conn.execute(insert(StepRow), [_step_row(s) for s in step_objs])
                    if usage:
                        conn.execute(insert(ModelUsageRow), usage)
                    if row["status"] != "running":
                        self._index_text(conn, [sid])
                    for n in notes:
                        conn.execute(insert(AnnotationRow).values(
                            session_id=sid, step_idx=n.get("step_idx"), label=n["label"], note=n.get("note") or "",
                            created_at=n.get("created_at") or time.time()))
                rep.imported += 1
            except SQLAlchemyError as e:
                rep.errors.append((no, f"{source}:{no}: rejected by the database ({_short(e)})"))
        return rep


def _in_json(col: Any, values: list[Any]) -> ColumnElement[bool]:
    """`col IN values` on SQLite, bound as one JSON parameter rather than one variable per value."""
    if not values:
        return false()
    return col.in_(select(column("value")).select_from(func.json_each(json.dumps(values))))


def _short(e: Exception) -> str:
    orig = getattr(e, "orig", None)
    return str(orig or e).splitlines()[0][:200]
