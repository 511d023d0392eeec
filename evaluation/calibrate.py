"""Label a pool's models for the per-hop quality estimate (router_core/quality.py): `app.py calibrate`.

Each question of a public *training* split is put to each model of the pool once, exactly as the router's
sub-questions are (Router.call_candidate: the candidate template, its token limits, temperature 0), and the reply is
scored against the gold answers: correct when a gold answer's words occur in it (metrics.found_in; a candidate
answers a hop in a sentence, which exact match would always fail). One line per (question, model) is appended and
flushed, so an interrupted run resumes where it stopped; a failed call is not written (the next run asks again).
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from router_core.loop import Router
from router_core.metrics import f1_score, found_in
from router_core.policy import Policy, RunConfig
from router_core.pool import Pool
from router_core.quality import CalibrationError, Label, QualityEstimator, append_label, labels_path, read_labels
from router_core.step import Step

from .datasets import Item

log = logging.getLogger(__name__)


@dataclass
class CalibrationSummary:
    path: Path
    asked: int = 0            # calls made this run
    skipped: int = 0          # (question, model) pairs already labelled
    failed: list[str] = field(default_factory=list)   # "<id> <model>: <error>" for calls that failed
    answer_in_question: list[str] = field(default_factory=list)  # ids left out: a gold answer is in the question
    seconds: float = 0.0
    correct: dict[str, list[float]] = field(default_factory=dict)  # per model, this file's labels

    def rates(self) -> dict[str, tuple[float, int]]:
        return {m: (sum(v) / len(v), len(v)) for m, v in self.correct.items() if v}


def answer_in_question(it: Item) -> bool:
    return any(found_in(g, [it.question]) for g in it.golds)


def template_digest(router: Router) -> str:
    return hashlib.sha256(router.candidate_template.encode("utf-8")).hexdigest()[:12]


def calibrate(policy: Policy, pool: Pool, items: Sequence[Item], out: str | Path, *, engines=None,
              dataset: str = "", progress: Callable[[int, int, str], None] | None = None,
              stop: threading.Event | None = None) -> CalibrationSummary:
    """Ask every model of `pool` every question not yet labelled in `out`; `progress(done, total, what)` after each
    call. A file written for another pool is refused (CalibrationError), never mixed."""
    router = Router(policy, pool, engines=engines)
    out = Path(out)
    header = {"pool": pool.name, "models": pool.names, "dataset": dataset,
              "scoring": "a gold answer's words occur in the reply (router_core.metrics.found_in)",
              "candidate_template": template_digest(router),
              "candidate_max_tokens": router.config.candidate_max_tokens,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    done: set[tuple[str, str]] = set()
    summary = CalibrationSummary(out)
    if out.exists() and out.stat().st_size:
        have = read_labels(out)
        if have.header.get("pool") != pool.name:
            raise CalibrationError(f"{out}: labels of pool '{have.header.get('pool')}', not '{pool.name}' "
                                   "(give another --out)")
        done = have.done()
        for x in have.items:
            summary.correct.setdefault(x.model, []).append(x.correct)
    # a question that holds its own answer ("Who was the dog in Marley and Me?" → Marley) says nothing of a model:
    # a reply that repeats the question would count as right
    summary.answer_in_question = [it.id for it in items if answer_in_question(it)]
    left_out = set(summary.answer_in_question)
    items = [it for it in items if it.id not in left_out]
    todo = [(it, spec) for it in items for spec in pool.models if (it.id, spec.name) not in done]
    summary.skipped = len(items) * len(pool.models) - len(todo)
    t0 = time.perf_counter()
    for n, (it, spec) in enumerate(todo, 1):
        if stop is not None and stop.is_set():
            break
        step = Step("calibration", 0, "route", query=it.question, request_model=spec.name)
        reply = router.call_candidate(step, spec, it.question)
        summary.asked += 1
        if step.status == "error":
            summary.failed.append(f"{it.id} {spec.name}: {step.error}")
        else:
            ok = float(any(found_in(g, [reply]) for g in it.golds))
            append_label(out, header, Label(it.id, it.question, spec.name, ok, reply, f1_score(reply, it.golds)))
            summary.correct.setdefault(spec.name, []).append(ok)
        if progress:
            progress(n, len(todo), f"{spec.name} · {it.id}")
    summary.seconds = time.perf_counter() - t0
    return summary


_ESTIMATORS: dict[tuple[str, float], QualityEstimator] = {}
_LOCK = threading.Lock()


def estimator_for(pool: Pool, folder: Path | None = None) -> QualityEstimator | None:
    """The quality estimator of a pool from its labels file (router_core.quality.labels_path), with the shipped
    MiniLM as the embedder; one per file version per process (its questions are embedded on first use, and the
    vectors kept in the cache folder, so once per machine for each labels file).
    None when the pool has no labels: its choices then run without the quality term and say so."""
    from evaluation.embed import get_embedder
    from router_core.engines.weights import cache_dir
    p = labels_path(pool.name, folder)
    if not p.is_file():
        return None
    key = (str(p), p.stat().st_mtime)
    with _LOCK:
        if key not in _ESTIMATORS:
            emb = get_embedder()
            digest = hashlib.sha256(p.read_bytes() + emb.model.encode()).hexdigest()[:16]
            vectors = cache_dir().parent / "quality" / f"{p.stem}-{digest}.npy"  # embedded once per machine
            _ESTIMATORS[key] = QualityEstimator(read_labels(p), emb.encode, source=str(p), vectors=vectors)
        return _ESTIMATORS[key]


def quality_for(policy: Policy, config: RunConfig, pool: Pool) -> QualityEstimator | None:
    """What a Router of this policy and run gets: the pool's estimator when the run's `quality` setting is on (a
    guided policy), else None."""
    if not (config.quality and policy.mode == "guided"):
        return None
    est = estimator_for(pool)
    if est is None:
        log.warning("pool %s has no calibration labels (%s): its choices run without the quality term; label it with "
                    "`python app.py calibrate --pool FILE --dataset FILE`", pool.name, labels_path(pool.name))
    return est
