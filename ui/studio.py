"""What the running app holds between requests: policies, editable pools, the store, the admission.

Gradio-free, so handlers stay thin and the state can be tested on its own. Engines are shared by
every browser (they are cached by `get_engine`). Every session, from the page or the API, takes a place
in `admission` (ui/admission.py): sessions on in-process engines (llama.cpp is not re-entrant) run one at
a time, sessions whose policy and candidates are all servers run several at once, and a freed place goes
to the waiting visitor with the fewest sessions running. Pools can be edited while the app runs; a run
picks up the pool as it is when it starts.
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
from router_core.paths import POOLS as POOLS_DIR
from router_core.paths import QUESTIONS
from router_core.policy import Policy, PolicyBook
from router_core.pool import ModelSpec, Pool, PoolError, load_pool
from router_core.step import Step
from storage import TraceStore
from storage.recorder import recorded

from .admission import Admission, Busy, Lane, Place


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
    admission: Admission = field(default_factory=Admission)
    # Visitors may edit models only when the operator allows it (--allow-model-edits, which needs
    # --auth); an edit lives in that visitor's session and may name only allowed keys and endpoints.
    allow_model_edits: bool = False
    allow_key_envs: tuple[str, ...] = ()
    allow_endpoints: tuple[str, ...] = ()
    exposed_without_auth: bool = False  # served beyond loopback with no login: the page says so
    progress_log: list[str] = field(default_factory=list)
    pool_files: dict[str, str] = field(default_factory=dict)  # assets/pools file stem → pool name
    _stops: dict[str, threading.Event] = field(default_factory=dict)
    _pool_lock: threading.Lock = field(default_factory=threading.Lock)
    # policies made while the app runs (a training run's student, and the same base before training)
    extra_policies: dict[str, Policy] = field(default_factory=dict)

    @classmethod
    def from_files(cls, store: TraceStore, policies: PolicyBook, pool_path: str | None,
                   overrides: dict[str, Any] | None = None) -> "Studio":
        """The chosen pool plus every pool shipped under assets/pools (by name)."""
        pools: dict[str, Pool] = {}
        files: dict[str, str] = {}
        for p in sorted(POOLS_DIR.glob("*.yaml")):
            try:
                pool = load_pool(p)
            except PoolError:
                continue
            if pools.setdefault(pool.name, pool) is pool:
                files[p.stem] = pool.name
        chosen = load_pool(pool_path)
        pools[chosen.name] = chosen
        return cls(store=store, policies=policies, pools=pools, default_pool=chosen.name, overrides=overrides,
                   pool_files=files)

    # ------------------------------------------------------------------ policies and pools

    @property
    def policy_names(self) -> list[str]:
        return [p.name for p in self.policies.policies]

    def policy(self, name: str | None) -> Policy:
        if name and name in self.extra_policies:
            return self.extra_policies[name]
        return self.policies.get(name)

    def add_policy(self, policy: Policy) -> str:
        """A policy not in the presets file (the Training tab's before/after), runnable by name from now on."""
        self.extra_policies[policy.name] = policy
        return policy.name

    def pool(self, name: str | None) -> Pool:
        name = name or self.default_pool
        with self._pool_lock:
            if name not in self.pools:
                raise PoolError(f"no pool named '{name}'; known: {', '.join(self.pools)}")
            return self.pools[name]

    # ------------------------------------------------------------------ model edits (per visitor)

    def allowed(self) -> tuple[set[str], list[str]]:
        """Key variables and endpoint prefixes a visitor's model may name: the operator's allow-lists
        plus what the pools loaded at start already use."""
        keys = set(self.allow_key_envs)
        endpoints = list(self.allow_endpoints)
        for pool in self.pools.values():
            for m in pool.models:
                if m.api_key_env:
                    keys.add(m.api_key_env)
                if m.base_url:
                    endpoints.append(m.base_url)
        return keys, endpoints

    def check_edit(self, spec: ModelSpec) -> None:
        """Refuse a visitor's model that would send a key or a request where the operator did not allow."""
        if not self.allow_model_edits:
            raise PoolError("model edits are off on this server (the operator can start it with "
                            "--allow-model-edits and --auth)")
        keys, endpoints = self.allowed()
        if spec.api_key_env and spec.api_key_env not in keys:
            raise PoolError(f"api_key_env: '{spec.api_key_env}' is not one of the key variables this server allows "
                            f"({', '.join(sorted(keys)) or 'none'}; the operator adds one with --allow-key-env NAME)")
        if spec.base_url and not any(_under(spec.base_url, e) for e in endpoints):
            raise PoolError(f"base_url: {spec.base_url} is not under an endpoint this server allows "
                            "(the operator adds one with --allow-endpoint URL)")
        if spec.engine != "openai" and not spec.model.startswith("shipped:") and \
                spec.model not in {m.model for pool in self.pools.values() for m in pool.models}:
            raise PoolError(f"model: a visitor may load only shipped models or models of the loaded pools, "
                            f"not '{spec.model}'")

    def apply_edits(self, pool_name: str | None, edits: list[dict[str, Any]] | None) -> Pool:
        """The named pool with one visitor's edits applied, each validated again now (the edits come
        from the visitor's session, so they are checked on every use, not only when saved)."""
        pool = self.pool(pool_name)
        for e in edits or []:
            if e.get("pool") != pool.name:
                continue
            if e.get("action") == "remove":
                rest = [m for m in pool.models if m.name != e.get("name")]
                if rest:
                    pool = pool.model_copy(update={"models": rest})
                continue
            spec = ModelSpec.model_validate(e.get("spec") or {})
            self.check_edit(spec)
            pool = pool.with_model(spec)
        return pool

    def edit_model(self, edits: list[dict[str, Any]], pool_name: str, fields: dict[str, Any]
                   ) -> tuple[list[dict[str, Any]], ModelSpec]:
        """A visitor adds or replaces a model; returns their new edit list (the server's pools are unchanged)."""
        clean = {k: v for k, v in fields.items() if v not in (None, "")}
        spec = ModelSpec.model_validate(clean)
        self.check_edit(spec)
        self.pool(pool_name)  # the pool must exist
        return [*(edits or []), {"pool": pool_name, "action": "put", "spec": spec.model_dump(mode="json")}], spec

    def remove_model(self, edits: list[dict[str, Any]], pool_name: str, name: str) -> list[dict[str, Any]]:
        if not self.allow_model_edits:
            raise PoolError("model edits are off on this server")
        pool = self.apply_edits(pool_name, edits)
        if name not in pool.names:
            raise PoolError(f"pool '{pool_name}' has no model '{name}'")
        if len(pool.models) == 1:
            raise PoolError(f"pool '{pool_name}' needs at least one model")
        return [*(edits or []), {"pool": pool_name, "action": "remove", "name": name}]

    def router(self, policy: str | None, pool: str | None, edits: list[dict[str, Any]] | None = None) -> Router:
        from evaluation.calibrate import quality_for
        pol = self.policy(policy)
        cfg, models = pol.run_config(self.overrides), self.apply_edits(pool, edits)
        return Router(pol, models, engines=self.engines, config=cfg, progress=self.note,
                      quality=quality_for(pol, cfg, models))

    def note(self, message: str) -> None:
        if self.echo:
            print(f"· {message}", flush=True)
        self.progress_log.append(f"{time.strftime('%H:%M:%S')} {message}")
        del self.progress_log[:-50]

    # ------------------------------------------------------------------ running sessions

    def stop(self, key: str, reason: str = "") -> bool:
        """Stop the session running under `key` at its next step boundary; `reason` is stored with it."""
        ev = self._stops.get(key)
        if ev is None:
            return False
        if reason:
            ev.reason = reason  # type: ignore[attr-defined]  # read by Router._stopped
        ev.set()
        return True

    def lane(self, router: Router) -> Lane:
        """The admission lane of a session: the server lane only when the policy and every candidate are servers."""
        engines = [router.policy.engine, *(m.engine for m in router.pool.models)]
        return self.admission.lane(in_process=any(e != "openai" for e in engines))

    def events(self, key: str, question: str, alpha: float, *, policy: str | None = None, pool: str | None = None,
               gold: list[str] | None = None, session_id: str | None = None,
               edits: list[dict[str, Any]] | None = None, client: str = "",
               wait_s: float | None = None) -> Iterator[Event]:
        """Run one stored session in a worker thread and yield its steps and streamed text.

        The session first takes a place in its admission lane (for `client`, default `key`); while it waits, a
        `progress` event with text_kind "waiting" says how many sessions are ahead, and past `wait_s` seconds it
        gives up with `Busy` (nothing started, nothing stored). The worker owns the rollout (so a slow engine
        call never blocks the page's event loop); closing this iterator — Stop, a closed tab — sets the stop
        flag: a waiting session leaves the line, a running one ends as `stopped` at the next step boundary, with
        every finished step already committed.
        """
        router = self.router(policy, pool, edits)
        sid = session_id or uuid.uuid4().hex
        stop = threading.Event()
        self._stops[key] = stop
        place = self.lane(router).join(client or key)
        worker: threading.Thread | None = None
        try:
            yield from self._wait_for(place, stop, wait_s)
            if stop.is_set():
                return
            q: queue.Queue[Event] = queue.Queue()
            worker = threading.Thread(target=self._work, args=(router, place, stop, q, question, alpha, sid, gold),
                                      name=f"session-{sid[:8]}", daemon=True)
            worker.start()
            yield Event("progress", text=sid)
            yield from self._drain(q, worker)
        finally:
            stop.set()
            if worker is None:
                place.leave()
            else:
                worker.join(timeout=120)
            if self._stops.get(key) is stop:
                del self._stops[key]

    @staticmethod
    def _wait_for(place: Place, stop: threading.Event, wait_s: float | None) -> Iterator[Event]:
        """Wait for the place to be admitted, saying how many are ahead whenever that changes."""
        deadline = None if wait_s is None else time.monotonic() + wait_s
        told = -1
        while not place.wait(0 if told < 0 else 0.25):
            if stop.is_set():
                return
            if deadline is not None and time.monotonic() >= deadline:
                ahead = place.ahead
                raise Busy(f"the router is busy: {ahead} session(s) still ahead after waiting {wait_s:g} s")
            if (ahead := place.ahead) != told:
                told = ahead
                yield Event("progress", text_kind="waiting", index=ahead)

    def _work(self, router: Router, place: Place, stop: threading.Event, q: "queue.Queue[Event]", question: str,
              alpha: float, sid: str, gold: list[str] | None) -> None:
        """The session in its worker thread; its place in the lane is given back however it ends."""
        def on_text(idx: int, kind: str, piece: str) -> None:
            q.put(Event("text", index=idx, text_kind=kind, text=piece))

        try:
            if stop.is_set():
                return
            stream = recorded(self.store, router.run(question, alpha, session_id=sid, stop_event=stop,
                                                     on_text=on_text),
                              session_id=sid, question=question, alpha=alpha, policy=router.policy.name,
                              engine=router.policy.engine, pool=router.pool.snapshot(), gold=gold or [],
                              settings=router.settings())
            for step in stream:
                q.put(Event("step", step=step))
        except Exception as e:  # noqa: BLE001 — shown in the page; the recorder stored the status
            q.put(Event("end", text=f"{type(e).__name__}: {e}"))
            return
        finally:
            place.leave()
        q.put(Event("end"))

    @staticmethod
    def _drain(q: "queue.Queue[Event]", worker: threading.Thread) -> Iterator[Event]:
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

    def warm_up(self, policy: str | None = None, pool: str | None = None) -> threading.Thread:
        """Load the default router policy in the background so the first Run is quick."""
        def work() -> None:
            place = None
            try:
                router = self.router(policy, pool)
                place = self.lane(router).join("warm-up")
                while not place.wait(60):
                    pass
                self.note("loading the router policy (first start joins and checks the model files)")
                router.policy_engine()
                self.note("router policy loaded; reading its instructions once for every later question")
                router.warm()
                self.note("router policy ready")
            except Exception as e:  # noqa: BLE001 — reported in the page; a run will say it again
                self.note(f"router policy failed to load: {e}")
            finally:
                if place is not None:
                    place.leave()
        t = threading.Thread(target=work, name="warm-up", daemon=True)
        t.start()
        return t


def _under(url: str, prefix: str) -> bool:
    """Whether `url` is `prefix` or below it (same scheme, host and port; path under the prefix's path)."""
    from urllib.parse import urlsplit
    u, p = urlsplit(url.rstrip("/")), urlsplit(prefix.rstrip("/"))
    return (u.scheme, u.netloc.lower()) == (p.scheme, p.netloc.lower()) and \
        (u.path == p.path or u.path.startswith(p.path.rstrip("/") + "/"))


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
