"""EM/F1, dollars, Router-R1 cost normalisation and reward, against hand-computed values."""
import math

import pytest

from router_core.cost import CostNormalizer, call_cost_usd, raw_cost, router_r1_reward
from router_core.metrics import exact_match, f1_score, normalize_answer
from router_core.step import Step


@pytest.mark.parametrize("a,b", [
    ("The Eiffel Tower!", "eiffel tower"), ("  Paris ", "paris"), ("an apple", "Apple"),
    ("Christopher   Nolan.", "christopher nolan"), ("U.S.A.", "usa"),
])
def test_normalize(a, b):
    assert normalize_answer(a) == normalize_answer(b)


def test_exact_match_aliases_and_none():
    assert exact_match("the Big Apple", ["New York City", "Big Apple"]) == 1.0
    assert exact_match("New York", ["New York City"]) == 0.0
    assert exact_match(None, ["x"]) == 0.0
    assert exact_match("x", []) == 0.0


def test_f1_hand_computed():
    # pred tokens: christopher, jonathan, nolan ; gold: christopher, nolan -> P=2/3 R=1 F1=0.8
    assert f1_score("Christopher Jonathan Nolan", "Christopher Nolan") == pytest.approx(0.8)
    assert f1_score("Nolan", ["Christopher Nolan", "Nolan"]) == 1.0
    assert f1_score("yes", "no") == 0.0
    assert f1_score("no", "no") == 1.0
    assert f1_score("", "Paris") == 0.0
    assert f1_score(None, "Paris") == 0.0


def test_call_cost_and_raw_cost():
    assert call_cost_usd(1000, 500, 0.2, 0.88) == pytest.approx((1000 * 0.2 + 500 * 0.88) / 1e6)
    steps = [Step("s", 0, "route", request_model="A", output_tokens=100),
             Step("s", 1, "route", request_model="B", output_tokens=10),
             Step("s", 2, "think", output_tokens=999)]
    assert raw_cost(steps, {"A": 0.5, "B": 2.0}) == pytest.approx(100 * 0.5 + 10 * 2.0)


def test_cost_normalizer_percentiles():
    n = CostNormalizer(window=100)
    for c in [i * i for i in range(101)]:  # sqrt costs 0..100 -> window keeps 1..100
        n.observe(c)
    vals = sorted(n.values)
    assert len(vals) == 100 and vals[0] == 1.0
    lo, hi = 1 + 0.05 * 99, 1 + 0.95 * 99
    assert n.reward(0) == 1.0
    assert n.reward(1e9) == 0.0
    assert n.reward(50.0 ** 2) == pytest.approx(1 - (50 - lo) / (hi - lo))


def test_reward_rules():
    n = CostNormalizer()
    for c in (0.0, 1.0, 4.0, 9.0, 16.0):
        n.observe(c)
    assert router_r1_reward("Paris", ["Paris"], format_ok=False, cost=1, alpha=0.5, normalizer=n) == -1.0
    assert router_r1_reward(None, ["Paris"], format_ok=True, cost=1, alpha=0.5, normalizer=n) == -1.0
    assert router_r1_reward("Lyon", ["Paris"], format_ok=True, cost=1, alpha=0.5, normalizer=n) == 0.0
    assert router_r1_reward("Paris", ["Paris"], True, cost=0.0, alpha=0.0, normalizer=n) == 1.0
    r_cost = n.reward(4.0)
    got = router_r1_reward("paris", ["Paris"], True, cost=4.0, alpha=0.7, normalizer=n)
    assert got == pytest.approx(0.3 + 0.7 * r_cost)
    assert 0.0 < r_cost < 1.0 and math.isfinite(got)
