"""bench/switch_oracle.py: the per-question switch between an α 0 run and an α 1 run, read from a store."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_the_oracle_sends_cheap_only_the_questions_the_cheap_run_gets_right(tmp_path):
    db = tmp_path / "s.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE sessions (item_id TEXT, alpha REAL, em REAL, cost_usd REAL, status TEXT)")
    # q1: both right (cheap is enough); q2: only the dear run right; q3: neither; q4 has no cheap session
    con.executemany("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)", [
        ("q1", 0.0, 1, 30e-6, "ok"), ("q1", 1.0, 1, 4e-6, "ok"),
        ("q2", 0.0, 1, 30e-6, "ok"), ("q2", 1.0, 0, 4e-6, "ok"),
        ("q3", 0.0, 0, 30e-6, "ok"), ("q3", 1.0, 0, 4e-6, "ok"),
        ("q4", 0.0, 1, 30e-6, "ok"), ("q4", 1.0, 1, 4e-6, "error")])
    con.commit()
    con.close()
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "switch_oracle.py"), "--db", str(db)],
                         capture_output=True, text=True, check=True).stdout
    assert "3 questions; α 0.0: EM 0.667 at 30.0 µ$; α 1.0: EM 0.333 at 4.0 µ$" in out
    assert "does as well on 2, worse on 1" in out
    # the oracle: q1 and q3 cheap (4 µ$ each), q2 dear (30 µ$): EM 2/3 at 38/3 µ$, 42 % of α 0's cost
    oracle = next(line for line in out.splitlines() if line.startswith("the oracle")).split()
    assert oracle[2:] == ["0.667", "12.7", "42%"]


def test_a_store_without_both_runs_is_named(tmp_path):
    db = tmp_path / "empty.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE sessions (item_id TEXT, alpha REAL, em REAL, cost_usd REAL, status TEXT)")
    con.close()
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "switch_oracle.py"), "--db", str(db)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "no question has a finished session at both α 0.0 and α 1.0" in r.stderr
