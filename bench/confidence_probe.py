"""Does a candidate's own confidence in its reply say whether the reply is right, better than the kNN estimate?

The per-hop quality estimate (router_core/quality.py) predicts a model's chance on a sub-question from the labelled
public questions nearest to it; on these public train labels it ranks right replies above wrong ones with AUC
0.71–0.78, but the labels are trivia the pool rarely knows while a two-hop question's hops are well-known facts, so
the estimate transfers badly (docs/results/alpha_frontier.md). A reply's own log-probability is measured on the hop
itself, whatever the hop is about. This scores each labelled reply under the model that wrote it (the exact
candidate prompt, one prompt pass, no generation), prints each model's AUC for both signals side by side, and
replays a cascade on the labels (ask the cheapest; accept its reply when its confidence clears a threshold, else ask
the next rung) against the cheapest-only, largest-only and quality-estimate choices, with each call's dollars from
its tokens. Labels only (public *train* questions); nothing here touches the rollout.

    .venv/bin/python bench/confidence_probe.py   # 30 min on 2 cores the first time; scores cached in bench/results

Measured (590 questions): confidence AUC 0.70 / 0.57 / 0.62 (mean of the first tokens; their lowest 0.76 / 0.68 /
0.68) against the kNN estimate's 0.71 / 0.78 / 0.73 (SmolLM2-135M / Qwen2.5-0.5B / Qwen2.5-1.5B); APGR in dollars:
prior alone 0.31, the quality term 0.62, the cascade at its best thresholds 0.39. A cascade is not the better signal.
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

sys.path.insert(0, str(ROOT / "bench"))
from fit_quality import FIT_ALPHAS  # noqa: E402  (the same 21 α the weights were fitted over)

HEAD_TOKENS = 12  # a reply's answer is in its first words; later tokens are restatement and filler


def auc(scores: list[float], y: list[float]) -> float:
    """Probability a right reply scores above a wrong one (ties count half)."""
    pos = [s for s, t in zip(scores, y) if t >= 0.5]
    neg = [s for s, t in zip(scores, y) if t < 0.5]
    if not pos or not neg:
        return float("nan")
    p, n = np.array(pos)[:, None], np.array(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (len(pos) * len(neg)))


def score_replies(labels, cache_file: Path) -> dict[str, dict]:
    """{"qid|model": {"conf": mean log-prob of the reply's first tokens, "min": their lowest, "in": n, "out": n}}."""
    from router_core.loop import Router, spec_of_model
    from router_core.policy import load_policies
    from router_core.pool import load_pool

    have: dict[str, dict] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    todo = [x for x in labels.items if f"{x.id}|{x.model}" not in have]
    if not todo:
        return have
    router = Router(load_policies().get(None), load_pool())
    specs = {s.name: s for s in router.pool.models}
    head = router.candidate_head()  # the prompt each labelled reply was written under
    t0 = time.perf_counter()
    for n, x in enumerate(todo, 1):
        engine = router._engines(spec_of_model(specs[x.model]))
        prompt = engine.chat_prompt([{"role": "user", "content": head.replace("{{QUESTION}}", x.question)}])
        n_prompt = len(engine.prompt_logprobs(prompt)[1])
        _, lps = engine.prompt_logprobs(prompt + x.reply)
        reply_lps = [v for v in lps[n_prompt:] if v is not None][:HEAD_TOKENS] or [0.0]
        have[f"{x.id}|{x.model}"] = {"conf": float(np.mean(reply_lps)), "min": float(min(reply_lps)),
                                     "in": n_prompt, "out": engine.count_tokens(x.reply)}
        if n % 50 == 0 or n == len(todo):
            cache_file.write_text(json.dumps(have))
            print(f"· scored {n}/{len(todo)} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    return have


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", default=str(labels_path("local")))
    ap.add_argument("--cache", default=str(ROOT / "bench/results/confidence_scores.json"))
    ap.add_argument("--out", default=str(ROOT / "bench/results/confidence_probe.json"))
    ap.add_argument("--priors", default=str(ROOT / "bench/results/quality_priors.json"),
                    help="the router's first-hop name log-probabilities per question (bench/fit_quality.py)")
    args = ap.parse_args()

    from router_core.pool import load_pool

    labels = read_labels(args.labels)
    pool = load_pool()
    names = [s.name for s in sorted(pool.models, key=lambda s: s.call_cost(100, 20))]
    specs = {s.name: s for s in pool.models}
    scores = score_replies(labels, Path(args.cache))
    by: dict[str, dict[str, object]] = {}
    for x in labels.items:
        by.setdefault(x.id, {})[x.model] = x
    qids = [q for q, d in by.items() if all(m in d for m in names)]

    # the kNN estimate of --labels, each question's own labels left out of its neighbours (as bench/fit_quality.py)
    from evaluation.embed import get_embedder
    est = QualityEstimator(labels, get_embedder().encode).prepare()
    order = pool.names  # the choice's order (priors are cached in it)
    knn = {q: est.estimate(by[q][names[0]].question, order, exclude=by[q][names[0]].question) for q in qids}
    priors = json.loads(Path(args.priors).read_text())

    def cost(q: str, m: str) -> float:
        s = scores[f"{q}|{m}"]
        return specs[m].call_cost(s["in"], s["out"])

    report: dict[str, object] = {"labels": str(args.labels), "questions": len(qids), "head_tokens": HEAD_TOKENS,
                                 "models": names, "auc": {}}
    print(f"{len(qids)} labelled public train questions; AUC of each signal for 'this reply is right'")
    print(f"{'model':16} {'rate':>6} {'conf AUC':>9} {'min AUC':>8} {'kNN q AUC':>10}")
    for m in names:
        y = [by[q][m].correct for q in qids]
        conf = [scores[f"{q}|{m}"]["conf"] for q in qids]
        low = [scores[f"{q}|{m}"]["min"] for q in qids]
        kq = [knn[q][order.index(m)] or 0.0 for q in qids]
        row = {"rate": float(np.mean(y)), "conf": auc(conf, y), "min": auc(low, y), "knn": auc(kq, y)}
        report["auc"][m] = row
        print(f"{m:16} {row['rate']:6.3f} {row['conf']:9.3f} {row['min']:8.3f} {row['knn']:10.3f}")

    single = {m: (float(np.mean([cost(q, m) for q in qids])), float(np.mean([by[q][m].correct for q in qids])))
              for m in names}
    (w_usd, weak), (s_usd, strong) = single[names[0]], single[names[-1]]

    def x(usd: float) -> float:  # dollars scaled as the choice scales prices: cheapest-only 0, largest-only 1
        return (usd - w_usd) / (s_usd - w_usd)

    # the choice, today's and with the fitted quality term, at the fit's 21 α (dollars from each call's tokens)
    norm = pool.norm_costs()
    curves: dict[str, list[tuple[float, float]]] = {}
    for label, w_p, w_q in (("prior only", 1.0, 0.0), ("prior + kNN q (0.5, 64)", 0.5, 64.0)):
        pts = []
        for a in FIT_ALPHAS:
            spend = acc = 0.0
            for q in qids:
                c = adjust(order, priors[q], [norm[m] for m in order], a, DEFAULT_KAPPA,
                           quality=knn[q] if w_q else None, prior_weight=w_p, quality_weight=w_q)
                spend += cost(q, c.chosen)
                acc += by[q][c.chosen].correct
            pts.append((spend / len(qids), acc / len(qids)))
        curves[label] = pts

    # a cascade: ask the cheapest; keep its reply when its confidence clears t1, else ask the middle (t2), else
    # the dearest; every call asked is paid for. The best accuracy reached at or below each cost, over thresholds.
    grid = sorted({round(float(v), 2) for v in np.quantile([v["conf"] for v in scores.values()],
                                                            np.linspace(0, 1, 21))})
    grid = [-1e9] + grid + [1e9]
    points = []
    for t1 in grid:
        for t2 in grid:
            spend = acc = 0.0
            for q in qids:
                for i, m in enumerate(names):
                    spend += cost(q, m)
                    if i == len(names) - 1 or scores[f"{q}|{m}"]["conf"] >= (t1, t2)[i]:
                        acc += by[q][m].correct
                        break
            points.append((spend / len(qids), acc / len(qids), t1, t2))
    front = []
    for c, a, t1, t2 in sorted(points):
        if not front or a > front[-1][1] + 1e-9:
            front.append((c, a, t1, t2))
    curves["cascade on confidence"] = [(c, a) for c, a, _, _ in front]
    report["single"] = single
    report["cascade_frontier"] = [{"usd": c, "acc": a, "t_cheapest": t1, "t_middle": t2} for c, a, t1, t2 in front]
    report["curves"] = curves
    report["APGR_dollars"] = {k: apgr_reached([(x(c), a) for c, a in v], weak, strong) for k, v in curves.items()}
    print("\nasked once:  " + "  ".join(f"{m} {a:.3f} at {c * 1e6:.2f} µ$" for m, (c, a) in single.items()))
    print("APGR, dollars scaled cheapest-only 0 … largest-only 1 (cascade: its best thresholds, in-sample; the"
          " quality term: its weights fitted on these labels, in-sample too):")
    for k, v in report["APGR_dollars"].items():
        print(f"  {k:26} {v:.3f}")
    print("cascade frontier (best accuracy at or below each cost):")
    for c, a, t1, t2 in front:
        print(f"  {c * 1e6:7.2f} µ$  acc {a:.3f}   thresholds {t1:.2f} / {t2:.2f}")
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
