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
