"""The Training tab's figures are the stored run's figures: the curves' points, the counts by reason at each α, the
kept ones' rewards, the trajectory table and the words a presenter reads (ui/training_view.py, no browser)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable

from support.ui_fixtures import LOSSES, write_training_run

from storage import TraceStore
from storage import training as stored
from ui import training_view as view


def test_the_views_read_exactly_the_stored_run(tmp_path):
    with TraceStore(str(tmp_path / "t.sqlite")) as store:
        rid = write_training_run(store)
        run, pts, trajs = stored.get_run(store, rid), stored.points(store, rid), stored.trajectories(store, rid)
    fig = view.curves(pts)
    assert list(fig.data[0].y) == list(LOSSES) and list(fig.data[0].x) == list(range(1, 7))
    assert list(fig.data[1].y) == [p["learning_rate"] for p in pts]
    # counts by reason: one bar trace per reason, one bar per α, the heights the stored selection's counts
    want = Counter((t["alpha"], t["reason"]) for t in trajs)
    bars = view.reasons_chart(trajs)
    got = {(float(x.split()[1]), k): y for tr in bars.data for x, y in zip(tr.x, tr.y)
           for k in view.REASON_WORDS if view.REASON_WORDS[k] == tr.name}
    assert {k: v for k, v in got.items() if v} == dict(want)
    # the selection itself: α 0 keeps the dear right one, α 1 the cheap right one, the wrong ones are dropped
    kept = {(t["alpha"], t["source_alpha"]) for t in trajs if t["kept"]}
    assert kept == {(0.0, 0.0), (0.5, 1.0), (1.0, 1.0)}
    assert sum(1 for t in trajs if t["reason"] == "wrong") == 3 * 3
    tbl, ids = view.trajectory_table(trajs)
    assert len(tbl) == len(trajs) == 15 and ids == [t["session_id"] for t in trajs]
    assert set(tbl["kept?"]) == {"✓ kept", "dropped"} and "wrong answer" in set(tbl["why"])
    assert len(view.TRAJECTORY_WIDTHS) == len(view.TRAJECTORY_COLUMNS)
    # words: the status line, the counts in words, a dropped trajectory's reason and a kept one's reward terms
    assert view.status_line(run).startswith("✓") and "step 6 of 6" in view.status_line(run)
    words = view.reasons_words(trajs)
    assert "**α 0**: 1 kept; 3 wrong answer; 1 another one scored higher (kept: mean reward 1.00)" in words
    assert "**α 1**: 1 kept; 3 wrong answer; 1 too dear at its α" in words
    wrong = next(t for t in trajs if t["reason"] == "wrong")
    assert "is wrong (exact match 0)" in view.reward_terms(wrong)
    k = next(t for t in trajs if t["kept"] and t["alpha"] == 0.5)
    assert f"= (1 − α) + α · R_cost = 0.50 + 0.5 · {k['r_cost']:.2f}" in view.reward_terms(k)


def test_a_running_run_says_how_far_and_how_long_is_left(tmp_path):
    with TraceStore(str(tmp_path / "t.sqlite")) as store:
        rid = write_training_run(store, status="running")
        run = stored.get_run(store, rid)
    line = view.status_line(run)
    assert line.startswith("⏳") and "step 6 of 6" in line and "tokens/s" in line


def test_a_run_travels_as_files_and_loads_into_a_fresh_store(tmp_path):
    """How the shipped adapter's run reaches a fresh clone: its row, curve and selection, and its sessions."""
    import json

    import pytest

    from training.bundle import RUN_FILE, SESSIONS_FILE, load_bundle, write_bundle
    with TraceStore(str(tmp_path / "a.sqlite")) as a:
        rid = write_training_run(a)
        files = write_bundle(a, rid, tmp_path / "bundle")
        want_run, want_pts, want_traj = stored.get_run(a, rid), stored.points(a, rid), stored.trajectories(a, rid)
    assert [f.name for f in files] == [RUN_FILE, SESSIONS_FILE]
    with TraceStore(str(tmp_path / "b.sqlite")) as b:
        got, report = load_bundle(b, tmp_path / "bundle")
        assert got == rid and report.startswith("imported 5")  # the five fixture sessions
        run = stored.get_run(b, rid)
        assert {k: run[k] for k in ("name", "status", "alphas", "max_steps")} == \
            {k: want_run[k] for k in ("name", "status", "alphas", "max_steps")}
        assert stored.points(b, rid) == want_pts and stored.trajectories(b, rid) == want_traj
        assert run["out_dir"] == str((tmp_path / "bundle").resolve())  # before/after finds the adapter there
        assert b.load_steps(want_traj[0]["session_id"])  # a click replays it
        assert load_bundle(b, tmp_path / "bundle")[1].startswith("imported 0")  # again: nothing twice
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / RUN_FILE).write_text(json.dumps({"format": "router-studio-training-run/1", "run": {"id": "x"}}))
    (bad / SESSIONS_FILE).write_text("")
    with TraceStore(str(tmp_path / "c.sqlite")) as c, pytest.raises(ValueError, match="run: missing field"):
        load_bundle(c, bad)


def test_a_second_round_is_told_apart_in_the_table_and_the_rewards():
    """Expert iteration: trajectories from the teacher's run (round 1) and from the student's (round 2)."""
    run = {"source_runs": ["collect-teacher", "collect-student"]}
    base = {"alpha": 0.0, "reason": "kept", "kept": True, "reward": 1.0, "em": 1.0, "r_cost": 0.5, "format_ok": True,
            "raw_cost": 1.0, "source_alpha": 0.0, "policy": "p", "dataset": "d", "item_id": "1", "question": "Q?",
            "answer": "A", "models": ["Big"]}
    trajs = [{**base, "session_id": "a", "source_run": "collect-teacher"},
             {**base, "session_id": "b", "source_run": "collect-student", "kept": False, "reason": "outranked"}]
    tbl, _ = view.trajectory_table(trajs, run)
    assert list(tbl["round"]) == ["1", "2"]
    assert [t.name for t in view.rewards_chart(trajs, run).data] == ["kept · round 1", "dropped · round 2"]
    assert [t.name for t in view.rewards_chart(trajs[:1], run).data] == ["kept"]  # one round: no round in the legend


def test_the_shipped_runs_card_reads_as_written(tmp_path):
    """The card line of the run that made the shipped adapter: the base's id and the command in code as written (a
    Markdown code span would have shown the escaped colon, `shipped&#58;…`), its figures the card's."""
    import html

    from training.bundle import SHIPPED_DIR, load_bundle
    from ui.export_training import _md
    with TraceStore(str(tmp_path / "t.sqlite")) as store:
        rid, _ = load_bundle(store, SHIPPED_DIR / "trained-qwen2.5-0.5b")
        run = stored.get_run(store, rid)
    line, card = view.card_summary(run), run["card"]
    shown = html.unescape(line)  # what the browser shows: entities read as characters inside <code>, not in `…`
    assert "`" not in line and f"<code>{card['base']}</code>" in shown and card["base"].startswith("shipped:")
    assert f"<code>{card['command']}</code>" in shown and f"{card['training']['steps']} steps" in line
    assert _md(line).count("<code>") == 2  # the exported page shows the same


def _bundle_of(tmp_path: Path, mutate: Callable[[dict], None]) -> Path:
    """The fixture run written as a bundle, its training_run.json changed by `mutate(data)`."""
    import json

    from training.bundle import RUN_FILE, write_bundle
    with TraceStore(str(tmp_path / "src.sqlite")) as src:
        rid = write_training_run(src)
        folder = tmp_path / "bundle"
        write_bundle(src, rid, folder)
    data = json.loads((folder / RUN_FILE).read_text())
    mutate(data)
    (folder / RUN_FILE).write_text(json.dumps(data))
    return folder


def test_a_hostile_bundle_shows_as_text_and_a_mid_run_export_reads_interrupted(tmp_path):
    """A bundle is data from elsewhere: its card's strings reach the tab and the exported page as text, and a run
    exported while it trained is not a run to poll forever in another store."""
    from training.bundle import load_bundle
    from ui.export_training import training_page
    payload = "<script>window.__pwned=1</script>"

    def hostile(data):
        data["run"]["status"] = "running"
        data["run"]["name"] = payload
        data["run"]["card"] = {"training": {"steps": 6, "loss_first": 1.0, "loss_last": 0.5, "seconds": 60,
                                            "device": payload, "tokens_per_s": 5.0},
                               "data": {"examples": 3, "questions": 2, "trajectories": 5, "runs": [payload]},
                               "alphas": [0, 1], "min_reward": 0.5, "base": payload, "base_sha256": payload,
                               "command": payload}
    with TraceStore(str(tmp_path / "t.sqlite")) as store:
        rid, _ = load_bundle(store, _bundle_of(tmp_path, hostile))
        run = stored.get_run(store, rid)
        assert run["status"] == "interrupted"
        shown = view.card_summary(run) + view.status_line(run)
        page = training_page(run, stored.points(store, rid), stored.trajectories(store, rid))
    assert "<script" not in shown and "&lt;script&gt;" in shown and "<script>window.__pwned" not in page
    # a card that is not a card's shape says so, in words
    assert view.card_summary({**run, "card": {"training": {}, "data": {}}}).startswith("⚠ this run's card")


def test_a_bad_bundle_names_its_field_and_stores_nothing(tmp_path):
    import pytest

    from training.bundle import load_bundle
    cases = [(lambda d: d["points"].append(dict(d["points"][0])), "points: a step appears twice"),
             (lambda d: d["points"][1].update(loss="low"), r"points\[1\]\.loss: must be a number"),
             (lambda d: d["run"].update(alphas=["0"]), "run.alphas"),
             (lambda d: d["run"].update(max_steps="6"), "run.max_steps")]
    for i, (mutate, said) in enumerate(cases):
        case = tmp_path / f"case{i}"
        case.mkdir()
        folder = _bundle_of(case, mutate)
        with TraceStore(str(case / "t.sqlite")) as store, pytest.raises(ValueError, match=said):
            try:
                load_bundle(store, folder)
            finally:
                assert store.list_sessions().total == 0 and stored.list_runs(store) == []


def test_every_training_tab_handler_answers_each_of_its_outputs(tmp_path):
    """The picked-run handler on its paths (no run, an unknown run, a stored one with a filter the run lacks)
    returns one value per output, and a filter value the run does not have is reset to all."""
    from router_core.policy import load_policies
    from ui.app import build
    from ui.studio import Studio
    with TraceStore(str(tmp_path / "t.sqlite")) as store:
        rid = write_training_run(store)
        demo = build(Studio.from_files(store, load_policies(), None))
        fn = next(f for f in demo.fns.values() if f.api_name == "training_run")
        n = len(fn.outputs)
        for args in ((None, "all", "all", "all", "all"), ("train-nope", "all", "all", "all", "all"),
                     (rid, "all", "all", "0.25", "no-such-set")):
            got = fn.fn(*args)
            assert len(got) == n, (args, len(got), n)
        unknown = fn.fn("train-nope", "all", "all", "all", "all")[0]  # the status line
        assert "this store" in unknown and store.where not in unknown
        picked = fn.fn(rid, "all", "all", "0.25", "no-such-set")
        assert picked[8]["value"] == "all" and picked[9]["value"] == "all"  # the α and dataset filters
