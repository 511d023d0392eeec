"""The command line's options and errors, without running a model."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ui.cli import CliError, main, parse

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run(capsys):
    """`python app.py ARGS` in this process (the same `main` the entry point calls)."""
    def call(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return Result(code, out.out, out.err)
    return call


@pytest.mark.parametrize("argv", [
    ["--pool", "P.yaml", "--db", "D.sqlite", "--policy", "pol", "--alpha", "0.4", "ask", "Q"],
    ["ask", "Q", "--pool", "P.yaml", "--db", "D.sqlite", "--policy", "pol", "--alpha", "0.4"],
    ["--pool", "P.yaml", "ask", "--db", "D.sqlite", "Q", "--policy", "pol", "--alpha", "0.4"],
])
def test_options_mean_the_same_before_or_after_the_command(argv):
    a = parse(argv)
    assert (a.cmd, a.question, a.pool, a.db, a.policy, a.alpha) == ("ask", "Q", "P.yaml", "D.sqlite", "pol", "0.4")


def test_after_the_command_wins_and_defaults_fill_in():
    a = parse(["--db", "root.sqlite", "sessions", "--db", "sub.sqlite"])
    assert a.db == "sub.sqlite" and a.cmd == "sessions"
    a = parse(["ask", "Q"])
    assert a.db is None and a.pool is None and a.alpha is None and a.max_turns is None


def test_serve_is_the_default_command_and_a_real_one():
    a = parse(["--port", "8000", "--db", "x.sqlite"])
    assert (a.cmd, a.port, a.db, a.host) == ("serve", "8000", "x.sqlite", "127.0.0.1")
    b = parse(["serve", "--host", "0.0.0.0", "--auth", "u:p"])
    assert (b.cmd, b.host, b.auth) == ("serve", "0.0.0.0", ["u:p"])
    with pytest.raises(CliError, match="--host applies to `serve` and `serve-api` only, not `ask`"):
        parse(["--host", "0.0.0.0", "ask", "Q"])


def test_root_options_reach_the_command_end_to_end(tmp_path, run):
    # the pool given before the command is the one `ask` tries to load (it is bad, so no model runs)
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: p\nmodels: []\n")
    p = run("--pool", str(bad), "ask", "q")
    assert p.returncode == 2 and "mine.yaml: models" in p.stderr and "Traceback" not in p.stderr
    # --db before the command is the store `sessions` reads
    db = tmp_path / "before.sqlite"
    p = run("--db", str(db), "sessions")
    assert p.returncode == 0 and str(db) in p.stdout and db.exists()


@pytest.mark.parametrize("args,needle", [
    (["ask", ""], "question: empty"),
    (["ask", "   "], "question: empty"),
    (["ask", "x" * 4001], "question: 4,001 characters; the limit is 4,000"),
    (["ask", "q", "--max-turns", "-1"], "--max-turns: -1 is outside 0..64"),
    (["ask", "q", "--max-turns", "two"], "--max-turns: 'two' is not a whole number"),
    (["ask", "q", "--alpha", "1.5"], "--alpha: 1.5 is outside [0, 1]"),
    (["ask", "q", "--alpha", "nan"], "--alpha: nan is outside [0, 1]"),
    (["sessions", "--page", "0"], "--page: 0 is outside 1..1000000000"),
    (["sessions", "--page", "-1"], "--page: -1 is outside"),
    (["sessions", "--page", str(10 ** 18)], "--page: 1000000000000000000 is outside"),
    (["sessions", "--limit", "0"], "--limit: 0 is outside 1..1000"),
    (["sessions", "--alpha-min", "x"], "--alpha-min: 'x' is not a number"),
    (["sessions", "--db", "sqlite://"], "names no database file"),
    (["sessions", "--db", "notadialect://x"], "cannot use this database URL"),
    (["sessions", "--db", ":"], "is not a database file path"),
    (["serve", "--port", "70000"], "--port: 70000 is outside 1..65535"),
    (["serve-api", "--auth", "u:p"], "--auth applies to `serve` only, not `serve-api`"),  # no page, no login
    (["--api-token-env", "T", "ask", "q"], "--api-token-env applies to `serve` and `serve-api` only"),
])
def test_bad_values_are_one_line_and_exit_2(args, needle, tmp_path, run):
    if "--db" not in args and args[0] == "sessions":
        args = [*args, "--db", str(tmp_path / "s.sqlite")]
    p = run(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert needle in p.stderr and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_the_entry_point_itself_and_an_invalid_utf8_question():
    p = subprocess.run([sys.executable, "app.py", "ask", b"caf\xe9?"], cwd=ROOT, capture_output=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and b"not valid UTF-8" in p.stderr and b"Traceback" not in p.stderr


def test_set_gives_run_settings_and_names_a_bad_one(run):
    from ui.cli import overrides
    assert overrides(parse(["ask", "Q", "--set", "quality=true", "--set", "quality_weight=8", "--max-turns", "2"])) \
        == {"quality": True, "quality_weight": 8, "max_turns": 2}
    assert overrides(parse(["ask", "Q"])) is None
    for bad, needle in ((["--set", "quality"], "--set: expected KEY=VALUE"),
                        (["--set", "bogus=1"], "unknown run setting(s) bogus"),
                        (["--set", "quality=yes"], "quality: must be true or false"),
                        (["--set", "quality_weight=-3"], "quality_weight: must be a number ≥ 0")):
        r = run("ask", "Q", *bad)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, (bad, r.stderr)
