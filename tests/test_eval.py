"""Evaluation: the runner end to end on the embedded default, resume after Ctrl-C, the report's numbers."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from evaluation.datasets import Item
from evaluation.report import build_report, markdown, reward_at
from evaluation.runner import EvalError, default_run_id, parse_alphas, parse_baselines
from evaluation.single_round import cheapest, largest, short_answer
from router_core.cost import CostNormalizer
from router_core.policy import Policy, RunConfig, load_policies
from router_core.pool import load_pool
from router_core.step import Step
from storage import SessionFilter, TraceStore
from storage.recorder import recorded

ROOT = Path(__file__).resolve().parent.parent
APP = [sys.executable, str(ROOT / "app.py")]


def test_parse_alphas_and_baselines_name_the_bad_value():
    assert parse_alphas("0.9, 0,0.5,0") == [0.0, 0.5, 0.9]
    with pytest.raises(EvalError, match="'x' is not a number"):
        parse_alphas("0,x")
    with pytest.raises(EvalError, match="1.5 is outside"):
        parse_alphas("1.5")
    pool = load_pool()
    assert parse_baselines("all", pool) == ["only:SmolLM2-135M", "only:Qwen2.5-0.5B", "only:Qwen2.5-1.5B", "largest", "cheapest",
                                            "random", "knn"]
    assert parse_baselines("none", pool) == []
    with pytest.raises(EvalError, match="'only:GPT-9' names no model"):
        parse_baselines("only:GPT-9", pool)
    with pytest.raises(EvalError, match="unknown baseline 'oracle'"):
        parse_baselines("largest,oracle", pool)


def test_short_answer():
    assert short_answer("Paris.\nIt is the capital.") == "Paris"
    assert short_answer("\n  Answer: 1969 ") == "1969"
    assert short_answer("The answer is Jane Austen.") == "Jane Austen"
    assert short_answer("   ") == ""


def _session(store: TraceStore, run_id: str, item: str, method: str, alpha: float, model: str, correct: bool,
             cost: float) -> None:
    sid = uuid.uuid4().hex
    t = time.time()
    steps = [Step(sid, 0, "route", request_model=model, query="q", response="r", input_tokens=10, output_tokens=5,
                  cost_usd=cost, started_at=t, call_started_at=t, call_ended_at=t + 0.1, ended_at=t + 0.1),
             Step(sid, 1, "answer", text="Paris" if correct else "Rome", started_at=t, ended_at=t)]
    list(recorded(store, steps, session_id=sid, question=f"question {item}", alpha=alpha, policy=method,
                  engine="x", pool=load_pool().snapshot(), gold=["Paris"], dataset="demo", item_id=item,
                  run_id=run_id))


def test_report_numbers_by_hand(tmp_path):
    store = TraceStore(str(tmp_path / "r.sqlite"))
    strong, weak = "Qwen2.5-1.5B", "SmolLM2-135M"  # the pool's largest and cheapest
    outcomes = {  # method → (model, [correct per item], cost per call)
        f"baseline/only:{strong}": (strong, [1, 1, 0, 1], 4e-6),
        f"baseline/only:{weak}": (weak, [1, 0, 0, 0], 1e-6),
    }
    for m, (model, oks, cost) in outcomes.items():
        for i, ok in enumerate(oks):
            _session(store, "r1", f"i{i}", m, 0.0, model, bool(ok), cost)
    for i, (model, ok) in enumerate([(strong, 1), (weak, 1), (strong, 0), (weak, 0)]):
        _session(store, "r1", f"i{i}", "router", 0.5, model, bool(ok), 4e-6 if model == strong else 1e-6)
    rep = build_report(store, ["r1"], alphas=[0.5])
    assert (rep.strong, rep.weak) == (strong, weak)
    t = rep.table.set_index("method")
    # q_strong = 3/4, q_weak = 1/4; router EM = 2/4 → PGR = (0.5 − 0.25) / (0.75 − 0.25) = 0.5
    assert t.loc["router", "EM"] == pytest.approx(0.5) and t.loc["router", "PGR"] == pytest.approx(0.5)
    assert t.loc["router", "strong share"] == pytest.approx(0.5)   # 2 of its 4 calls went to the strong model
    assert t.loc[f"baseline/only:{strong}", "PGR"] == pytest.approx(1.0)
    assert t.loc[f"baseline/only:{weak}", "$/query"] == pytest.approx(1e-6)
    # reward at α = 0.5 with R_cost over the 12 session costs (4e-6 is the dearest, 1e-6 the cheapest):
    norm = CostNormalizer(window=12)
    for c in [4e-6] * 4 + [1e-6] * 4 + [4e-6, 1e-6, 4e-6, 1e-6]:
        norm.observe(c)
    want = (reward_at(1, True, 4e-6, 0.5, norm) + reward_at(1, True, 1e-6, 0.5, norm)) / 4
    assert t.loc["router", "reward"] == pytest.approx(want)
    assert reward_at(1, True, 1e-6, 0.5, norm) == pytest.approx(1.0)
    assert reward_at(1, True, 4e-6, 0.5, norm) == pytest.approx(0.5)
    assert reward_at(0, True, 1e-6, 0.5, norm) == 0 and reward_at(0, False, 0, 0.5, norm) == -1  # format error
    assert reward_at(None, True, 0, 0.5, norm) == 0  # no gold: no reward to earn
    # the router's curve: points (share 0.5, EM 0.5) plus the end points (0, weak) and (1, strong)
    assert rep.curves["router"]["CPT(50%)"] == pytest.approx(0.5)
    assert "| router | 0.5 |" in markdown(rep)
    from evaluation.figures import em_vs_cost, usage_vs_alpha
    fig = em_vs_cost(rep)  # cost in µ$ (not 1.5e-5), on an axis that says so
    assert fig.layout.xaxis.title.text == "µ$ per query" and fig.layout.xaxis.tickformat is None
    assert sorted(x for tr in fig.data if tr.mode == "markers" for x in tr.x) == pytest.approx([1, 2.5, 4])
    usage = usage_vs_alpha(rep)  # each segment names its model, and the legend shows even with one model
    assert {tr.text[0] for tr in usage.data} == {strong, weak} and usage.layout.showlegend is True
    store.close()


def test_report_decomposition_from_stored_steps_splits_choice_questions(tmp_path):
    """Stored steps → report table, markdown and the Evaluations tab's table: a two-hop session that chains, and a
    comparison asked thing by thing (no bridge to chain, but split)."""
    from ui.evals import decomposition_table

    store = TraceStore(str(tmp_path / "d.sqlite"))
    t = time.time()
    sessions = {
        "Which country is the birthplace of the director of Interstellar?": [
            ("Who directed Interstellar?", "Christopher Nolan directed it."),
            ("In which country was Christopher Nolan born?", "England.")],
        "Which lake is deeper, Lake Baikal or Lake Tanganyika?": [
            ("How deep is Lake Baikal?", "1,642 m."), ("How deep is Lake Tanganyika?", "1,470 m.")]}
    for i, (question, hops) in enumerate(sessions.items()):
        sid = uuid.uuid4().hex
        steps = [Step(sid, k, "route", request_model="Qwen2.5-1.5B", query=q, response=r, started_at=t,
                      call_started_at=t, call_ended_at=t, ended_at=t) for k, (q, r) in enumerate(hops)]
        steps.append(Step(sid, len(hops), "answer", text="x", started_at=t, ended_at=t))
        list(recorded(store, steps, session_id=sid, question=question, alpha=0.0, policy="router", engine="x",
                      pool=load_pool().snapshot(), gold=["x"], dataset="demo", item_id=f"i{i}", run_id="d1"))
    rep = build_report(store, ["d1"], alphas=[0.0])
    row = rep.decomposition.set_index("method").loc["router"]
    assert row["n"] == 2 and row["chain rate"] == 0.5
    assert row["chain rate (not choice)"] == 1.0 and row["choice split"] == 1.0
    assert "| chain rate (not choice) | choice split |" in markdown(rep)
    shown = decomposition_table(rep).iloc[0]
    assert (shown["chain rate"], shown["chain rate (not choice)"], shown["choice split"]) == ("0.500", "1.000", "1.000")
    store.close()


def _eval(db: Path, *extra: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(APP + ["eval", "--dataset", "single_hop", "--dataset", "multi_hop", "--limit", "1",
                                 "--alpha", "0,0.9", "--max-turns", "1", "--db", str(db), *extra],
                          capture_output=True, text=True, timeout=timeout, cwd=db.parent)


def test_eval_end_to_end_on_the_embedded_default(tmp_path, qwen, smol):
    db = tmp_path / "eval.sqlite"
    out = _eval(db, "--baselines", "largest,cheapest", "--json-out", str(tmp_path / "r.json"),
                "--report-dir", str(tmp_path / "rep"))
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads((tmp_path / "r.json").read_text())
    run_id = res["run_id"]
    with TraceStore(str(db)) as store:
        pg = store.list_sessions(SessionFilter(run_id=run_id), page_size=100)
    # 2 questions × (router at 2 α + 2 single-round calls + largest + cheapest) = 12 sessions, all done
        df, total = pg.rows, pg.total
    assert total == 12 and set(df["status"]) == {"done"}
    assert sorted(df["dataset"].unique()) == ["multi_hop", "single_hop"]
    methods = df.groupby("policy").size().to_dict()
    strong, weak = largest(load_pool()).name, cheapest(load_pool()).name   # the pool's ends: 1.5B and 135M
    assert methods == {"prompted-qwen2.5-0.5b": 4, f"baseline/only:{strong}": 2, f"baseline/only:{weak}": 2,
                       "baseline/largest": 2, "baseline/cheapest": 2}
    assert sorted(df.loc[df["policy"] == "prompted-qwen2.5-0.5b", "alpha"]) == [0.0, 0.0, 0.9, 0.9]
    # a derived baseline reuses its source call: same answer and cost as only:<largest>
    big = df[df["policy"] == f"baseline/only:{strong}"].set_index("item_id")
    lg = df[df["policy"] == "baseline/largest"].set_index("item_id")
    assert (lg["answer"] == big.loc[lg.index, "answer"]).all() and (lg["cost_usd"] == big.loc[lg.index, "cost_usd"]).all()
    table = {(r["method"], r["α"]) for r in res["table"]}
    assert ("prompted-qwen2.5-0.5b", 0.9) in table and ("baseline/largest", 0.0) in table
    assert res["strong"] == strong and res["weak"] == weak
    md = (tmp_path / "rep" / "results.md").read_text()
    assert "| prompted-qwen2.5-0.5b | 0.9 | 2 |" in md and "PGR" in md
    assert "plotly" in (tmp_path / "rep" / "figures.html").read_text()[:5_000_000].lower()
    # the same command again: everything is already done
    again = _eval(db, "--baselines", "largest,cheapest", "--report-dir", str(tmp_path / "rep"))
    assert again.returncode == 0 and "0 session(s) run, 12 already done" in again.stderr


def test_interrupted_eval_resumes_to_a_consistent_store(tmp_path, qwen, smol):
    import yaml
    db = tmp_path / "eval.sqlite"
    # the two small candidates only: this is about interrupting and resuming, and a 1.5B candidate call takes
    # minutes when other work shares the two cores
    small = [m.model_dump(mode="json") for m in load_pool().models if m.name != largest(load_pool()).name]
    pool = tmp_path / "small.yaml"
    pool.write_text(yaml.safe_dump({"name": "small", "models": small}), encoding="utf-8")
    cmd = APP + ["eval", "--dataset", "multi_hop", "--limit", "3", "--alpha", "0", "--max-turns", "2",
                 "--baselines", "none", "--pool", str(pool), "--db", str(db), "--report-dir", str(tmp_path / "rep")]
    # Ctrl-C as a terminal sends it: SIGINT with its default meaning, even when this test runs under a
    # shell that started it in the background (which makes the child ignore SIGINT)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 900
        while time.time() < deadline:  # wait until the first session is finished and the second has begun
            if db.exists():
                with TraceStore(str(db), recover=False) as s:
                    pg = s.list_sessions(page_size=10)
                    df, _ = pg.rows, pg.total
                if (df["status"] == "done").sum() >= 1 and (df["status"] == "running").sum() >= 1:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("the eval never got to its second session")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "run the same command to resume" in err
    with TraceStore(str(db)) as s:
        pg = s.list_sessions(page_size=10)
        df, _ = pg.rows, pg.total
    assert "running" not in set(df["status"])  # Ctrl-C left no session half-open
    n_done = int((df["status"] == "done").sum())
    assert n_done >= 1 and "stopped" in set(df["status"])
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{3 - n_done} session(s) run, {n_done} already done" in again.stderr
    with TraceStore(str(db)) as s:
        pg = s.list_sessions(SessionFilter(status="done"), page_size=10)
        df, _ = pg.rows, pg.total
    assert sorted(df["item_id"]) == ["mh-001", "mh-002", "mh-003"]  # each item exactly once, done


@pytest.mark.model  # the kNN router embeds the questions with the shipped MiniLM
def test_knn_baseline_sweeps_strong_share_from_stored_outcomes(tmp_path):
    from evaluation.runner import EvalRunner
    store = TraceStore(str(tmp_path / "k.sqlite"))
    strong, weak = largest(load_pool()).name, cheapest(load_pool()).name
    qs = ["What is 17 times 23?", "Compute 144 divided by 12.", "What is the square root of 169?",
          "What is the capital of France?", "What is the capital of Italy?", "What is the capital of Spain?"]
    items = [Item(id=f"i{i}", question=q, golds=["Paris"], dataset="demo") for i, q in enumerate(qs)]
    for i, it in enumerate(items):
        math_q = i < 3  # the strong model wins the arithmetic, both get the capitals
        for m, model, ok in ((f"baseline/only:{strong}", strong, True), (f"baseline/only:{weak}", weak, not math_q)):
            sid = uuid.uuid4().hex
            t = time.time()
            steps = [Step(sid, 0, "route", request_model=model, query=it.question, response="r", input_tokens=10,
                          output_tokens=5, cost_usd=1e-6, started_at=t, ended_at=t),
                     Step(sid, 1, "answer", text="Paris" if ok else "Rome", started_at=t, ended_at=t)]
            list(recorded(store, steps, session_id=sid, question=it.question, alpha=0.0, policy=m, engine="x",
                          pool=load_pool().snapshot(), gold=["Paris"], dataset="demo", item_id=it.id, run_id="k"))
    runner = EvalRunner(store, load_policies().get(None), load_pool(), run_id="k", alphas=[], baselines=["knn"])
    summary = runner.run(items)
    assert summary.skipped == 12 and summary.done == 6 * 5  # the calls were stored; five kNN thresholds × 6
    df = load_sessions_of(store, "k")
    share = {}
    for method, g in df[df["policy"].str.startswith("baseline/knn@")].groupby("policy"):
        models = [store.load_steps(s)[0].request_model for s in g["id"]]
        share[method] = models.count(strong) / len(models)
        first = store.load_steps(g["id"].iloc[0])[0]
        assert set(first.decision) == {"p_strong", "threshold"} and any(f.startswith("reused:") for f in first.flags)
    # 25 % and 75 % of 6 fall between two reachable shares; the calibration takes the lower one
    assert share == {"baseline/knn@0%": 0.0, "baseline/knn@25%": pytest.approx(1 / 6),
                     "baseline/knn@50%": 0.5, "baseline/knn@75%": pytest.approx(4 / 6), "baseline/knn@100%": 1.0}
    # at 50 % the arithmetic questions (where the strong model wins) are the ones sent to it
    half = df[df["policy"] == "baseline/knn@50%"]
    sent = {it for it, s in zip(half["item_id"], half["id"]) if store.load_steps(s)[0].request_model == strong}
    assert sent == {"i0", "i1", "i2"}
    store.close()


def load_sessions_of(store: TraceStore, run_id: str):
    pg = store.list_sessions(SessionFilter(run_id=run_id), page_size=500)
    df, _ = pg.rows, pg.total
    return df


def test_default_run_id_follows_the_effective_run_settings(monkeypatch):
    """The same command resumes its run, but not across a change of what the run does: a setting given for the
    run, or a default of the code (an upgrade), makes a new id."""
    items = [Item("q1", "Who directed Interstellar?", ["Nolan"], "demo")]
    policy, pool = load_policies().get(None), load_pool()
    base = default_run_id(items, policy, pool)
    assert default_run_id(items, policy, pool) == base
    assert default_run_id(items, policy, pool, {"score_forced_tokens": True}) != base
    real = Policy.run_config
    monkeypatch.setattr(Policy, "run_config", lambda self, o=None: RunConfig(kappa=4.0).merged(self.run).merged(o))
    assert default_run_id(items, policy, pool) != base
    monkeypatch.setattr(Policy, "run_config", real)
    assert default_run_id(items, policy, pool) == base


def test_report_json_has_per_dataset_figures_with_the_papers_beside_them_and_the_failure_breakdown(tmp_path, capsys):
    from ui.cli import main
    db = str(tmp_path / "j.sqlite")
    store = TraceStore(db)
    for i, ok in enumerate([1, 0, 0]):  # router: one right; the wrong ones said "Rome", which the reply "r" lacks
        _session(store, "rj", f"i{i}", "router", 0.0, "Qwen2.5-1.5B", bool(ok), 1e-6)
    _session(store, "rj", "i0", "baseline/largest", 0.0, "Qwen2.5-1.5B", False, 1e-6)
    store.close()
    with TraceStore(db) as s, s.engine.begin() as c:  # a dataset named after a benchmark: the paper's figures beside
        c.exec_driver_sql("UPDATE sessions SET dataset = 'musique_dev_50'")
    assert main(["report", "--db", db, "--run-id", "rj", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    router = next(r for r in out["datasets"] if r["method"] == "router")
    assert router["benchmark"] == "MuSiQue" and router["n"] == 3 and router["EM"] == pytest.approx(1 / 3)
    assert router["Router-R1-Qwen (paper)"] == 0.138 and router["Largest LLM (paper)"] == 0.104
    assert "paper's pool" in out["paper"]["source"]
    assert out["paper"]["em"]["Router-R1-Qwen (paper)"]["bamboogle"] == 0.512
    fails = {r["method"]: r for r in out["failures"]}
    assert fails["router"]["wrong"] == 2 and fails["router"]["unsupported"] == 2  # "Rome" is in no reply
    assert fails["baseline/largest"]["unsupported"] == 1 and set(out["failure_kinds"]) >= {"wrong_fact", "one_hop"}
    assert main(["report", "--db", db, "--run-id", "rj", "--out", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "figures.html").read_text()
    assert "the paper's figures, not ours" in html and "Router-R1-Qwen (paper)" in html and "unsupported" in html
    capsys.readouterr()
    assert main(["report", "--db", db, "--run-id", "nope", "--json"]) == 1
    assert "no finished sessions for run(s) nope" in capsys.readouterr().err


def test_benchmark_names_are_read_from_dataset_names():
    from evaluation.paper import benchmark_of
    assert [benchmark_of(n) for n in ("musique_train_30", "2wikimultihopqa-dev", "HotpotQA", "nq_dev", "nq-open",
                                      "triviaqa", "popqa_test", "bamboogle", "single_hop", "ambig_qa", None)] == \
        ["musique", "2wiki", "hotpotqa", "nq", "nq", "triviaqa", "popqa", "bamboogle", None, None, None]
