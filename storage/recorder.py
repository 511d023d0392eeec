"""Writes a running session to the store as its steps arrive, and closes it with a status.

The loop knows nothing of storage; this wraps its Step iterator: each Step is committed
before it is passed on to the terminal or the page, so a process killed after k steps
leaves exactly k steps behind (and the session is marked `interrupted` on next open).
"""
from __future__ import annotations

from typing import Iterable, Iterator, Sequence

from router_core.cost import CostNormalizer, router_r1_reward
from router_core.loop import collect
from router_core.metrics import exact_match, f1_score
from router_core.step import Step

from .store import TraceStore


def session_status(steps: Sequence[Step]) -> str:
    if not steps:
        return "error"
    last = steps[-1]
    if last.status == "stopped":
        return "stopped"
    if last.kind == "answer":
        return "done"
    if last.kind == "error" and last.status == "error":
        return "error"
    return "done"  # a flagged outcome (e.g. no answer) is a finished session with a format error


def recorded(store: TraceStore, steps: Iterable[Step], *, session_id: str, question: str, alpha: float,
             policy: str, engine: str, pool: dict, gold: Sequence[str] = (), dataset: str | None = None,
             item_id: str | None = None, run_id: str | None = None,
             normalizer: CostNormalizer | None = None) -> Iterator[Step]:
    """Yield the loop's steps unchanged, committing each first; finish the session at the end."""
    store.start_session(session_id=session_id, question=question, alpha=alpha, policy=policy, engine=engine,
                        pool=pool, gold=gold, dataset=dataset, item_id=item_id, run_id=run_id)
    seen: list[Step] = []
    status: str | None = None
    try:
        for step in steps:
            if step.session_id != session_id:
                raise ValueError(f"step of session {step.session_id} given to recorder of {session_id}")
            store.append_step(step)
            seen.append(step)
            yield step
        status = session_status(seen)
    except (GeneratorExit, KeyboardInterrupt):
        status = "stopped"  # the listener went away (Stop button, closed page, Ctrl-C)
        raise
    except BaseException:
        status = "error"
        raise
    finally:
        res = collect(seen, question, alpha, gold)
        em = exact_match(res.answer, gold) if gold else None
        f1 = f1_score(res.answer, gold) if gold else None
        reward = router_r1_reward(res.answer, gold, res.format_ok, res.cost_usd, alpha, normalizer) if gold else None
        err = next((s.error for s in reversed(seen) if s.error), None) if status in ("error", "stopped") else None
        if status == "stopped" and err is None:
            err = "stopped before the session finished"
        store.finish(session_id, status=status or "error", answer=res.answer, em=em, f1=f1, reward=reward,
                     format_ok=res.format_ok, error=err)
