"""Collect: a teacher policy over public train questions at several α, stored as eval runs (resumable).

Two stored runs per collection, both ordinary eval runs the Explorer and Evaluations tab show:
- the **screen** (optional, on by default): the pool's largest model asked each question once, directly (a
  single-round baseline session, ~2 s). Public train questions are mostly about things this pool has never heard
  of (the default router scored EM 0 on its first 19 2WikiMultiHopQA train questions), so running the ~20 s teacher
  on all of them would spend hours to keep a handful. A question the largest model answers right whole is one whose
  facts are within the pool's knowledge; the teacher then runs on those. The trained router therefore learns on
  questions its pool can answer, a selection stated in its training card.
- the **teacher** run: the teacher policy at each α over the screened questions, with greedy calls repeated across
  α replayed from memory (router_core/engines/memo.py: the sessions stored are the ones an unreplayed run stores).

Run ids are derived from the questions, the teacher and the pool (as `app.py eval` derives them), so the same
command resumes where it stopped; `--run-id` names them instead.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Sequence

from evaluation.datasets import Item
from evaluation.methods import Method
from evaluation.runner import EvalRunner, RunSummary, default_run_id
from evaluation.single_round import largest
from router_core.engines import get_engine
from router_core.engines.memo import memoized
from router_core.policy import Policy
from router_core.pool import Pool
from storage import SessionFilter, TraceStore

Progress = Callable[[str, int, int], None]


class CollectError(ValueError):
    """A collection that cannot start (no gold answers, a test split, no α); the message names it."""


@dataclass
class CollectSummary:
    screen_run: str | None
    teacher_run: str
    questions: int
    screened_in: int
    screen: RunSummary | None = None
    teacher: RunSummary | None = None
    calls_computed: int = 0
    calls_replayed: int = 0
    screened_out: list[str] = field(default_factory=list)


def check_items(items: Sequence[Item], names: Sequence[str]) -> None:
    """Train only on questions with gold answers, from train or dev splits (test splits are for reporting)."""
    for n in names:
        low = n.rstrip("/").lower()
        if low.endswith("/test") or low.split("/")[-1].startswith("test") or "_test" in low:
            raise CollectError(f"--dataset: '{n}' looks like a test split; collect on train (or dev) splits only "
                               "(test splits are for reporting)")
    if not items:
        raise CollectError("--dataset: no question to collect on")
    for it in items:
        if not it.golds or not any(g.strip() for g in it.golds):
            raise CollectError(f"{it.dataset} item {it.id}: no gold answer; Router-R1's reward needs one to score a "
                               "trajectory")


def screen_run_id(items: Sequence[Item], pool: Pool) -> str:
    h = hashlib.sha256(json.dumps([[i.dataset, i.id, i.question, i.golds] for i in items],
                                  ensure_ascii=False).encode())
    h.update(json.dumps(pool.snapshot(), sort_keys=True).encode())
    return "screen-" + h.hexdigest()[:12]


def collect(store: TraceStore, teacher: Policy, pool: Pool, items: Sequence[Item], alphas: Sequence[float], *,
            screen: bool = True, overrides: dict | None = None, run_id: str | None = None,
            progress: Progress | None = None, engines=None) -> CollectSummary:
    """Screen (optionally), then run the teacher at each α over the questions kept; everything stored as it goes."""
    if not alphas:
        raise CollectError("--alpha: give at least one α")
    engines = engines or memoized(get_engine)
    kept = list(items)
    screen_summary = None
    sid = None
    if screen:
        strong = largest(pool).name
        sid = screen_run_id(items, pool)
        runner = EvalRunner(store, teacher, pool, run_id=sid, alphas=[], baselines=[f"only:{strong}"],
                            engines=engines)
        screen_summary = runner.run(items, (lambda ph, d, t: progress(f"screen ({strong} asked once)", d, t))
                                    if progress else None)
        label = Method.only(strong).label
        right = {(r["dataset"], r["item_id"]) for r in store.iter_sessions(SessionFilter(run_id=sid, status="done"))
                 if r["policy"] == label and r["em"] == 1}
        kept = [it for it in items if (it.dataset, it.id) in right]
    out = CollectSummary(screen_run=sid, teacher_run="", questions=len(items), screened_in=len(kept),
                         screen=screen_summary,
                         screened_out=[it.id for it in items if it not in kept] if screen else [])
    if not kept:
        out.teacher_run = run_id or ""
        return out
    tid = run_id or default_run_id(kept, teacher, pool, overrides).replace("eval-", "collect-", 1)
    out.teacher_run = tid
    runner = EvalRunner(store, teacher, pool, run_id=tid, alphas=list(alphas), baselines=[], overrides=overrides,
                        engines=engines)
    out.teacher = runner.run(kept, (lambda ph, d, t: progress(f"teacher at α {','.join(f'{a:g}' for a in alphas)}",
                                                              d, t)) if progress else None)
    memo = list(getattr(engines, "engines", {}).values())
    out.calls_computed = sum(getattr(e, "misses", 0) for e in memo)
    out.calls_replayed = sum(getattr(e, "hits", 0) for e in memo)
    return out
