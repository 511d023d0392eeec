"""Fit the weights of the model choice's utility, u = w_p·log p(name) + w_q·q − κ·α·ĉ, on the calibration labels.

For each labelled question (a public *train* split, labelled by `app.py calibrate`) it needs three things: the
router's prior over the pool's names at a first hop, each model's quality estimate for that question with the
question's own labels left out (leave-one-out kNN, as a new hop would be estimated), and whether each model was
right. The prior is scored as the guided rollout scores it, after a short think block that says the question is to
be looked up (a proxy for the router's own think block: generating one per question would cost 300 router runs).

For every (w_p, w_q) on a grid it replays the choice at 21 α from 0 to 1 and scores the curve the slider would walk
by RouteLLM's APGR: the area under the share of the cheapest → largest accuracy gap recovered, over mean normalised
cost (a router that hands the cheap model the hops it answers as well scores near 1, a random mix 0.5, a switch
that flips every hop at once near 0). The best pair by APGR wins, among pairs whose α = 0 accuracy is no lower than
the router's own prior alone (the quality term may not cost accuracy where price does not count). Router-R1's
one-hop reward, (1 − α)·correct + α·(1 − ĉ), is printed beside it: with these small models' accuracy near the floor
on public questions it favours the cheapest model at every α > 0, so it cannot choose weights for a slider (the
first fit used it and sent every hop to the cheapest model from α 0.2). Prints the grid and the chosen point;
writes JSON.

Usage: python bench/fit_quality.py [--labels assets/calibration/local.jsonl] [--out bench/results/quality_fit.json]
Priors are cached in bench/results/quality_priors.json (resumable; --rescore to score again).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluation.curves import apgr_reached  # noqa: E402
from router_core.choice import DEFAULT_KAPPA, adjust  # noqa: E402
from router_core.quality import QualityEstimator, labels_path, read_labels  # noqa: E402

ALPHAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)   # shown
FIT_ALPHAS = tuple(round(i / 20, 2) for i in range(21))  # scored
PRIOR_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0)
QUALITY_WEIGHTS = (0.0, 2.0, 4.0, 8.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0, 128.0)
THINK = "I need to look this up: {q}"


def score_priors(questions: dict[str, str], cache_file: Path, rescore: bool) -> dict[str, list[float]]:
    """The router's log-probability of each pool name at a first hop, per question id (cached)."""
    from router_core.engines import CacheHint
    from router_core.loop import Router
    from router_core.policy import load_policies
    from router_core.pool import load_pool

    have: dict[str, list[float]] = {} if rescore or not cache_file.exists() else json.loads(cache_file.read_text())
    todo = [k for k in questions if k not in have]
    if not todo:
        return have
    book = load_policies()
    router = Router(book.get(None), load_pool())
    engine = router.policy_engine()
    models, example = router._models(), router.pool.dearest().name
    head = CacheHint(prefix=engine.prompt_head(router.template.head(models, example)))
    t0 = time.perf_counter()
    for n, k in enumerate(todo, 1):
        q = questions[k]
        prompt = engine.chat_prompt([{"role": "user", "content": router.template.fill(q, models, example)}])
        prefix = prompt + f"<think> {THINK.format(q=q)} </think>\n<search> "
        have[k] = router._score_options(engine, prefix, [f"{m}:" for m in router.pool.names], head)
        if n % 10 == 0 or n == len(todo):
            cache_file.write_text(json.dumps(have))
            print(f"· priors {n}/{len(todo)} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    return have


def replay(names, costs, priors, qhat, y, w_p: float, w_q: float,
           alphas: tuple[float, ...] = FIT_ALPHAS) -> dict[float, tuple[float, float, float]]:
    """Per α: (accuracy, mean normalised cost, mean reward) of the choice with these weights."""
    out = {}
    for a in alphas:
        acc = cost = rew = 0.0
        for lp, q, row in zip(priors, qhat, y):
            c = adjust(names, lp, costs, a, DEFAULT_KAPPA, quality=q, prior_weight=w_p, quality_weight=w_q)
            i = names.index(c.chosen)
            acc += row[i]
            cost += costs[i]
            rew += (1 - a) * row[i] + a * (1 - costs[i])
        n = len(y)
        out[a] = (acc / n, cost / n, rew / n)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", default=str(labels_path("local")))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "quality_fit.json"))
    ap.add_argument("--priors", default=str(ROOT / "bench" / "results" / "quality_priors.json"))
    ap.add_argument("--rescore", action="store_true")
    args = ap.parse_args()
    labels = read_labels(args.labels)
    from router_core.pool import load_pool
    pool = load_pool()
    names = pool.names
    norm = pool.norm_costs()
    costs = [norm[m] for m in names]
    by_q: dict[str, dict[str, float]] = {}
    text: dict[str, str] = {}
    for x in labels.items:
        by_q.setdefault(x.id, {})[x.model] = x.correct
        text[x.id] = x.question
    ids = [k for k, v in by_q.items() if all(m in v for m in names)]  # questions every model answered
    priors_all = score_priors({k: text[k] for k in ids}, Path(args.priors), args.rescore)
    from evaluation.embed import get_embedder
    est = QualityEstimator(labels, get_embedder().encode)
    t0 = time.perf_counter()
    qhat = [est.estimate(text[k], names, exclude=text[k]) for k in ids]
    print(f"· leave-one-out estimates for {len(ids)} questions in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    y = [[by_q[k][m] for m in names] for k in ids]
    priors = [priors_all[k] for k in ids]
    rates = {m: float(np.mean([row[i] for row in y])) for i, m in enumerate(names)}
    weak, strong = rates[names[costs.index(min(costs))]], rates[names[costs.index(max(costs))]]

    def curve_score(r: dict[float, tuple[float, float, float]]) -> float:
        return apgr_reached([(c, acc) for acc, c, _ in r.values()], weak, strong)

    base = replay(names, costs, priors, qhat, y, 1.0, 0.0)
    grid = []
    for w_p in PRIOR_WEIGHTS:
        for w_q in QUALITY_WEIGHTS:
            if w_p == 0 and w_q == 0:
                continue
            r = replay(names, costs, priors, qhat, y, w_p, w_q)
            shown = replay(names, costs, priors, qhat, y, w_p, w_q, ALPHAS)
            grid.append({"prior_weight": w_p, "quality_weight": w_q, "APGR": curve_score(r),
                         "mean_reward": float(np.mean([v[2] for v in shown.values()])),
                         "acc": {str(a): v[0] for a, v in shown.items()},
                         "cost": {str(a): v[1] for a, v in shown.items()},
                         "levels": len({round(v[1], 4) for v in r.values()})})
    ok = [g for g in grid if g["acc"]["0.0"] >= base[0.0][0]]
    best = max(ok, key=lambda g: g["APGR"])
    shown_base = {a: base[a] for a in ALPHAS}
    print(f"{len(ids)} questions · share right: " + ", ".join(f"{m} {r:.2f}" for m, r in rates.items()))
    print(f"{'w_p':>5} {'w_q':>5} {'APGR':>5} {'levels':>6} {'reward':>7}  "
          + "  ".join(f"α{a:g} acc/cost" for a in ALPHAS))
    print(f"{'prior':>11} {curve_score(base):5.3f} {len({round(v[1], 4) for v in base.values()}):6d} "
          f"{np.mean([v[2] for v in shown_base.values()]):7.3f}  "
          + "  ".join(f"{base[a][0]:.2f}/{base[a][1]:.2f}" for a in ALPHAS))
    for g in sorted(grid, key=lambda g: -g["APGR"])[:12]:
        mark = " ←" if g is best else ""
        print(f"{g['prior_weight']:5g} {g['quality_weight']:5g} {g['APGR']:5.3f} {g['levels']:6d} "
              f"{g['mean_reward']:7.3f}  "
              + "  ".join(f"{g['acc'][str(a)]:.2f}/{g['cost'][str(a)]:.2f}" for a in ALPHAS) + mark)
    Path(args.out).write_text(json.dumps({
        "labels": args.labels, "questions": len(ids), "rates": rates, "alphas": list(ALPHAS), "kappa": DEFAULT_KAPPA,
        "fit_alphas": list(FIT_ALPHAS), "objective": "APGR (best PGR reached at or below each mean normalised cost)",
        "prior_only": {str(a): {"acc": v[0], "cost": v[1], "reward": v[2]} for a, v in shown_base.items()},
        "prior_only_APGR": curve_score(base),
        "best": best, "grid": grid, "think_proxy": THINK}, indent=1))
    print(f"best: prior_weight {best['prior_weight']:g}, quality_weight {best['quality_weight']:g} → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
