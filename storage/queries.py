"""Reading many sessions: filters, one sorted page with a capped count, and iteration over all.

Every filter column is in the list indexes (ix_sessions_list and those led by status, method, failure kind, eval
run), so on SQLite a page and its count walk one index and read no table rows (but for a LIKE text search); a filter
that names few sessions (a label, ids, words found in the text index) starts from those sessions instead (`plan`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterator

from sqlalchemy import ColumnElement, Connection, and_, func, literal, or_, select

from .indexes import gold_like, in_json, model_cond, text_cond
from .models import AnnotationRow, SessionRow

if TYPE_CHECKING:  # pandas is imported when a page is built: the CLI's store commands start faster
    import pandas as pd

SORTABLE = ("created_at", "cost_usd", "alpha", "em", "f1", "latency_s", "calls", "n_steps", "status", "reward")
COUNT_LIMIT = 10_000
MAX_PAGE_SIZE = 10_000
# a filter naming at most this many sessions (a label, ids, a rare word) is answered from those sessions
ID_KEYS = 10_000
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
class Keys:
    """The sessions a filter set can start from, by key: session ids, or text-index rowids (then `running` holds the
    matching sessions not indexed yet). Not `exact` for a common word: its newest matches only."""

    col: str                       # "id" or "text_rowid"
    values: list[Any]
    running: list[str] = field(default_factory=list)
    exact: bool = True


@dataclass
class Plan:
    """The filters as one condition (`cond`), and, where some filter names few enough sessions (ids, a label, a text
    found in the text index), those sessions' `keys` and the other filters (`others`): a page then starts from the
    keys instead of walking the list index. `text_count` counts a common word alone in the text index."""

    cond: ColumnElement[bool] | None
    keys: Keys | None = None
    others: ColumnElement[bool] | None = None
    text_alone: bool = False
    text_count: Callable[[int], int] | None = None


def where(conn: Connection, f: SessionFilter, *, is_sqlite: bool, has_text_index: bool
          ) -> ColumnElement[bool] | None:
    """The filters as one condition (see `plan`)."""
    return plan(conn, f, is_sqlite=is_sqlite, has_text_index=has_text_index).cond


def _all(conds: list[ColumnElement[bool]]) -> ColumnElement[bool] | None:
    return and_(*conds) if conds else None


def plan(conn: Connection, f: SessionFilter, *, is_sqlite: bool, has_text_index: bool) -> Plan:
    """The filters as one condition; `conn` looks up model bits, text-index matches and labelled sessions.

    Plain column tests come first and set lookups (text, label, ids) last: SQLite tests the terms in this order, so
    most rows are ruled out before the dearer probes. On SQLite the set lookups also give the keys a page can start
    from (ids: the intersection of every id set; else a text filter's rowids).
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
    id_sets: list[list[str]] = []  # sets of session ids, each with its condition among `conds`
    set_conds: list[ColumnElement[bool]] = []
    tm = text_cond(conn, f.text, is_sqlite=is_sqlite, has_index=has_text_index) if f.text else None
    if tm is not None:
        conds.append(tm.cond)
        if tm.ids is not None:
            id_sets.append(tm.ids)
            set_conds.append(tm.cond)
    if f.label:
        labelled = select(AnnotationRow.session_id).where(AnnotationRow.label == f.label)
        few = [r[0] for r in conn.execute(labelled.distinct().limit(ID_KEYS + 1)).all()]
        if len(few) <= ID_KEYS:  # (PostgreSQL finds a list of ids by key too, and knows how many it has)
            conds.append(in_json(S.id, few) if is_sqlite else S.id.in_(few))
            id_sets.append(few)
            set_conds.append(conds[-1])
        else:  # labelled on more sessions than a page should start from: tested per session
            conds.append(S.id.in_(labelled))
    if f.ids is not None:
        conds.append(S.id.in_(f.ids))
        id_sets.append(list(f.ids))
        set_conds.append(conds[-1])
    cond = _all(conds)
    if not is_sqlite:
        return Plan(cond)
    if id_sets:
        keep = set(id_sets[0]).intersection(*id_sets[1:])
        ids = [i for i in dict.fromkeys(id_sets[0]) if i in keep]
        if len(ids) <= ID_KEYS:
            return Plan(cond, Keys("id", ids), _all([c for c in conds if not any(c is s for s in set_conds)]))
    if tm is not None and tm.rowids is not None:
        others = [c for c in conds if c is not tm.cond]
        return Plan(cond, Keys("text_rowid", tm.rowids, tm.running, exact=not tm.common), _all(others),
                    text_alone=not others, text_count=tm.count)
    return Plan(cond)


def list_page(conn: Connection, p: Plan, *, sort: str, desc: bool, page: int, page_size: int,
              count_limit: int | None) -> Page:
    """One page in the given order and the (capped) count of matching sessions.

    From keys (see `plan`): the keyed sessions that meet the other filters are read once, with their sort value,
    and give both the page and the count. A common word's keys are its newest matches: they give its first pages
    newest first (the newest to finish: the same as newest-created unless a session ran while thousands of newer
    matches finished) and a count that is a lower bound ("N+"; alone, it is counted in the text index); past them,
    or in another order, the exact walk below takes over.
    Otherwise the list index is walked in order up to the page's end; only a full page needs a count (up to
    `count_limit`), so a filter matching few sessions is walked once, not twice."""
    S = SessionRow
    lo, hi = page * page_size, (page + 1) * page_size
    known: tuple[int, bool] | None = None  # a common word's count, when its newest matches do not hold the page
    if p.keys is not None and (p.keys.exact or (sort == "created_at" and desc)):
        found = _keyed(conn, p.keys, p.others, sort, desc)
        total, capped = len(found), not p.keys.exact  # among the newest matches only: the word has more
        if capped and p.text_alone and p.text_count is not None and count_limit is not None:
            total = p.text_count(count_limit)
            capped = total >= count_limit
        if count_limit is not None and total >= count_limit:
            total, capped = count_limit, True
        if p.keys.exact or len(found) >= hi:
            return Page(_rows(conn, found[lo:hi], sort, desc), total, capped)
        if count_limit is not None:
            known = (total, capped)
    order = getattr(S, sort)
    ids = select(S.id)
    if p.cond is not None:
        ids = ids.where(p.cond)
    ids = ids.order_by(order.desc() if desc else order.asc(), S.id)
    if hi <= ID_KEYS:  # the ids up to the page's end: short means that is all of them
        found = list(conn.execute(ids.limit(hi)).scalars())
        if known is None and len(found) < hi:
            return Page(_rows(conn, found[lo:], sort, desc), len(found), False)
        df = _rows(conn, found[lo:], sort, desc)
    else:  # a deep page: skipped in the index, not fetched
        df = _rows(conn, list(conn.execute(ids.limit(page_size).offset(lo)).scalars()), sort, desc)
    if known is not None:
        return Page(df, *known)
    matching = select(literal(1)).select_from(S)
    if p.cond is not None:
        matching = matching.where(p.cond)
    if count_limit is not None:
        matching = matching.limit(count_limit)
    total = int(conn.execute(select(func.count()).select_from(matching.subquery())).scalar_one())
    return Page(df, total, count_limit is not None and total >= count_limit)


def _rows(conn: Connection, ids: list[str], sort: str, desc: bool) -> "pd.DataFrame":
    """The list columns of these sessions, in the page's order."""
    import pandas as pd
    S = SessionRow
    order = getattr(S, sort)
    among = in_json(S.id, ids) if conn.dialect.name == "sqlite" else S.id.in_(ids)
    rows = conn.execute(select(*[getattr(S, c) for c in LIST_COLUMNS]).where(among)
                        .order_by(order.desc() if desc else order.asc(), S.id)).all() if ids else []
    return pd.DataFrame([r._mapping for r in rows], columns=list(LIST_COLUMNS))


def _keyed(conn: Connection, keys: Keys, cond: ColumnElement[bool] | None, sort: str, desc: bool) -> list[str]:
    """The ids of the keyed sessions that meet `cond`, in the page order (SQLite only).

    The keys drive the plan (CROSS JOIN): SQLite's planner would otherwise walk an index the other filters favour and
    test each of its sessions for membership, a pass over most of the store. Text-index rowids are looked up in
    ix_sessions_text_rowid, which holds every list-index column: no session row is read unless the sort needs it."""
    parts, params = [], []
    where = ""
    if cond is not None:
        compiled = cond.compile(conn)
        where = f" WHERE {compiled.string}"
    for col, values in ((keys.col, keys.values), ("id", keys.running if keys.col != "id" else [])):
        if not values and parts:
            continue
        # by id the primary key is always taken; by rowid SQLite would rather walk an index another filter leads
        how = "INDEXED BY ix_sessions_text_rowid " if col == "text_rowid" else ""
        parts.append(f"SELECT sessions.{sort} AS v, sessions.id AS id FROM json_each(?) AS j CROSS JOIN sessions "
                     f"{how}ON sessions.{col} = j.value{where}")
        params.append(json.dumps(values))
        if cond is not None:
            params += [compiled.params[k] for k in (compiled.positiontup or [])]
    sql = " UNION ALL ".join(parts) + f" ORDER BY v {'DESC' if desc else 'ASC'}, id"
    return [r[1] for r in conn.exec_driver_sql(sql, tuple(params)).all()]


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
