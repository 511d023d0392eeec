"""How good must a per-question predictor be for the α goal? A switch between two stored eval runs.

Given two eval runs of the same questions, one at α 0 (every hop to the dearest) and one at α 1 (to the cheapest),
a router that knew in advance which questions the cheap run gets right would send those cheap and the rest dear.
This prints that oracle's EM and cost beside both runs, and what a predictor with a given true-positive rate (cheap
questions sent cheap) and false-positive rate (questions that need the dear run sent cheap) keeps, in expectation.
It reads sessions only; nothing is run.

    .venv/bin/python app.py eval --dataset multi_hop --alpha 0 --baselines none --db /tmp/switch.sqlite
    .venv/bin/python app.py eval --dataset multi_hop --alpha 1 --baselines none --db /tmp/switch.sqlite
    .venv/bin/python bench/switch_oracle.py --db /tmp/switch.sqlite
"""
from __future__ import annotations

import argparse
import sqlite3

RATES = ((1.0, 0.0), (0.9, 0.1), (0.8, 0.2), (0.9, 0.3), (0.7, 0.1), (0.7, 0.3))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True, help="a SQLite store holding both runs")
    ap.add_argument("--dear", type=float, default=0.0, help="α of the run that sends hops to the dearest")
    ap.add_argument("--cheap", type=float, default=1.0, help="α of the run that sends hops to the cheapest")
    args = ap.parse_args()
    con = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    runs: dict[float, dict[str, tuple[float, float]]] = {args.dear: {}, args.cheap: {}}
    for item, alpha, em, cost in con.execute("SELECT item_id, alpha, em, cost_usd FROM sessions "
                                             "WHERE status != 'error' AND item_id IS NOT NULL"):
        if alpha in runs:
            runs[alpha][item] = (float(em or 0.0), float(cost or 0.0))
    dear, cheap = runs[args.dear], runs[args.cheap]
    ids = sorted(set(dear) & set(cheap))
    if not ids:
        raise SystemExit(f"{args.db}: no question has a finished session at both α {args.dear} and α {args.cheap}")
    n = len(ids)
    enough = [i for i in ids if cheap[i][0] >= dear[i][0]]  # the cheap run does as well
    needs = [i for i in ids if cheap[i][0] < dear[i][0]]

    def mean(xs) -> float:
        return sum(xs) / n

    em_d, usd_d = mean(dear[i][0] for i in ids), mean(dear[i][1] for i in ids)
    em_c, usd_c = mean(cheap[i][0] for i in ids), mean(cheap[i][1] for i in ids)
    print(f"{n} questions; α {args.dear}: EM {em_d:.3f} at {usd_d * 1e6:.1f} µ$; "
          f"α {args.cheap}: EM {em_c:.3f} at {usd_c * 1e6:.1f} µ$")
    print(f"the cheap run does as well on {len(enough)}, worse on {len(needs)}")
    print(f"{'sent cheap (TPR / FPR)':24} {'EM':>6} {'µ$ a query':>11} {'share of α 0 cost':>18}")
    for tpr, fpr in RATES:
        em = mean([tpr * cheap[i][0] + (1 - tpr) * dear[i][0] for i in enough]
                  + [fpr * cheap[i][0] + (1 - fpr) * dear[i][0] for i in needs])
        usd = mean([tpr * cheap[i][1] + (1 - tpr) * dear[i][1] for i in enough]
                   + [fpr * cheap[i][1] + (1 - fpr) * dear[i][1] for i in needs])
        what = "the oracle" if (tpr, fpr) == (1.0, 0.0) else f"{tpr:.1f} / {fpr:.1f}"
        print(f"{what:24} {em:6.3f} {usd * 1e6:11.1f} {usd / usd_d:18.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
