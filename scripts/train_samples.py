"""Draw the public train and dev samples the router is trained and measured on (assets/questions/public/<set>/<split>).

Sources (public repositories; fetch them, then point this script at the files):
- R1-Searcher (RUCAIBox/R1-Searcher, MIT) `data/training_set/stage_2.jsonl`: 8,148 HotpotQA and 2WikiMultiHopQA
  *train* questions with answers, mixed in one file. 2WikiMultiHopQA's questions are generated from a small set of
  templates ("Who is the paternal grandfather of …?", "Which film came out first, … or …?", "What nationality is the
  director of film …?"), so a question that matches one of them is filed under 2wiki, the rest under hotpotqa. A few
  HotpotQA comparison questions phrased like a template land in 2wiki: both are train splits, so nothing leaks.
- R1-Searcher `data/eval_set/{hotpotqa,2wiki}_500.jsonl`: 500 questions drawn by its authors from each *dev* split
  (for reporting: never trained or tuned on here).
- chenyiqun/Agentic-RAG `data/musique/musique_train_questions_and_answers.json`: MuSiQue-Ans *train*. The 30
  questions shipped before stay first, in their order, so `--limit 30` still gives the set earlier figures used.

    python scripts/train_samples.py --stage2 stage_2.jsonl --hotpot-dev hotpotqa_500.jsonl \\
        --wiki-dev 2wiki_500.jsonl --musique musique_train_questions_and_answers.json

Writes FlashRAG JSON lines (`id`, `question`, `golden_answers`); ids name the source row, so a sample can be traced.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "questions" / "public"
SEED = 20261207

# 2WikiMultiHopQA's question templates (Ho et al., 2020: comparison, inference, compositional, bridge comparison)
WIKI2_TEMPLATES = [re.compile(p) for p in (
    r"^Who is the (paternal |maternal )?(grandfather|grandmother|father|mother|father-in-law|mother-in-law|sibling|"
    r"spouse|child|stepmother|stepfather) of ",
    r"^Who is .+'s (paternal |maternal )?(grandfather|grandmother|father|mother|father-in-law|mother-in-law|spouse|"
    r"child|stepmother|stepfather|sibling)\b",
    r"\bof (the )?film\b", r"\bof song\b", r"^Which film ", r"^Who was born (first|later)", r"^Who died (first|later|earlier)",
    r"^(Are|Were|Do|Did|Is) (both )?.+ (from|of) the same (country|nationality)",
    r"^(Are|Were) both .+ located in the same country", r"^When did .+'s (father|mother|husband|wife|spouse) die",
    r"^What is the date of (birth|death) of ", r"^Where (was|did) .+'s (father|mother|husband|wife) (born|die)",
    r"^What is the place of (birth|death) of ", r"^Why did .+ die\?", r"^What nationality is ", r"^When is .+'s birthday",
)]


def is_2wiki(question: str) -> bool:
    return any(p.search(question) for p in WIKI2_TEMPLATES)


def _rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _record(rid: str, row: dict) -> dict:
    answer = row["answer"]
    golds = answer if isinstance(answer, list) else [answer]
    return {"id": rid, "question": row["question"].strip(), "golden_answers": [str(g).strip() for g in golds]}


def _usable(row: dict) -> bool:
    a = row.get("answer")
    return bool(str(row.get("question", "")).strip()) and bool(a) and all(str(x).strip() for x in
                                                                         (a if isinstance(a, list) else [a]))


def _write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(records)} → {path.relative_to(ROOT)}")


def _draw(rows: list[tuple[str, dict]], n: int, seed: int) -> list[dict]:
    pick = random.Random(seed).sample(range(len(rows)), min(n, len(rows)))
    return [_record(rows[i][0], rows[i][1]) for i in sorted(pick)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage2", type=Path, required=True)
    ap.add_argument("--hotpot-dev", type=Path, required=True)
    ap.add_argument("--wiki-dev", type=Path, required=True)
    ap.add_argument("--musique", type=Path, required=True)
    ap.add_argument("--n-train", type=int, default=400)
    ap.add_argument("--n-dev", type=int, default=100)
    ap.add_argument("--n-musique", type=int, default=300)
    args = ap.parse_args()

    stage2 = [r for r in _rows(args.stage2) if _usable(r)]
    wiki = [(f"2wiki-train-r1s{r['idx']}", r) for r in stage2 if is_2wiki(r["question"])]
    hotpot = [(f"hotpotqa-train-r1s{r['idx']}", r) for r in stage2 if not is_2wiki(r["question"])]
    print(f"stage_2: {len(stage2)} usable rows, {len(hotpot)} HotpotQA, {len(wiki)} 2Wiki (by template)")
    _write(OUT / "hotpotqa" / "train.jsonl", _draw(hotpot, args.n_train, SEED))
    _write(OUT / "2wiki" / "train.jsonl", _draw(wiki, args.n_train, SEED))
    for name, path in (("hotpotqa", args.hotpot_dev), ("2wiki", args.wiki_dev)):
        dev = [(f"{name}-dev-r1s{r['idx']}", r) for r in _rows(path) if _usable(r)]
        _write(OUT / name / "dev.jsonl", _draw(dev, args.n_dev, SEED))

    mpath = OUT / "musique" / "train.jsonl"
    kept = [json.loads(line) for line in mpath.read_text(encoding="utf-8").splitlines() if line.strip()][:30]
    taken = {r["id"] for r in kept}
    musique = [(f"musique-train-{i}", r) for i, r in enumerate(_rows(args.musique))
               if _usable(r) and f"musique-train-{i}" not in taken]
    _write(mpath, kept + _draw(musique, args.n_musique - len(kept), SEED))
    return 0


if __name__ == "__main__":
    sys.exit(main())
