"""Writes a running session to the store as its steps arrive, and closes it with a status.

The loop knows nothing of storage; this wraps its Step iterator: each Step is committed
before it is passed on to the terminal or the page, so a process killed after k steps
leaves exactly k steps behind (and the session is marked `interrupted` on next open).
"""
from __future__ import annotations

from typing import Iterable, Iterator, Sequence

from router_core.cost import CostNormalizer
from router_core.failures import failure_kind
from router_core.session import SessionResult
from router_core.step import Step

from . import otlp
from .store import TraceStore


def recorded(store: TraceStore, steps: Iterable[Step], *, session_id: str, question: str, alpha: float,
             policy: str, engine: str, pool: dict, gold: Sequence[str] = (), dataset: str | None = None,
             item_id: str | None = None, run_id: str | None = None,
             normalizer: CostNormalizer | None = None, settings: dict | None = None) -> Iterator[Step]:
    """Yield the loop's steps unchanged, committing each first; finish the session at the end.

    The session's status, answer, EM/F1 and reward come from `SessionResult`; a listener that
    goes away (Stop, a closed page, Ctrl-C) leaves the session `stopped`, an exception `error`.
    """
    store.start_session(session_id=session_id, question=question, alpha=alpha, policy=policy, engine=engine,
                        pool=pool, gold=gold, dataset=dataset, item_id=item_id, run_id=run_id, settings=settings)
    tracer = otlp.current()
    if tracer is not None:  # --otlp: the same steps also go out as one trace, span by span
        steps = tracer.session(steps, {"session_id": session_id, "question": question, "alpha": alpha,
                                       "policy": policy, "pool": pool, "gold": list(gold), "dataset": dataset,
                                       "run_id": run_id})
    seen: list[Step] = []
    status: str | None = None
    try:
        for step in steps:
            if step.session_id != session_id:
                raise ValueError(f"step of session {step.session_id} given to recorder of {session_id}")
            store.append_step(step)
            seen.append(step)
            yield step
        status = SessionResult.of(seen, question, alpha, gold).status
    except (GeneratorExit, KeyboardInterrupt):
        status = "stopped"
        raise
    except BaseException:
        status = "error"
        raise
    finally:
        res = SessionResult.of(seen, question, alpha, gold)
        status = status or "error"
        err = None
        if status in ("error", "stopped"):
            err = next((s.error for s in reversed(seen) if s.error), None)
            if status == "stopped" and err is None:
                err = "stopped before the session finished"
        store.finish(session_id, status=status, answer=res.answer, em=res.em, f1=res.f1,
                     reward=res.reward(normalizer=normalizer), format_ok=res.format_ok, error=err,
                     failure=failure_kind(seen, question, gold))
