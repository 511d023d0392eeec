"""The evaluation runner: items × methods × α → stored sessions tagged with one run id.

Every (dataset, item, method, α) becomes one stored session, written step by step like a live
one, so the explorer and replay work on eval results unchanged. A run id is derived from the
question file's content, the policy and the pool, so re-running the same command resumes: keys
already stored as `done` under that run id are skipped. Ctrl-C stops the sessions in flight at a
step boundary (stored as `stopped`) and leaves everything finished in place.

Order: single-round calls first (one per candidate per item: cheap, and they are the outcomes
the kNN router learns from), then the derived baselines (largest / cheapest / random / kNN pick
one of those outcomes — same model, same prompt, temperature 0 — and are stored as their own
sessions that name the source), then the router's multi-round rollouts, optionally several at
once (`batch`), which advance together through the engines.
"""
from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Sequence

from evaluation.calibrate import quality_for
from evaluation.datasets import Item
from evaluation.single_round import cheapest, largest, run_single
from router_core.choice import parse_alphas as choice_alphas
from router_core.engines import Engine, EngineSpec, get_engine, recomputed_sessions
from router_core.engines.batching import batched
from router_core.loop import Router
from router_core.policy import Policy, recorded_settings
from router_core.pool import Pool
from router_core.session import SessionResult
from router_core.step import Step
from storage import SessionFilter, TraceStore
from storage.recorder import recorded

from .methods import BASELINES, Method

KNN_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)  # target shares of strong-model calls for the kNN sweep
KNN_K = 10


class EvalError(ValueError):
    """A run that cannot start: a bad method list, α or dataset; the message names it."""


@dataclass(frozen=True)
class Task:
    item: Item
    method: Method
    alpha: float

    @property
    def key(self) -> tuple[str, str, str, float]:
        return (self.item.dataset, self.item.id, self.method.label, round(self.alpha, 6))


@dataclass
class RunSummary:
    run_id: str
    planned: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    stopped: int = 0
    unavailable: int = 0
    seconds: float = 0.0
    # router sessions an engine computed again after another session displaced their cache and its parked copy was
    # dropped (router_core/engines/llamacpp.py): 0 means every session computed what it would alone
    recomputed: int = 0
    session_ids: list[str] = field(default_factory=list)


def parse_alphas(text: str) -> list[float]:
    """--alpha for eval: the distinct values, ascending."""
    try:
        return sorted(set(choice_alphas(text, "--alpha")))
    except ValueError as e:
        raise EvalError(str(e)) from None


def parse_baselines(text: str, pool: Pool) -> list[str]:
    """'all' | 'none' | a comma list of only, only:<Model>, largest, cheapest, random, knn."""
    t = (text or "none").strip()
    if t == "none":
        return []
    parts = list(BASELINES) if t == "all" else [p.strip() for p in t.split(",") if p.strip()]
    out: list[str] = []
    for p in parts:
        if p == "only":
            out += [f"only:{m}" for m in pool.names]
        elif p.startswith("only:"):
            name = p[5:]
            if name not in pool.names:
                raise EvalError(f"--baselines: '{p}' names no model of pool '{pool.name}' ({', '.join(pool.names)})")
            out.append(p)
        elif p in BASELINES:
            out.append(p)
        else:
            raise EvalError(f"--baselines: unknown baseline '{p}' (known: all, none, {', '.join(BASELINES)}, "
                            "only:<Model>)")
    if "knn" in out and len(pool.models) < 2:
        raise EvalError("--baselines: knn needs a pool with at least two models")
    return list(dict.fromkeys(out))


def default_run_id(items: Sequence[Item], policy: Policy, pool: Pool, overrides: dict | None = None) -> str:
    """Same questions, policy, pool and run settings → same id, so the same command resumes. The settings are
    the effective ones (the code's defaults included): after an upgrade that changes a default, the same command
    starts a new run instead of resuming one made with the old behaviour."""
    h = hashlib.sha256()
    h.update(json.dumps(overrides or {}, sort_keys=True).encode())
    cfg = asdict(policy.run_config(overrides))
    if not cfg.get("quality"):  # settings added with the quality term: a run without it keeps the id it had before
        for k in ("quality", "prior_weight", "quality_weight"):
            cfg.pop(k, None)
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    h.update(json.dumps([[i.dataset, i.id, i.question, i.golds] for i in items], ensure_ascii=False).encode())
    h.update(policy.model_dump_json().encode())
    h.update(json.dumps(pool.snapshot(), sort_keys=True).encode())
    return "eval-" + h.hexdigest()[:12]


class EvalRunner:
    """Runs the plan against one store; `engines` lets a bench wrap the engines it measures."""

    def __init__(self, store: TraceStore, policy: Policy, pool: Pool, *, run_id: str, alphas: Sequence[float],
                 baselines: Sequence[str], overrides: dict | None = None, batch: int = 1, seed: int = 0,
                 engines: Callable[[EngineSpec], Engine] | None = None,
                 embedder_factory: Callable[[], object] | None = None) -> None:
        if batch < 1:
            raise EvalError(f"--batch must be at least 1, got {batch}")
        self.store, self.policy, self.pool = store, policy, pool
        self.run_id, self.alphas, self.baselines = run_id, list(alphas), list(baselines)
        self.config = policy.run_config(overrides)
        self.batch, self.seed = batch, seed
        self.engines = engines or (lambda spec: get_engine(spec))
        if batch > 1:  # concurrent rollouts' generations go to the engine as one batch where it can
            self.engines = batched(self.engines, max_batch=batch)
        self.embedder_factory = embedder_factory
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._em: dict[str, float] = {}  # EM of finished sessions, filled by done_keys()

    # ------------------------------------------------------------------ planning

    def single_models(self) -> list[str]:
        """Candidates that need a real single-round call per item (for any requested baseline)."""
        need: list[str] = [b[5:] for b in self.baselines if b.startswith("only:")]
        if "largest" in self.baselines:
            need.append(largest(self.pool).name)
        if "cheapest" in self.baselines:
            need.append(cheapest(self.pool).name)
        if "random" in self.baselines:
            need += self.pool.names
        if "knn" in self.baselines:
            need += [largest(self.pool).name, cheapest(self.pool).name]
        return list(dict.fromkeys(need))

    def plan(self, items: Sequence[Item]) -> tuple[list[Task], list[Task], list[Task]]:
        single = [Task(it, Method.only(m), 0.0) for it in items for m in self.single_models()]
        derived: list[Task] = []
        for it in items:
            for b in self.baselines:
                if b in ("largest", "cheapest", "random"):
                    derived.append(Task(it, Method(b), 0.0))  # type: ignore[arg-type]
                elif b == "knn":
                    derived += [Task(it, Method.knn(int(s * 100)), 0.0) for s in KNN_SHARES]
        router = [Task(it, Method.router(self.policy.name), a) for a in self.alphas for it in items]
        return single, derived, router

    def done_keys(self) -> dict[tuple[str, str, str, float], str]:
        """(dataset, item, method, α) → session id of the finished sessions of this run."""
        out: dict[tuple[str, str, str, float], str] = {}
        for r in self.store.iter_sessions(SessionFilter(run_id=self.run_id, status="done")):
            sid, em = r["id"], r["em"]
            out[(r["dataset"], r["item_id"], r["policy"], round(float(r["alpha"]), 6))] = sid
            self._em[sid] = 0.0 if em is None or em != em else float(em)
        return out

    # ------------------------------------------------------------------ running

    def _record(self, task: Task, steps: Iterable[Step], sid: str) -> str:
        steps_seen = list(recorded(self.store, steps, session_id=sid, question=task.item.question,
                                     alpha=task.alpha, policy=task.method.label,
                                     engine=self.policy.engine if task.method.kind == "router" else "single-round",
                                     pool=self.pool.snapshot(), gold=task.item.golds, dataset=task.item.dataset,
                                     item_id=task.item.id, run_id=self.run_id,
                                     settings=recorded_settings(self.config) if task.method.kind == "router" else None))
        # the status the recorder stored, without reading it back
        return SessionResult.of(steps_seen, task.item.question, task.alpha).status

    def _run_single(self, task: Task) -> str:
        model = task.method.model or ""
        sid = uuid.uuid4().hex
        return self._record(task, run_single(task.item.question, self.pool.get(model), self.engines, session_id=sid),
                            sid)

    def _run_router(self, task: Task) -> str:
        router = Router(self.policy, self.pool, engines=self.engines, config=self.config,
                        quality=quality_for(self.policy, self.config, self.pool))
        sid = uuid.uuid4().hex
        return self._record(task, router.run(task.item.question, task.alpha, session_id=sid, stop_event=self.stop), sid)

    def _copy(self, task: Task, source_sid: str, decision: dict[str, float] | None, why: str) -> str:
        """A derived baseline: the source call's steps under a new session that names the source."""
        sid = uuid.uuid4().hex
        steps = []
        for s in self.store.load_steps(source_sid):
            d = s.to_dict()
            d.pop("latency_s", None)
            c = Step.from_dict(d)
            c.session_id = sid
            if c.kind == "route":
                c.decision = decision
                c.text = f"{why} → {c.request_model} (reused call of session {source_sid[:12]})"
                c.flags = c.flags + [f"reused:{source_sid}"]
            steps.append(c)
        return self._record(task, iter(steps), sid)

    def _derived(self, tasks: list[Task], done: dict, items: Sequence[Item]) -> Iterable[tuple[Task, Callable[[], str]]]:
        strong, weak = largest(self.pool).name, cheapest(self.pool).name
        scores: dict[tuple[str, str], float] = {}
        thresholds: dict[int, float] = {}
        if any(t.method.kind == "knn" for t in tasks):
            scores, thresholds = self._knn_scores(items, done, strong, weak)

        def src(task: Task, model: str) -> str | None:
            return done.get((task.item.dataset, task.item.id, Method.only(model).label, 0.0))

        for task in tasks:
            kind = task.method.kind
            if kind in ("largest", "cheapest"):
                model = strong if kind == "largest" else weak
                decision, why = None, f"{kind} model"
            elif kind == "random":
                rng = random.Random(f"{self.seed}:{task.item.dataset}:{task.item.id}")
                model = rng.choice(self.pool.names)
                decision, why = None, "random pick"
            else:  # kNN at a target share of strong calls
                share = task.method.share or 0
                score = scores.get((task.item.dataset, task.item.id))
                if score is None:
                    continue
                t = thresholds[share]
                model = strong if score >= t else weak
                decision, why = {"p_strong": score, "threshold": t}, f"kNN win-rate {score:.2f} vs threshold {t:.2f}"
            sid = src(task, model)
            if sid is None:  # its single-round call failed or was stopped; nothing to derive from
                continue
            yield task, (lambda task=task, sid=sid, decision=decision, why=why: self._copy(task, sid, decision, why))

    def _knn_scores(self, items: Sequence[Item], done: dict, strong: str, weak: str):
        """Leave-one-out kNN win-rates from this run's strong/weak outcomes (+ thresholds per share)."""
        from evaluation.knn_router import KnnRouter, thresholds_for_shares
        rows = []
        for it in items:
            s = done.get((it.dataset, it.id, Method.only(strong).label, 0.0))
            w = done.get((it.dataset, it.id, Method.only(weak).label, 0.0))
            if s and w:
                rows.append((it, self._em.get(s, 0.0), self._em.get(w, 0.0)))
        if not rows:
            return {}, {}
        knn = KnnRouter(k=KNN_K)
        knn.fit([it.question for it, _, _ in rows], [s for _, s, _ in rows], [w for _, _, w in rows],
                embedder=self._embedder())
        wr = knn.loo_scores()  # each item scored without its own outcome
        scores = {(it.dataset, it.id): float(x) for (it, _, _), x in zip(rows, wr)}
        ths = thresholds_for_shares(list(scores.values()), list(KNN_SHARES))
        return scores, {int(s * 100): float(t) for s, t in zip(KNN_SHARES, ths)}

    def _embedder(self):
        if self.embedder_factory is not None:
            return self.embedder_factory()
        from evaluation.embed import get_embedder
        return get_embedder()

    def run(self, items: Sequence[Item], progress: Callable[[str, int, int], None] | None = None) -> RunSummary:
        """Run everything not yet done; `progress(phase, done, total)` after each session."""
        summary = RunSummary(self.run_id)
        t0 = time.perf_counter()
        recomputed0 = recomputed_sessions()
        single, derived, router = self.plan(items)
        summary.planned = len(single) + len(derived) + len(router)
        done = self.done_keys()
        total = summary.planned
        finished = [0]
        # `total` shrinks when derived baselines turn out unavailable; tick() reads it late.

        def tick(phase: str, status: str | None) -> None:
            with self._lock:
                finished[0] += 1
                if status == "done":
                    summary.done += 1
                elif status == "stopped":
                    summary.stopped += 1
                elif status is not None:
                    summary.failed += 1
            if progress:
                progress(phase, finished[0], total)

        def phase(name: str, jobs: list[tuple[Task, Callable[[], str]]], workers: int = 1) -> None:
            todo = []
            for task, job in jobs:
                if task.key in done:
                    summary.skipped += 1
                    tick(name, None)
                else:
                    todo.append((task, job))
            if workers == 1:
                for task, job in todo:
                    if self.stop.is_set():
                        return
                    status = job()
                    if status == "done":
                        done[task.key] = "this-run"
                    tick(name, status)
                return
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rollout") as pool:
                futures = [(task, pool.submit(lambda job=job: None if self.stop.is_set() else job()))
                           for task, job in todo]
                try:
                    for task, fut in futures:
                        status = fut.result()
                        if status is None:
                            continue
                        if status == "done":
                            done[task.key] = "this-run"
                        tick(name, status)
                except BaseException:
                    self.stop.set()  # rollouts in flight end at their next step, stored as `stopped`
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise

        try:
            phase("single-round", [(t, (lambda t=t: self._run_single(t))) for t in single])
            done = self.done_keys()  # derived baselines read their sources' session ids
            jobs = list(self._derived(derived, done, items))
            summary.unavailable = len(derived) - len(jobs)  # their single-round source failed
            total -= summary.unavailable
            phase("baselines", jobs)
            phase("router", [(t, (lambda t=t: self._run_router(t))) for t in router], workers=self.batch)
        except KeyboardInterrupt:
            self.stop.set()
            raise
        finally:
            summary.seconds = time.perf_counter() - t0
            summary.recomputed = recomputed_sessions() - recomputed0
        return summary
