"""Trace store reliability: a writer killed with SIGKILL, many writers at once, keys kept out of every
file and log, and clear errors for databases that cannot be used.

Every wait is bounded (no pytest-timeout plugin is installed): subprocesses run under `timeout=`,
reads from a child go through a queue with a deadline, threads are joined with a timeout, and
children are killed in `finally`.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml
from support.openai_server import OpenAITestServer
from support.store_writer import STEP_COST, synthetic_steps

from storage import StoreError, TraceStore
from storage.recorder import recorded

ROOT = Path(__file__).resolve().parent.parent
WRITER = ROOT / "tests" / "support" / "store_writer.py"
QUESTION = "Who directed the film Interstellar?"
STEP_WAIT_S = 240      # one line from a real-model child (model loading + one generation, on a busy CPU)
CLI_TIMEOUT_S = 300


def _reader(stream, q: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        q.put(line.rstrip("\n"))
    q.put(None)


def _next_line(q: queue.Queue, deadline: float, what: str, log: Path | None = None) -> str:
    left = deadline - time.monotonic()
    try:
        line = q.get(timeout=max(0.1, left))
    except queue.Empty:
        pytest.fail(f"timed out waiting for {what}" + (f"; child log tail:\n{_tail(log)}" if log else ""))
    if line is None:
        pytest.fail(f"child closed stdout before {what}" + (f"; child log tail:\n{_tail(log)}" if log else ""))
    return line


def _tail(p: Path | None, n: int = 3000) -> str:
    try:
        return p.read_text(errors="replace")[-n:] if p else ""
    except OSError:
        return ""


def _raw(db: Path) -> sqlite3.Connection:
    con = sqlite3.connect(db, timeout=30)
    con.execute("PRAGMA busy_timeout = 30000")
    return con


# ---------------------------------------------------------------------------------------------
# 1. SIGKILL after k committed steps: exactly k steps survive, the session becomes "interrupted"
# ---------------------------------------------------------------------------------------------

@pytest.mark.model  # the child runs the real router
@pytest.mark.parametrize("k", [1, 2, 3])
def test_sigkill_after_k_steps_leaves_exactly_k_steps_and_an_interrupted_session(tmp_path, k):
    db = tmp_path / "crash.sqlite"
    sid = f"crash-{k}-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "child.log"
    with open(log, "w") as err:
        # min_turns=2: at least think, route, think, (route, think,) answer -> never fewer than 4 steps,
        # so the child is always still running when it has reported k <= 3 steps.
        proc = subprocess.Popen([sys.executable, str(WRITER), "real", str(db), sid, "2"], cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)
    q: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
    reported: list[tuple[int, str]] = []
    try:
        deadline = time.monotonic() + STEP_WAIT_S
        while len(reported) < k:
            line = _next_line(q, deadline, f"step {len(reported)} of the child", log)
            if not line.startswith("STEP "):
                continue
            _, idx, kind = line.split()
            reported.append((int(idx), kind))
            deadline = time.monotonic() + STEP_WAIT_S
        # the child is now computing step k with a real model: kill it mid-work
        assert proc.poll() is None, "the child finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stdout.close()
    assert [i for i, _ in reported] == list(range(k))
    # no clean close ran: the committed steps may live only in the -wal file
    assert Path(f"{db}-wal").exists()

    # as left by the dead writer (no recovery yet): still "running", k steps
    with TraceStore(str(db), recover=False) as s:
        sess = s.get_session(sid)
        assert sess["status"] == "running" and sess["n_steps"] == k
    # reopen normally: recover_interrupted marks it interrupted; nothing lost, nothing extra
    with TraceStore(str(db)) as s:
        sess = s.get_session(sid)
        steps = s.load_steps(sid)
        assert sess["status"] == "interrupted", sess
        assert sess["error"] and "died" in sess["error"]
        assert sess["n_steps"] == k
        assert [st.index for st in steps] == list(range(k))
        assert [(st.index, st.kind) for st in steps] == reported
        assert steps[0].kind == "think" and all(st.ended_at is not None for st in steps)
        assert sess["cost_usd"] == pytest.approx(sum(st.cost_usd for st in steps), abs=1e-15)
        assert s.recover_interrupted() == 0          # idempotent: nothing left running
        # the file is intact and takes new sessions
        for _ in recorded(s, synthetic_steps("after-crash", 3), session_id="after-crash", question="q",
                          alpha=0.0, policy="p", engine="llamacpp", pool={"name": "x"}):
            pass
        assert s.get_session("after-crash")["status"] == "done"
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT COUNT(*) FROM steps WHERE session_id = ?", (sid,)).fetchone()[0] == k
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# 2. Many writers at once: no step lost, no "database is locked"
# ---------------------------------------------------------------------------------------------

SESSIONS, STEPS = 10, 6              # per writer: 6 threads or 3 processes contend for one file
ROUTES = STEPS - 2                     # synthetic_steps: think, 4 routes (A, B, A, B), answer


def _check_counts(db: Path, workers: list[str]) -> None:
    con = _raw(db)
    try:
        n_sessions = con.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
        n_steps = con.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
        assert n_sessions == len(workers) * SESSIONS
        assert n_steps == len(workers) * SESSIONS * STEPS
        ids = {r[0] for r in con.execute("SELECT id FROM sessions")}
        assert ids == {f"{w}-{i}" for w in workers for i in range(SESSIONS)}
        bad = con.execute(
            "SELECT s.id, s.status, s.n_steps, s.calls, s.cost_usd, COUNT(st.idx), MIN(st.idx), MAX(st.idx) "
            "FROM sessions s LEFT JOIN steps st ON st.session_id = s.id GROUP BY s.id "
            "HAVING s.status != 'done' OR s.n_steps != ? OR s.calls != ? OR ABS(s.cost_usd - ?) > 1e-12 "
            "OR COUNT(st.idx) != ? OR MIN(st.idx) != 0 OR MAX(st.idx) != ?",
            (STEPS, ROUTES, ROUTES * STEP_COST, STEPS, STEPS - 1)).fetchall()
        assert bad == [], bad[:5]
        usage = con.execute("SELECT model, SUM(calls), COUNT(*), SUM(cost_usd) FROM session_models "
                            "GROUP BY model ORDER BY model").fetchall()
        n = len(workers) * SESSIONS
        assert [(m, c, k) for m, c, k, _ in usage] == [("A", n * ROUTES // 2, n), ("B", n * ROUTES // 2, n)]
        total = con.execute("SELECT SUM(cost_usd) FROM sessions").fetchone()[0]
        assert total == pytest.approx(n * ROUTES * STEP_COST, rel=1e-9)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()


def test_threads_sharing_one_store_lose_nothing_and_never_see_locked(tmp_path):
    db = tmp_path / "threads.sqlite"
    workers = [f"t{i}" for i in range(6)]
    errors: list[str] = []
    reads = [0]
    stop_reading = threading.Event()
    t0 = time.monotonic()
    with TraceStore(str(db)) as store:
        go = threading.Barrier(len(workers) + 1, timeout=30)

        def write(w: str) -> None:
            try:
                go.wait()
                for i in range(SESSIONS):
                    sid = f"{w}-{i}"
                    store.start_session(session_id=sid, question=f"{w} question {i}", alpha=0.5, policy="p",
                                        engine="llamacpp", pool={"name": "synthetic"})
                    for st in synthetic_steps(sid, STEPS):
                        store.append_step(st)
                    store.finish(sid, status="done", answer="Christopher Nolan")
            except Exception as e:
                errors.append(f"{w}: {type(e).__name__}: {e}")

        def read() -> None:  # readers run alongside (WAL: they never block the writers)
            try:
                go.wait()
                while True:
                    store.list_sessions(page_size=20)
                    reads[0] += 1
                    if stop_reading.wait(0.01):  # a reader at a page's pace, not one that holds the GIL throughout
                        break
            except Exception as e:
                errors.append(f"reader: {type(e).__name__}: {e}")

        threads = [threading.Thread(target=write, args=(w,), daemon=True) for w in workers]
        reader = threading.Thread(target=read, daemon=True)
        for t in threads:
            t.start()
        reader.start()
        for t in threads:
            t.join(timeout=120)
        stop_reading.set()
        reader.join(timeout=30)
        assert not any(t.is_alive() for t in threads + [reader]), "a writer or reader thread hung"
        assert not [e for e in errors if "locked" in e.lower()], errors
        assert errors == []
        assert reads[0] > 0
        pg = store.list_sessions(page_size=1000)
        df, total = pg.rows, pg.total
        assert total == len(workers) * SESSIONS and set(df["n_steps"]) == {STEPS}
    _check_counts(db, workers)
    assert time.monotonic() - t0 < 120


@pytest.mark.parametrize("existing", [True, False], ids=["existing-file", "cold-start"])
def test_processes_writing_one_file_lose_nothing_and_never_see_locked(tmp_path, existing):
    db = tmp_path / "procs.sqlite"
    if existing:
        TraceStore(str(db)).close()
    workers = [f"p{i}" for i in range(3)]
    procs: list[subprocess.Popen] = []
    t0 = time.monotonic()
    try:
        for w in workers:
            procs.append(subprocess.Popen(
                [sys.executable, str(WRITER), "synthetic", str(db), w, str(SESSIONS), str(STEPS)], cwd=ROOT,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                start_new_session=True))
        queues = []
        for p in procs:
            q: queue.Queue = queue.Queue()
            threading.Thread(target=_reader, args=(p.stdout, q), daemon=True).start()
            queues.append(q)
        deadline = time.monotonic() + 90
        for q in queues:  # every writer imported everything and waits: start them together
            assert _next_line(q, deadline, "READY") == "READY"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        deadline = time.monotonic() + 120
        for p, q in zip(procs, queues):
            line = _next_line(q, deadline, "a writer's result")
            results.append(json.loads(line))
            p.wait(timeout=max(1, deadline - time.monotonic()))
            stderr = p.stderr.read()
            assert p.returncode == 0, stderr[-2000:]
            assert "locked" not in stderr.lower(), stderr[-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
            for f in (p.stdin, p.stdout, p.stderr):
                try:
                    f.close()
                except (OSError, BrokenPipeError):
                    pass
    errors = [e for r in results for e in r["errors"]]
    assert not [e for e in errors if "locked" in e.lower()], errors
    assert errors == []
    assert sorted(r["written"] for r in results) == [SESSIONS] * len(workers)
    _check_counts(db, workers)
    assert time.monotonic() - t0 < 150


# ---------------------------------------------------------------------------------------------
# 3. An API key from the environment is used, and never written to the store, an export or a log
# ---------------------------------------------------------------------------------------------

KEY_VAR = "ROUTER_STUDIO_RELIABILITY_TEST_KEY"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, timeout=CLI_TIMEOUT_S,
                          stdin=subprocess.DEVNULL, env=env)


def test_api_key_is_sent_but_never_stored_exported_or_logged(tmp_path, smol):
    secret = f"sk-studio-{uuid.uuid4().hex}"
    needles = [secret.encode(), secret.split("-")[-1].encode()]   # whole key, and its random part alone
    db = tmp_path / "keys.sqlite"
    policies = yaml.safe_load((ROOT / "assets" / "policies.yaml").read_text(encoding="utf-8"))
    name = os.environ.get("ROUTER_STUDIO_POLICY") or policies["default"]   # the preset tests run (conftest)
    default = next(p for p in policies["policies"] if p["name"] == name)
    default["run"] = {**default.get("run", {}), "min_turns": 1, "max_turns": 1}  # route exactly once
    pol_file = tmp_path / "policies.yaml"
    pol_file.write_text(yaml.safe_dump({"default": default["name"], "policies": [default]}), encoding="utf-8")
    env = {**os.environ, KEY_VAR: secret, "ROUTER_STUDIO_DB": str(tmp_path / "unused.sqlite")}
    outputs: list[bytes] = []
    with OpenAITestServer(smol) as server:
        pool_file = tmp_path / "pool.yaml"
        pool_file.write_text(yaml.safe_dump({"name": "http-keyed", "models": [{
            "name": "Remote-Smol", "engine": "openai", "model": "smollm2", "base_url": server.base_url,
            "api_key_env": KEY_VAR, "params_b": 0.135, "price_in": 0.01, "price_out": 0.03,
            "description": "a small model behind an HTTP endpoint that needs a key", "timeout_s": 20}]}),
            encoding="utf-8")
        common = ("--pool", str(pool_file), "--policies", str(pol_file), "--db", str(db))
        runs = [("ask", QUESTION, *common), ("ask", QUESTION, *common, "--json")]
        for i, args in enumerate(runs + [("ask", QUESTION, *common)]):
            if i == 2:  # a failing endpoint: the error path is stored too, and must not carry the key
                server.faults.extend(["500"] * 8)
            p = _cli(*args, env=env)
            server.faults.clear()
            outputs += [p.stdout, p.stderr]
            assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
        requests = list(server.requests)
    # the key was in use: every call carried it, in the Authorization header only
    assert requests and all(r["auth"] == f"Bearer {secret}" for r in requests)
    assert all(secret not in json.dumps(r["body"]) for r in requests)
    out = tmp_path / "export.jsonl"
    p = _cli("export", "--db", str(db), "--out", str(out), env=env)
    outputs += [p.stdout, p.stderr]
    assert p.returncode == 0 and b"exported 3" in p.stdout, p.stderr[-2000:]
    p = _cli("sessions", "--db", str(db), env=env)
    outputs += [p.stdout, p.stderr]
    assert p.returncode == 0

    with TraceStore(str(db)) as s:  # the sessions really went through the keyed model
        pg = s.list_sessions()
        df, total = pg.rows, pg.total
        assert total == 3
        for sid in df["id"]:
            sess, steps, _ = s.load_session(sid)
            assert sess["pool"]["models"][0]["api_key_env"] == KEY_VAR
            routes = [st for st in steps if st.kind == "route"]
            assert routes and all(st.request_model == "Remote-Smol" for st in routes)
        statuses = sorted({st.status for sid in df["id"] for st in s.load_steps(sid) if st.kind == "route"})
        assert "ok" in statuses and "error" in statuses
    files = [out] + [Path(f"{db}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
    for f in files:
        if f.exists():
            data = f.read_bytes()
            for n in needles:
                assert n not in data, f"the key is in {f}"
    for i, o in enumerate(outputs):
        for n in needles:
            assert n not in o, f"the key is in captured output #{i}"
    # and, for sure, the database holds the variable's NAME (so the check above looked at real content)
    assert KEY_VAR.encode() in db.read_bytes() + (Path(f"{db}-wal").read_bytes() if Path(f"{db}-wal").exists() else b"")
    assert KEY_VAR.encode() in out.read_bytes()


# ---------------------------------------------------------------------------------------------
# 4. Databases that cannot be used: a clear StoreError that names the file
# ---------------------------------------------------------------------------------------------

def test_corrupt_files_are_refused_naming_the_file(tmp_path):
    rnd = tmp_path / "random.sqlite"
    rnd.write_bytes(b"\x00garbage" + os.urandom(8192))
    txt = tmp_path / "notes.sqlite"
    txt.write_text("these are my notes, not a database\n" * 50)
    for f in (rnd, txt):
        before = f.read_bytes()
        with pytest.raises(StoreError) as e:
            TraceStore(str(f))
        assert str(f) in str(e.value) and "not a SQLite database" in str(e.value)
        assert f.read_bytes() == before  # refused without touching it
        assert not Path(f"{f}-wal").exists()
    # a right header followed by garbage passes the header check; SQLite itself then refuses it
    fake = tmp_path / "fake.sqlite"
    fake.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    with pytest.raises(StoreError) as e:
        TraceStore(str(fake))
    assert str(fake) in str(e.value)
    # a real store whose pages after the header were overwritten
    broken = tmp_path / "broken.sqlite"
    TraceStore(str(broken)).close()
    data = bytearray(broken.read_bytes())
    data[100:] = os.urandom(len(data) - 100)
    broken.write_bytes(bytes(data))
    with pytest.raises(StoreError) as e:
        TraceStore(str(broken))
    assert str(broken) in str(e.value)


def test_newer_schema_is_refused_and_left_untouched(tmp_path):
    db = tmp_path / "newer.sqlite"
    TraceStore(str(db)).close()
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.commit()
    tables_before = sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master"))
    con.close()
    with pytest.raises(StoreError) as e:
        TraceStore(str(db))
    msg = str(e.value)
    assert str(db) in msg and "newer" in msg and "999" in msg
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "999"
        assert sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master")) == tables_before
    finally:
        con.close()


def _store_as_unprivileged_user(*paths: Path) -> list[list[str]]:
    """Open each store in one child that runs as an ordinary user (root ignores file modes): list it, then try
    a write. One child for all paths (starting Python and importing the store costs about a second); returns
    the lines each path printed."""
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from storage import StoreError, TraceStore\n"
            "for path in sys.argv[2:]:\n"
            "    print('--')\n"
            "    try:\n        s = TraceStore(path)\n        print('OPENED', s.list_sessions().total)\n"
            "    except StoreError as e:\n        print('STOREERROR', e)\n        continue\n"
            "    except Exception as e:\n        print('OTHER', type(e).__name__, e)\n        continue\n"
            "    try:\n"
            "        s.start_session(session_id='w', question='q', alpha=0, policy='p', engine='e', pool={})\n"
            "        print('WROTE')\n"
            "    except StoreError as e:\n        print('WRITEERROR', e)\n"
            "    s.close()\n")
    cmd = [sys.executable, "-c", code, str(ROOT), *map(str, paths)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            pytest.skip("running as root and no setpriv to drop to an ordinary user: root ignores chmod 0o444")
        cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                       env={**os.environ, "HOME": str(paths[0].parent)})
    if not p.stdout.startswith("--\n") or not p.stdout[3:].startswith(("STOREERROR", "OPENED", "OTHER")):
        pytest.skip(f"cannot run Python as an ordinary user here: {p.stderr.strip()[-300:]}")
    per_path = [block.strip().splitlines() for block in p.stdout.split("--\n")[1:]]
    assert len(per_path) == len(paths), (p.stdout, p.stderr[-1000:])
    return per_path


@pytest.fixture
def shared_dir():
    """A folder an ordinary user can reach (pytest's tmp_path is private to root when tests run as root)."""
    top = Path(tempfile.mkdtemp(prefix="store-ro-"))
    top.chmod(0o711)
    try:
        yield top
    finally:
        for d in top.iterdir():
            d.chmod(0o755)
        shutil.rmtree(top, ignore_errors=True)


def test_read_only_file_or_folder_opens_for_reading_and_writes_name_the_file(shared_dir):
    ro_file, ro_dir = shared_dir / "ro-file", shared_dir / "ro-dir"
    for d in (ro_file, ro_dir):
        d.mkdir()
        with TraceStore(str(d / "ro.sqlite")) as s:
            for _ in recorded(s, synthetic_steps("r1", 2), session_id="r1", question="q", alpha=0.0, policy="p",
                              engine="llamacpp", pool={"name": "x"}):
                pass
    # a read-only file in a writable folder
    ro_file.chmod(0o777)
    (ro_file / "ro.sqlite").chmod(0o444)
    # a writable file in a read-only folder (SQLite cannot create its -wal file next to it): read-only too
    (ro_dir / "ro.sqlite").chmod(0o666)
    ro_dir.chmod(0o555)
    # and a new database in a read-only folder cannot be created at all
    new = ro_dir / "new.sqlite"
    out = _store_as_unprivileged_user(ro_file / "ro.sqlite", ro_dir / "ro.sqlite", new)
    for db, lines in zip((ro_file / "ro.sqlite", ro_dir / "ro.sqlite"), out):
        assert lines[0] == "OPENED 1", (db, out)
        assert lines[1].startswith("WRITEERROR") and str(db) in lines[1] and "read-only" in lines[1], out
    assert out[2][0].startswith("STOREERROR") and "new.sqlite" in out[2][0] and "read-only" in out[2][0], out


def test_immutable_file_opens_for_reading_even_for_root(tmp_path):
    """chattr +i makes a file unwritable for root too (where chmod 0o444 does not)."""
    chattr = shutil.which("chattr")
    if not chattr:
        pytest.skip("chattr is not installed")
    db = tmp_path / "immutable.sqlite"
    with TraceStore(str(db)) as s:
        for _ in recorded(s, synthetic_steps("i1", 2), session_id="i1", question="q", alpha=0.0, policy="p",
                          engine="llamacpp", pool={"name": "x"}):
            pass
    r = subprocess.run([chattr, "+i", str(db)], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip(f"chattr +i is not supported here ({r.stderr.strip()})")
    try:
        with TraceStore(str(db)) as s:
            assert s.read_only and s.list_sessions().ids == ["i1"] and len(s.load_steps("i1")) == 2
            with pytest.raises(StoreError) as e:
                s.annotate("i1", "other")
            assert str(db) in str(e.value) and "read-only" in str(e.value)
    finally:
        subprocess.run([chattr, "-i", str(db)], timeout=30, check=False)


def _hold_exclusive(db: Path, locked: threading.Event, release: threading.Event) -> None:
    con = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        con.execute("BEGIN EXCLUSIVE")
        con.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
        locked.set()
        release.wait(timeout=60)
        con.execute("COMMIT")
    finally:
        con.close()


def test_a_write_blocked_by_an_exclusive_lock_waits_then_succeeds(tmp_path):
    db = tmp_path / "locked.sqlite"
    store = TraceStore(str(db))
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_exclusive, args=(db, locked, release), daemon=True)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        hold_s = 0.6
        timer = threading.Timer(hold_s, release.set)
        timer.start()
        t0 = time.monotonic()
        store.start_session(session_id="waited", question="q", alpha=0.0, policy="p", engine="llamacpp",
                            pool={"name": "x"})
        waited = time.monotonic() - t0
        assert waited >= hold_s - 0.2, f"the write did not wait for the lock ({waited:.2f} s)"
        assert waited < 25
        # a second store opened while the lock is held also waits instead of failing
        release.clear()
        holder2 = threading.Thread(target=_hold_exclusive, args=(db, locked, release), daemon=True)
        locked.clear()
        holder2.start()
        assert locked.wait(timeout=30)
        threading.Timer(hold_s, release.set).start()
        t0 = time.monotonic()
        with TraceStore(str(db)) as s2:
            assert s2.get_session("waited")["status"] == "running"
        assert time.monotonic() - t0 >= hold_s - 0.2
        holder2.join(timeout=30)
    finally:
        release.set()
        holder.join(timeout=30)
        store.close()


@pytest.fixture
def short_busy_timeout(monkeypatch):
    """The store waits 30 s for a lock; shorten that wait to 0.3 s so a lock that outlasts it is testable."""
    from storage.connection import Database
    original = Database._sqlite_connect

    def connect(dbapi_conn, record):
        original(dbapi_conn, record)
        dbapi_conn.execute("PRAGMA busy_timeout = 300")

    monkeypatch.setattr(Database, "_sqlite_connect", staticmethod(connect))


def test_opening_a_store_locked_longer_than_the_busy_timeout_names_the_file(tmp_path, short_busy_timeout):
    db = tmp_path / "held.sqlite"
    TraceStore(str(db)).close()
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_exclusive, args=(db, locked, release), daemon=True)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        t0 = time.monotonic()
        with pytest.raises(StoreError) as e:
            TraceStore(str(db))
        assert time.monotonic() - t0 < 10
        assert str(db) in str(e.value) and "locked" in str(e.value)
    finally:
        release.set()
        holder.join(timeout=30)
    TraceStore(str(db)).close()  # once the lock is gone it opens


def test_a_write_locked_longer_than_the_busy_timeout_names_the_file(tmp_path, short_busy_timeout):
    db = tmp_path / "held-write.sqlite"
    store = TraceStore(str(db))
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_exclusive, args=(db, locked, release), daemon=True)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        with pytest.raises(StoreError) as e:
            store.start_session(session_id="x", question="q", alpha=0.0, policy="p", engine="llamacpp",
                                pool={"name": "x"})
        assert str(db) in str(e.value)
    finally:
        release.set()
        holder.join(timeout=30)
        store.close()


def test_unreadable_file_or_untraversable_folder_is_a_store_error(shared_dir):
    open_dir, closed_dir = shared_dir / "open", shared_dir / "closed"
    for d in (open_dir, closed_dir):
        d.mkdir()
        TraceStore(str(d / "secret.sqlite")).close()
    open_dir.chmod(0o777)
    (open_dir / "secret.sqlite").chmod(0o000)
    (closed_dir / "secret.sqlite").chmod(0o666)
    closed_dir.chmod(0o700)  # the ordinary user cannot even look inside
    out = _store_as_unprivileged_user(open_dir / "secret.sqlite", closed_dir / "secret.sqlite")
    for db, lines in zip((open_dir / "secret.sqlite", closed_dir / "secret.sqlite"), out):
        assert lines[0].startswith("STOREERROR") and str(db) in lines[0], out


def test_a_killed_writer_not_yet_reaped_is_recovered(tmp_path):
    db = tmp_path / "zombie.sqlite"
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); from storage import TraceStore\n"
            "s = TraceStore(sys.argv[2])\n"
            "s.start_session(session_id='z', question='q', alpha=0.0, policy='p', engine='e', pool={})\n"
            "print('STARTED', flush=True); time.sleep(120)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(ROOT), str(db)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    try:
        q: queue.Queue = queue.Queue()
        threading.Thread(target=_reader, args=(p.stdout, q), daemon=True).start()
        assert _next_line(q, time.monotonic() + 60, "STARTED") == "STARTED"
        os.kill(p.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _proc_state(p.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _proc_state(p.pid) == "Z"     # dead, not reaped: it will never write again
        with TraceStore(str(db)) as s:
            assert s.get_session("z")["status"] == "interrupted"
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
        p.stdout.close()


def _proc_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
