"""Router-R1 Studio entry point.

    python app.py                      serve the web app (embedded default: CPU, no key, no network)
    python app.py ask "QUESTION" ...   run one routing session in the terminal
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import time
import uuid

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _alpha(v: str) -> float:
    try:
        a = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--alpha must be a number in [0, 1], got '{v}'") from None
    if not 0.0 <= a <= 1.0:
        raise argparse.ArgumentTypeError(f"--alpha must be in [0, 1], got {a}")
    return a


def _add_router_args(p: argparse.ArgumentParser, alpha_list: bool = False) -> None:
    if alpha_list:
        p.add_argument("--alpha", default="0,0.5,0.9", help="comma list of α values (default 0,0.5,0.9)")
    else:
        p.add_argument("--alpha", type=_alpha, default=0.0, help="cost coefficient α in [0, 1] (default 0)")
    p.add_argument("--pool", default=None, help="model pool YAML (default assets/pools/local.yaml)")
    p.add_argument("--policy", default=None, help="policy preset from assets/policies.yaml")
    p.add_argument("--policies", default=None, help="another policies YAML file")
    p.add_argument("--policy-model", default=None, help="point the policy at another checkpoint (Hub id or path)")
    p.add_argument("--policy-engine", default=None, help="llamacpp | transformers | vllm | openai")
    p.add_argument("--template", default=None, help="router prompt template file")
    p.add_argument("--max-turns", type=int, default=None, help="route turns before the forced answer (default 4)")


def build_router(args: argparse.Namespace, progress=None):
    from router_core.loop import Router
    from router_core.policy import customise, load_policies
    from router_core.pool import load_pool

    policy = customise(load_policies(args.policies).get(args.policy), model=args.policy_model,
                       engine=args.policy_engine, template=args.template)
    pool = load_pool(args.pool)
    overrides = {"max_turns": args.max_turns} if args.max_turns is not None else None
    return Router(policy, pool, config=policy.run_config(overrides), progress=progress)


def cmd_ask(args: argparse.Namespace) -> int:
    from router_core.cost import router_r1_reward
    from router_core.loop import collect
    from router_core.metrics import exact_match, f1_score
    from router_core.step import Step

    err = sys.stderr
    say = (lambda msg: print(msg, file=err, flush=True))
    router = build_router(args, progress=None if args.json else (lambda m: say(f"· {m}")))
    t0 = time.perf_counter()
    steps: list[Step] = []
    first_step_s = None
    session_id = uuid.uuid4().hex
    stream = router.run(args.question, args.alpha, session_id=session_id)
    store = None
    if not args.no_store:
        from storage import TraceStore
        from storage.recorder import recorded
        store = TraceStore(args.db)
        stream = recorded(store, stream, session_id=session_id, question=args.question, alpha=args.alpha,
                          policy=router.policy.name, engine=router.policy.engine, pool=router.pool.snapshot(),
                          gold=args.gold)
    for step in stream:
        steps.append(step)
        if first_step_s is None:
            first_step_s = time.perf_counter() - t0
        if not args.json:
            print(format_step(step), flush=True)
    res = collect(steps, args.question, args.alpha, args.gold)
    wall = time.perf_counter() - t0
    em = exact_match(res.answer, args.gold) if args.gold else None
    f1 = f1_score(res.answer, args.gold) if args.gold else None
    reward = router_r1_reward(res.answer, args.gold, res.format_ok, res.cost_usd, args.alpha) if args.gold else None
    if args.json:
        out = {
            "session_id": res.session_id, "question": args.question, "answer": res.answer,
            "gold": args.gold, "em": em, "f1": f1, "reward": reward, "cost_usd": res.cost_usd,
            "alpha": args.alpha, "policy": router.policy.name, "pool": router.pool.name,
            "calls": res.calls, "router_tokens": res.router_tokens, "candidate_tokens": res.candidate_tokens,
            "wall_s": round(wall, 3), "first_step_s": round(first_step_s or 0.0, 3),
            "stored": store.where if store is not None else None,
            "steps": [step_json(s) for s in steps],
        }
        print(json.dumps(out, ensure_ascii=False))
    else:
        print("─" * 60)
        print(f"answer   {res.answer if res.answer is not None else '(none)'}")
        if args.gold:
            print(f"gold     {' | '.join(args.gold)}   EM {em:.0f}  F1 {f1:.2f}  reward@α {reward:+.3f}")
        print(f"cost     ${res.cost_usd:.8f} over {res.calls} call(s)   α {args.alpha}")
        print(f"tokens   router {res.router_tokens}, candidates {res.candidate_tokens}")
        print(f"time     {wall:.1f} s (first step after {first_step_s or 0:.1f} s)   session {res.session_id}")
        if store is not None:
            print(f"stored   in {store.where}")
    if store is not None:
        store.close()
    return 0 if res.answer is not None else 3


def step_json(s) -> dict:
    d = {"index": s.index, "kind": s.kind, "model": s.request_model, "written_model": s.written_model,
         "query": s.query, "response": s.response, "text": s.text,
         "input_tokens": s.input_tokens, "output_tokens": s.output_tokens,
         "router_input_tokens": s.router_input_tokens, "router_output_tokens": s.router_output_tokens,
         "cost_usd": s.cost_usd, "latency_s": round(s.latency_s, 4), "status": s.status, "flags": s.flags,
         "error": s.error}
    if s.decision is not None:
        d["decision"] = s.decision
    if s.choice is not None:
        d["choice"] = s.choice.to_dict()
    return d


def format_step(s) -> str:
    head = f"[{s.index:>2}] {s.kind:<6} {s.latency_s:6.2f}s"
    flag = f"  ⚑ {', '.join(s.flags)}" if s.flags else ""
    if s.kind == "think":
        return f"{head}  {s.text[:300]}{flag}"
    if s.kind == "route":
        lines = [f"{head}  → {s.request_model or s.written_model or '?'}: {s.query or ''}{flag}"]
        if s.choice:
            pb = " ".join(f"{m}={p:.2f}" for m, p in zip(s.choice.models, s.choice.probs_before))
            pa = " ".join(f"{m}={p:.2f}" for m, p in zip(s.choice.models, s.choice.probs_after))
            lines.append(f"{'':>19}choice before α: {pb} | after α={s.choice.alpha}: {pa}")
        reply = (s.response or "").replace("\n", " ")
        lines.append(f"{'':>19}← {reply[:400]}")
        lines.append(f"{'':>19}{s.input_tokens}+{s.output_tokens} tok  ${s.cost_usd:.8f}  call {s.call_latency_s:.2f}s"
                     + (f"  error: {s.error}" if s.error else ""))
        return "\n".join(lines)
    if s.kind == "answer":
        return f"{head}  ANSWER: {s.text}{flag}"
    return f"{head}  {s.status.upper()}: {s.error}{flag}"


def _add_filter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters")
    g.add_argument("--text", help="text in the question or answer")
    g.add_argument("--dataset")
    g.add_argument("--correct", choices=["yes", "no"], help="EM = 1 (yes) or 0 (no)")
    g.add_argument("--model", help="sessions that called this candidate")
    g.add_argument("--alpha-min", type=float)
    g.add_argument("--alpha-max", type=float)
    g.add_argument("--cost-min", type=float)
    g.add_argument("--cost-max", type=float)
    g.add_argument("--status", choices=["running", "done", "stopped", "error", "interrupted"])
    g.add_argument("--label", help="annotation label")
    g.add_argument("--run-id", help="eval run id")


def _filters(args: argparse.Namespace):
    from storage import SessionFilter
    return SessionFilter(text=args.text, dataset=args.dataset,
                         correct=None if args.correct is None else args.correct == "yes", model=args.model,
                         alpha_min=args.alpha_min, alpha_max=args.alpha_max, cost_min=args.cost_min,
                         cost_max=args.cost_max, status=args.status, label=args.label, run_id=args.run_id)


def cmd_sessions(args: argparse.Namespace) -> int:
    from storage import TraceStore
    with TraceStore(args.db) as store:
        df, total = store.list_sessions(_filters(args), sort=args.sort, desc=not args.asc, page=args.page,
                                        page_size=args.limit)
    if df.empty:
        print(f"no sessions match ({total} in total) in {store.where}")
        return 0
    show = df[["id", "created_at", "status", "alpha", "em", "cost_usd", "calls", "question", "answer"]].copy()
    show["id"] = show["id"].str[:12]
    show["created_at"] = [time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) for t in show["created_at"]]
    show["question"] = show["question"].str.slice(0, 50)
    show["answer"] = show["answer"].fillna("").str.slice(0, 30)
    import pandas as pd
    with pd.option_context("display.max_columns", None, "display.width", 200):
        print(show.to_string(index=False))
    first = args.page * args.limit
    shown = f"{total:,}+" if df.attrs.get("total_capped") else f"{total}"
    print(f"sessions {first + 1}–{first + len(df)} of {shown} in {store.where}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from storage import TraceStore
    out = Path(args.out)
    tmp = out.with_name(out.name + ".part")
    with TraceStore(args.db) as store:
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                n = store.export_jsonl(f, _filters(args))
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    print(f"exported {n} session(s) to {out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from storage import TraceStore
    path = Path(args.file)
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror})") from None
    with f, TraceStore(args.db) as store:
        rep = store.import_jsonl(f, source=str(path))
    for _, msg in rep.errors:
        print(f"bad line: {msg}", file=sys.stderr)
    print(f"imported {rep.imported}, already present {rep.skipped}, bad lines {len(rep.errors)} into {store.where}")
    return 1 if rep.errors else 0


def _datasets(names: list[str], limit: int | None):
    from evaluation.datasets import bundled_datasets, load_dataset
    bundled = bundled_datasets()
    paths: list[Path] = []
    for n in names:
        if n == "bundled":
            paths += list(bundled.values())
        elif n in bundled:
            paths.append(bundled[n])
        else:
            paths.append(Path(n))
    items = []
    for p in paths:
        if not p.exists():
            raise ValueError(f"--dataset: no file {p} (or a bundled set: {', '.join(['bundled', *bundled])})")
        items += load_dataset(p, limit=limit)
    return items


def cmd_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from evaluation.report import build_report, markdown, write
    from evaluation.runner import EvalRunner, default_run_id, parse_alphas, parse_baselines
    from router_core.policy import customise, load_policies
    from router_core.pool import load_pool
    from storage import TraceStore

    items = _datasets(args.dataset, args.limit)
    policy = customise(load_policies(args.policies).get(args.policy), model=args.policy_model,
                       engine=args.policy_engine, template=args.template)
    pool = load_pool(args.pool)
    alphas = parse_alphas(args.alpha)
    baselines = parse_baselines(args.baselines, pool)
    overrides = {"max_turns": args.max_turns} if args.max_turns is not None else None
    run_id = args.run_id or default_run_id(items, policy, pool, overrides)
    with TraceStore(args.db) as store:
        runner = EvalRunner(store, policy, pool, run_id=run_id, alphas=alphas, baselines=baselines,
                            overrides=overrides, batch=args.batch)
        print(f"eval run {run_id}: {len(items)} question(s) × router at α {', '.join(f'{a:g}' for a in alphas)}"
              f" + baselines {', '.join(baselines) or 'none'}; storing in {store.where}", file=sys.stderr)
        bar = tqdm(total=1, unit="session", dynamic_ncols=True, file=sys.stderr, disable=None)

        def progress(phase: str, done: int, total: int) -> None:
            bar.total = total
            bar.set_description(phase)
            bar.update(done - bar.n)

        try:
            summary = runner.run(items, progress)
        except KeyboardInterrupt:
            bar.close()
            print(f"interrupted: finished sessions are stored; run the same command to resume run {run_id}",
                  file=sys.stderr)
            return 130
        bar.close()
        print(f"{summary.done} session(s) run, {summary.skipped} already done, {summary.failed} failed, "
              f"{summary.stopped} stopped, {summary.unavailable} baseline(s) without a source, "
              f"{summary.seconds:.0f}s", file=sys.stderr)
        rep = build_report(store, [run_id], alphas)
    print(markdown(rep))
    out_dir = Path(args.report_dir or Path("eval-results") / run_id)
    files = write(rep, out_dir)
    print(f"report: {', '.join(str(f) for f in files)}", file=sys.stderr)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({
            "run_id": run_id, "summary": summary.__dict__ | {"session_ids": None},
            "strong": rep.strong, "weak": rep.weak, "curves": rep.curves,
            "table": rep.table.to_dict(orient="records")}, indent=2, default=str), encoding="utf-8")
    return 1 if summary.failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from evaluation.report import build_report, markdown, write
    from storage import TraceStore
    with TraceStore(args.db) as store:
        rep = build_report(store, args.run_id)
    if rep.empty:
        print(f"no finished sessions for run(s) {', '.join(args.run_id)} in {store.where}", file=sys.stderr)
        return 1
    print(markdown(rep))
    if args.out:
        print(f"report: {', '.join(str(f) for f in write(rep, Path(args.out)))}", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ui.app import serve
    return serve(args)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="app.py", description="Router-R1 Studio: watch a multi-round LLM router work.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--auth", action="append", default=None, metavar="USER:PASSWORD",
                   help="require a login (repeatable for several users)")
    p.add_argument("--share", action="store_true", help="ask Gradio for a public share link (needs internet)")
    _add_router_args(p)
    sub = p.add_subparsers(dest="cmd")
    a = sub.add_parser("ask", help="answer one question, streaming each step")
    a.add_argument("question")
    _add_router_args(a)
    a.add_argument("--gold", action="append", default=[], help="accepted answer (repeatable) for EM/F1")
    a.add_argument("--json", action="store_true", help="print one JSON object at the end instead of a stream")
    a.add_argument("--db", default=None, help="trace store URL or SQLite path (default: per-user data dir, "
                                              "or $ROUTER_STUDIO_DB)")
    a.add_argument("--no-store", action="store_true", help="do not store the session")
    ls = sub.add_parser("sessions", help="list stored sessions as a table")
    ls.add_argument("--db", default=None)
    _add_filter_args(ls)
    ls.add_argument("--sort", default="created_at")
    ls.add_argument("--asc", action="store_true")
    ls.add_argument("--page", type=int, default=0)
    ls.add_argument("--limit", type=int, default=30)
    ex = sub.add_parser("export", help="write sessions (with steps and annotations) as JSON lines")
    ex.add_argument("--db", default=None)
    ex.add_argument("--out", required=True)
    _add_filter_args(ex)
    im = sub.add_parser("import", help="import sessions from a JSON lines export (idempotent)")
    im.add_argument("file")
    im.add_argument("--db", default=None)
    ev = sub.add_parser("eval", help="run the router and baselines over question sets; stored, resumable")
    ev.add_argument("--dataset", action="append", required=True,
                    help="question file (FlashRAG/Router-R1/plain JSONL, CSV, parquet) or a bundled set: "
                         "single_hop, multi_hop, bundled (repeatable)")
    _add_router_args(ev, alpha_list=True)
    ev.add_argument("--limit", type=int, default=None, help="first N questions of each file")
    ev.add_argument("--baselines", default="all", help="all | none | comma list of only, only:<Model>, largest, "
                                                       "cheapest, random, knn (default all)")
    ev.add_argument("--batch", type=int, default=1, help="router rollouts advancing together (default 1)")
    ev.add_argument("--run-id", default=None, help="default: derived from questions, policy and pool (resumes)")
    ev.add_argument("--db", default=None)
    ev.add_argument("--json-out", default=None, help="write the results table and run summary as JSON")
    ev.add_argument("--report-dir", default=None, help="where results.md/.csv and figures.html go "
                                                       "(default eval-results/<run id>)")
    rp = sub.add_parser("report", help="results table of stored eval runs")
    rp.add_argument("--run-id", action="append", required=True)
    rp.add_argument("--db", default=None)
    rp.add_argument("--out", default=None, help="also write results.md/.csv and figures.html here")
    p.add_argument("--db", default=None, help="trace store URL or SQLite path")
    args = p.parse_args(argv)
    from router_core.engines import EngineError
    from router_core.policy import PolicyError
    from router_core.pool import PoolError
    from router_core.protocol import TemplateError
    from router_core.weights import WeightsError
    from storage import StoreError
    from evaluation.datasets import DatasetError  # noqa: F401 — a ValueError, named here for readers
    commands = {"ask": cmd_ask, "sessions": cmd_sessions, "export": cmd_export, "import": cmd_import,
                "eval": cmd_eval, "report": cmd_report}
    try:
        return commands.get(args.cmd, cmd_serve)(args)
    except (PoolError, PolicyError, TemplateError, WeightsError, EngineError, StoreError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
