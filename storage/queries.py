"""Reading many sessions: filters, one sorted page with a capped count, and iteration over all.

Every filter column is in ix_sessions_list, so on SQLite a page and its count both walk that one
index and read no table rows (but for a LIKE text search), whatever the mix of filters.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterator

from sqlalchemy import ColumnElement, Connection, and_, func, literal, or_, select

from .indexes import gold_like, model_cond, text_cond
from .models import AnnotationRow, SessionRow

if TYPE_CHECKING:  # pandas is imported when a page is built: the CLI's store commands start faster
    import pandas as pd

SORTABLE = ("created_at", "cost_usd", "alpha", "em", "f1", "latency_s", "calls", "n_steps", "status", "reward")
COUNT_LIMIT = 10_000
MAX_PAGE_SIZE = 10_000
LIST_COLUMNS = ("id", "created_at", "status", "question", "answer", "gold", "em", "f1", "reward", "alpha", "cost_usd",
                "calls", "n_steps", "latency_s", "input_tokens", "output_tokens", "router_tokens", "dataset",
                "item_id", "run_id", "policy", "pool_name", "format_ok", "failure")


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
    policy: str | None = None            # the method: a router policy or a baseline label (evaluation.methods)
    failure: str | None = None           # a suggested failure kind (router_core.failures.KINDS)
    calls: int | None = None             # candidate calls made (hops): exactly this many
    gold: str | None = None              # text in one of the gold answers


@dataclass
class Page:
    """One page of sessions (LIST_COLUMNS), how many match, and whether counting stopped early."""

    rows: "pd.DataFrame"
    total: int
    capped: bool = False

    @property
    def total_text(self) -> str:
        return f"{self.total:,}+" if self.capped else f"{self.total:,}"

    @property
    def ids(self) -> list[str]:
        return list(self.rows["id"])


@dataclass
class Plan:
    """The filters as one condition, and how to count what it matches: `common_text` when a text filter matched too
    many sessions to count through the text index (then `text_alone` says whether it is the only filter)."""

    cond: ColumnElement[bool] | None
    common_text: bool = False
    text_alone: bool = False
    text_count: Callable[[int], int] | None = None
    newest: ColumnElement[bool] | None = None  # a common word's newest matches (and running ones)
    others: ColumnElement[bool] | None = None  # the filters other than the text


def where(conn: Connection, f: SessionFilter, *, is_sqlite: bool, has_text_index: bool
          ) -> ColumnElement[bool] | None:
    """The filters as one condition (see `plan`)."""
    return plan(conn, f, is_sqlite=is_sqlite, has_text_index=has_text_index).cond


def plan(conn: Connection, f: SessionFilter, *, is_sqlite: bool, has_text_index: bool) -> Plan:
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
    if f.policy:
        conds.append(S.policy == f.policy)
    if f.failure:
        conds.append(S.failure == f.failure)
    if f.calls is not None:
        conds.append(S.calls == f.calls)
    if f.gold:  # the gold answers are stored as a JSON list: search its text (quotes and backslashes as JSON writes)
        conds.append(gold_like(f.gold, is_sqlite))
    if f.alpha_min is not None:
        conds.append(S.alpha >= f.alpha_min)
    if f.alpha_max is not None:
        conds.append(S.alpha <= f.alpha_max)
    if f.cost_min is not None:
        conds.append(S.cost_usd >= f.cost_min)
    if f.cost_max is not None:
        conds.append(S.cost_usd <= f.cost_max)
    if f.model:
        conds.append(model_cond(conn, f.model))
    tm = text_cond(conn, f.text, is_sqlite=is_sqlite, has_index=has_text_index) if f.text else None
    if tm is not None:
        conds.append(tm.cond)
    if f.label:
        conds.append(S.id.in_(select(AnnotationRow.session_id).where(AnnotationRow.label == f.label)))
    if f.ids is not None:
        conds.append(S.id.in_(f.ids))
    if tm is None or not tm.common:
        return Plan(and_(*conds) if conds else None)
    rest = [c for c in conds if c is not tm.cond]
    return Plan(and_(*conds), common_text=True, text_alone=not rest, text_count=tm.count, newest=tm.newest,
                others=and_(*rest) if rest else None)


def list_page(conn: Connection, p: Plan, *, sort: str, desc: bool, page: int, page_size: int,
              count_limit: int | None) -> Page:
    """One page in the given order and the (capped) count of matching sessions.

    The page walks the list index in order and stops after one page. The count is what could grow with the store:
    it stops at `count_limit` matches. A common word (the text index holds DENSE_TEXT matches or more) is never
    looked for by reading every newer session: its first pages, newest first, come from its newest DENSE_TEXT
    matches (the newest to finish: the same as newest-created unless a session ran while thousands of newer matches
    finished); alone it is counted in the text index (up to the cap), and with other filters among those newest
    matches — a lower bound, shown as "N+"."""
    S = SessionRow
    cond = p.cond
    cols = [getattr(S, c) for c in LIST_COLUMNS]
    order = getattr(S, sort)
    ordering = (order.desc() if desc else order.asc(), S.id)
    # Deferred join: find the page's ids on narrow index entries, then fetch those rows.
    ids = select(S.id)
    matching = select(literal(1)).select_from(S)
    if cond is not None:
        ids = ids.where(cond)
        matching = matching.where(cond)
    ids = ids.order_by(*ordering).limit(page_size).offset(page * page_size)
    if count_limit is not None:
        matching = matching.limit(count_limit)
    rows: list[Any] = []
    if p.newest is not None and sort == "created_at" and desc:  # a common word: from its newest matches
        near = conn.execute(select(S.id).where(p.newest)).scalars().all()
        page_ids = [r[0] for r in _from_ids(conn, near, p.others, "sessions.id", "ORDER BY sessions.created_at DESC, "
                                            f"sessions.id LIMIT {int(page_size)} OFFSET {int(page * page_size)}")]
        rows = conn.execute(select(*cols).where(S.id.in_(page_ids)).order_by(*ordering)).all() if page_ids else []
    if len(rows) < page_size:  # not a common word, another order, or past the newest matches: the exact walk
        rows = conn.execute(select(*cols).where(S.id.in_(ids)).order_by(*ordering)).all()
    import pandas as pd
    df = pd.DataFrame([r._mapping for r in rows], columns=list(LIST_COLUMNS))
    if p.common_text and count_limit is not None:
        if p.text_alone and p.text_count is not None:  # counted in the text index, up to the cap
            total = p.text_count(count_limit)
            return Page(df, total, total >= count_limit)
        # with other filters: counted among the word's newest matches, a lower bound (the word has more)
        near = conn.execute(select(S.id).where(p.newest)).scalars().all()
        seen = int(_from_ids(conn, near, p.others, "count(*)").scalar_one())
        return Page(df, min(seen, count_limit), True)
    total = int(conn.execute(select(func.count()).select_from(matching.subquery())).scalar_one())
    return Page(df, total, count_limit is not None and total >= count_limit)


def _from_ids(conn: Connection, ids: list[str], cond: ColumnElement[bool] | None, what: str, tail: str = "") -> Any:
    """`SELECT what` over the sessions with these ids that meet `cond`, the ids driving the plan (SQLite only).

    CROSS JOIN keeps SQLite's planner from walking an index the other filters favour and testing each of its
    sessions for membership (a pass over most of the store): the few candidate ids are looked up by key instead."""
    sql = f"SELECT {what} FROM json_each(?) AS j CROSS JOIN sessions ON sessions.id = j.value"
    params: list[Any] = [json.dumps(ids)]
    if cond is not None:
        compiled = cond.compile(conn)
        sql += f" WHERE {compiled.string}"
        params += [compiled.params[k] for k in (compiled.positiontup or [])]
    return conn.exec_driver_sql(f"{sql} {tail}", tuple(params))


def iter_rows(read: Callable[[], ContextManager[Connection]], cond: ColumnElement[bool] | None,
              chunk: int) -> Iterator[dict[str, Any]]:
    """Every matching session (LIST_COLUMNS) oldest first, `chunk` at a time by key (not offset).

    Each chunk is read in its own short transaction, so a slow consumer (a file being written,
    sessions being run) never holds a read open.
    """
    S = SessionRow
    cols = [getattr(S, c) for c in LIST_COLUMNS]
    last: tuple[float, str] | None = None
    while True:
        q = select(*cols)
        if cond is not None:
            q = q.where(cond)
        if last is not None:
            q = q.where(or_(S.created_at > last[0], and_(S.created_at == last[0], S.id > last[1])))
        with read() as conn:
            rows = conn.execute(q.order_by(S.created_at, S.id).limit(chunk)).all()
        for r in rows:
            yield dict(r._mapping)
        if len(rows) < chunk:
            return
        last = (rows[-1].created_at, rows[-1].id)
