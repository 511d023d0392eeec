"""The per-hop quality estimate: calibration labels (written, resumed, bad lines skipped), the kNN estimate, and
the labels file's errors. Candidates are scripted engines; the embedder is a bag-of-words stand-in, so the
neighbours are known exactly."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from support.fake_engine import FakeEngine, fake_pool, fake_provider

from evaluation.calibrate import calibrate
from evaluation.datasets import load_dataset
from router_core.policy import Policy
from router_core.quality import CalibrationError, Label, Labels, QualityEstimator, neutral, read_labels

POLICY = Policy(name="p", engine="llamacpp", model="fake:policy", mode="guided")
VOCAB = ["capital", "france", "river", "director", "film", "born", "year", "population", "country", "city"]


def bag(texts: list[str]) -> np.ndarray:
    """Word counts over a fixed vocabulary: questions sharing words are neighbours."""
    out = np.zeros((len(texts), len(VOCAB)), dtype=np.float32)
    for i, t in enumerate(texts):
        words = re.findall(r"[a-z]+", t.lower())
        for j, v in enumerate(VOCAB):
            out[i, j] = words.count(v)
    return out + 1e-3


def questions_file(path, rows: list[str]) -> str:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def test_calibration_labels_each_model_resumes_and_skips_bad_lines(tmp_path):
    rows = [json.dumps({"id": "q1", "question": "What is the capital of France?", "golden_answers": ["Paris"]}),
            "{not json",
            json.dumps({"id": "q2", "question": "Which river flows through Budapest?", "golden_answers": ["Danube"]}),
            json.dumps({"id": "q3", "golden_answers": ["x"]}),  # no question
            json.dumps({"id": "q4", "question": "Who directed the film Interstellar?",
                        "golden_answers": ["Christopher Nolan", "Nolan"]})]
    bad: list[str] = []
    items = load_dataset(questions_file(tmp_path / "train.jsonl", rows), on_bad=bad.append)
    assert [it.id for it in items] == ["q1", "q2", "q4"]
    assert len(bad) == 2 and "line 2" in bad[0] and "not valid JSON" in bad[0] and "line 4" in bad[1]
    with pytest.raises(ValueError, match="line 2"):
        load_dataset(tmp_path / "train.jsonl")  # without on_bad a bad line still stops the load

    def knows(facts: list[str]):
        return lambda q: next((f"The answer is {a}." for k, a in facts if k in q), "I do not know.")
    tiny = FakeEngine(reply=knows([("capital", "Paris")]))
    big = FakeEngine(reply=knows([("capital", "Paris"), ("river", "the Danube"), ("Interstellar", "Nolan")]))
    failing = FakeEngine(fail="HTTP 503")
    engines = fake_provider(FakeEngine(), {"fake:tiny": tiny, "fake:mid": failing, "fake:big": big})
    out = tmp_path / "labels.jsonl"
    seen: list[tuple[int, int]] = []
    s = calibrate(POLICY, fake_pool(), items[:2], out, engines=engines, dataset="train",
                  progress=lambda done, total, what: seen.append((done, total)))
    assert s.asked == 6 and len(s.failed) == 2 and all("Mid" in f and "HTTP 503" in f for f in s.failed)
    assert seen[-1] == (6, 6)
    labels = read_labels(out)
    assert labels.header["pool"] == "fake-three" and labels.header["models"] == ["Tiny", "Mid", "Big"]
    got = {(x.id, x.model): x.correct for x in labels.items}
    assert got == {("q1", "Tiny"): 1.0, ("q1", "Big"): 1.0, ("q2", "Tiny"): 0.0, ("q2", "Big"): 1.0}
    # resumed with one more question: the labelled pairs are not asked again, the failed ones are
    tiny.calls.clear()
    engines = fake_provider(FakeEngine(), {"fake:tiny": tiny, "fake:mid": FakeEngine(reply=knows([])), "fake:big": big})
    s2 = calibrate(POLICY, fake_pool(), items, out, engines=engines)
    assert s2.skipped == 4 and s2.asked == 5 and not s2.failed
    assert len(tiny.calls) == 1 and "Interstellar" in tiny.calls[0].prompt
    assert len(read_labels(out).items) == 9
    assert s2.rates()["Big"] == (1.0, 3)
    with pytest.raises(CalibrationError, match="labels of pool 'fake-three'"):
        other = fake_pool().model_copy(update={"name": "other"})
        calibrate(POLICY, other, items, out, engines=engines)


def test_a_labels_file_that_is_not_whole_is_refused_naming_the_line(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_text('{"kind": "router-studio-calibration", "pool": "x"}\n{"id": "a", "question": "q"}\n')
    with pytest.raises(CalibrationError, match="line 2: bad label"):
        read_labels(p)
    p.write_text('{"pool": "x"}\n')
    with pytest.raises(CalibrationError, match="line 1: not a calibration file"):
        read_labels(p)


def estimator() -> QualityEstimator:
    """Tiny answers capital questions, not film ones; Big answers both; Mid has no labels."""
    qs = {"c1": "What is the capital of France?", "c2": "What is the capital city of Italy?",
          "c3": "Capital of the country Spain?", "f1": "Who directed the film Heat?",
          "f2": "Which director made the film Alien?", "f3": "The director of the film Up?"}
    items = []
    for qid, q in qs.items():
        items.append(Label(qid, q, "Tiny", 1.0 if qid.startswith("c") else 0.0))
        items.append(Label(qid, q, "Big", 1.0))
    return QualityEstimator(Labels({"pool": "fake-three"}, items), bag, k=3, shrink=1.0)


def test_the_estimate_follows_the_neighbours_and_says_when_a_model_has_no_labels():
    q = estimator()
    cap = q.estimate("What is the capital of Hungary?", ["Tiny", "Mid", "Big"])
    film = q.estimate("Who is the director of the film Dune?", ["Tiny", "Mid", "Big"])
    assert cap[1] is None and film[1] is None  # Mid: not calibrated
    assert cap[0] > 0.7 and film[0] < 0.3 and cap[2] > 0.9 and film[2] > 0.9
    assert q.rate("Tiny") == pytest.approx(0.5) and q.rate("Mid") is None
    # leave-one-out: a question's own label does not vote for it
    loo = q.estimate("What is the capital of France?", ["Tiny"], exclude="What is the capital of France?")[0]
    assert loo < q.estimate("What is the capital of France?", ["Tiny"])[0]
    assert neutral([0.2, None, 0.8]) == [0.2, 0.5, 0.8] and neutral([None]) == [0.5]


def test_raising_alpha_never_raises_the_chosen_price_whatever_the_prior_and_quality():
    """The property behind the slider, over 2,000 random utilities: random pools (2–8 models, ties in price
    included), router log-probabilities, quality estimates (some models not calibrated) and weights. At each α of a
    fine grid the chosen model's normalised cost is no higher than at the α before it."""
    from router_core.choice import adjust
    rng = np.random.default_rng(20261204)
    grid = np.linspace(0, 1, 41)
    moved = 0
    for _ in range(2000):
        n = int(rng.integers(2, 9))
        names = [f"m{i}" for i in range(n)]
        costs = list(np.round(rng.random(n), 1))  # rounded: equal prices happen
        lps = list(np.log(rng.dirichlet(np.ones(n))))
        q = [None if rng.random() < 0.15 else float(rng.random()) for _ in range(n)]
        w_p, w_q = float(rng.choice([0.0, 0.1, 0.5, 1.0])), float(rng.choice([0.0, 1.0, 4.0, 16.0]))
        chosen = [costs[names.index(adjust(names, lps, costs, float(a), quality=q, prior_weight=w_p,
                                           quality_weight=w_q).chosen)] for a in grid]
        assert all(x >= y for x, y in zip(chosen, chosen[1:])), (costs, lps, q, w_p, w_q, chosen)
        moved += chosen[0] != chosen[-1]
    assert moved > 500  # the property is not vacuous: most random choices do move down the ladder


def test_the_quality_term_changes_the_pick_and_its_terms_add_up():
    from router_core.choice import adjust
    names, costs = ["Tiny", "Mid", "Big"], [0.0, 0.3, 1.0]
    lps = [np.log(0.1), np.log(0.05), np.log(0.85)]  # the router prefers Big, ranks Mid last
    c = adjust(names, lps, costs, 0.4, quality=[0.2, 0.7, None], prior_weight=0.5, quality_weight=8.0)
    t = c.terms()
    assert t[2]["calibrated"] is False and t[2]["estimate"] == pytest.approx(0.45)  # neutral: mean of the known
    u = [x["prior"] + x["quality"] - x["penalty"] for x in t]
    assert c.chosen == names[int(np.argmax(u))] == "Mid" and c.policy_choice == "Big"
    assert t[1]["penalty"] == pytest.approx(8.0 * 0.4 * 0.3) and t[0]["prior"] == pytest.approx(0.5 * lps[0])
    plain = adjust(names, lps, costs, 0.4)
    assert plain.quality is None and "quality" not in plain.to_dict()  # stored as before without the term
    with pytest.raises(ValueError, match="one estimate"):
        adjust(names, lps, costs, 0.4, quality=[0.1])


def test_the_choice_terms_travel_through_codec_store_and_jsonl(tmp_path):
    """A route step whose choice carries the quality term: parsed back from its dict, stored and loaded, exported
    to JSONL and imported into another store, the three terms are all there (OTLP: tests/test_otlp.py)."""
    from router_core.choice import adjust
    from router_core.step import Step
    from storage import TraceStore
    c = adjust(["Tiny", "Mid", "Big"], [-2.0, -3.0, -0.2], [0.0, 0.3, 1.0], 0.5, quality=[0.2, 0.7, None],
               prior_weight=0.5, quality_weight=8.0)
    step = Step("s1", 1, "route", query="What is the capital of Hungary?", request_model=c.chosen,
                written_model=c.chosen, response="Budapest.", choice=c, call_started_at=1.0, call_ended_at=2.0)
    assert Step.parse(step.to_dict()).choice == c
    a = TraceStore(str(tmp_path / "a.sqlite"))
    a.start_session(session_id="s1", question="Which river flows through the capital of Hungary?", alpha=0.5,
                    policy="p", engine="llamacpp", pool={"name": "x"})
    a.append_step(Step("s1", 0, "think", text="I need the capital first."))
    a.append_step(step)
    got = a.load_steps("s1")[1].choice
    assert got == c and got.terms() == c.terms()
    out = tmp_path / "x.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        a.export_jsonl(fh)
    b = TraceStore(str(tmp_path / "b.sqlite"))
    b.import_jsonl(out.read_text(encoding="utf-8").splitlines())
    assert b.load_steps("s1")[1].choice == c
    a.close()
    b.close()


def test_a_caption_says_why_alpha_moved_the_pick_with_the_expected_accuracy():
    from router_core.choice import adjust
    from router_core.step import Step
    from ui.captions import Prices, caption
    from ui.render import choice_line
    names, costs = ["Tiny", "Mid", "Big"], [0.0, 0.3, 1.0]
    lps = [np.log(0.1), np.log(0.05), np.log(0.85)]

    def route(alpha: float, quality) -> Step:
        c = adjust(names, lps, costs, alpha, quality=quality, prior_weight=0.5, quality_weight=8.0)
        return Step("s", 1, "route", query="What is the capital of Hungary?", request_model=c.chosen,
                    written_model=c.chosen, response="Budapest.", choice=c, call_started_at=1.0, call_ended_at=2.0)
    s0, s4 = route(0.0, [0.2, 0.71, 0.9]), route(0.8, [0.2, 0.71, 0.9])
    assert s0.choice.chosen == "Big" and s4.choice.chosen == "Mid"
    cap0 = caption(s0, alpha=0.0, prices=Prices({}, {}))
    cap4 = caption(s4, alpha=0.8, prices=Prices({}, {}))
    assert "Expected share right on this sub-question (from similar training questions): Tiny 0.20, Mid 0.71, " \
           "Big 0.90." in cap0 and "Big it is." in cap0
    assert ("At α 0.8 the price penalty outweighed Big's higher expected accuracy (0.90): Mid expected 0.71 correct, "
            "for less.") in cap4
    uncal = caption(route(0.0, [0.2, None, 0.9]), alpha=0.0, prices=Prices({}, {}))
    assert "Mid 0.55 (not calibrated)" in uncal
    header = choice_line({"settings": {"run": {"quality": True, "prior_weight": 0.5, "quality_weight": 8.0}}})
    assert "× 0.5" in header and "× 8" in header and choice_line({"settings": {"run": {}}}) == ""


def test_a_run_with_quality_on_but_no_labels_runs_and_records_without_it():
    from router_core.loop import Router
    cfg = POLICY.run_config({"quality": True, "quality_weight": 8.0})
    r = Router(POLICY, fake_pool(), engines=fake_provider(FakeEngine()), config=cfg, quality=None)
    assert not r.uses_quality() and r.settings()["run"].get("quality") is None and cfg.quality


def test_warming_a_router_with_the_term_on_embeds_the_labelled_questions_once():
    from router_core.loop import Router
    seen: list[int] = []
    est = estimator()
    est.encode = lambda texts: (seen.append(len(texts)), bag(texts))[1]
    cfg = POLICY.run_config({"quality": True, "quality_weight": 8.0})
    Router(POLICY, fake_pool(), engines=fake_provider(FakeEngine()), config=cfg, quality=est).warm()
    assert seen == [6]  # the six labelled questions, before any route
    est.estimate("What is the capital of Hungary?", ["Tiny"])
    assert seen == [6, 1]  # a route embeds its sub-question only
    off = estimator()
    Router(POLICY, fake_pool(), engines=fake_provider(FakeEngine()), quality=off).warm()
    assert not off._ready  # the term off: nothing embedded


def test_the_labelled_vectors_are_kept_between_processes_and_rebuilt_when_they_do_not_fit(tmp_path):
    seen: list[int] = []

    def counted() -> QualityEstimator:
        est = estimator()
        est.encode = lambda texts: (seen.append(len(texts)), bag(texts))[1]
        est.vectors = tmp_path / "cache" / "local-abc.npy"
        return est
    first = counted().estimate("What is the capital of Hungary?", ["Tiny", "Big"])
    assert seen == [6, 1] and (tmp_path / "cache" / "local-abc.npy").is_file()
    assert counted().estimate("What is the capital of Hungary?", ["Tiny", "Big"]) == pytest.approx(first)
    assert seen == [6, 1, 1]  # the second process embeds its sub-question only
    np.save(tmp_path / "cache" / "local-abc.npy", np.ones((2, 3), dtype=np.float32))  # rows for another file
    counted().prepare()
    (tmp_path / "cache" / "local-abc.npy").write_bytes(b"not an array")
    counted().prepare()
    assert seen == [6, 1, 1, 6, 6]


def test_a_question_that_holds_its_answer_is_left_out_of_calibration(tmp_path):
    from evaluation.datasets import Item
    items = [Item("m", "Who was the dog in Marley and Me?", ["Marley"], "t"),
             Item("p", "What is the capital of France?", ["Paris"], "t")]
    echo = FakeEngine(reply=lambda q: f"{q} Paris.")  # repeats the question: right on both, by echo alone
    s = calibrate(POLICY, fake_pool(), items, tmp_path / "l.jsonl", engines=fake_provider(FakeEngine(), default=echo))
    assert s.answer_in_question == ["m"] and s.asked == 3
    assert {x.id for x in read_labels(tmp_path / "l.jsonl").items} == {"p"}


def test_a_stored_choice_with_a_wrong_number_of_estimates_is_refused():
    from router_core.choice import adjust
    from router_core.step import Choice, StepError
    d = adjust(["A", "B"], [-0.1, -2.0], [0.0, 1.0], 0.5, quality=[0.5, 0.4], quality_weight=2.0).to_dict()
    for bad in ([], [0.5], [0.5, 0.4, 0.3]):
        with pytest.raises(StepError, match="quality: has"):
            Choice.parse({**d, "quality": bad})
    with pytest.raises(StepError, match=r"quality\[0\]"):
        Choice.parse({**d, "quality": [1.5, 0.4]})
