"""The trace store: every session written step by step as it happens, in SQLite or any database by URL.

`TraceStore` is the one object the rest of the app talks to. It composes the connection rules
(connection.py), the schema and its migrations (models.py, migrations.py), the lookup indexes kept
at write time (indexes.py), paged queries (queries.py) and JSON-lines export/import (jsonl.py).
"""
from __future__ import annotations

import os
import socket
import time
from collections import Counter
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from sqlalchemy import BigInteger, Connection, bindparam, delete, func, insert, literal, select, update
from sqlalchemy.exc import SQLAlchemyError

from router_core.failures import failure_kind
from router_core.session import SESSION_STATUSES
from router_core.step import Step

from . import indexes, jsonl, queries
from .connection import Database, StoreError, short
from .indexes import IS_RUNNING
from .migrations import FTS_TABLE, LATEST, MIGRATIONS, create_text_index
from .models import (
    LABELS,
    SESSION_LOCAL_COLUMNS,
    AnnotationRow,
    Base,
    Meta,
    ModelUsageRow,
    PoolRow,
    SessionRow,
    StepRow,
    row_step,
    step_row,
)
from .queries import COUNT_LIMIT, LIST_COLUMNS, MAX_PAGE_SIZE, SORTABLE, Page, SessionFilter

if TYPE_CHECKING:
    import pandas as pd

STALE_OTHER_HOST_S = 6 * 3600


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


# The reads of one session, built once: composing a select costs more than running it on an indexed id
# (a replay opens with all three).
_GET_SESSION = (select(*[c for c in SessionRow.__table__.columns if c.name not in SESSION_LOCAL_COLUMNS],
                       PoolRow.snapshot.label("pool"))
                .outerjoin(PoolRow, PoolRow.hash == SessionRow.pool_hash)
                .where(SessionRow.id == bindparam("sid")))
_LOAD_STEPS = select(StepRow).where(StepRow.session_id == bindparam("sid")).order_by(StepRow.idx)
_ANNOTATIONS = (select(AnnotationRow).where(AnnotationRow.session_id == bindparam("sid"))
                .order_by(AnnotationRow.id))


class TraceStore:
    """Open a store by URL or path (default: a SQLite file in the per-user data directory)."""

    LIST_COLUMNS = LIST_COLUMNS

    def __init__(self, url: str | None = None, *, recover: bool = True) -> None:
        self.db = Database(url)
        self.url, self.where, self.is_sqlite, self.engine = self.db.url, self.db.where, self.db.is_sqlite, self.db.engine
        try:
            self._migrate()
            if recover:
                self.recover_interrupted()
        except StoreError:
            self.db.dispose()
            raise
        except SQLAlchemyError as e:
            self.db.dispose()
            raise StoreError(f"{self.where}: cannot open the trace store ({short(e)})") from None

    # ------------------------------------------------------------------ connection

    def read(self) -> AbstractContextManager[Connection]:
        """A read transaction for aggregate queries (storage.summary); failures become StoreError."""
        return self.db.read()

    def _tx(self) -> AbstractContextManager[Connection]:
        return self.db.tx()

    def _migrate(self) -> None:
        if self.db.read_only:
            with self.read() as conn:
                has = self.engine.dialect.has_table(conn, "meta") and self.engine.dialect.has_table(conn, "sessions")
                version = int(conn.execute(select(Meta.value).where(Meta.key == "schema_version")).scalar() or 0) \
                    if has else 0
            if version != LATEST:
                raise StoreError(f"{self.where}: the database is read-only and at schema version {version}, not "
                                 f"{LATEST}; open it once where it can be written (to upgrade it), or copy it")
            return
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
            with self.read() as conn:
                conn.exec_driver_sql("PRAGMA optimize")  # keep the planner's statistics current

    @property
    def has_text_index(self) -> bool:
        if not self.is_sqlite:
            return False
        if not hasattr(self, "_fts"):
            with self.read() as conn:
                self._fts = self.engine.dialect.has_table(conn, FTS_TABLE)
        return self._fts

    def schema_version(self) -> int:
        with self.read() as conn:
            return int(conn.execute(select(Meta.value).where(Meta.key == "schema_version")).scalar_one())

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> "TraceStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ writing a session

    def start_session(self, *, session_id: str, question: str, alpha: float, policy: str, engine: str,
                      pool: dict[str, Any], gold: Iterable[str] = (), dataset: str | None = None,
                      item_id: str | None = None, run_id: str | None = None,
                      settings: dict[str, Any] | None = None) -> str:
        now = time.time()
        pid = os.getpid()
        with self._tx() as conn:
            h = indexes.put_pool(conn, pool)
            conn.execute(insert(SessionRow).values(
                id=session_id, created_at=now, updated_at=now, question=question, gold=list(gold),
                dataset=dataset, item_id=item_id, run_id=run_id, policy=policy, engine=engine,
                pool_name=str(pool.get("name", "")), pool_hash=h, alpha=alpha, status="running", settings=settings,
                host=socket.gethostname(), pid=pid, pid_start=_proc_start(pid)))
        return session_id

    def append_step(self, step: Step) -> None:
        """Insert one step and update the session's rollups, committed at once."""
        usage = _usage_of(step)
        with self._tx() as conn:
            conn.execute(insert(StepRow).values(**step_row(step)))
            S = SessionRow
            end = step.ended_at or step.started_at
            mask = indexes.models_mask(conn, [usage[0]], self.where) if usage else 0
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
               error: str | None = None, failure: str | None = None) -> None:
        if status not in SESSION_STATUSES:
            raise ValueError(f"status must be one of {SESSION_STATUSES}, got '{status}'")
        with self._tx() as conn:
            was = conn.execute(select(SessionRow.status).where(SessionRow.id == session_id)).scalar()
            if was is None:
                raise KeyError(f"no session '{session_id}' in {self.where}")
            conn.execute(update(SessionRow).where(SessionRow.id == session_id).values(
                status=status, answer=answer, em=em, f1=f1, reward=reward, format_ok=format_ok, error=error,
                failure=failure, updated_at=time.time()))
            if self.has_text_index:
                if was != "running":  # finished twice (rare): refresh its entry
                    indexes.unindex_text(conn, session_id)
                indexes.index_text(conn, [session_id])

    @property
    def read_only(self) -> bool:
        """Opened from a file this process cannot write: reading works, writes raise StoreError."""
        return self.db.read_only

    def recover_interrupted(self) -> int:
        """Mark sessions left `running` by a dead process as `interrupted`; returns how many."""
        if self.db.read_only:
            return 0
        host, now = socket.gethostname(), time.time()
        with self.read() as conn:
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
                if self.has_text_index:
                    indexes.index_text(conn, dead)
        return len(dead)

    def insert_sessions(self, sessions: Sequence[jsonl.Parsed], *, conn: Connection | None = None) -> None:
        """Insert whole finished sessions (rows, steps, usage, annotations) in one transaction.

        The path for imports and for the benchmark's bulk fill: the same rollups, model bits
        and text-index entries as a session written live through start/append/finish.
        """
        if conn is None:
            with self._tx() as c:
                return self.insert_sessions(sessions, conn=c)
        rows, steps, usage, notes = [], [], [], []
        # sessions of one import or fill share a few pools and model sets: one query each, not one per session
        pools: dict[str, str] = {}
        masks: dict[frozenset[str], int] = {}
        for p in sessions:
            row = {k: v for k, v in p.session.items() if k != "pool"}
            # derived from the steps here, whatever the file says (older files have none; the rules may have grown)
            row["failure"] = None if row["status"] == "running" else \
                failure_kind(p.steps, row["question"], row.get("gold") or [])
            key = indexes.pool_hash(p.session["pool"])
            if key not in pools:
                pools[key] = indexes.put_pool(conn, p.session["pool"])
            row.update(host=None, pid=None, pid_start=None, pool_hash=pools[key])
            u = usage_rows(row["id"], p.steps)
            names = frozenset(x["model"] for x in u)
            if names not in masks:
                masks[names] = indexes.models_mask(conn, names, self.where)
            row["models_mask"] = masks[names]
            rows.append(row)
            steps += [step_row(s) for s in p.steps]
            usage += u
            notes += [{"session_id": row["id"], "step_idx": n.get("step_idx"), "label": n["label"],
                       "note": n.get("note") or "", "created_at": n.get("created_at") or time.time()}
                      for n in p.annotations]
        if rows:
            conn.execute(insert(SessionRow.__table__), rows)
        if steps:
            conn.execute(insert(StepRow.__table__), steps)
        if usage:
            conn.execute(insert(ModelUsageRow.__table__), usage)
        if notes:
            conn.execute(insert(AnnotationRow.__table__), notes)
        if self.has_text_index:
            indexes.index_text(conn, [r["id"] for r in rows if r["status"] != "running"])

    def insert_parsed(self, parsed: jsonl.Parsed, *, replace: bool = False) -> str:
        """One imported session: 'imported', 'same' (already stored alike), 'conflict' or 'replaced'."""
        sid = parsed.session["id"]
        with self._tx() as conn:
            present = conn.execute(select(SessionRow.id).where(SessionRow.id == sid)).first() is not None
        if present:
            if jsonl.same_content(parsed, self.load_session(sid)):
                return "same"
            if not replace:
                return "conflict"
        with self._tx() as conn:
            if present:
                if self.has_text_index:
                    indexes.unindex_text(conn, sid)
                conn.execute(delete(SessionRow).where(SessionRow.id == sid))
            self.insert_sessions([parsed], conn=conn)
        return "replaced" if present else "imported"

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
                indexes.unindex_text(conn, session_id)
            return conn.execute(delete(SessionRow).where(SessionRow.id == session_id)).rowcount > 0

    # ------------------------------------------------------------------ reading many

    def _where(self, conn: Connection, f: SessionFilter | None):
        return queries.where(conn, f or SessionFilter(), is_sqlite=self.is_sqlite, has_text_index=self.has_text_index)

    def list_sessions(self, filters: SessionFilter | None = None, *, sort: str = "created_at", desc: bool = True,
                      page: int = 0, page_size: int = 50, count_limit: int | None = COUNT_LIMIT) -> Page:
        """One page of sessions and how many match the filters (counting stops at `count_limit`)."""
        if sort not in SORTABLE:
            raise ValueError(f"sort must be one of {', '.join(SORTABLE)}, got '{sort}'")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        if page < 0 or page * page_size > 10 ** 12:
            raise ValueError(f"page must be 0 or more (and not absurdly large), got {page}")
        with self.read() as conn:
            p = queries.plan(conn, filters or SessionFilter(), is_sqlite=self.is_sqlite,
                             has_text_index=self.has_text_index)
            return queries.list_page(conn, p, sort=sort, desc=desc, page=page, page_size=page_size,
                                     count_limit=count_limit)

    def iter_sessions(self, filters: SessionFilter | None = None, *, chunk: int = 1000) -> Iterator[dict[str, Any]]:
        """Every matching session (the list columns), oldest first, read a chunk at a time."""
        with self.read() as conn:
            cond = self._where(conn, filters)
        yield from queries.iter_rows(self.read, cond, chunk)

    def sessions_frame(self, filters: SessionFilter | None = None) -> "pd.DataFrame":
        """All matching sessions as one DataFrame (LIST_COLUMNS), oldest first."""
        import pandas as pd
        return pd.DataFrame(list(self.iter_sessions(filters)), columns=list(LIST_COLUMNS))

    def iter_ids(self, filters: SessionFilter | None = None) -> Iterator[str]:
        for row in self.iter_sessions(filters):
            yield row["id"]

    # ------------------------------------------------------------------ reading one

    def get_session(self, session_id: str) -> dict[str, Any]:
        with self.read() as conn:
            row = conn.execute(_GET_SESSION, {"sid": session_id}).first()
        if row is None:
            raise KeyError(f"no session '{session_id}' in {self.where}")
        d = dict(row._mapping)
        d["pool"] = d["pool"] or {}
        return d

    def load_steps(self, session_id: str) -> list[Step]:
        with self.read() as conn:
            rows = conn.execute(_LOAD_STEPS, {"sid": session_id}).all()
        return [row_step(r._mapping) for r in rows]

    def refresh_failures(self, filters: SessionFilter | None = None, *, chunk: int = 500) -> Counter[tuple[str | None, str | None]]:
        """Recompute the suggested failure kind of every matching finished session from its stored steps, question
        and gold (router_core.failures, as it is now), and store the kinds that changed.

        Why: kinds are computed when a session is stored; when the rules change, older sessions keep the kinds of
        the rules they were stored under until this is run. Returns how many sessions went from each (old, new)
        kind, unchanged ones under (kind, kind); one transaction per chunk, so a stop loses nothing done."""
        out: Counter[tuple[str | None, str | None]] = Counter()
        rows = [r for r in self.iter_sessions(filters) if r["status"] != "running"]
        for i in range(0, len(rows), chunk):
            part = {r["id"]: r for r in rows[i:i + chunk]}
            steps: dict[str, list[Step]] = {sid: [] for sid in part}
            with self._tx() as conn:
                for srow in conn.execute(select(StepRow.__table__).where(StepRow.session_id.in_(list(part)))
                                         .order_by(StepRow.session_id, StepRow.idx)):
                    steps[srow.session_id].append(row_step(srow._mapping))
                updates = []
                for sid, r in part.items():
                    # a process that died mid-session is not the router's failure (as a stop is not)
                    new = None if r["status"] == "interrupted" else failure_kind(steps[sid], r["question"],
                                                                                 list(r.get("gold") or []))
                    out[(r.get("failure"), new)] += 1
                    if new != r.get("failure"):
                        updates.append({"sid": sid, "kind": new})
                if updates:
                    conn.execute(update(SessionRow).where(SessionRow.id == bindparam("sid"))
                                 .values(failure=bindparam("kind")), updates)
        return out

    def annotate_many(self, session_ids: Sequence[str], label: str, note: str = "") -> int:
        """One label on many sessions (the Explorer's filtered set), in one transaction; ids not in the store are
        skipped. Returns how many were labelled."""
        if label not in LABELS:
            raise ValueError(f"label must be one of {', '.join(LABELS)}, got '{label}'")
        now = time.time()
        with self._tx() as conn:
            present = [r[0] for i in range(0, len(session_ids), 900) for r in conn.execute(
                select(SessionRow.id).where(SessionRow.id.in_(list(session_ids[i:i + 900]))))]
            if present:
                conn.execute(insert(AnnotationRow), [{"session_id": sid, "step_idx": None, "label": label,
                                                      "note": note, "created_at": now} for sid in present])
        return len(present)

    def labels_of(self, session_ids: Sequence[str]) -> dict[str, list[str]]:
        """The labels people gave each of these sessions (whole-session and step annotations), oldest first."""
        out: dict[str, list[str]] = {}
        with self.read() as conn:
            for i in range(0, len(session_ids), 900):
                for sid, lab in conn.execute(select(AnnotationRow.session_id, AnnotationRow.label).where(
                        AnnotationRow.session_id.in_(list(session_ids[i:i + 900]))).order_by(AnnotationRow.id)):
                    out.setdefault(sid, []).append(lab)
        return out

    def annotations(self, session_id: str) -> list[dict[str, Any]]:
        with self.read() as conn:
            rows = conn.execute(_ANNOTATIONS, {"sid": session_id}).all()
        return [{k: v for k, v in r._mapping.items() if k != "id"} | {"id": r._mapping["id"]} for r in rows]

    def model_usage(self, session_id: str) -> dict[str, dict[str, float]]:
        with self.read() as conn:
            rows = conn.execute(select(ModelUsageRow).where(ModelUsageRow.session_id == session_id)).all()
        return {r._mapping["model"]: {k: r._mapping[k] for k in ("calls", "input_tokens", "output_tokens", "cost_usd")}
                for r in rows}

    def load_session(self, session_id: str) -> tuple[dict[str, Any], list[Step], list[dict[str, Any]]]:
        """Everything needed to replay a session exactly as it ran."""
        return self.get_session(session_id), self.load_steps(session_id), self.annotations(session_id)

    # ------------------------------------------------------------------ export / import

    def export_jsonl(self, out: IO[str], filters: SessionFilter | None = None) -> int:
        """Write matching sessions as JSON lines (strict JSON); returns how many."""
        return jsonl.export_jsonl(self, out, filters)

    def import_jsonl(self, lines: Iterable[bytes | str], source: str = "<input>",
                     replace: bool = False) -> jsonl.ImportReport:
        """Validate and import lines; each session whole or not at all (see storage/jsonl.py)."""
        return jsonl.import_lines(self, lines, source, replace)
