"""Trace-store speed at scale: insert rate, filtered-page latency and single-session load latency.

Builds a SQLite trace store of N sessions x 6 steps (think, route, think, route, think, answer)
and measures:
  * the live write path on a sample (start_session + one committed append_step per step + finish),
    in steps/s and sessions/s, on top of the already filled store;
  * the bulk path used to fill the rest (SQLAlchemy Core executemany into the same tables, large
    transactions, rollup columns and per-model rows computed exactly as the live path would);
  * list_sessions p50/p95 over a random mix of filters (page_size 50, one of the first pages),
    each filter kind on its own, and load_session p50/p95 for random ids;
  * the database size (file + -wal).
ALL DATA ARE SYNTHETIC: questions, answers, datasets ("synthetic-*"), pool and model names are
generated here and say so. Goals: filtered page <= 100 ms p95, session load <= 20 ms p95.
Usage: python bench/store.py [--sessions N] [--live N] [--reps N] [--db PATH|URL] [--keep] [--seed S]
                             [--reuse [--sizes]] [--out PATH]
--db also takes a PostgreSQL URL (an empty database; kept afterwards). --reuse measures the queries
again on a store kept by an earlier run (--db PATH --keep), without rebuilding it (--sizes: and where
its bytes go); only a full build of 100,000 sessions or more writes bench/results/store.json
(store_postgres.json for PostgreSQL) unless --out names a file. A build reports where the bytes go.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sqlalchemy import select
from tqdm import tqdm

from router_core.pool import ModelSpec, Pool
from router_core.step import Choice, Step
from storage import SessionFilter, TraceStore
from storage.jsonl import Parsed
from storage.models import LABELS, SessionRow
from storage.store import usage_rows

ROOT = Path(__file__).resolve().parent.parent

GOAL_PAGE_P95_MS = 100.0
GOAL_LOAD_P95_MS = 20.0
STEPS = ("think", "route", "think", "route", "think", "answer")
DATASETS = ("synthetic-hotpot", "synthetic-nq", "synthetic-triviaqa", "synthetic-2wiki")
TOPICS = ("volcanoes", "rivers", "painters", "chemistry", "football", "opera", "bridges", "comets", "novels",
          "glaciers", "pharaohs", "submarines", "tea", "chess", "deserts", "violins", "satellites", "mosses",
          "railways", "tides", "emperors", "typefaces", "lighthouses", "alloys", "orchids", "cathedrals",
          "marathons", "telescopes", "dialects", "coral")
# A 4-model pool in the exact shape of Pool.snapshot(); names and prices are made up.
POOL = Pool(name="synthetic-pool", description="SYNTHETIC pool for the store benchmark.",
            pricing_note="Synthetic prices per 1M tokens, on the scale of hosted open models.",
            models=[ModelSpec(name=n, engine="openai", model=f"synthetic/{n}", params_b=b, price_in=p, price_out=p,
                              base_url="http://synthetic.invalid/v1", api_key_env="SYNTHETIC_KEY",
                              description=f"Synthetic candidate {n} ({b:g}B parameters); generated for the store "
                                          "benchmark, never called.")
                    for n, b, p in (("syn-small-1b", 1, 0.02), ("syn-mid-8b", 8, 0.18),
                                    ("syn-large-70b", 70, 0.88), ("syn-xl-120b", 120, 1.8))])
MODELS = POOL.names
PRICE = {m.name: (m.price_in, m.price_out) for m in POOL.models}
NORM = POOL.norm_costs()
STATUS_MIX = (("done", 0.92), ("stopped", 0.03), ("error", 0.03), ("interrupted", 0.02))
FILTER_KINDS = ("text", "dataset", "correct", "model", "alpha", "cost", "status", "label", "method", "run",
                "failure", "calls")
# methods as an eval run stores them (evaluation/methods.py): the router on most sessions, baselines on the rest
METHODS = (("synthetic-router", 0.7), ("baseline/largest", 0.1), ("baseline/cheapest", 0.1),
           ("baseline/knn@50%", 0.1))


# ---------------------------------------------------------------------- synthetic sessions

@dataclass
class Synth:
    """One synthetic session: start_session kwargs, its 6 steps, how it ended and its annotations."""

    start: dict[str, Any]
    steps: list[Step]
    end: dict[str, Any]
    notes: list[dict[str, Any]] = field(default_factory=list)


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.run: tuple[str, int] = ("", 0)

    def _softmax(self, xs: list[float]) -> list[float]:
        m = max(xs)
        e = [math.exp(x - m) for x in xs]
        s = sum(e)
        return [v / s for v in e]

    def _choice(self, alpha: float) -> Choice:
        r = self.rng
        logits = [r.gauss(0, 1.5) for _ in MODELS]
        lp = [x - math.log(sum(math.exp(y) for y in logits)) for x in logits]
        before = self._softmax(lp)
        kappa = 3.0
        after = self._softmax([lp[i] - kappa * alpha * NORM[m] for i, m in enumerate(MODELS)])
        return Choice(models=list(MODELS), logprobs=lp, probs_before=before, probs_after=after,
                      norm_costs=[NORM[m] for m in MODELS], alpha=alpha, kappa=kappa,
                      chosen=MODELS[after.index(max(after))], policy_choice=MODELS[before.index(max(before))],
                      score_seconds=r.uniform(0.01, 0.08))

    def session(self, i: int, created_at: float) -> Synth:
        r = self.rng
        sid = "%032x" % r.getrandbits(128)
        alpha = round(r.random(), 3)
        topic = r.choice(TOPICS)
        adhoc = r.random() < 0.2                     # asked by hand: no dataset, no gold, no run
        if not adhoc and self.run[1] <= 0:
            self.run = ("synrun-%08x" % r.getrandbits(32), r.randint(200, 800))
        dataset = None if adhoc else r.choice(DATASETS)
        run_id = None
        if not adhoc:
            run_id, left = self.run
            self.run = (run_id, left - 1)
        gold = [] if adhoc else [f"synthetic gold {i % 997} {topic}"]
        question = f"synthetic question {i} about topic {topic}: which {topic} entity links item {i % 997}?"
        status = r.choices([s for s, _ in STATUS_MIX], [w for _, w in STATUS_MIX])[0]
        steps: list[Step] = []
        t = created_at + r.uniform(0.01, 0.05)
        turn = 0
        for idx, kind in enumerate(STEPS):
            dur = r.uniform(0.2, 1.5)
            st = Step(session_id=sid, index=idx, kind=kind, started_at=t, ended_at=t + dur, turn=turn,  # type: ignore[arg-type]
                      router_input_tokens=r.randint(250, 900), router_output_tokens=r.randint(15, 90))
            if kind == "think":
                st.text = (f"<think> synthetic reasoning step {idx} for question {i}: the {topic} sub-fact needed "
                           f"next is item {r.randint(0, 9999)}; decide whether to ask a candidate. </think>")
                st.decision = {"search": (p := r.random()), "answer": 1 - p}
            elif kind == "route":
                turn += 1
                st.turn = turn
                ch = self._choice(alpha)
                model = ch.chosen
                it, ot = r.randint(80, 450), r.randint(20, 220)
                pin, pout = PRICE[model]
                st.request_model = st.written_model = model
                st.query = f"synthetic sub-question {turn} of {i}: what is {topic} item {r.randint(0, 9999)}?"
                st.response = (f"synthetic reply from {model}: {topic} item {r.randint(0, 9999)} is linked to "
                               f"entity {r.randint(0, 99999)} " + "lorem " * r.randint(5, 40)).strip()
                st.text = f"<search> {model}: {st.query} </search>"
                st.input_tokens, st.output_tokens = it, ot
                st.cost_usd = (it * pin + ot * pout) / 1e6
                st.call_started_at = t + 0.05
                st.call_ended_at = t + dur - 0.01
                st.choice = ch
            else:
                st.text = f"<answer> synthetic answer {r.randint(0, 9999)} {topic} </answer>"
            t += dur + r.uniform(0.0, 0.05)
            steps.append(st)
        last = steps[-1]
        if status == "stopped":
            last.status, last.error = "stopped", "stopped before the session finished"
        elif status == "error":
            last.status, last.error = "error", "synthetic engine error: connection reset"
        answer = None if status != "done" else f"synthetic answer {i % 997} {topic}"
        em = f1 = reward = None
        if gold and status == "done":
            em = 1.0 if r.random() < 0.45 else 0.0
            f1 = 1.0 if em else round(r.random() * 0.8, 3)
            reward = em - alpha * sum(NORM[s.request_model] for s in steps if s.request_model) / 2
        if r.random() < 0.03:
            last.flags = ["format: missing </answer>"]
        end = {"status": status, "answer": answer, "em": em, "f1": f1, "reward": reward,
               "format_ok": answer is not None and not last.flags}
        notes = []
        if r.random() < 0.02:
            for _ in range(r.randint(1, 2)):
                notes.append({"label": r.choice(LABELS), "step_idx": r.choice([None, 1, 3, 5]),
                              "note": f"synthetic annotation on session {i}", "created_at": t + r.uniform(60, 3600)})
        policy = r.choices([m for m, _ in METHODS], [w for _, w in METHODS])[0]
        start = {"session_id": sid, "question": question, "alpha": alpha, "policy": policy,
                 "engine": "synthetic", "pool": POOL.snapshot(), "gold": gold, "dataset": dataset,
                 "item_id": None if adhoc else f"syn-{i % 997}", "run_id": run_id}
        return Synth(start=start, steps=steps, end=end, notes=notes)


# ---------------------------------------------------------------------- filling the store

def parsed_session(s: Synth, created_at: float) -> Parsed:
    """A finished synthetic session in the form import uses (rollups as append_step would leave them)."""
    st = s.start
    models = usage_rows(st["session_id"], s.steps)
    last_end = max((x.ended_at or x.started_at) for x in s.steps)
    row = {"id": st["session_id"], "created_at": created_at, "updated_at": last_end, "question": st["question"],
           "gold": st["gold"], "dataset": st["dataset"], "item_id": st["item_id"], "run_id": st["run_id"],
           "policy": st["policy"], "engine": st["engine"], "pool_name": str(st["pool"].get("name", "")),
           "pool": st["pool"], "alpha": st["alpha"], "status": s.end["status"], "answer": s.end["answer"],
           "em": s.end["em"], "f1": s.end["f1"], "reward": s.end["reward"], "format_ok": s.end["format_ok"],
           "cost_usd": sum(x.cost_usd for x in s.steps),
           "input_tokens": sum(x.input_tokens for x in s.steps), "output_tokens": sum(x.output_tokens for x in s.steps),
           "router_tokens": sum(x.router_input_tokens + x.router_output_tokens for x in s.steps),
           "latency_s": max(0.0, last_end - created_at), "calls": sum(m["calls"] for m in models),
           "n_steps": len(s.steps), "error": next((x.error for x in reversed(s.steps) if x.error), None)}
    return Parsed(row, s.steps, [dict(a) for a in s.notes])


def bulk_fill(store: TraceStore, gen: Generator, n: int, t_start: float, span_s: float, batch: int,
              ids: list[str], costs: list[float]) -> tuple[float, float]:
    """Insert n sessions through TraceStore.insert_sessions, `batch` sessions per transaction;
    (db seconds, wall seconds)."""
    db_s, t0 = 0.0, time.perf_counter()
    with tqdm(total=n, unit="sess", desc="bulk fill (synthetic)", mininterval=1.0, file=sys.stdout) as bar:
        for lo in range(0, n, batch):
            sessions = []
            for i in range(lo, min(n, lo + batch)):
                created = t_start + span_s * i / max(1, n)
                p = parsed_session(gen.session(i, created), created)
                sessions.append(p)
                ids.append(p.session["id"])
                costs.append(p.session["cost_usd"])
            t1 = time.perf_counter()
            store.insert_sessions(sessions)
            db_s += time.perf_counter() - t1
            bar.update(len(sessions))
    return db_s, time.perf_counter() - t0


def live_write(store: TraceStore, gen: Generator, first: int, n: int, ids: list[str],
               costs: list[float]) -> dict[str, Any]:
    """The live path: start_session, one committed append_step per step, finish. Times only store calls."""
    total_s = step_s = 0.0
    per_step: list[float] = []
    n_steps = 0
    for i in tqdm(range(first, first + n), unit="sess", desc="live write (synthetic)", mininterval=1.0,
                  file=sys.stdout):
        s = gen.session(i, time.time())
        t0 = time.perf_counter()
        store.start_session(**s.start)
        for step in s.steps:
            t1 = time.perf_counter()
            store.append_step(step)
            d = time.perf_counter() - t1
            per_step.append(d)
            step_s += d
        store.finish(s.start["session_id"], **s.end)
        total_s += time.perf_counter() - t0
        for a in s.notes:
            store.annotate(s.start["session_id"], a["label"], a["note"], a["step_idx"])
        n_steps += len(s.steps)
        ids.append(s.start["session_id"])
        costs.append(sum(x.cost_usd for x in s.steps))
    ms = np.array(per_step) * 1000
    return {"sessions": n, "steps": n_steps, "steps_per_s": n_steps / step_s, "sessions_per_s": n / total_s,
            "append_step_p50_ms": float(np.percentile(ms, 50)), "append_step_p95_ms": float(np.percentile(ms, 95))}


# ---------------------------------------------------------------------- queries

def random_filter(r: random.Random, kinds: tuple[str, ...], cost_q: np.ndarray, n: int,
                  values: dict[str, list[str]] | None = None) -> SessionFilter:
    """A filter of these kinds with values drawn as a user would pick them: methods and runs among those stored,
    calls among the stored counts, failure kinds among all of them (a kind no session has is a real click too: the
    breakdown and the drop-down offer every kind)."""
    from router_core.failures import KINDS
    values = values or {}
    f = SessionFilter()
    for k in kinds:
        if k == "text":   # topic word (~3 %), a question number (1-11 rows), mixed-case prefix (~11 %), no match
            f.text = r.choice([r.choice(TOPICS), str(r.randint(0, n - 1)), "Synthetic Question 4", "zeppelin"])
        elif k == "dataset":
            f.dataset = r.choice(DATASETS)
        elif k == "correct":
            f.correct = r.random() < 0.5
        elif k == "model":
            f.model = r.choice(MODELS)
        elif k == "alpha":
            lo = round(r.uniform(0, 0.8), 2)
            f.alpha_min, f.alpha_max = lo, round(min(1.0, lo + r.uniform(0.05, 0.5)), 2)
        elif k == "cost":
            a, b = sorted(r.sample(range(len(cost_q)), 2))
            f.cost_min, f.cost_max = (float(cost_q[a]), float(cost_q[b])) if r.random() < 0.7 else (float(cost_q[a]), None)
        elif k == "status":
            f.status = r.choice(["done", "done", "error", "stopped", "interrupted"])
        elif k == "label":
            f.label = r.choice(LABELS)
        elif k == "method":
            f.policy = r.choice(values.get("policies") or [m for m, _ in METHODS])
        elif k == "run":
            f.run_id = r.choice(values.get("run_ids") or ["synrun-00000000"])
        elif k == "failure":
            f.failure = r.choice(KINDS)
        elif k == "calls":
            f.calls = int(r.choice(values.get("calls") or [2]))
    return f


def timed(fn: Callable[[], Any], reps: int) -> np.ndarray:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return np.array(out)


def pct(ms: np.ndarray) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "max_ms": round(float(ms.max()), 2)}


def query_bench(store: TraceStore, ids: list[str], costs: list[float], reps: int, seed: int) -> dict[str, Any]:
    from storage.summary import distinct_values
    r = random.Random(seed + 1)
    cost_q = np.quantile(np.array(costs), np.linspace(0, 1, 21))
    n = len(ids)
    values: dict[str, Any] = distinct_values(store)
    with store.read() as conn:  # the hop counts stored (a number typed in the Calls box)
        values["calls"] = [c for (c,) in conn.execute(select(SessionRow.calls).distinct().limit(20))]
    for _ in range(5):  # warm the connection pool and the page cache
        store.list_sessions(SessionFilter(), page_size=50)
        store.load_session(r.choice(ids))
    gc.collect()  # as `serve` does after startup (ui.app.settle_heap): the ids and costs above stay out of the
    gc.freeze()   # garbage collector's full passes, which otherwise pause one query in a few by ~50 ms

    def mixed() -> None:
        kinds = tuple(r.sample(FILTER_KINDS, r.choice([1, 1, 2, 2, 3])))
        store.list_sessions(random_filter(r, kinds, cost_q, n, values), page=r.randint(0, 4), page_size=50)

    res: dict[str, Any] = {"filtered_page": pct(timed(mixed, reps))}
    res["session_load"] = pct(timed(lambda: store.load_session(r.choice(ids)), reps))
    per: dict[str, Any] = {}
    each = max(20, reps // 5)
    for k in ("none",) + FILTER_KINDS:
        kinds = () if k == "none" else (k,)
        per[k] = pct(timed(lambda: store.list_sessions(random_filter(r, kinds, cost_q, n, values),
                                                       page=r.randint(0, 4), page_size=50), each))
    res["per_filter"] = per
    res["per_filter_reps"] = each
    return res


# ---------------------------------------------------------------------- main

def is_url(db: str | None) -> bool:
    return bool(db) and "://" in str(db)


def db_size_mb(store: TraceStore, path: Path | None) -> float:
    """The SQLite file and its WAL, or the PostgreSQL database's size."""
    if path is None:
        with store.read() as conn:
            return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()) / 1e6
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()) / 1e6


def sizes_by_object(store: TraceStore, sessions: int) -> dict[str, Any]:
    """Where the bytes go: each table and index (SQLite's dbstat, or PostgreSQL's relation sizes), in MB, and bytes
    per session in all (pages in use; a SQLite file also keeps freed pages until VACUUM)."""
    with store.read() as conn:
        if store.is_sqlite:
            rows = conn.exec_driver_sql("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").all()
        else:
            rows = conn.exec_driver_sql("SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relnamespace = "
                                        "'public'::regnamespace AND relkind IN ('r', 'i')").all()
    by = {name: round(int(b) / 1e6, 1) for name, b in sorted(rows, key=lambda r: -int(r[1])) if int(b) >= 1e5}
    total = sum(int(b) for _, b in rows)
    return {"by_object_mb": by, "total_mb": round(total / 1e6, 1),
            "bytes_per_session": round(total / max(1, sessions))}


def print_sizes(sz: dict[str, Any]) -> None:
    print(f"\nwhere the {sz['total_mb']:,.1f} MB go ({sz['bytes_per_session']:,} bytes a session):")
    for name, mb in sz["by_object_mb"].items():
        print(f"  {name:<42}{mb:>10,.1f} MB {100 * mb / sz['total_mb']:>5.1f} %")


def backend(store: TraceStore) -> str:
    if store.is_sqlite:
        return f"SQLite {sqlite3.sqlite_version}"
    with store.read() as conn:
        return "PostgreSQL " + str(conn.exec_driver_sql("SHOW server_version").scalar_one()).split()[0]


FULL_RUN = 100_000   # the scale the published figures are for


def write_results(res: dict[str, Any], out: str | None, *, full: bool, name: str = "store.json") -> None:
    """Only a full build replaces the published results; smaller or partial runs need an explicit --out."""
    if out is None and not full:
        print("results not written (not a full build; pass --out PATH to keep them)")
        return
    path = Path(out) if out else ROOT / "bench" / "results" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2))
    print(f"wrote {path}")


def print_queries(q: dict[str, Any], reps: int) -> None:
    """The query figures of a --reuse run, p50 / p95 side by side."""
    fp, sl = q["filtered_page"], q["session_load"]
    print(f"{'figure':<44}{'p50 / p95 ms':>20}   goal")
    print(f"{'filtered page (' + str(reps) + ' mixed filters)':<44}{fp['p50_ms']:>9.1f} / {fp['p95_ms']:>8.1f}"
          f"   <= {GOAL_PAGE_P95_MS:g} ms {'PASS' if fp['p95_ms'] <= GOAL_PAGE_P95_MS else 'MISS'}")
    print(f"{'session load':<44}{sl['p50_ms']:>9.2f} / {sl['p95_ms']:>8.2f}"
          f"   <= {GOAL_LOAD_P95_MS:g} ms {'PASS' if sl['p95_ms'] <= GOAL_LOAD_P95_MS else 'MISS'}")
    for k, v in q["per_filter"].items():
        ok = "" if k == "none" else ("PASS" if v["p95_ms"] <= GOAL_PAGE_P95_MS else "MISS")
        print(f"{'  ' + k:<44}{v['p50_ms']:>9.1f} / {v['p95_ms']:>8.1f}   {ok}")


def reuse(args: argparse.Namespace) -> None:
    """Query figures only, on a kept store (opening it also upgrades an older schema, as the app would)."""
    url = is_url(args.db)
    path = None if url else Path(args.db).expanduser().resolve()
    if path is not None and not path.exists():
        sys.exit(f"{path}: no such store; build one first with --db {args.db} --keep")
    t0 = time.perf_counter()
    store = TraceStore(args.db if url else str(path))
    opened_s = time.perf_counter() - t0
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(SessionRow.id, SessionRow.cost_usd).order_by(SessionRow.created_at)).all()
        ids, costs = [r[0] for r in rows], [r[1] for r in rows]
        print(f"SYNTHETIC data: reusing {len(ids):,} sessions in {store.where} (opened in {opened_s:.1f} s, "
              f"schema v{store.schema_version()}, {backend(store)}, {os.cpu_count()} CPUs)")
        engine = backend(store)
        q = query_bench(store, ids, costs, args.reps, args.seed)
        sz = sizes_by_object(store, len(ids)) if args.sizes else None
    finally:
        store.close()
    res = {"data": "synthetic", "sessions": len(ids), "reused": True, "queries": q, "reps": args.reps, "size": sz,
           "goals": {"filtered_page_p95_ms": GOAL_PAGE_P95_MS, "session_load_p95_ms": GOAL_LOAD_P95_MS},
           "pass": {"filtered_page": q["filtered_page"]["p95_ms"] <= GOAL_PAGE_P95_MS,
                    "session_load": q["session_load"]["p95_ms"] <= GOAL_LOAD_P95_MS},
           "backend": engine, "seed": args.seed, "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    print()
    print_queries(q, args.reps)
    if sz:
        print_sizes(sz)
    write_results(res, args.out, full=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=100_000, help="sessions in the store (6 steps each)")
    ap.add_argument("--live", type=int, default=2_000, help="of which written through the live path")
    ap.add_argument("--reps", type=int, default=200, help="repetitions per query measurement")
    ap.add_argument("--batch", type=int, default=5_000, help="sessions per bulk transaction")
    ap.add_argument("--db", default=None, help="SQLite file to create (must not exist; default: a temp file), or a "
                                               "PostgreSQL URL of an empty database (kept afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the database file at the end")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--reuse", action="store_true",
                    help="only measure the queries, on the store an earlier run kept at --db (implies --keep)")
    ap.add_argument("--sizes", action="store_true", help="with --reuse: also say where the bytes go (a full read "
                                                         "of the store: about a minute at a million sessions)")
    ap.add_argument("--out", default=None, help="results JSON (default: bench/results/store.json, written only "
                                                "by a full build of at least 100,000 sessions)")
    args = ap.parse_args()
    if args.reuse:
        if not args.db:
            ap.error("--reuse needs --db PATH (a store kept by an earlier run)")
        reuse(args)
        return
    n, live = args.sessions, min(args.live, args.sessions)
    if live < 1 or args.reps < 1:
        ap.error("--sessions, --live and --reps must be at least 1")
    path: Path | None = None
    if is_url(args.db):  # a PostgreSQL database (or any SQLAlchemy URL): it must hold no sessions yet
        store = TraceStore(args.db)
        if store.list_sessions(page_size=1).total:
            store.close()
            sys.exit(f"{store.where}: already holds sessions; the benchmark builds a fresh store (use --reuse)")
    else:
        if args.db:
            path = Path(args.db).expanduser().resolve()
            if path.exists():
                sys.exit(f"{path}: already exists; the benchmark builds a fresh store")
        else:
            path = Path(tempfile.mkdtemp(prefix="bench_store_")) / "traces.sqlite"
        store = TraceStore(str(path))
    engine = backend(store)
    print(f"SYNTHETIC data: {n:,} sessions x {len(STEPS)} steps in {store.where}  ({engine}, {os.cpu_count()} CPUs)")
    gen = Generator(args.seed)
    ids: list[str] = []
    costs: list[float] = []
    try:
        bulk = n - live
        span = 180 * 86400.0                       # bulk sessions spread over the last 180 days
        db_s, wall_s = bulk_fill(store, gen, bulk, time.time() - span, span - 3600, args.batch, ids, costs) \
            if bulk else (0.0, 0.0)
        lw = live_write(store, gen, bulk, live, ids, costs)
        q = query_bench(store, ids, costs, args.reps, args.seed)
        size = db_size_mb(store, path)
        sz = sizes_by_object(store, n)
    finally:
        store.close()
        if path is not None and not args.keep:
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)
            if not args.db:
                path.parent.rmdir()
    res: dict[str, Any] = {
        "data": "synthetic", "sessions": n, "steps_per_session": len(STEPS), "steps": n * len(STEPS),
        "live_write": {k: round(v, 2) if isinstance(v, float) else v for k, v in lw.items()},
        "bulk_fill": {"sessions": bulk, "sessions_per_s_db": round(bulk / db_s, 1) if db_s else None,
                      "sessions_per_s_wall": round(bulk / wall_s, 1) if wall_s else None,
                      "batch": args.batch, "db_s": round(db_s, 2), "wall_s": round(wall_s, 2)},
        "queries": q, "reps": args.reps, "db_mb": round(size, 1), "size": sz,
        "goals": {"filtered_page_p95_ms": GOAL_PAGE_P95_MS, "session_load_p95_ms": GOAL_LOAD_P95_MS},
        "pass": {"filtered_page": q["filtered_page"]["p95_ms"] <= GOAL_PAGE_P95_MS,
                 "session_load": q["session_load"]["p95_ms"] <= GOAL_LOAD_P95_MS},
        "backend": engine, "python": platform.python_version(), "cpus": os.cpu_count(),
        "seed": args.seed, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }

    def line(name: str, value: str, goal: str = "", ok: bool | None = None) -> None:
        print(f"{name:<44}{value:>16}   {goal:<12}{'' if ok is None else ('PASS' if ok else 'MISS')}")

    print(f"\nStore benchmark, SYNTHETIC data: {n:,} sessions, {n * len(STEPS):,} steps, {size:.1f} MB ({'db + wal' if path else 'database'})")
    line("figure", "value", "goal", None)
    line("live write: steps/s (1 commit per step)", f"{lw['steps_per_s']:,.0f}")
    line("live write: sessions/s (start+6 steps+finish)", f"{lw['sessions_per_s']:,.1f}")
    line("live write: append_step p50 / p95", f"{lw['append_step_p50_ms']:.2f} / {lw['append_step_p95_ms']:.2f} ms")
    if db_s:
        line("bulk fill: sessions/s (db only)", f"{bulk / db_s:,.0f}")
        line("bulk fill: sessions/s (incl. synthesis)", f"{bulk / wall_s:,.0f}")
    fp, sl = q["filtered_page"], q["session_load"]
    line(f"filtered page p50 ({args.reps} mixed filters)", f"{fp['p50_ms']:.1f} ms")
    line("filtered page p95", f"{fp['p95_ms']:.1f} ms", f"<= {GOAL_PAGE_P95_MS:g} ms", res["pass"]["filtered_page"])
    line(f"session load p50 ({args.reps} random ids)", f"{sl['p50_ms']:.2f} ms")
    line("session load p95", f"{sl['p95_ms']:.2f} ms", f"<= {GOAL_LOAD_P95_MS:g} ms", res["pass"]["session_load"])
    line("database size (db + wal)", f"{size:,.1f} MB")
    print(f"\nper filter kind alone ({q['per_filter_reps']} reps each, page 0-4 of 50):")
    for k, v in q["per_filter"].items():
        line(f"  {k}", f"{v['p50_ms']:.1f} / {v['p95_ms']:.1f} ms", "p50 / p95",
             None if k == "none" else v["p95_ms"] <= GOAL_PAGE_P95_MS)
    print_sizes(sz)
    write_results(res, args.out, full=n >= FULL_RUN, name="store.json" if path is not None else "store_postgres.json")
    if args.keep or path is None:
        print(f"kept {store.where}")


if __name__ == "__main__":
    main()
