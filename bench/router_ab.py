"""A/B of router variants on the same questions, in one run: quality, decomposition, cost and time side by side.

Each variant is a policy preset plus an optional template file and run settings. Every (variant,
question) is a stored session (one eval run per variant), so each answer can be opened in the
Explorer afterwards; the table printed at the end has, per variant: EM and F1 (single- and multi-hop
apart), think quality, chain rate, repeated-sub-question rate, answer grounded, calls, $ per query
and seconds per question. Prompt and rollout changes are compared this way before they are adopted.
Usage:
  python bench/router_ab.py --dataset dev --variant base=prompted-qwen2.5-1.5b \\
      --variant v2=prompted-qwen2.5-1.5b:assets/templates/router_r1.txt --set v2:think_stops_at_tags=false
  (--variant NAME=POLICY[:TEMPLATE][@POOL_FILE], --set NAME:KEY=VALUE for run settings, --alpha A, --limit N,
   --db FILE to keep the sessions, --out FILE for the JSON result, --choices for the choice questions only)
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from evaluation.datasets import bundled_datasets, load_dataset
from evaluation.decomposition import measure
from evaluation.runner import EvalRunner
from router_core.asked_for import choices
from router_core.policy import customise, load_policies, setting_from_text
from router_core.pool import load_pool
from storage import SessionFilter, TraceStore

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", action="append", default=[], help="bundled set name or file (repeatable)")
    ap.add_argument("--variant", action="append", required=True, help="NAME=POLICY[:TEMPLATE]")
    ap.add_argument("--set", action="append", default=[], help="NAME:KEY=VALUE run setting for one variant")
    ap.add_argument("--alpha", type=float, default=0.0)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--choices", action="store_true",
                    help="only the questions that name two things to choose between ('…, A or B?'): a change to how "
                         "those are answered leaves every other question's session as it was")
    ap.add_argument("--pool", default=None)
    ap.add_argument("--db", default=None, help="keep the sessions here (default: a temporary file)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    sets = bundled_datasets()
    items = []
    for d in args.dataset or ["dev"]:
        items += load_dataset(sets.get(d, Path(d)), limit=args.limit)
    if args.choices:
        items = [it for it in items if choices(it.question)]
    book, base_pool = load_policies(), load_pool(args.pool)
    settings: dict[str, dict] = {}
    for s in args.set:
        name, kv = s.split(":", 1)
        k, v = kv.split("=", 1)
        settings.setdefault(name, {})[k] = setting_from_text(v)
    db = args.db or str(Path(tempfile.mkdtemp(prefix="router-ab-")) / "ab.sqlite")
    rows = []
    with TraceStore(db) as store:
        for spec in args.variant:
            name, rest = spec.split("=", 1)
            rest, _, pool_file = rest.partition("@")
            pol_name, _, template = rest.partition(":")
            pol = customise(book.get(pol_name), template=template or None)
            pool = load_pool(pool_file) if pool_file else base_pool
            run_id = f"ab-{name}-{int(time.time())}"
            runner = EvalRunner(store, pol, pool, run_id=run_id, alphas=[args.alpha], baselines=[],
                                overrides=settings.get(name))
            t0 = time.perf_counter()
            n = [0]

            def progress(phase: str, done: int, total: int, name=name, t0=t0, n=n) -> None:
                n[0] = done
                print(f"\r{name}: {done}/{total} questions, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr,
                      flush=True)
            runner.run(items, progress)
            print(file=sys.stderr)
            wall = time.perf_counter() - t0
            df = store.sessions_frame(SessionFilter(run_id=run_id))
            by_ds: dict[str, list] = {}
            sess = []
            for _, r in df.iterrows():
                steps = store.load_steps(r["id"])
                sess.append((r["question"], steps))
                by_ds.setdefault(r["dataset"], []).append(r)
            dec = measure(sess, pool.names)
            multi = measure([(q, s) for (q, s), (_, r) in zip(sess, df.iterrows()) if "multi" in str(r["dataset"])
                             or "dev" == str(r["dataset"]) and "-s" not in str(r["item_id"])], pool.names)
            em = {ds: statistics.mean(float(x["em"] or 0) for x in rs) for ds, rs in by_ds.items()}
            row = {"variant": name, "policy": pol_name, "template": template or "(preset)",
                   "settings": settings.get(name, {}), "n": len(df), "EM": float(df["em"].fillna(0).mean()),
                   "EM by set": em, "F1": float(df["f1"].fillna(0).mean()), **dec.as_row(),
                   "chain rate (multi-hop)": multi.chain_rate, "calls/q": float(df["calls"].mean()),
                   "$/q": float(df["cost_usd"].mean()), "s/q": wall / max(1, len(df)), "run_id": run_id}
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
    cols = ["variant", "n", "EM", "F1", "think quality", "chain rate", "chain rate (multi-hop)", "chain rate (not choice)",
            "choice split", "repeat rate", "grounded", "calls/q", "$/q", "s/q"]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            cells.append("—" if v is None else f"{v:.3f}" if isinstance(v, float) and c != "$/q" else
                         f"{v:.2e}" if c == "$/q" else str(v))
        print("| " + " | ".join(cells) + " |")
    print(f"\nsessions kept in {db} (run ids: {', '.join(r['run_id'] for r in rows)})")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
