"""What the running app holds between requests: policies, editable pools, the store, the engine lock.

Gradio-free, so handlers stay thin and the state can be tested on its own. Engines are shared by
every browser (they are cached by `get_engine`), and llama.cpp is not re-entrant, so rollouts take
`engine_lock` — the page's run event also has a concurrency limit of one, and the queue orders
visitors. Pools can be edited while the app runs; a run picks up the pool as it is when it starts.
"""
from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from router_core.loop import EngineProvider, Router
from router_core.policy import Policy, PolicyBook
from router_core.pool import ModelSpec, Pool, PoolError, load_pool
from router_core.paths import POOLS as POOLS_DIR, QUESTIONS
from router_core.step import Step
from storage import TraceStore
from storage.recorder import recorded



@dataclass
class Event:
    """One item from a running session: a finished Step, a streamed text piece, or the end."""

    kind: str                      # "step" | "text" | "progress" | "end"
    step: Step | None = None
    index: int = -1
    text_kind: str = ""
    text: str = ""


@dataclass
class Studio:
    store: TraceStore
    policies: PolicyBook
    pools: dict[str, Pool]
    default_pool: str
    overrides: dict[str, Any] | None = None
    echo: bool = False             # also print engine progress to the terminal (python app.py)
    engines: EngineProvider | None = None  # how engines are obtained (default: the shared cache)
    engine_lock: threading.Lock = field(default_factory=threading.Lock)
    progress_log: list[str] = field(default_factory=list)
    _stops: dict[str, threading.Event] = field(default_factory=dict)
    _pool_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_files(cls, store: TraceStore, policies: PolicyBook, pool_path: str | None,
                   overrides: dict[str, Any] | None = None) -> "Studio":
        """The chosen pool plus every pool shipped under assets/pools (by name)."""
        pools: dict[str, Pool] = {}
        for p in sorted(POOLS_DIR.glob("*.yaml")):
            try:
                pool = load_pool(p)
            except PoolError:
                continue
            pools.setdefault(pool.name, pool)
        chosen = load_pool(pool_path)
        pools[chosen.name] = chosen
        return cls(store=store, policies=policies, pools=pools, default_pool=chosen.name, overrides=overrides)

    # ------------------------------------------------------------------ policies and pools

    @property
    def policy_names(self) -> list[str]:
        return [p.name for p in self.policies.policies]

    def policy(self, name: str | None) -> Policy:
        return self.policies.get(name)

    def pool(self, name: str | None) -> Pool:
        name = name or self.default_pool
        with self._pool_lock:
            if name not in self.pools:
                raise PoolError(f"no pool named '{name}'; known: {', '.join(self.pools)}")
            return self.pools[name]

    def put_model(self, pool_name: str, fields: dict[str, Any]) -> ModelSpec:
        """Add or replace a model in a pool (validated); the next session uses it."""
        clean = {k: v for k, v in fields.items() if v not in (None, "")}
        spec = ModelSpec.model_validate(clean)
        with self._pool_lock:
            self.pools[pool_name] = self.pools[pool_name].with_model(spec)
        return spec

    def remove_model(self, pool_name: str, name: str) -> None:
        with self._pool_lock:
            pool = self.pools[pool_name]
            rest = [m for m in pool.models if m.name != name]
            if len(rest) == len(pool.models):
                raise PoolError(f"pool '{pool_name}' has no model '{name}'")
            if not rest:
                raise PoolError(f"pool '{pool_name}' needs at least one model")
            self.pools[pool_name] = pool.model_copy(update={"models": rest})

    def router(self, policy: str | None, pool: str | None) -> Router:
        pol = self.policy(policy)
        return Router(pol, self.pool(pool), engines=self.engines, config=pol.run_config(self.overrides),
                      progress=self.note)

    def note(self, message: str) -> None:
        if self.echo:
            print(f"· {message}", flush=True)
        self.progress_log.append(f"{time.strftime('%H:%M:%S')} {message}")
        del self.progress_log[:-50]

    # ------------------------------------------------------------------ running sessions

    def stop(self, key: str) -> bool:
        ev = self._stops.get(key)
        if ev is None:
            return False
        ev.set()
        return True

    def events(self, key: str, question: str, alpha: float, *, policy: str | None = None, pool: str | None = None,
               gold: list[str] | None = None, session_id: str | None = None) -> Iterator[Event]:
        """Run one stored session in a worker thread and yield its steps and streamed text.

        The worker owns the rollout (so a slow engine call never blocks the page's event loop);
        closing this iterator — Stop, a closed tab — sets the stop flag, and the session ends as
        `stopped` at the next step boundary, with every finished step already committed.
        """
        router = self.router(policy, pool)
        sid = session_id or uuid.uuid4().hex
        stop = threading.Event()
        self._stops[key] = stop
        q: queue.Queue[Event] = queue.Queue()

        def on_text(idx: int, kind: str, piece: str) -> None:
            q.put(Event("text", index=idx, text_kind=kind, text=piece))

        def work() -> None:
            try:
                with self.engine_lock:
                    if stop.is_set():
                        return
                    stream = recorded(self.store, router.run(question, alpha, session_id=sid, stop_event=stop,
                                                             on_text=on_text),
                                      session_id=sid, question=question, alpha=alpha, policy=router.policy.name,
                                      engine=router.policy.engine, pool=router.pool.snapshot(), gold=gold or [])
                    for step in stream:
                        q.put(Event("step", step=step))
            except Exception as e:  # noqa: BLE001 — shown in the page; the recorder stored the status
                q.put(Event("end", text=f"{type(e).__name__}: {e}"))
                return
            q.put(Event("end"))

        worker = threading.Thread(target=work, name=f"session-{sid[:8]}", daemon=True)
        worker.start()
        try:
            yield Event("progress", text=sid)
            while True:
                try:
                    ev = q.get(timeout=0.5)
                except queue.Empty:
                    if not worker.is_alive() and q.empty():
                        return
                    continue
                if ev.kind == "end":
                    if ev.text:
                        yield ev
                    return
                yield ev
        finally:
            stop.set()
            worker.join(timeout=120)
            if self._stops.get(key) is stop:
                del self._stops[key]

    def warm_up(self, policy: str | None = None, pool: str | None = None) -> threading.Thread:
        """Load the default router policy in the background so the first Run is quick."""
        def work() -> None:
            with self.engine_lock:
                try:
                    self.note("loading the router policy (first start joins and checks the model files)")
                    self.router(policy, pool).policy_engine()
                    self.note("router policy ready")
                except Exception as e:  # noqa: BLE001 — reported in the page; a run will say it again
                    self.note(f"router policy failed to load: {e}")
        t = threading.Thread(target=work, name="warm-up", daemon=True)
        t.start()
        return t


def example_questions(limit: int = 4) -> list[list[str]]:
    """[question, gold] pairs for the page's examples: single-hop first, then multi-hop."""
    from evaluation.datasets import DatasetError, load_dataset
    out: list[list[str]] = []
    for name in ("single_hop.jsonl", "multi_hop.jsonl"):
        path: Path = QUESTIONS / name
        try:
            items = load_dataset(path, limit=limit)
        except (DatasetError, OSError):
            continue
        out.extend([it.question, it.golds[0]] for it in items)
    return out
