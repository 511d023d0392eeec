"""Trace store API: write a session step by step, filters, replay, annotations, export/import, migrations."""
import io
import json
import sqlite3
import time

import pytest

from router_core.step import Choice, Step
from storage import SessionFilter, StoreError, TraceStore
from storage.migrations import LATEST
from storage.recorder import recorded

POOL = {"name": "test-pool", "models": [{"name": "A", "api_key_env": "X_KEY"}]}


def make_steps(sid, models=("A", "B"), cost=0.001):
    t = time.time()
    steps = [Step(sid, 0, "think", text="plan", started_at=t, ended_at=t + 0.5, router_output_tokens=5)]
    for i, m in enumerate(models):
        steps.append(Step(sid, 1 + i, "route", request_model=m, written_model=m, query=f"q{i}",
                          response="r", input_tokens=10, output_tokens=20, cost_usd=cost, started_at=t + 1,
                          ended_at=t + 2, call_started_at=t + 1.2, call_ended_at=t + 1.9, turn=i,
                          choice=Choice(models=["A", "B"], logprobs=[-1.0, -2.0], probs_before=[0.73, 0.27],
                                        probs_after=[0.6, 0.4], norm_costs=[1.0, 0.0], alpha=0.5, kappa=8,
                                        chosen=m, policy_choice="A"),
                          decision={"search": 0.8, "answer": 0.2}))
    steps.append(Step(sid, len(steps), "answer", text="Paris", started_at=t + 3, ended_at=t + 3.2))
    return steps


def write(store, sid, question="What is the capital of France?", gold=("Paris",), alpha=0.5, dataset=None,
          models=("A", "B"), cost=0.001, steps=None, **kw):
    steps = steps or make_steps(sid, models, cost)
    for _ in recorded(store, steps, session_id=sid, question=question, alpha=alpha,
                      policy="p", engine="llamacpp", pool=POOL, gold=list(gold), dataset=dataset, **kw):
        pass
    return steps


@pytest.fixture
def store(tmp_path):
    s = TraceStore(str(tmp_path / "t.sqlite"))
    yield s
    s.close()


def test_sqlite_pragmas(store):
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    assert store.schema_version() == LATEST


def test_session_round_trip_and_rollups(store):
    orig = write(store, "s1")
    sess, steps, notes = store.load_session("s1")
    assert sess["status"] == "done" and sess["answer"] == "Paris" and sess["em"] == 1.0 and sess["f1"] == 1.0
    assert sess["n_steps"] == 4 and sess["calls"] == 2 and sess["cost_usd"] == pytest.approx(0.002)
    assert sess["input_tokens"] == 20 and sess["output_tokens"] == 40 and sess["router_tokens"] == 5
    assert sess["pool"] == POOL and sess["gold"] == ["Paris"] and sess["reward"] is not None
    assert [s.to_dict() for s in steps] == [s.to_dict() for s in orig]
    assert steps[1].choice.probs_after == [0.6, 0.4] and steps[1].decision == {"search": 0.8, "answer": 0.2}
    assert store.model_usage("s1") == {"A": {"calls": 1, "input_tokens": 10, "output_tokens": 20, "cost_usd": 0.001},
                                       "B": {"calls": 1, "input_tokens": 10, "output_tokens": 20, "cost_usd": 0.001}}


def test_each_step_is_committed_before_it_is_passed_on(store, tmp_path):
    other = TraceStore(str(tmp_path / "t.sqlite"), recover=False)
    it = recorded(store, iter(make_steps("s2")), session_id="s2", question="q", alpha=0.0, policy="p",
                  engine="e", pool=POOL)
    for k, _ in enumerate(it, 1):
        assert len(other.load_steps("s2")) == k  # visible to another connection at once
        assert other.get_session("s2")["status"] == ("running" if k < 4 else "running")
    assert other.get_session("s2")["status"] == "done"
    other.close()


def test_a_step_field_without_a_column_is_kept_in_extra(store, monkeypatch):
    """A new Step field needs no migration: the codec's dict keys without a column go to steps.extra."""
    import storage.models as models
    monkeypatch.setattr(models, "STEP_COLUMNS", models.STEP_COLUMNS - {"decision", "turn"})
    orig = write(store, "x")
    with store.engine.connect() as c:
        extra, decision = c.exec_driver_sql("SELECT extra, decision FROM steps WHERE idx = 1").one()
    assert decision is None and json.loads(extra) == {"decision": {"search": 0.8, "answer": 0.2}, "turn": 0}
    assert [s.to_dict() for s in store.load_steps("x")] == [s.to_dict() for s in orig]


def test_listener_going_away_marks_stopped(store):
    it = recorded(store, iter(make_steps("s3")), session_id="s3", question="q", alpha=0.0, policy="p",
                  engine="e", pool=POOL)
    next(it)
    it.close()
    sess = store.get_session("s3")
    assert sess["status"] == "stopped" and sess["n_steps"] == 1


def test_stopped_and_error_outcomes(store):
    sid = "s4"
    steps = [Step(sid, 0, "think", text="t"), Step(sid, 1, "error", status="stopped", error="stopped by the user")]
    list(recorded(store, iter(steps), session_id=sid, question="q", alpha=0.0, policy="p", engine="e", pool=POOL))
    assert store.get_session(sid)["status"] == "stopped"
    sid = "s5"
    steps = [Step(sid, 0, "error", status="error", error="router policy failed: boom")]
    list(recorded(store, iter(steps), session_id=sid, question="q", alpha=0.0, policy="p", engine="e", pool=POOL))
    sess = store.get_session(sid)
    assert sess["status"] == "error" and "boom" in sess["error"]


def test_filters_sort_and_pages(store):
    write(store, "a", question="capital of France?", gold=["Paris"], alpha=0.0, dataset="geo", models=("A",),
          cost=0.01)
    write(store, "b", question="capital of Spain?", gold=["Madrid"], alpha=0.9, dataset="geo", models=("B",),
          cost=0.001)
    write(store, "c", question="who wrote Dune?", gold=["Frank Herbert"], alpha=0.5, dataset="books",
          models=("A", "B"), cost=0.005)
    store.annotate("b", "candidate_wrong", "answered Paris for Spain")

    def ids(**kw):
        pg = store.list_sessions(SessionFilter(**kw), sort="alpha", desc=False)
        df, total = pg.rows, pg.total
        assert total == len(df)
        return list(df["id"])

    assert ids() == ["a", "c", "b"]
    assert ids(text="CAPITAL") == ["a", "b"]
    assert ids(text="paris") == ["a", "c", "b"]  # the answers are all Paris here
    assert ids(dataset="geo") == ["a", "b"]
    assert ids(correct=True) == ["a"] and ids(correct=False) == ["c", "b"]
    assert ids(model="A") == ["a", "c"] and ids(model="B") == ["c", "b"]
    assert ids(alpha_min=0.4, alpha_max=0.95) == ["c", "b"]
    assert ids(cost_min=0.005) == ["a", "c"] and ids(cost_max=0.002) == ["b"]
    assert ids(status="done") == ["a", "c", "b"] and ids(status="error") == []
    assert ids(label="candidate_wrong") == ["b"]
    assert ids(text="Du") == ["c"]                    # short text: LIKE path
    assert ids(text='wrote "Dune') == [] and ids(text="50%_") == []  # quotes and wildcards are literal
    store.start_session(session_id="r", question="capital of Italy? still running", alpha=0.2, policy="p",
                        engine="e", pool=POOL)
    assert ids(text="still running") == ["r"]          # not finished: not in the text index yet
    store.finish("r", status="done", answer="Rome")
    assert ids(text="rome") == ["r"]                  # indexed with its answer once finished
    assert store.delete("r") and ids(text="rome") == []
    import storage.indexes as st
    store.start_session(session_id="r2", question="capital of Peru? still running", alpha=0.3, policy="p",
                        engine="e", pool=POOL)
    old = st.SPARSE_TEXT, st.DENSE_TEXT
    try:  # the three ways a text filter is answered give the same sessions
        for sparse, dense in ((1_000, 20_000), (1, 20_000), (1, 2)):  # by ids, by index rowids, by LIKE
            st.SPARSE_TEXT, st.DENSE_TEXT = sparse, dense
            assert ids(text="CAPITAL") == ["a", "r2", "b"] and ids(text="capital", dataset="geo") == ["a", "b"]
            assert ids(text="capital", model="A") == ["a"] and ids(text="capital", status="running") == ["r2"]
            assert ids(text="zeppelin") == [] and ids(text="peru") == ["r2"]
    finally:
        st.SPARSE_TEXT, st.DENSE_TEXT = old
    assert store.delete("r2")
    pg = store.list_sessions(sort="cost_usd", desc=True, page=1, page_size=2)
    df, total = pg.rows, pg.total
    assert total == 3 and list(df["id"]) == ["b"] and not pg.capped
    pg = store.list_sessions(page_size=1, count_limit=2)   # counting stops early on big stores
    df, total = pg.rows, pg.total
    assert total == 2 and pg.capped and len(df) == 1
    assert store.list_sessions(SessionFilter(model="A"), count_limit=None).total == 2
    with pytest.raises(ValueError, match="sort must be one of"):
        store.list_sessions(sort="question; DROP TABLE sessions")


def test_annotations_and_delete(store):
    write(store, "s")
    store.annotate("s", "wrong_model", "should have asked B", step_idx=1)
    store.annotate("s", "other")
    notes = store.annotations("s")
    assert [(n["label"], n["step_idx"]) for n in notes] == [("wrong_model", 1), ("other", None)]
    with pytest.raises(ValueError, match="label must be one of"):
        store.annotate("s", "nonsense")
    with pytest.raises(KeyError, match="no step 99"):
        store.annotate("s", "other", step_idx=99)
    with pytest.raises(KeyError, match="no session"):
        store.annotate("zzz", "other")
    assert store.delete("s") and not store.delete("s")
    with store.engine.connect() as c:  # cascades
        assert c.exec_driver_sql("SELECT COUNT(*) FROM steps").scalar() == 0
        assert c.exec_driver_sql("SELECT COUNT(*) FROM annotations").scalar() == 0
        assert c.exec_driver_sql("SELECT COUNT(*) FROM session_models").scalar() == 0


def test_export_import_round_trip_idempotent(store, tmp_path):
    write(store, "x1", dataset="geo")
    write(store, "x2", question="who wrote Dune?", gold=["Frank Herbert"])
    store.annotate("x1", "format_error", "note with \"quotes\" and <tags>", step_idx=0)
    buf = io.StringIO()
    assert store.export_jsonl(buf) == 2
    lines = buf.getvalue().splitlines()
    other = TraceStore(str(tmp_path / "other.sqlite"))
    rep = other.import_jsonl(lines)
    assert (rep.imported, rep.skipped, rep.errors) == (2, 0, [])
    rep = other.import_jsonl(lines)
    assert (rep.imported, rep.skipped) == (0, 2)
    for sid in ("x1", "x2"):
        a, b = store.load_session(sid), other.load_session(sid)
        assert [s.to_dict() for s in a[1]] == [s.to_dict() for s in b[1]]
        assert {k: v for k, v in a[0].items()} == {k: v for k, v in b[0].items()}
        assert [(n["label"], n["note"], n["step_idx"]) for n in a[2]] == [(n["label"], n["note"], n["step_idx"]) for n in b[2]]
        assert store.model_usage(sid) == other.model_usage(sid)
    for f in (SessionFilter(model="B"), SessionFilter(text="dune"), SessionFilter(model="A", text="capital")):
        assert list(other.list_sessions(f).rows["id"]) == list(store.list_sessions(f).rows["id"]) != []
    buf2 = io.StringIO()
    store.export_jsonl(buf2, SessionFilter(dataset="geo"))
    assert len(buf2.getvalue().splitlines()) == 1
    other.close()


def test_import_reports_bad_lines_and_never_half_a_session(store):
    write(store, "good")
    buf = io.StringIO()
    store.export_jsonl(buf)
    good = json.loads(buf.getvalue())
    bad_steps = json.loads(buf.getvalue())
    bad_steps["session"]["id"] = "half"
    bad_steps["steps"][2]["index"] = 7          # gap in step numbering
    bad_label = json.loads(buf.getvalue())
    bad_label["session"]["id"] = "badlabel"
    bad_label["annotations"] = [{"label": "nope"}]
    missing = json.loads(buf.getvalue())
    missing["session"]["id"] = "missing"
    del missing["session"]["question"]
    fresh = json.loads(buf.getvalue())
    fresh["session"]["id"] = "fresh"
    lines = ["{not json", json.dumps(bad_steps), "", json.dumps(bad_label), json.dumps(missing), json.dumps(good),
             json.dumps({"hello": 1}), json.dumps(fresh)]
    rep = store.import_jsonl(lines, source="in.jsonl")
    assert rep.imported == 1 and rep.skipped == 1
    assert [n for n, _ in rep.errors] == [1, 2, 4, 5, 7]
    assert all(m.startswith(f"in.jsonl:{n}:") for n, m in rep.errors)
    assert "question" in dict(rep.errors)[5]
    for sid in ("half", "badlabel", "missing"):
        with pytest.raises(KeyError):
            store.get_session(sid)
    assert len(store.load_steps("fresh")) == 4


V1_SCHEMA = """
CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value TEXT);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE sessions (id VARCHAR(64) PRIMARY KEY, created_at FLOAT, updated_at FLOAT, question TEXT, gold JSON,
  dataset VARCHAR(200), item_id VARCHAR(200), policy VARCHAR(200), engine VARCHAR(40), pool_name VARCHAR(200),
  pool JSON, alpha FLOAT, status VARCHAR(16), answer TEXT, em FLOAT, f1 FLOAT, reward FLOAT, format_ok BOOLEAN,
  cost_usd FLOAT, input_tokens INTEGER, output_tokens INTEGER, router_tokens INTEGER, latency_s FLOAT,
  calls INTEGER, n_steps INTEGER, error TEXT, host VARCHAR(255), pid INTEGER, pid_start VARCHAR(40));
CREATE TABLE steps (session_id VARCHAR(64) REFERENCES sessions(id) ON DELETE CASCADE, idx INTEGER, kind VARCHAR(16),
  turn INTEGER, text TEXT, request_model VARCHAR(200), written_model VARCHAR(200), query TEXT, response TEXT,
  input_tokens INTEGER, output_tokens INTEGER, router_input_tokens INTEGER, router_output_tokens INTEGER,
  cost_usd FLOAT, started_at FLOAT, ended_at FLOAT, call_started_at FLOAT, call_ended_at FLOAT, status VARCHAR(16),
  flags JSON, error TEXT, choice JSON, decision JSON, PRIMARY KEY (session_id, idx));
CREATE TABLE annotations (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id VARCHAR(64) REFERENCES sessions(id)
  ON DELETE CASCADE, step_idx INTEGER, label VARCHAR(40), note TEXT, created_at FLOAT);
INSERT INTO sessions VALUES ('old', 1.0, 2.0, 'old question', '["x"]', NULL, NULL, 'p', 'llamacpp', 'pool', '{}', 0.5,
  'done', 'x', 1.0, 1.0, 0.75, 1, 0.003, 10, 20, 5, 1.5, 1, 2, NULL, NULL, NULL, NULL);
INSERT INTO steps VALUES ('old', 0, 'route', 0, '', 'A', 'A', 'q', 'r', 10, 20, 0, 0, 0.003, 1.0, 2.0, NULL, NULL,
  'ok', '[]', NULL, NULL, NULL);
INSERT INTO steps VALUES ('old', 1, 'answer', 0, 'x', NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 2.0, 2.5, NULL, NULL,
  'ok', '[]', NULL, NULL, NULL);
"""


def test_a_file_from_an_older_version_is_migrated(tmp_path):
    path = tmp_path / "v1.sqlite"
    con = sqlite3.connect(path)
    con.executescript(V1_SCHEMA)
    con.close()
    with TraceStore(str(path)) as s:
        assert s.schema_version() == LATEST
        assert s.model_usage("old") == {"A": {"calls": 1, "input_tokens": 10, "output_tokens": 20, "cost_usd": 0.003}}
        with s.read() as conn:  # v10: the per-model rows were copied into a table without a rowid
            assert "WITHOUT ROWID" in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'session_models'").scalar().upper()
        pg = s.list_sessions(SessionFilter(model="A"))
        df = pg.rows
        assert list(df["id"]) == ["old"] and df["run_id"].isna().all()
        assert [st.kind for st in s.load_steps("old")] == ["route", "answer"]
        write(s, "new")  # and the migrated file takes new sessions
        assert s.list_sessions().total == 2


V3_SCHEMA = """
CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '3');
CREATE TABLE pools (hash VARCHAR(64) PRIMARY KEY, name VARCHAR(200) NOT NULL, snapshot JSON NOT NULL);
INSERT INTO pools VALUES ('h', 'pool', '{"name": "pool"}');
CREATE TABLE sessions (id VARCHAR(64) PRIMARY KEY, created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL,
  question TEXT NOT NULL, gold JSON NOT NULL, dataset VARCHAR(200), item_id VARCHAR(200), run_id VARCHAR(64),
  policy VARCHAR(200) NOT NULL, engine VARCHAR(40) NOT NULL, pool_name VARCHAR(200) NOT NULL,
  pool_hash VARCHAR(64) REFERENCES pools (hash), alpha FLOAT NOT NULL, status VARCHAR(16) NOT NULL, answer TEXT,
  em FLOAT, f1 FLOAT, reward FLOAT, format_ok BOOLEAN, cost_usd FLOAT NOT NULL, input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL, router_tokens INTEGER NOT NULL, latency_s FLOAT NOT NULL, calls INTEGER NOT NULL,
  n_steps INTEGER NOT NULL, error TEXT, host VARCHAR(255), pid INTEGER, pid_start VARCHAR(40));
CREATE INDEX ix_sessions_status ON sessions (status);
CREATE INDEX ix_sessions_created_at ON sessions (created_at);
CREATE INDEX ix_sessions_dataset_created ON sessions (dataset, created_at);
CREATE INDEX ix_sessions_status_created ON sessions (status, created_at);
CREATE INDEX ix_sessions_run_created ON sessions (run_id, created_at);
CREATE INDEX ix_sessions_em_created ON sessions (em, created_at);
CREATE INDEX ix_sessions_alpha_created ON sessions (alpha, created_at, id);
CREATE INDEX ix_sessions_cost_created ON sessions (cost_usd, created_at, id);
CREATE TABLE steps (session_id VARCHAR(64) NOT NULL REFERENCES sessions (id) ON DELETE CASCADE, idx INTEGER NOT NULL,
  kind VARCHAR(16) NOT NULL, turn INTEGER NOT NULL, text TEXT NOT NULL, request_model VARCHAR(200),
  written_model VARCHAR(200), "query" TEXT, response TEXT, input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL, router_input_tokens INTEGER NOT NULL, router_output_tokens INTEGER NOT NULL,
  cost_usd FLOAT NOT NULL, started_at FLOAT NOT NULL, ended_at FLOAT, call_started_at FLOAT, call_ended_at FLOAT,
  status VARCHAR(16) NOT NULL, flags JSON NOT NULL, error TEXT, choice JSON, decision JSON,
  PRIMARY KEY (session_id, idx));
CREATE TABLE session_models (session_id VARCHAR(64) NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  model VARCHAR(200) NOT NULL, calls INTEGER NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
  cost_usd FLOAT NOT NULL, PRIMARY KEY (session_id, model));
CREATE INDEX ix_session_models_model ON session_models (model, session_id);
CREATE TABLE annotations (id INTEGER PRIMARY KEY, session_id VARCHAR(64) NOT NULL REFERENCES sessions (id)
  ON DELETE CASCADE, step_idx INTEGER, label VARCHAR(40) NOT NULL, note TEXT NOT NULL, created_at FLOAT NOT NULL);
CREATE INDEX ix_annotations_label_session ON annotations (label, session_id);
CREATE INDEX ix_annotations_session_id ON annotations (session_id);
CREATE VIRTUAL TABLE sessions_fts USING fts5(id UNINDEXED, question, answer, tokenize='trigram');
INSERT INTO sessions VALUES ('v1', 1.0, 2.0, 'which river is longest', '["Nile"]', 'geo', NULL, NULL, 'p', 'e',
  'pool', 'h', 0.5, 'done', 'Nile', 1.0, 1.0, 0.5, 1, 0.003, 10, 20, 5, 1.5, 2, 3, NULL, NULL, NULL, NULL);
INSERT INTO sessions VALUES ('v2', 3.0, 4.0, 'which mountain is highest', '["Everest"]', NULL, NULL, NULL, 'p', 'e',
  'pool', 'h', 0.9, 'done', 'K2', 0.0, 0.2, -0.5, 1, 0.001, 10, 20, 5, 1.5, 1, 2, NULL, NULL, NULL, NULL);
INSERT INTO session_models VALUES ('v1', 'A', 1, 5, 10, 0.002), ('v1', 'B', 1, 5, 10, 0.001),
  ('v2', 'B', 1, 10, 20, 0.001);
INSERT INTO steps VALUES ('v2', 0, 'route', 0, '', 'B', 'B', 'which mountain is highest', 'K2 is the highest.', 10, 20,
  0, 0, 0.001, 3.0, 3.5, 3.1, 3.4, 'ok', '[]', NULL, NULL, NULL),
  ('v2', 1, 'answer', 0, 'K2', NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 3.5, 3.6, NULL, NULL, 'ok', '[]', NULL, NULL,
  NULL);
INSERT INTO sessions_fts (rowid, id, question, answer) VALUES (7, 'v2', 'which mountain is highest', 'K2'),
  (9, 'v1', 'which river is longest', 'Nile');
INSERT INTO annotations VALUES (1, 'v2', NULL, 'candidate_wrong', 'K2 is second', 5.0);
"""


def test_a_v3_file_gets_the_v4_list_index_model_bits_and_text_rowids_and_v5_step_extra(tmp_path):
    path = tmp_path / "v3.sqlite"
    con = sqlite3.connect(path)
    con.executescript(V3_SCHEMA)
    con.close()
    with TraceStore(str(path)) as s:
        assert s.schema_version() == LATEST == 13
        with s.engine.connect() as c:
            assert "extra" in {r[1] for r in c.exec_driver_sql("PRAGMA table_info(steps)")}
            # v7: the wrong session's failure kind computed from its stored steps; the right one has none
            assert dict(c.exec_driver_sql("SELECT id, failure FROM sessions").all()) == {"v1": None, "v2": "wrong_fact"}
            indexes = {r[0] for r in c.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions' AND sql IS NOT NULL")}
            assert indexes == {"ix_sessions_list", "ix_sessions_status_list", "ix_sessions_running",
                               "ix_sessions_text_rowid", "ix_sessions_failure_list", "ix_sessions_run_list",
                               "ix_sessions_method_list"}
            rows = dict(c.exec_driver_sql("SELECT id, text_rowid FROM sessions").all())
            assert rows == {"v1": 9, "v2": 7}
            bits = dict(c.exec_driver_sql("SELECT model, bit FROM model_bits").all())
            assert bits == {"B": 0, "A": 1}  # the most used model first
            masks = dict(c.exec_driver_sql("SELECT id, models_mask FROM sessions").all())
            assert masks == {"v1": 3, "v2": 1}

        def ids(**kw):
            pg = s.list_sessions(SessionFilter(**kw))
            df, total = pg.rows, pg.total
            assert total == len(df)
            return list(df["id"])

        assert ids(model="A") == ["v1"] and ids(model="B") == ["v2", "v1"] and ids(model="C") == []
        assert ids(text="RIVER") == ["v1"] and ids(text="k2") == ["v2"] and ids(text="which", model="A") == ["v1"]
        assert ids(label="candidate_wrong", model="B") == ["v2"]
        assert "models_mask" not in s.get_session("v1") and "text_rowid" not in s.get_session("v1")
        assert s.get_session("v1")["settings"] is None  # v6: recorded before run settings were kept
        write(s, "new", question="which lake is deepest", models=("C", "A"))  # a new model gets the next bit
        assert ids(model="C") == ["new"] and ids(model="A") == ["new", "v1"] and ids(text="lake") == ["new"]
        assert s.delete("v1") and ids(text="river") == [] and ids(model="A") == ["new"]
        with s.engine.connect() as c:
            assert c.exec_driver_sql("SELECT COUNT(*) FROM sessions_fts").scalar() == 2  # v1's entry went with it


def test_model_filter_past_the_last_bit_uses_the_usage_table(store, monkeypatch):
    import storage.indexes as st
    monkeypatch.setattr(st, "MAX_MODEL_BITS", 1)
    write(store, "m1", models=("A",))
    write(store, "m2", models=("B", "A"))   # B gets no bit
    store.finish("m2", status="done", answer="Paris")   # finished twice: its text entry is replaced
    with store.engine.connect() as c:
        assert dict(c.exec_driver_sql("SELECT model, bit FROM model_bits").all()) == {"A": 0, "B": None}
        assert c.exec_driver_sql("SELECT COUNT(*) FROM sessions_fts").scalar() == 2
    assert list(store.list_sessions(SessionFilter(model="B")).rows["id"]) == ["m2"]
    assert list(store.list_sessions(SessionFilter(model="A")).rows["id"]) == ["m2", "m1"]
    assert list(store.list_sessions(SessionFilter(model="A", text="france")).rows["id"]) == ["m2", "m1"]


def test_clear_errors_naming_the_file(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("this is a text file, not a database\n" * 10)
    with pytest.raises(StoreError, match="notes.sqlite: not a SQLite database"):
        TraceStore(str(bad))
    with pytest.raises(StoreError, match="does not exist"):
        TraceStore(str(tmp_path / "no" / "such" / "dir.sqlite"))
    newer = tmp_path / "newer.sqlite"
    TraceStore(str(newer)).close()
    con = sqlite3.connect(newer)
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=r"newer.sqlite: schema version 999 is newer"):
        TraceStore(str(newer))


def test_cli_sessions_export_import(tmp_path, capsys):
    """The store commands as a user types them (in this process: the same `main` app.py calls)."""
    from ui.cli import main
    db = tmp_path / "cli.sqlite"
    with TraceStore(str(db)) as s:
        write(s, "cli1", dataset="geo", models=("A",))
        write(s, "cli2", question="who wrote Dune?", gold=["Frank Herbert"], models=("B",))

    def run(*a):
        capsys.readouterr()
        code = main(list(a))
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, err = run("sessions", "--db", str(db), "--model", "B")
    assert code == 0 and "who wrote Dune?" in out and "capital of France" not in out
    assert "1–1 of 1" in out
    exp = tmp_path / "e.jsonl"
    code, out, err = run("export", "--db", str(db), "--out", str(exp), "--dataset", "geo")
    assert code == 0 and "exported 1" in out and len(exp.read_text().splitlines()) == 1
    db2 = tmp_path / "cli2.sqlite"
    code, out, err = run("import", str(exp), "--db", str(db2))
    assert code == 0 and "imported 1" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(exp.read_text() + "{broken\n")
    code, out, err = run("import", str(bad), "--db", str(db2))
    assert code == 1 and "bad.jsonl:2:" in err and "already present 1" in out
    code, out, err = run("sessions", "--db", str(tmp_path / "nonsense.sqlite").replace("nonsense", "x/y"))
    assert code == 2 and "does not exist" in err and "Traceback" not in err


def test_the_answer_a_hop_replaced_and_the_sub_question_the_rollout_replaced_are_stored_and_read_back(store):
    steps = make_steps("d")
    steps[1].draft = "1564"
    steps[1].written_query = "In what year was the author of Hamlet born?"
    list(recorded(store, iter(steps), session_id="d", question="q", alpha=0.0, policy="p", engine="e", pool=POOL))
    with store.engine.connect() as c:
        extras = [json.loads(e) if e else None for (e,) in c.exec_driver_sql("SELECT extra FROM steps ORDER BY idx")]
    assert extras[1] == {"draft": "1564", "written_query": steps[1].written_query}
    assert extras[0] is None  # an empty field is not written
    back = store.load_steps("d")
    assert [s.draft for s in back] == [None, "1564"] + [None] * (len(steps) - 2)
    assert back[1].written_query == steps[1].written_query and back[0].written_query is None


def test_the_run_settings_a_session_ran_with_round_trip_through_store_and_jsonl(store, tmp_path):
    from router_core.policy import RunConfig, intervention_settings, recorded_settings

    cfg = RunConfig().merged(intervention_settings(["check_answer", "fact_question"])).merged({"think_tokens": 96})
    settings = recorded_settings(cfg)
    assert settings == {"interventions": ["check_answer", "fact_question"],
                        "run": {"check_answer": True, "fact_question": "What is the name of {fact}?",
                                "think_tokens": 96}}
    write(store, "with", settings=settings)
    write(store, "without")
    assert store.get_session("with")["settings"] == settings and store.get_session("without")["settings"] is None
    buf = io.StringIO()
    store.export_jsonl(buf)
    with TraceStore(str(tmp_path / "copy.sqlite")) as copy:
        report = copy.import_jsonl(buf.getvalue().splitlines())
        assert report.imported == 2 and copy.get_session("with")["settings"] == settings
        assert copy.import_jsonl(buf.getvalue().splitlines()).skipped == 2  # same content, settings included
    line = json.loads(buf.getvalue().splitlines()[0])
    line["session"]["settings"] = {"interventions": ["x"], "run": {"think_tokens": [1]}}
    with TraceStore(str(tmp_path / "bad.sqlite")) as bad:
        errors = bad.import_jsonl([json.dumps(line)]).errors
    assert errors and "session.settings.run.think_tokens" in errors[0][1]
