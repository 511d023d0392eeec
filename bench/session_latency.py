"""Session speed against the engine floor: where a routing session's seconds go, per question and as medians.

Runs bundled multi-hop questions through the router (its instruction prefix computed once first, as
the web app does at start) and prints, side by side for each question and as medians:
  * wall    — the session's seconds, first step to answer;
  * engine  — the seconds spent inside engine calls (generate, chat, score) of that session;
  * ratio   — wall / engine (goal ≤ 1.3: the loop, the store and the rest add little);
  * prefilled vs new tokens — prompt tokens the engines computed, and how many of those they had
    never seen (not in any earlier prompt or generation of that engine); goal prefilled ≤ 1.2 × new;
  * first token — seconds from the start to the first streamed piece of router text;
  * the answer and EM;
and where a two-hop session's seconds go, by phase (router: think, decide search/answer, choose the
model, write the sub-question, write the answer; candidates: their replies), with tokens generated.
Each engine counts its own prefill (llama.cpp's stats()); "new" is measured here by keeping, per
engine, the token sequences it has computed; "scored" counts the option tokens computed to score
the router's choices. With --variant (repeatable) each question runs under each variant's run
settings (--set NAME:KEY=VALUE, as in router_ab.py) in turn, on the same engines, and the medians
are printed side by side. Usage: python bench/session_latency.py [--questions N] [--policy NAME]
[--alpha A] [--variant NAME --set NAME:KEY=VALUE …] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from evaluation.datasets import bundled_datasets, load_dataset
from router_core.engines import Engine, EngineSpec, get_engine
from router_core.engines.base import CacheHint, common_prefix_len
from router_core.loop import Router
from router_core.metrics import exact_match
from router_core.policy import load_policies, setting_from_text
from router_core.pool import load_pool
from storage import TraceStore
from storage.recorder import recorded

ROOT = Path(__file__).resolve().parent.parent


class Metered(Engine):
    """Delegates to a real engine; adds up the seconds of each call and the tokens it prefilled and saw new."""

    def __init__(self, inner: Engine, name: str) -> None:
        super().__init__()
        self.inner, self.name = inner, name
        self.warmed: list[list[int]] = []  # the instruction prefix, known to every variant
        self.seen_by: dict[str, list[list[int]]] = {}  # per variant: what its sessions computed
        self.variant = ""
        self.reset()

    def reset(self) -> None:
        self.seconds = 0.0
        self.prefilled = 0
        self.scored = 0  # option tokens computed to score a choice (names, <search>/<answer>)
        self.new = 0
        self.calls = 0
        self.phases: dict[str, list[float]] = {}  # phase → [seconds, tokens generated]

    def _account(self, prompt: str, phase: str, fn):
        toks = self.inner.tokens(prompt) if hasattr(self.inner, "tokens") else []
        seen = self.seen_by.setdefault(self.variant, [])
        known = max((common_prefix_len(toks, s) for s in self.warmed + seen), default=0)
        before = self.inner.stats()
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        self.seconds += dt
        acc = self.phases.setdefault(phase, [0.0, 0])
        acc[0] += dt
        acc[1] += getattr(out, "output_tokens", 0)
        self.calls += 1
        after = self.inner.stats()
        self.prefilled += after.get("prefill_tokens", 0) - before.get("prefill_tokens", 0)
        self.scored += after.get("scored_tokens", 0) - before.get("scored_tokens", 0)
        self.new += max(0, len(toks) - known)
        text = out.text if hasattr(out, "text") else ""
        if toks:
            seen.append(self.inner.tokens(prompt + text) if text else toks)
            del seen[:-64]
        return out

    def generate(self, prompt, *, stop=(), max_tokens=256, temperature=0.0, on_text=None, cache=None):
        return self._account(prompt, _phase(stop), lambda: self.inner.generate(prompt, stop=stop, max_tokens=max_tokens,
                                                                     temperature=temperature, on_text=on_text,
                                                                     cache=cache))

    def chat(self, messages, *, max_tokens=256, temperature=0.0, stop=(), on_text=None, cache=None):
        prompt = self.inner.chat_prompt(messages)
        return self._account(prompt, "candidate reply", lambda: self.inner.chat(messages, max_tokens=max_tokens,
                                                                 temperature=temperature, stop=stop, on_text=on_text,
                                                                 cache=cache))

    def score(self, prefix, continuations, cache: CacheHint | None = None, *, choice: bool = False):
        phase = "decide search/answer" if list(continuations) == ["<search>", "<answer>"] else "choose the model"
        return self._account(prefix, phase, lambda: self.inner.score(prefix, continuations, cache, choice=choice))

    def chat_prompt(self, messages):
        return self.inner.chat_prompt(messages)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)

    def warm(self, prefix: str) -> None:
        self.inner.warm(prefix)
        if hasattr(self.inner, "tokens"):
            self.warmed.append(self.inner.tokens(prefix))

    def stats(self):
        return self.inner.stats()


def _phase(stop) -> str:
    """A router generation's phase, read from where it stops (the guided rollout's stop strings)."""
    for tag, phase in (("</think>", "think"), ("</search>", "sub-question"), ("</answer>", "answer")):
        if tag in stop:
            return phase
    return "generate"


def _phases(engines) -> dict[str, dict[str, float]]:
    """Seconds and tokens generated per phase, all engines of a session together."""
    out: dict[str, dict[str, float]] = {}
    for m in engines:
        for ph, (sec, toks) in m.phases.items():
            name = ph if m.name.startswith("router") or ph == "candidate reply" else f"candidate {ph}"
            acc = out.setdefault(name, {"s": 0.0, "tokens": 0})
            acc["s"] = round(acc["s"] + sec, 3)
            acc["tokens"] += toks
    return out


def machine() -> str:
    """The CPU model, core count and widest vector unit: the seconds here are only comparable on the same kind of
    machine ("AMD EPYC" names hosts whose llama.cpp decode differs 2-3x, AVX-512 or not)."""
    model, named, vector = platform.processor() or platform.machine(), False, ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not named:
                model, named = line.split(":", 1)[1].strip(), True
            elif line.startswith("flags") and not vector:
                flags = set(line.split(":", 1)[1].split())
                vector = next((v for v in ("avx512f", "avx2", "avx") if v in flags), "")
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores" + (f", {vector.upper()}" if vector else "")


def _summary(rows: list[dict], warm_s: float) -> dict:
    def med(k: str) -> float:
        vals = [r[k] for r in rows if r[k] is not None]
        return statistics.median(vals) if vals else float("nan")
    two_hop = [r for r in rows if r["routes"] >= 2]
    return {"median_wall_s": med("wall_s"), "median_engine_s": med("engine_s"), "median_ratio": med("ratio"),
            "median_prefilled_per_new": med("prefilled_per_new"), "median_first_token_s": med("first_token_s"),
            "median_scored_tokens": med("scored"),
            "median_two_hop_wall_s": statistics.median([r["wall_s"] for r in two_hop]) if two_hop else None,
            "two_hop_sessions": len(two_hop), "em": statistics.mean(r["em"] for r in rows),
            "warm_up_s": warm_s,
            "two_hop_median_phases": {ph: {"s": statistics.median(r["phases"].get(ph, {}).get("s", 0.0)
                                                                  for r in two_hop),
                                           "tokens": statistics.median(r["phases"].get(ph, {}).get("tokens", 0)
                                                                       for r in two_hop)}
                                      for ph in sorted({ph for r in two_hop for ph in r["phases"]})}}


def _print_summary(name: str, summary: dict) -> None:
    print(f"[{name}] medians: wall {summary['median_wall_s']:.1f} s, engine {summary['median_engine_s']:.1f} s, "
          f"ratio {summary['median_ratio']:.2f} (goal ≤ 1.3), "
          f"prefilled/new {summary['median_prefilled_per_new']:.2f} (goal ≤ 1.2), "
          f"first token {summary['median_first_token_s']:.2f} s, option tokens scored "
          f"{summary['median_scored_tokens']:.0f}; two-hop sessions {summary['two_hop_sessions']}, their median wall "
          f"{summary['median_two_hop_wall_s'] or float('nan'):.1f} s (goal ≤ 20 s); EM {summary['em']:.2f}")
    if summary["two_hop_sessions"]:
        print(f"[{name}] where a two-hop session's seconds go (medians over those sessions):")
        for ph, v in sorted(summary["two_hop_median_phases"].items(), key=lambda kv: -kv[1]["s"]):
            rate = f", {v['tokens'] / v['s']:.1f} tok/s" if v["tokens"] and v["s"] else ""
            print(f"  {ph:<22}{v['s']:6.1f} s  {v['tokens']:5.0f} tokens generated{rate}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=10, help="first N multi-hop questions (default 10)")
    ap.add_argument("--policy", default=None, help="policy preset (default: the default policy)")
    ap.add_argument("--alpha", type=float, default=0.0)
    ap.add_argument("--variant", action="append", default=[],
                    help="a variant's name (repeatable; each question runs under every variant in turn, on the same "
                         "engines; default: one, the preset as it is)")
    ap.add_argument("--set", action="append", default=[], help="NAME:KEY=VALUE run setting for one variant")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "session_latency.json"))
    args = ap.parse_args()
    items = load_dataset(bundled_datasets()["multi_hop"], limit=args.questions)
    pol, pool = load_policies().get(args.policy), load_pool()
    settings: dict[str, dict] = {}
    for text in args.set:
        name, _, kv = text.partition(":")
        key, sep, value = kv.partition("=")
        if not sep:
            raise SystemExit(f"--set {text}: expected NAME:KEY=VALUE")
        settings.setdefault(name, {})[key] = setting_from_text(value)
    variants = [(name, settings.get(name, {})) for name in args.variant or ["default"]]
    metered: dict[EngineSpec, Metered] = {}

    def engines(spec: EngineSpec) -> Engine:
        if spec not in metered:
            metered[spec] = Metered(get_engine(spec), f"{spec.role or 'candidate'}:{spec.model}")
        return metered[spec]

    routers = {name: Router(pol, pool, engines=engines, config=pol.run_config(over)) for name, over in variants}
    t0 = time.perf_counter()
    next(iter(routers.values())).warm()
    for m in pool.models:  # candidates load once, as in the app after its first runs
        engines(EngineSpec(engine=m.engine, model=m.model, gguf_file=m.gguf_file, base_url=m.base_url,
                           api_key_env=m.api_key_env, timeout_s=m.timeout_s))
    warm_s = time.perf_counter() - t0
    print(f"policy {pol.name}, pool {pool.name}, α {args.alpha:g}; warm-up (load + instruction prefix) {warm_s:.1f} s",
          flush=True)
    head = (f"{'q':>3} {'variant':>10} {'wall s':>7} {'engine s':>8} {'ratio':>5} {'prefilled':>9} {'scored':>6} "
            f"{'new':>6} {'pre/new':>7} {'1st tok s':>9} {'routes':>6}  answer (EM)")
    print(head)
    rows: dict[str, list[dict]] = {name: [] for name in routers}
    db = Path(tempfile.mkdtemp(prefix="latency-")) / "latency.sqlite"
    with TraceStore(str(db)) as store:
        for i, it in enumerate(items):
            for name, router in routers.items():
                for m in metered.values():
                    m.reset()
                    m.variant = name  # "new" tokens: new to this variant's sessions, not to the other's
                first: list[float] = []
                start = time.perf_counter()

                def on_text(idx, kind, piece, start=start, first=first):
                    if not first and kind != "reply":
                        first.append(time.perf_counter() - start)
                sid = f"lat-{name}-{i}"
                steps = list(recorded(store, router.run(it.question, args.alpha, session_id=sid, on_text=on_text),
                                      session_id=sid, question=it.question, alpha=args.alpha, policy=pol.name,
                                      engine=pol.engine, pool=pool.snapshot(), gold=it.golds))
                wall = time.perf_counter() - start
                engine_s = sum(m.seconds for m in metered.values())
                pre = sum(m.prefilled for m in metered.values())
                scored = sum(m.scored for m in metered.values())
                new = sum(m.new for m in metered.values())
                answer = next((s.text for s in reversed(steps) if s.kind == "answer"), None)
                em = exact_match(answer, it.golds)
                routes = sum(1 for s in steps if s.kind == "route")
                row = {"id": it.id, "variant": name, "question": it.question, "wall_s": wall, "engine_s": engine_s,
                       "ratio": wall / engine_s if engine_s else None, "prefilled": pre, "scored": scored, "new": new,
                       "prefilled_per_new": pre / new if new else None,
                       "first_token_s": first[0] if first else None, "routes": routes, "answer": answer, "em": em,
                       "per_engine": {m.name: {"s": round(m.seconds, 3), "calls": m.calls, "prefilled": m.prefilled,
                                               "scored": m.scored, "new": m.new} for m in metered.values()},
                       "phases": _phases(metered.values())}
                rows[name].append(row)
                print(f"{i + 1:>3} {name[:10]:>10} {wall:7.1f} {engine_s:8.1f} {row['ratio'] or 0:5.2f} {pre:9d} "
                      f"{scored:6d} {new:6d} {row['prefilled_per_new'] or 0:7.2f} {row['first_token_s'] or 0:9.2f} "
                      f"{routes:6d}  {(answer or '(none)')[:40]} ({em:.0f})", flush=True)

    summaries = {name: _summary(rs, warm_s) for name, rs in rows.items()}
    for name, summary in summaries.items():
        _print_summary(name, summary)
    first_name = variants[0][0]
    out = {"policy": pol.name, "alpha": args.alpha, "machine": machine(), "summary": summaries[first_name],
           "rows": [r for rs in rows.values() for r in rs]}
    if len(variants) > 1:
        out["variants"] = {name: {"settings": over, "summary": summaries[name]} for name, over in variants}
        print("\n| variant | settings | wall s (median) | two-hop wall s | choose the model s | decide s | "
              "option tokens scored | EM |\n|---|---|---|---|---|---|---|---|")
        for name, over in variants:
            sm, ph = summaries[name], summaries[name]["two_hop_median_phases"]
            choose, decide = (ph.get(k, {}).get("s", 0.0) for k in ("choose the model", "decide search/answer"))
            print(f"| {name} | {json.dumps(over)} | {sm['median_wall_s']:.1f} | {sm['median_two_hop_wall_s'] or 0:.1f} "
                  f"| {choose:.1f} | {decide:.1f} | {sm['median_scored_tokens']:.0f} | {sm['em']:.2f} |")
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
