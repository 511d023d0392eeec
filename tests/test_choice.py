"""The live α knob on real scored distributions (Qwen2.5-0.5B scoring the paper's 8 model names)."""
import pytest

from router_core.choice import adjust, expected_norm_cost
from router_core.engines.base import branch_points, scored_positions
from router_core.pool import load_pool
from router_core.protocol import Template

QUESTIONS = ["Who directed the film Interstellar?",
             "What is the capital of the country where the Eiffel Tower stands?",
             "Which element has the atomic number 79?"]
THINKS = ["I should ask a model.", "This needs deep knowledge, so I will ask the large 70B Llama model."]
GRID = [i / 20 for i in range(21)]


@pytest.fixture(scope="module")
def scored(qwen):
    pool = load_pool("assets/pools/router-r1-nim.yaml")
    out = []
    for q in QUESTIONS:
        for think in THINKS:
            user = Template.load().fill(q, [(m.name, m.description) for m in pool.models])
            prefix = qwen.chat_prompt([{"role": "user", "content": user}]) + f"<think> {think} </think>\n<search> "
            out.append(qwen.score(prefix, [f"{n}:" for n in pool.names]))
    return pool, out


def test_alpha_zero_is_the_policys_own_choice(scored):
    pool, all_lps = scored
    costs = pool.norm_costs()
    for lps in all_lps:
        ch = adjust(pool.names, lps, [costs[n] for n in pool.names], 0.0)
        own = pool.names[max(range(len(lps)), key=lambda i: lps[i])]
        assert ch.chosen == own == ch.policy_choice
        assert ch.probs_after == pytest.approx(ch.probs_before)


def test_raising_alpha_never_raises_price(scored):
    pool, all_lps = scored
    costs = pool.norm_costs()
    price = {m.name: m.price_out for m in pool.models}
    changed = 0
    for lps in all_lps:
        chosen_prices, expected = [], []
        for a in GRID:
            ch = adjust(pool.names, lps, [costs[n] for n in pool.names], a)
            chosen_prices.append(price[ch.chosen])
            expected.append(expected_norm_cost(ch))
        assert all(x >= y for x, y in zip(chosen_prices, chosen_prices[1:])), chosen_prices
        assert all(x >= y - 1e-12 for x, y in zip(expected, expected[1:])), expected
        changed += chosen_prices[0] != chosen_prices[-1]
    assert changed >= 1, "the slider should change at least one real decision over [0, 1]"


def test_adjust_rejects_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        adjust(["a"], [0.0], [0.0], 1.5)
    with pytest.raises(ValueError, match="equal length"):
        adjust(["a", "b"], [0.0], [0.0], 0.5)


def test_alpha_parsing_is_one_rule_everywhere():
    from router_core.choice import parse_alpha, parse_alphas
    assert parse_alphas("1; 0,0.5") == [1.0, 0.0, 0.5]          # order kept (a sweep runs in this order)
    assert parse_alpha(" 0.25 ") == 0.25 and parse_alpha(1) == 1.0
    for bad, msg in (("nan", "outside"), ("inf", "outside"), ("-0.1", "outside"), ("x", "'x' is not a number"),
                     (True, "must be a number")):
        with pytest.raises(ValueError, match=msg):
            parse_alpha(bad, "--alpha")
    with pytest.raises(ValueError, match="at least one"):
        parse_alphas(" , ")
    with pytest.raises(ValueError, match="at most 2 values"):
        parse_alphas("0,0.5,1", limit=2)


def test_branch_points_are_where_an_option_parts_from_another():
    # two names sharing three tokens, one apart from the first token; a token every option takes is not one
    qwen05, qwen15, smol = [5, 6, 7, 0, 9], [5, 6, 7, 1, 9], [8, 4]
    assert branch_points([qwen05, qwen15, smol]) == [[0, 3], [0, 3], [0]]
    assert branch_points([[3, 1, 2], [3, 4, 2]]) == [[1], [1]]  # "<search>" / "<answer>": the shared "<" is certain
    assert branch_points([[1, 2], [1, 2, 3]]) == [[], [2]]  # an option that is the start of another
    assert branch_points([[1, 2], [1, 2]]) == [[], []] and branch_points([[4, 2]]) == [[]]
    assert scored_positions([qwen05, smol], choice=False) == [[0, 1, 2, 3, 4], [0, 1]]
    assert scored_positions([qwen05, smol], choice=True) == [[0], [0]]
