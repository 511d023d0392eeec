"""`app.py diff`: two eval runs compared item by item — gained, lost, the same — and the bad cases in one line."""
from __future__ import annotations

import html
import json
import time
import uuid
from pathlib import Path

import pytest

from evaluation.diff import DiffError, Side, diff_runs, diff_sides
from router_core.pool import load_pool
from router_core.step import Step
from storage import TraceStore
from storage.recorder import recorded
from ui.cli import main

GOLD = {"i1": "Paris", "i2": "Danube", "i3": "1969", "i4": "Nolan", "i5": "Austen"}


def add(store: TraceStore, run_id: str, item: str, answer: str, method: str = "default", alpha: float = 0.0) -> str:
    sid = uuid.uuid4().hex
    t = time.time()
    steps = [Step(sid, 0, "route", request_model="Qwen2.5-0.5B", query=f"about {item}", response=answer,
                  input_tokens=10, output_tokens=5, cost_usd=1e-6, started_at=t, call_started_at=t,
                  call_ended_at=t + 0.1, ended_at=t + 0.1),
             Step(sid, 1, "answer", text=answer, started_at=t, ended_at=t)]
    list(recorded(store, steps, session_id=sid, question=f"Question {item}?", alpha=alpha, policy=method,
                  engine="x", pool=load_pool().snapshot(), gold=[GOLD[item]], dataset="demo", item_id=item,
                  run_id=run_id))
    return sid


@pytest.fixture()
def store(tmp_path):
    s = TraceStore(str(tmp_path / "d.sqlite"))
    # A: right on i1, i2; wrong on i3, i4. B: right on i1, i3; wrong on i2, i4; i5 only in B
    for item, ans in (("i1", "Paris"), ("i2", "Danube"), ("i3", "1970"), ("i4", "Spielberg")):
        add(s, "A", item, ans, method="preset-a")
        add(s, "A", item, "Rome", method="baseline/largest")
    for item, ans in (("i1", "Paris"), ("i2", "Rhine"), ("i3", "1969"), ("i4", "Lucas"), ("i5", "Austen")):
        add(s, "B", item, ans, method="preset-b")
    yield s
    s.close()


def test_gained_lost_and_the_same_with_both_answers_and_the_gold(store):
    d = diff_runs(store, "A", "B")
    assert (d.method_a, d.method_b) == ("preset-a", "preset-b")  # each run's own router policy
    assert [p.item_id for p in d.gained] == ["i3"] and [p.item_id for p in d.lost] == ["i2"]
    assert [p.item_id for p in d.same_right] == ["i1"] and [p.item_id for p in d.same_wrong] == ["i4"]
    lost = d.lost[0]
    assert (lost.answer_a, lost.answer_b, lost.gold) == ("Danube", "Rhine", ["Danube"])
    assert (d.only_a, d.only_b) == (0, 1)  # i5 only asked in B: counted, not compared
    assert d.summary().startswith("4 shared item(s): 1 gained, 1 lost, 1 right in both, 1 wrong in both; "
                                  "0 only in A, 1 only in B (not compared) · EM 0.500 → 0.500")


def test_diff_json_prints_one_object_with_gained_and_lost(store, capsys):
    assert main(["diff", "--db", store.where, "--run-id", "A", "--run-id", "B", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["item_id"] for p in out["gained"]] == ["i3"] and [p["item_id"] for p in out["lost"]] == ["i2"]
    assert out["gained"][0]["answer_a"] == "1970" and out["gained"][0]["answer_b"] == "1969"
    assert (len(out["same_right"]), len(out["same_wrong"]), out["only_b"]) == (1, 1, 1)
    assert out["gained"][0]["failure_a"] == "wrong_fact" and out["gained"][0]["failure_b"] is None
    assert out["em_a"] == out["em_b"] == 0.5 and out["cost_a"] > 0


def test_diff_text_lists_the_changed_items(store, capsys):
    assert main(["diff", "--db", store.where, "--run-id", "A", "--run-id", "B"]) == 0
    out = capsys.readouterr().out
    assert "1 gained, 1 lost" in out and "gained (1):" in out and "gold: Danube" in out
    assert "A: Danube · $1.00e-06" in out and "B: Rhine · $1.00e-06 · why wrong: wrong fact" in out


def test_a_baseline_against_the_router_by_naming_both_methods(store):
    d = diff_runs(store, "A", "B", ["baseline/largest", "preset-b"])
    assert [p.item_id for p in d.gained] == ["i1", "i3"] and not d.lost


@pytest.mark.parametrize("argv, needle", [
    (["--run-id", "A", "--run-id", "nope"], "no finished sessions for run nope"),
    (["--run-id", "A", "--run-id", "B", "--run-id", "C"], "--run-id: give one (both sides) or two"),
    (["--run-id", "A"], "a side compared with itself"),
    (["--run-id", "A", "--alpha", "0,0"], "a side compared with itself"),
    (["--run-id", "A", "--alpha", "0,1"], "run A has no finished sessions of preset-a at α 1 (it has α 0)"),
    (["--run-id", "A", "--run-id", "B", "--method", "ghost"], "run A has no finished sessions of method ghost"),
    (["--run-id", "A", "--run-id", "B", "--alpha", "2"], "--alpha: 2 is outside 0..1"),
])
def test_bad_diffs_are_one_line(store, capsys, argv, needle):
    assert main(["diff", "--db", store.where, *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_run_with_two_router_policies_needs_a_method(store):
    add(store, "A", "i1", "Paris", method="preset-c")
    with pytest.raises(DiffError, match="several router policies \\(preset-a, preset-c\\)"):
        diff_runs(store, "A", "B")


def test_the_csv_export_carries_gold_method_dataset_failure_and_iso_times(store):
    import csv

    from storage.csv_export import CSV_COLUMNS
    from ui import explorer as ex
    path = ex.export_file(store, ex.make_filter(), "csv")
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    assert rows and set(CSV_COLUMNS) <= set(rows[0])
    lost = next(r for r in rows if r["method"] == "router (preset-b)" and r["item_id"] == "i2")
    assert (lost["gold"], lost["answer"], lost["dataset"], lost["failure"]) == ("Danube", "Rhine", "demo", "wrong_fact")
    assert lost["created"].endswith("+00:00") and lost["created"][:4].isdigit()
    assert any(r["method"] == "largest" for r in rows)  # a baseline by its name


def test_alpha_0_against_alpha_1_of_the_same_run_compares_every_shared_item(store, capsys):
    """`eval --alpha 1` over the questions of an α 0 run joins that run: α tells the sides apart."""
    for item, ans in (("i1", "Rome"), ("i2", "Danube"), ("i3", "1969"), ("i4", "Lucas")):
        add(store, "A", item, ans, method="preset-a", alpha=1.0)
    assert main(["diff", "--db", store.where, "--run-id", "A", "--alpha", "0,1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["compared"] == 4 and (out["only_a"], out["only_b"]) == (0, 0)
    assert [p["item_id"] for p in out["gained"]] == ["i3"] and [p["item_id"] for p in out["lost"]] == ["i1"]
    assert {(p["alpha_a"], p["alpha_b"]) for b in ("gained", "lost", "same_right", "same_wrong")
            for p in out[b]} == {(0.0, 1.0)}
    # the run now holds two α: without --alpha, the sides of one run are the same side
    assert main(["diff", "--db", store.where, "--run-id", "A"]) == 2
    assert "a side compared with itself" in capsys.readouterr().err
    # two runs of one α each pair by item whatever their α (a run at α 1 against another at α 0)
    for item, ans in (("i1", "Paris"), ("i2", "Rhine")):
        add(store, "C", item, ans, method="preset-b", alpha=1.0)
    d = diff_sides(store, Side("B"), Side("C"))
    assert d.compared == 2 and [p.item_id for p in d.same_right] == ["i1"] and (d.side_a.alpha, d.side_b.alpha) == (0, 1)


def test_a_side_open_over_several_alpha_takes_the_other_sides_alpha(store):
    add(store, "A", "i1", "Rome", method="preset-a", alpha=1.0)
    d = diff_sides(store, Side("A"), Side("B"))  # A holds α 0 and 1, B only α 0: A at α 0
    assert d.side_a.alpha == 0.0 and d.compared == 4
    add(store, "D", "i1", "Paris", method="preset-b", alpha=0.5)
    with pytest.raises(DiffError, match="holds α 0, 1; say which with --alpha"):
        diff_sides(store, Side("A"), Side("D"))


def test_the_tab_offers_every_side_and_refuses_a_side_against_itself(store):
    from ui.analysis import diff_view, parse_side, side_choices, side_key
    add(store, "A", "i1", "Rome", method="preset-a", alpha=1.0)
    choices = side_choices(store)
    labels = [label for label, _ in choices]
    assert "A · router (preset-a) · α 1 (1)" in labels and "A · largest · α 0 (4)" in labels
    assert all(parse_side(v) for _, v in choices)
    a0 = side_key(Side("A", "preset-a", 0.0))
    text, table = diff_view(store, a0, side_key(Side("A", "preset-a", 1.0)))
    assert "1 shared item(s): 0 gained, 1 lost" in html.unescape(text) and list(table["change"]) == ["lost"]
    assert list(table.iloc[0][["answer A", "answer B", "why wrong B"]]) == ["Paris", "Rome", "wrong fact"]
    with pytest.raises(DiffError, match="a side compared with itself"):
        diff_view(store, a0, a0)
    with pytest.raises(ValueError, match="not a diff side"):
        parse_side("{broken")


def test_refresh_failures_recomputes_stored_kinds_and_says_how_many_changed(store, capsys):
    """Kinds stored under older rules (here: written back as the old decision list filed them) are recomputed."""
    from sqlalchemy import update

    from storage.models import SessionRow
    sid = uuid.uuid4().hex
    t = time.time()
    q = "Are Todd Haynes and Chris Columbus of the same nationality?"
    steps = [Step(sid, 0, "route", request_model="Qwen2.5-0.5B", query="Nationality of Todd Haynes?",
                  response="Todd Haynes is American.", input_tokens=10, output_tokens=5, cost_usd=1e-6, started_at=t,
                  call_started_at=t, call_ended_at=t, ended_at=t), Step(sid, 1, "answer", text="American",
                                                                         started_at=t, ended_at=t)]
    list(recorded(store, steps, session_id=sid, question=q, alpha=0.0, policy="preset-a", engine="x",
                  pool=load_pool().snapshot(), gold=["yes"], dataset="hotpotqa", item_id="h1", run_id="A"))
    assert store.get_session(sid)["failure"] == "wrong_kind"
    with store._tx() as conn:  # as the rules before wrong_kind filed it
        conn.execute(update(SessionRow).where(SessionRow.id == sid).values(failure="wrong_fact"))
    assert main(["sessions", "--db", store.where, "--run-id", "A", "--refresh-failures"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("9 session(s) read, 1 changed kind: 1 wrong fact → wrong kind")
    assert store.get_session(sid)["failure"] == "wrong_kind"
    assert main(["sessions", "--db", store.where, "--refresh-failures"]) == 0
    assert capsys.readouterr().out.startswith("14 session(s) read, no failure kind changed")
    # a session whose process died has no answer, and that is not the router's failure (as a stop is not)
    dead = store.start_session(session_id=uuid.uuid4().hex, question="Who wrote Dune?", alpha=0.0, policy="preset-a",
                               engine="x", pool=load_pool().snapshot(), gold=["Frank Herbert"], run_id="A")
    store.append_step(Step(dead, 0, "think", text="I need the author.", started_at=t, ended_at=t))
    with store._tx() as conn:
        conn.execute(update(SessionRow).where(SessionRow.id == dead).values(status="interrupted"))
    assert sum(store.refresh_failures().values()) == 15 and store.get_session(dead)["failure"] is None


def test_cli_export_writes_csv_by_extension_or_format_and_refuses_what_it_cannot_tell(store, tmp_path, capsys):
    import csv

    from storage.csv_export import CSV_COLUMNS
    out = tmp_path / "runs.csv"
    assert main(["export", "--db", store.where, "--out", str(out), "--run-id", "B"]) == 0
    assert "exported 5 session(s)" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert list(rows[0]) == CSV_COLUMNS and {r["method"] for r in rows} == {"router (preset-b)"} and len(rows) == 5
    other = tmp_path / "runs.dat"
    assert main(["export", "--db", store.where, "--out", str(other), "--format", "csv"]) == 0
    assert other.read_text(encoding="utf-8").splitlines()[0] == ",".join(CSV_COLUMNS)
    lines = tmp_path / "runs.jsonl"
    assert main(["export", "--db", store.where, "--out", str(lines)]) == 0
    assert len(lines.read_text().splitlines()) == 13 and json.loads(lines.read_text().splitlines()[0])
    capsys.readouterr()
    for argv, needle in (([str(tmp_path / "x.txt")], "cannot tell the format from"),
                         ([str(tmp_path / "x.jsonl"), "--format", "csv"], "--format csv but --out ends with .jsonl")):
        assert main(["export", "--db", store.where, "--out", *argv]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1
        assert not Path(argv[0]).exists()
