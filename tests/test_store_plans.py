"""The store's query plans stay bounded as it grows: a common word is counted in the text index, not by a pass over
every session; text matches reach their sessions through ix_sessions_text_rowid; a failure kind is found among the
wrong sessions (ix_sessions_failure_list). Checked with EXPLAIN QUERY PLAN and the statements actually run."""
from __future__ import annotations

import pytest
from sqlalchemy import event, func, select
from test_diff import add

import storage.indexes as ix
from storage import SessionFilter, TraceStore, queries
from storage.models import SessionRow


@pytest.fixture()
def store(tmp_path):
    s = TraceStore(str(tmp_path / "p.sqlite"))
    for i in range(12):
        add(s, "A", f"i{(i % 5) + 1}", ["Paris", "Rome", "Danube", "1969", "Nolan"][i % 5], method="router")
    yield s
    s.close()


def statements(store: TraceStore):
    seen: list[str] = []

    def log(conn, cursor, statement, *a):
        seen.append(statement)
    event.listen(store.engine, "before_cursor_execute", log)
    return seen, lambda: event.remove(store.engine, "before_cursor_execute", log)


def page_and_statements(store: TraceStore, f: SessionFilter, page_size: int):
    """One page of `f` and the statements that found it."""
    seen, stop = statements(store)
    try:
        return store.list_sessions(f, page_size=page_size), seen
    finally:
        stop()


def plan_of(store: TraceStore, f: SessionFilter, count: bool) -> str:
    with store.read() as conn:
        p = queries.plan(conn, f, is_sqlite=True, has_text_index=store.has_text_index)
        q = select(func.count()).select_from(SessionRow).where(p.cond) if count else \
            select(SessionRow.id).where(p.cond).order_by(SessionRow.created_at.desc()).limit(50)
        sql = str(q.compile(conn, compile_kwargs={"literal_binds": True}))
        return " | ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all())


def test_a_common_word_alone_is_counted_in_the_text_index_not_over_the_sessions(store, monkeypatch):
    monkeypatch.setattr(ix, "DENSE_TEXT", 3)  # "Question" is in every session: common at this size
    seen, stop = statements(store)
    try:
        pg = store.list_sessions(SessionFilter(text="Question"), page_size=5)
    finally:
        stop()
    assert pg.total == 12 and len(pg.rows) == 5
    counts = [s for s in seen if "count(" in s.lower()]
    assert counts and all("sessions_fts" in s and "LIKE" not in s for s in counts), counts


def test_a_common_word_with_other_filters_is_counted_among_its_newest_matches(store, monkeypatch):
    monkeypatch.setattr(ix, "DENSE_TEXT", 4)
    pg = store.list_sessions(SessionFilter(text="Question", dataset="demo"), page_size=50)
    # the page is exact (it falls back to the full walk when the newest matches run out); the count is a lower bound
    assert len(pg.rows) == 12 and pg.total == 4 and pg.capped and pg.total_text == "4+"
    newest = store.list_sessions(SessionFilter(text="Question", dataset="demo"), page_size=3)
    assert list(newest.rows["id"]) == list(pg.rows["id"][:3])  # from the newest matches, in the same order


def test_text_matches_reach_their_sessions_by_the_text_rowid_index(store, monkeypatch):
    monkeypatch.setattr(ix, "SPARSE_TEXT", 1)  # the middle way: the index's rowids
    assert "ix_sessions_text_rowid" in plan_of(store, SessionFilter(text="Question i1"), count=True)


def test_a_failure_kind_is_found_among_the_wrong_sessions_only(store):
    assert "ix_sessions_failure_list" in plan_of(store, SessionFilter(failure="repeat"), count=True)
    assert "ix_sessions_failure_list" in plan_of(store, SessionFilter(failure="wrong_fact"), count=False)
    assert store.list_sessions(SessionFilter(failure="comparison")).total == 0
    assert store.list_sessions(SessionFilter(failure="wrong_fact")).total == 9  # the 9 wrong ones: answer = reply


# ---------------------------------------------------------------------- every path gives the exact answer

@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    """400 synthetic sessions from the store benchmark's generator (datasets, labels, models, α, cost, runs), some
    still running: every filter has matches and non-matches."""
    import random
    import time

    from bench.store import Generator, parsed_session
    s = TraceStore(str(tmp_path_factory.mktemp("varied") / "v.sqlite"))
    gen, t0 = Generator(7), time.time() - 86400
    rows = []
    for i in range(400):
        p = parsed_session(gen.session(i, t0 + i * 60), t0 + i * 60)
        if not p.annotations and random.Random(i).random() < 0.2:  # more labelled sessions than the bench's 2 %
            p.annotations.append({"label": "wrong_model", "step_idx": None, "note": "", "created_at": t0 + i * 60 + 5})
        rows.append(p)
    s.insert_sessions(rows)
    for i in range(3):  # running sessions are not in the text index yet: found by LIKE beside it
        syn = gen.session(400 + i, time.time())
        s.start_session(**syn.start)
    yield s, gen
    s.close()


def exact(store: TraceStore, f: SessionFilter, sort: str, desc: bool) -> list[str]:
    """The filter's matches in the page order, by the plain condition walked in full (the reference)."""
    with store.read() as conn:
        cond = queries.plan(conn, f, is_sqlite=True, has_text_index=store.has_text_index).cond
        order = getattr(SessionRow, sort)
        q = select(SessionRow.id).order_by(order.desc() if desc else order.asc(), SessionRow.id)
        return list(conn.execute(q.where(cond) if cond is not None else q).scalars())


@pytest.mark.parametrize("dense, sparse, keys", [(5_000, 1_000, 10_000), (40, 10, 10_000), (40, 10, 30)])
def test_every_way_a_page_is_found_gives_the_exact_page_and_count(varied, monkeypatch, dense, sparse, keys):
    """Random filter sets, orders and pages: the page equals the full walk's slice, the count its length (or, for a
    common word's lower bound, at most it). Small thresholds send the same filters down the keyed paths (ids,
    text-index rowids, a common word's newest matches, a label's sessions) and the walk."""
    import random

    import numpy as np

    from bench.store import FILTER_KINDS, random_filter
    store, _ = varied
    monkeypatch.setattr(ix, "DENSE_TEXT", dense)
    monkeypatch.setattr(ix, "SPARSE_TEXT", sparse)
    monkeypatch.setattr(queries, "ID_KEYS", keys)
    r = random.Random(dense + keys)
    costs = np.quantile(np.array(store.sessions_frame()["cost_usd"], dtype=float), np.linspace(0, 1, 21))
    values = {"calls": [2], "run_ids": list({x for x in store.sessions_frame()["run_id"] if x})}
    for _ in range(120):
        kinds = tuple(r.sample(FILTER_KINDS, r.choice([1, 2, 3])))
        f = random_filter(r, kinds, costs, 400, values)
        if f.text and r.random() < 0.5:
            f.text = r.choice(["synthetic", "Topic", "question 1", "about topic c"])  # common at these sizes
        sort, desc = (("created_at", True) if r.random() < 0.6 else
                      (r.choice(["cost_usd", "alpha", "em", "status", "calls"]), r.random() < 0.5))
        page, size = r.randint(0, 3), r.choice([5, 20])
        want = exact(store, f, sort, desc)
        got = store.list_sessions(f, sort=sort, desc=desc, page=page, page_size=size)
        assert got.ids == want[page * size:(page + 1) * size], (f, sort, desc, page)
        if got.capped:
            assert got.total <= len(want), (f, got.total, len(want))
        else:
            assert got.total == len(want), (f, got.total, len(want))


def test_a_label_or_a_rare_word_with_other_filters_starts_from_its_sessions(varied):
    """The sessions a label or a rare word names drive the query (keyed by id), whatever index the other filters
    favour: not a walk testing each session for membership."""
    store, _ = varied
    for f in (SessionFilter(label="wrong_model", status="done"), SessionFilter(text="question 17 ", failure="unsupported"),
              SessionFilter(label="wrong_model", text="question 1")):
        pg, seen = page_and_statements(store, f, 5)
        assert pg.ids == exact(store, f, "created_at", True)[:5]
        keyed = [s for s in seen if "CROSS JOIN sessions ON sessions.id = j.value" in s]
        assert keyed and not any("count(" in s.lower() for s in seen), seen


def test_text_index_rowids_reach_their_sessions_through_the_covering_index(varied, monkeypatch):
    store, _ = varied
    monkeypatch.setattr(ix, "SPARSE_TEXT", 1)
    f = SessionFilter(text="question 1", status="done", correct=False)
    pg, seen = page_and_statements(store, f, 10)
    assert pg.ids == exact(store, f, "created_at", True)[:10]
    keyed = [s for s in seen if "INDEXED BY ix_sessions_text_rowid" in s]
    assert keyed, seen
    with store.read() as conn:  # every filter column is in that index: no session row is read
        plan = " | ".join(r[-1] for r in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT sessions.created_at, sessions.id FROM json_each('[1]') AS j CROSS JOIN "
            "sessions INDEXED BY ix_sessions_text_rowid ON sessions.text_rowid = j.value "
            "WHERE sessions.status = 'done' AND sessions.em = 0").all())
    assert "COVERING INDEX ix_sessions_text_rowid" in plan, plan


def test_a_filter_matching_few_sessions_is_walked_once(varied):
    """Fewer matches than a page: the walk that found them also counted them (no second pass to count)."""
    store, _ = varied
    f = SessionFilter(status="error", correct=True)  # never: an error has no EM
    pg, seen = page_and_statements(store, f, 50)
    assert pg.total == 0 and pg.ids == []
    assert not any("count(" in s.lower() for s in seen), seen


def test_a_method_is_found_among_its_own_sessions(store):
    """A baseline is a tenth of an eval run: its page and count read its own entries (ix_sessions_method_list)."""
    assert "ix_sessions_method_list" in plan_of(store, SessionFilter(policy="router"), count=True)
    assert "ix_sessions_method_list" in plan_of(store, SessionFilter(policy="router", dataset="demo"), count=False)


def test_the_pickers_skip_scan_gives_what_distinct_gives(varied):
    """The filter drop-downs read models and methods by seeking each next value in their index: the same lists as a
    plain DISTINCT (sorted, no NULL)."""
    from storage.models import ModelUsageRow
    from storage.summary import distinct_values, skip_scan
    store, _ = varied
    with store.read() as conn:
        for col in (ModelUsageRow.model, SessionRow.policy):
            plain = sorted(v for v in conn.execute(select(col).distinct()).scalars() if v is not None)
            assert skip_scan(conn, col) == plain and len(plain) > 1, col
    v = distinct_values(store)
    assert v["models"] and v["policies"] and v["run_ids"] == sorted(v["run_ids"])
