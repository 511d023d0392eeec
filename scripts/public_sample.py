"""Draw a random sample of a public question file into the FlashRAG form the studio ships (assets/questions/public).

Used for the quality calibration set: `python scripts/public_sample.py SRC OUT --n 300 --seed 20261205 --prefix
ambigqa-train --exclude assets/questions/public/ambigqa/train.jsonl` draws 300 rows of AmbigQA's train split (the
Router-R1-format copy in chenyiqun/Agentic-RAG, data/ambig_qa/train.jsonl) that the shipped 50-question sample does
not hold, so rules measured on that sample are never measured on questions the quality estimate was fitted on.
Ids are `<prefix>-<row>` (the row in SRC, from 0), as in the shipped samples.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluation.datasets import load_dataset  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--prefix", required=True, help="id prefix, e.g. ambigqa-train")
    ap.add_argument("--exclude", action="append", default=[], help="a FlashRAG file whose ids are not drawn again")
    args = ap.parse_args()
    bad: list[str] = []
    items = load_dataset(args.src, on_bad=bad.append)
    taken = {json.loads(line)["id"] for f in args.exclude for line in Path(f).read_text().splitlines() if line.strip()}
    rows = [r for r in range(len(items)) if f"{args.prefix}-{r}" not in taken]
    pick = sorted(random.Random(args.seed).sample(rows, args.n))
    with open(args.out, "x", encoding="utf-8") as fh:
        for r in pick:
            it = items[r]
            fh.write(json.dumps({"id": f"{args.prefix}-{r}", "question": it.question, "golden_answers": it.golds},
                                ensure_ascii=False) + "\n")
    print(f"{len(pick)} of {len(items)} rows ({len(taken)} excluded, {len(bad)} bad skipped) → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
