"""`app.py diff`: two eval runs compared item by item — gained, lost, the same — and the bad cases in one line."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from evaluation.diff import DiffError, diff_runs
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
    assert d.summary() == ("4 shared item(s): 1 gained, 1 lost, 1 right in both, 1 wrong in both; "
                           "0 only in A, 1 only in B (not compared)")


def test_diff_json_prints_one_object_with_gained_and_lost(store, capsys):
    assert main(["diff", "--db", store.where, "--run-id", "A", "--run-id", "B", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["item_id"] for p in out["gained"]] == ["i3"] and [p["item_id"] for p in out["lost"]] == ["i2"]
    assert out["gained"][0]["answer_a"] == "1970" and out["gained"][0]["answer_b"] == "1969"
    assert (out["same_right"], out["same_wrong"], out["only_b"]) == (1, 1, 1)


def test_diff_text_lists_the_changed_items(store, capsys):
    assert main(["diff", "--db", store.where, "--run-id", "A", "--run-id", "B"]) == 0
    out = capsys.readouterr().out
    assert "1 gained, 1 lost" in out and "gained (1):" in out and "gold: Danube · A: Danube · B: Rhine" in out


def test_a_baseline_against_the_router_by_naming_both_methods(store):
    d = diff_runs(store, "A", "B", ["baseline/largest", "preset-b"])
    assert [p.item_id for p in d.gained] == ["i1", "i3"] and not d.lost


@pytest.mark.parametrize("argv, needle", [
    (["--run-id", "A", "--run-id", "nope"], "no finished sessions for run nope"),
    (["--run-id", "A"], "--run-id: give exactly two runs"),
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

    from ui import explorer as ex
    path = ex.export_file(store, ex.make_filter(), "csv")
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    assert rows and set(ex.CSV_COLUMNS) <= set(rows[0])
    lost = next(r for r in rows if r["method"] == "router (preset-b)" and r["item_id"] == "i2")
    assert (lost["gold"], lost["answer"], lost["dataset"], lost["failure"]) == ("Danube", "Rhine", "demo", "wrong_fact")
    assert lost["created"].endswith("+00:00") and lost["created"][:4].isdigit()
    assert any(r["method"] == "largest" for r in rows)  # a baseline by its name
