"""Aggregates over many sessions for the explorer's summary charts and filter pickers."""
from __future__ import annotations

from typing import Sequence

from sqlalchemy import ColumnElement, Connection, func, select

from .models import ModelUsageRow, SessionRow
from .store import TraceStore

IN_CHUNK = 900  # stay under SQLite's bound-parameter limit on old builds


def usage_by_model(store: TraceStore, session_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    """Calls, tokens and dollars per candidate model, summed over the given sessions."""
    U = ModelUsageRow
    out: dict[str, dict[str, float]] = {}
    with store.read() as conn:
        for i in range(0, len(session_ids), IN_CHUNK):
            chunk = list(session_ids[i:i + IN_CHUNK])
            rows = conn.execute(select(U.model, func.sum(U.calls), func.sum(U.input_tokens), func.sum(U.output_tokens),
                                       func.sum(U.cost_usd)).where(U.session_id.in_(chunk)).group_by(U.model)).all()
            for model, calls, tin, tout, cost in rows:
                acc = out.setdefault(model, {"calls": 0.0, "input_tokens": 0.0, "output_tokens": 0.0, "cost_usd": 0.0})
                acc["calls"] += calls or 0
                acc["input_tokens"] += tin or 0
                acc["output_tokens"] += tout or 0
                acc["cost_usd"] += cost or 0.0
    return out


def distinct_values(store: TraceStore) -> dict[str, list[str]]:
    """Datasets, models, run ids and policies (methods) present in the store (for filter drop-downs; read again
    whenever the Explorer is shown, so it must stay cheap at a million sessions)."""
    S, U = SessionRow, ModelUsageRow
    with store.read() as conn:
        datasets = [r[0] for r in conn.execute(select(S.dataset).distinct().where(S.dataset.is_not(None)))]
        models = skip_scan(conn, U.model)
        # run ids: a plain DISTINCT walks their partial index in order (1,583 seeks took twice as long at 1M)
        runs = [r[0] for r in conn.execute(select(S.run_id).distinct().where(S.run_id.is_not(None)))]
        policies = skip_scan(conn, S.policy)
    return {"datasets": sorted(datasets), "models": models, "run_ids": sorted(runs), "policies": policies}


def skip_scan(conn: Connection, col: ColumnElement) -> list[str]:
    """The distinct non-null values of an indexed column, in order, one index seek each (a recursive query: the next
    value is the least one above the last). A plain DISTINCT reads every row: 0.13 s for the models at a million
    sessions, where this takes milliseconds. Only for a column with few values that an index leads with."""
    d = select(func.min(col).label("v")).cte("d", recursive=True)
    d = d.union_all(select(select(func.min(col)).where(col > d.c.v).scalar_subquery()).where(d.c.v.is_not(None)))
    return [r[0] for r in conn.execute(select(d.c.v).where(d.c.v.is_not(None)))]


def newest_run(store: TraceStore) -> str | None:
    """The eval run of the newest eval session (the list index walked newest first, to the first one)."""
    S = SessionRow
    with store.read() as conn:
        return conn.execute(select(S.run_id).where(S.run_id.is_not(None)).order_by(S.created_at.desc()).limit(1)
                            ).scalar()


def eval_sides(store: TraceStore, limit: int = 2000) -> list[tuple[str, str, float, int]]:
    """(run id, method, α, finished sessions) of every eval run, newest run first: the sides a diff can compare.
    One grouped read per run over its index (run ids are few; a store-wide GROUP BY would read every session)."""
    S = SessionRow
    out: list[tuple[str, str, float, int]] = []
    with store.read() as conn:
        runs = conn.execute(select(S.run_id, func.max(S.created_at).label("t")).where(S.run_id.is_not(None))
                            .group_by(S.run_id).order_by(func.max(S.created_at).desc())).all()
        for rid, _ in runs:
            for policy, alpha, n in conn.execute(
                    select(S.policy, S.alpha, func.count()).where(S.run_id == rid, S.status == "done")
                    .group_by(S.policy, S.alpha).order_by(S.policy, S.alpha)):
                out.append((rid, policy or "", float(alpha), int(n)))
                if len(out) >= limit:
                    return out
    return out


def ids_with_prefix(store: TraceStore, prefix: str, limit: int = 2) -> list[str]:
    """Session ids starting with `prefix` (the explorer table shows 12 characters); a range scan on the key."""
    S = SessionRow
    hi = prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else ""
    q = select(S.id).where(S.id >= prefix)
    if hi:
        q = q.where(S.id < hi)
    with store.read() as conn:
        return [r[0] for r in conn.execute(q.order_by(S.id).limit(limit))]


def usage_rows_of(store: TraceStore, session_ids: Sequence[str]) -> list[tuple[str, str, int, float]]:
    """(session id, model, calls, dollars) for the given sessions, for per-method usage shares."""
    U = ModelUsageRow
    out: list[tuple[str, str, int, float]] = []
    with store.read() as conn:
        for i in range(0, len(session_ids), IN_CHUNK):
            chunk = list(session_ids[i:i + IN_CHUNK])
            out += [(r[0], r[1], int(r[2] or 0), float(r[3] or 0.0)) for r in conn.execute(
                select(U.session_id, U.model, U.calls, U.cost_usd).where(U.session_id.in_(chunk)))]
    return out


MIN_PREFIX = 12  # characters of a session id that open it from the page or a link (the tables show 12)


def full_session_id(store: TraceStore, text: str, min_prefix: int = 1) -> str:
    """A session id as people paste it: whole, or a unique prefix of at least `min_prefix` characters (the page and
    its links ask for MIN_PREFIX, so a visitor cannot open sessions by guessing one character; the CLI, run by the
    store's owner, takes any unique prefix)."""
    sid = (text or "").strip()
    if not sid:
        raise KeyError("give a session id")
    if len(sid) >= 32:
        store.get_session(sid)  # KeyError names the store when it is not there
        return sid
    matches = ids_with_prefix(store, sid, limit=2)
    if matches and matches[0] == sid:  # a short id that exists whole (imported "example-1" beside "example-10")
        return sid
    if len(sid) < min_prefix:  # a link or a paste must name one session, not guess at the store's ids
        raise KeyError(f"give the whole session id or at least its first {min_prefix} characters")
    if not matches:
        raise KeyError(f"no session id starts with '{sid}'")
    if len(matches) > 1:
        raise KeyError(f"'{sid}' matches several sessions; give more characters")
    return matches[0]
