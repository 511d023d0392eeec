"""The trace store on a real PostgreSQL server started by the tests (Debian's postgresql package).

Skipped with a printed reason only where no server binaries can be found; `bash scripts/setup.sh
--tests` installs them.
"""
import glob
import os
import shutil
import socket
import subprocess
import threading
import uuid

import pytest
from test_store import make_steps, write

from storage import SessionFilter, TraceStore

pytestmark = pytest.mark.postgres


def _bin(name):
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]
    return found if isinstance(found, str) else (found[0] if found else None)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_server():
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries not found (install Debian's postgresql: "
                    "bash scripts/setup.sh --tests)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed")
    import tempfile
    from pathlib import Path
    base = Path(tempfile.mkdtemp(prefix="router-studio-pg-"))  # pytest's tmp is root-only; postgres needs in
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        if subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(as_user + [initdb, "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run(as_user + [pg_ctl, "-D", str(data), "-w", "-t", "60", "-l", str(base / "log"), "-o",
                              f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True, timeout=90)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(as_user + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True,
                       timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg(pg_server):
    import psycopg
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server.replace("postgresql+psycopg", "postgresql") + "/postgres",
                         autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    s = TraceStore(f"{pg_server}/{name}")
    yield s
    s.close()


def test_round_trip_filters_and_rollups_on_postgres(pg):
    orig = write(pg, "p1", dataset="geo")
    write(pg, "p2", question="who wrote Dune?", gold=["Frank Herbert"], models=("B",), alpha=0.9)
    sess, steps, _ = pg.load_session("p1")
    assert [s.to_dict() for s in steps] == [s.to_dict() for s in orig]
    assert sess["status"] == "done" and sess["calls"] == 2 and sess["n_steps"] == 4 and sess["latency_s"] > 0
    page = pg.list_sessions(SessionFilter(model="A"))
    df, total = page.rows, page.total
    assert list(df["id"]) == ["p1"] and total == 1
    page = pg.list_sessions(SessionFilter(text="DUNE", alpha_min=0.5, correct=False))
    df, _ = page.rows, page.total
    assert list(df["id"]) == ["p2"]
    pg.annotate("p2", "candidate_wrong", "note")
    assert list(pg.list_sessions(SessionFilter(label="candidate_wrong")).rows["id"]) == ["p2"]
    assert list(pg.list_sessions(SessionFilter(gold="herbert")).rows["id"]) == ["p2"]  # the analyst's filters
    p2 = pg.get_session("p2")
    assert p2["failure"] and list(pg.list_sessions(SessionFilter(failure=p2["failure"])).rows["id"]) == ["p2"]
    assert list(pg.list_sessions(SessionFilter(policy=p2["policy"], calls=p2["calls"])).rows["id"]) == ["p2"]
    from storage.summary import distinct_values
    v = distinct_values(pg)  # the pickers' recursive seek runs on PostgreSQL too
    assert v["datasets"] == ["geo"] and set(v["models"]) >= {"A", "B"} and v["policies"] == sorted(v["policies"])
    assert pg.delete("p1") and pg.list_sessions().total == 1


def test_export_from_sqlite_import_into_postgres(pg, tmp_path):
    import io
    with TraceStore(str(tmp_path / "s.sqlite")) as lite:
        write(lite, "m1")
        lite.annotate("m1", "other", "x", step_idx=1)
        buf = io.StringIO()
        lite.export_jsonl(buf)
        rep = pg.import_jsonl(buf.getvalue().splitlines())
        assert rep.imported == 1 and not rep.errors
        assert [s.to_dict() for s in pg.load_steps("m1")] == [s.to_dict() for s in lite.load_steps("m1")]
        assert pg.model_usage("m1") == lite.model_usage("m1")


def test_concurrent_writers_on_postgres(pg):
    errors = []

    def worker(w):
        try:
            for i in range(10):
                sid = f"w{w}-{i}"
                for _ in __import__("storage.recorder", fromlist=["recorded"]).recorded(
                        pg, make_steps(sid), session_id=sid, question="q", alpha=0.1, policy="p", engine="e",
                        pool={"name": "x"}):
                    pass
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    page = pg.list_sessions(page_size=100)
    df, total = page.rows, page.total
    assert total == 60 and set(df["n_steps"]) == {4}


def test_the_text_filter_is_answered_by_trigram_indexes_on_postgres(pg):
    """A word in a question or an answer is found through pg_trgm GIN indexes, not by reading every session: the
    filter's expressions are the ones the indexes are built on (checked with sequential scans off, as the planner
    would choose on a large table)."""
    write(pg, "t1", question="Which river flows through Budapest?", gold=["Danube"])
    write(pg, "t2", question="who wrote Dune?", gold=["Frank Herbert"])
    from sqlalchemy import func, select

    from storage import queries
    from storage.models import SessionRow
    with pg.read() as conn:
        names = set(conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE tablename = 'sessions'").scalars())
        assert {"ix_sessions_question_trgm", "ix_sessions_answer_trgm"} <= names
        cond = queries.plan(conn, SessionFilter(text="budapest"), is_sqlite=False, has_text_index=False).cond
        sql = str(select(func.count()).select_from(SessionRow).where(cond).compile(
            conn, compile_kwargs={"literal_binds": True}))
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + sql).scalars())
    assert "ix_sessions_question_trgm" in plan and "ix_sessions_answer_trgm" in plan, plan
    assert pg.list_sessions(SessionFilter(text="BUDAPEST")).ids == ["t1"]
    assert pg.list_sessions(SessionFilter(text="50%")).ids == []  # wildcards are literal
