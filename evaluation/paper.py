"""Router-R1's published figures, to set beside ours: Table 1 of the paper (exact match on each benchmark's test
split), for the Router-R1 policy trained on Qwen2.5-3B and for the paper's "Largest LLM" baseline.

They are the paper's numbers with the paper's pool (hosted models up to 70B+ parameters, each asked with
retrieval-free prompts), not a run of ours: a report shows them marked as such, beside the dataset they name, so a
reader can see how far a small local pool is from them — never as a score to compare one-to-one. Which of our
datasets is which benchmark is read from its name (a file stem such as `musique_dev_50`, or a data-folder name such as `musique/train`).
"""
from __future__ import annotations

import re

SOURCE = "Router-R1 (Zhang et al., 2025), Table 1: EM on each test split, with the paper's pool of hosted LLMs"
BENCHMARKS: tuple[str, ...] = ("nq", "triviaqa", "popqa", "hotpotqa", "2wiki", "musique", "bamboogle")
BENCHMARK_NAMES = {"nq": "NQ", "triviaqa": "TriviaQA", "popqa": "PopQA", "hotpotqa": "HotpotQA", "2wiki": "2Wiki",
                   "musique": "MuSiQue", "bamboogle": "Bamboogle"}
TABLE1: dict[str, dict[str, float]] = {
    "Router-R1-Qwen (paper)": dict(zip(BENCHMARKS, (0.388, 0.706, 0.384, 0.352, 0.434, 0.138, 0.512))),
    "Largest LLM (paper)": dict(zip(BENCHMARKS, (0.296, 0.578, 0.354, 0.278, 0.274, 0.104, 0.480))),
}
_PATTERNS = (("2wiki", r"2\s*wiki"), ("hotpotqa", r"hotpot"), ("musique", r"musique"), ("bamboogle", r"bamboogle"),
             ("popqa", r"popqa"), ("triviaqa", r"trivia"), ("nq", r"(?:^|[^a-z])nq(?:[^a-z]|$)|natural\s*questions"))


def benchmark_of(dataset: str | None) -> str | None:
    """The paper's benchmark a dataset name stands for (`musique/train`, `musique_dev_50` → musique), or None."""
    name = (dataset or "").lower().replace("-", "_")
    for key, pattern in _PATTERNS:
        if re.search(pattern, name):
            return key
    return None


def paper_row(dataset: str | None) -> dict[str, float]:
    """The paper's figures for the benchmark a dataset names ({} when it names none of the seven)."""
    key = benchmark_of(dataset)
    return {method: figures[key] for method, figures in TABLE1.items()} if key else {}
