"""The command line: `python app.py [COMMAND] [OPTIONS]`; `serve` (the web app) is the default command.

Options shared by several commands (the router options and `--db`) are defined once, in
parent parsers whose defaults are suppressed, and attached both to the top level and to each
command. An option therefore means the same wherever it is written: `app.py --db D ask Q` and
`app.py ask Q --db D` store in D (after the command wins when both are given). Defaults are
filled in after parsing, from `DEFAULTS`. Every bad input ends in one line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from router_core.question import QUESTION_MAX_CHARS, question_problem  # one rule for the page, the API and the CLI

COMMANDS = ("serve", "serve-api", "ask", "sweep", "sessions", "export", "export-html", "import", "eval", "report",
            "diff", "calibrate", "collect", "train", "export-training")
DEFAULTS: dict[str, Any] = {
    "alpha": None, "pool": None, "policy": None, "policies": None, "policy_model": None, "policy_engine": None,
    "template": None, "max_turns": None, "settings": None, "db": None, "otlp": None,
    "host": "127.0.0.1", "port": 7860, "auth": None, "share": False, "allow_model_edits": False,
    "allow_key_env": None, "allow_endpoint": None, "api_token_env": None, "max_concurrent_sessions": None,
    "max_queue_wait": None,
}
SERVE_ONLY = ("host", "port", "auth", "share", "allow_model_edits", "allow_key_env", "allow_endpoint",
              "api_token_env", "max_concurrent_sessions", "max_queue_wait")
# what `serve-api` takes: no page, so no login, share or edits
API_ONLY = ("host", "port", "api_token_env", "max_concurrent_sessions", "max_queue_wait")
TRACED = ("serve", "serve-api", "ask", "sweep", "eval")  # the commands that run sessions (--otlp)
SUPPRESS = argparse.SUPPRESS


class CliError(ValueError):
    """A bad command-line value; printed as one line."""


# ---------------------------------------------------------------------- option groups (defined once)

def _router_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("router")
    g.add_argument("--alpha", default=SUPPRESS, metavar="A",
                   help="cost coefficient α in [0, 1] (default 0); eval takes a comma list (default 0,0.5,0.9)")
    g.add_argument("--pool", default=SUPPRESS, metavar="FILE", help="model pool YAML (default assets/pools/local.yaml)")
    g.add_argument("--policy", default=SUPPRESS, metavar="NAME", help="policy preset from assets/policies.yaml")
    g.add_argument("--policies", default=SUPPRESS, metavar="FILE", help="another policies YAML file")
    g.add_argument("--policy-model", default=SUPPRESS, metavar="PATH_OR_HUB_ID",
                   help="point the policy at another checkpoint")
    g.add_argument("--policy-engine", default=SUPPRESS, metavar="ENGINE",
                   help="llamacpp | transformers | vllm | openai")
    g.add_argument("--template", default=SUPPRESS, metavar="FILE", help="router prompt template file")
    g.add_argument("--max-turns", default=SUPPRESS, metavar="N",
                   help="route turns before the forced answer (default: the policy's, 4)")
    g.add_argument("--set", dest="settings", action="append", default=SUPPRESS, metavar="KEY=VALUE",
                   help="a run setting of the preset for this command, e.g. quality=true (repeatable; the names are "
                        "RunConfig's in router_core/policy.py)")
    return p


def _store_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--db", default=SUPPRESS, metavar="PATH_OR_URL",
                   help="trace store: a SQLite file or a database URL (default: the per-user data dir, "
                        "or $ROUTER_STUDIO_DB)")
    return p


def _trace_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--otlp", default=SUPPRESS, metavar="URL",
                   help="send each session as an OpenTelemetry trace to this OTLP/HTTP endpoint, e.g. "
                        "http://127.0.0.1:6006/v1/traces (Phoenix); default $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return p


def _serve_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("serve")
    g.add_argument("--host", default=SUPPRESS, help="interface to listen on (default 127.0.0.1)")
    g.add_argument("--port", default=SUPPRESS, help="port (default 7860)")
    g.add_argument("--auth", action="append", default=SUPPRESS, metavar="USER:PASSWORD",
                   help="require a login (repeatable for several users)")
    g.add_argument("--share", action="store_true", default=SUPPRESS,
                   help="ask Gradio for a public share link (needs internet)")
    g.add_argument("--allow-model-edits", action="store_true", default=SUPPRESS,
                   help="let logged-in visitors add or edit models for their own runs (needs --auth)")
    g.add_argument("--allow-key-env", action="append", default=SUPPRESS, metavar="NAME",
                   help="an environment variable a visitor's model may name as its key (repeatable)")
    g.add_argument("--allow-endpoint", action="append", default=SUPPRESS, metavar="URL",
                   help="a URL prefix a visitor's model may call (repeatable)")
    g.add_argument("--api-token-env", default=SUPPRESS, metavar="NAME",
                   help="the OpenAI-compatible API (/v1) requires Authorization: Bearer <the value of NAME>")
    g.add_argument("--max-concurrent-sessions", default=SUPPRESS, metavar="N",
                   help="sessions run at once when the policy and candidates are servers (openai engine; default "
                        "8); sessions on in-process engines always run one at a time. The page and /v1 share them")
    g.add_argument("--max-queue-wait", default=SUPPRESS, metavar="S",
                   help="seconds an API request waits in line for a place before 429 with Retry-After (default 60)")
    return p


def _filter_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("filters")
    g.add_argument("--text", help="text in the question or answer")
    g.add_argument("--dataset")
    g.add_argument("--correct", choices=["yes", "no"], help="EM = 1 (yes) or 0 (no)")
    g.add_argument("--model", help="sessions that called this candidate")
    g.add_argument("--alpha-min")
    g.add_argument("--alpha-max")
    g.add_argument("--cost-min")
    g.add_argument("--cost-max")
    g.add_argument("--status", choices=["running", "done", "stopped", "error", "interrupted"])
    g.add_argument("--label", help="annotation label")
    g.add_argument("--run-id", help="eval run id")
    return p


def build_parser() -> argparse.ArgumentParser:
    router, store, serve, trace = _router_options(), _store_options(), _serve_options(), _trace_options()
    root = argparse.ArgumentParser(
        prog="app.py", parents=[router, store, serve, trace],
        description="Router-R1 Studio: watch a multi-round LLM router work. Without a command: serve the web app.")
    sub = root.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.add_parser("serve", parents=[router, store, serve, trace], help="serve the web app and its OpenAI-compatible API "
                                                                 "(the default command)")
    sub.add_parser("serve-api", parents=[router, store, serve, trace], help="serve only the OpenAI-compatible API")
    a = sub.add_parser("ask", parents=[router, store, trace], help="answer one question, streaming each step")
    a.add_argument("question")
    a.add_argument("--gold", action="append", default=[], help="accepted answer for EM/F1 (repeatable; aliases "
                                                              "separated by |)")
    a.add_argument("--json", action="store_true", help="print one JSON object at the end instead of a stream")
    a.add_argument("--no-store", action="store_true", help="do not store the session")
    sw = sub.add_parser("sweep", parents=[router, store, trace], help="ask one question at several α values in turn")
    sw.add_argument("question")
    sw.add_argument("--gold", action="append", default=[], help="accepted answer (repeatable; aliases with |)")
    sw.add_argument("--json", action="store_true", help="print one JSON object whose `runs` hold one `ask --json` "
                                                        "object per α")
    sw.add_argument("--no-store", action="store_true", help="do not store the sessions")
    eh = sub.add_parser("export-html", parents=[store], help="write one stored session as a standalone HTML page")
    eh.add_argument("--session", required=True, help="session id (or a unique prefix, as the tables show)")
    eh.add_argument("--out", required=True, help="the .html file to write (a new regular file)")
    ls = sub.add_parser("sessions", parents=[store, _filter_options()], help="list stored sessions as a table")
    ls.add_argument("--sort", default="created_at")
    ls.add_argument("--asc", action="store_true")
    ls.add_argument("--page", default="1", help="page number, from 1")
    ls.add_argument("--limit", default="30", help="sessions per page (1..1000)")
    ls.add_argument("--refresh-failures", action="store_true",
                    help="recompute the suggested failure kind ('why wrong') of the matching sessions under today's "
                         "rules, store the ones that changed and say how many did")
    ex = sub.add_parser("export", parents=[store, _filter_options(), trace],
                        help="write sessions (with steps and annotations) as JSON lines, or send them as traces")
    ex.add_argument("--out", default=None, help="the file to write (a new regular file; never a device or link)")
    ex.add_argument("--format", choices=EXPORT_FORMATS, default=None,
                    help="jsonl: sessions with their steps and annotations (what `import` reads); csv: one row per "
                         "session, the page's CSV columns (default: from --out's extension, .jsonl or .csv)")
    im = sub.add_parser("import", parents=[store], help="import sessions from a JSON lines export (idempotent)")
    im.add_argument("file")
    im.add_argument("--replace", action="store_true",
                    help="overwrite sessions already stored with different content under the same id")
    ev = sub.add_parser("eval", parents=[router, store, trace],
                        help="run the router and baselines over question sets; stored, resumable")
    ev.add_argument("--dataset", action="append", required=True,
                    help="question file (FlashRAG/Router-R1/plain JSONL, CSV, parquet), a bundled set: "
                         "single_hop, multi_hop, bundled (the two), dev (the tuning set), or a benchmark by name "
                         "from the data folder: musique, musique/train, ambigqa, … (repeatable)")
    ev.add_argument("--data-dir", default=None, metavar="DIR",
                    help="folder of FlashRAG-format sets, <DIR>/<name>/<split>.jsonl, for --dataset NAME[/SPLIT] "
                         "(default $ROUTER_STUDIO_DATA, else the shipped train samples in assets/questions/public)")
    ev.add_argument("--limit", default=None, help="first N questions of each file")
    ev.add_argument("--baselines", default="all", help="all | none | comma list of only, only:<Model>, largest, "
                                                       "cheapest, random, knn (default all)")
    ev.add_argument("--concurrency", "--batch", dest="batch", default="1",
                    help="router rollouts in flight at once (default 1): engines that batch on their side (a vLLM "
                         "server through the openai engine, vLLM or transformers in process) serve them together")
    ev.add_argument("--run-id", default=None, help="default: derived from questions, policy and pool (resumes)")
    ev.add_argument("--json-out", default=None, help="write the results table and run summary as JSON")
    ev.add_argument("--report-dir", default=None, help="where results.md/.csv and figures.html go "
                                                       "(default eval-results/<run id>)")
    rp = sub.add_parser("report", parents=[store], help="results table of stored eval runs")
    rp.add_argument("--run-id", action="append", required=True)
    rp.add_argument("--out", default=None, help="also write results.md/.csv and figures.html here")
    rp.add_argument("--json", action="store_true", help="print one JSON object: the table, per-dataset figures with "
                                                        "Router-R1's published ones beside them, the failure breakdown")
    df = sub.add_parser("diff", parents=[store],
                        help="which items side B gained and lost against side A; a side is (run, method, α)")
    df.add_argument("--run-id", action="append", required=True,
                    help="side A's run, then side B's (once: both sides are in that run, told apart by --alpha or "
                         "--method)")
    df.add_argument("--method", action="append", default=[],
                    help="the method to compare (default: each run's router policy); twice: side A's, then side B's")
    df.add_argument("--alpha", default=None,
                    help="α of both sides (0.5), or of side A then side B (0,1); default: a run's only α, else every "
                         "α both sides hold, pairing per α")
    df.add_argument("--json", action="store_true", help="print one JSON object: the sides, EM and $ per item of "
                                                        "each, and every compared item by bucket")
    cal = sub.add_parser("calibrate", parents=[router],
                         help="label the pool's models for the per-hop quality estimate: each question asked of "
                              "each model once, scored against its gold answers; resumable")
    cal.add_argument("--dataset", action="append", required=True,
                     help="question file or set name as for eval: a public train or dev split (test splits are "
                          "refused); bad lines are named and skipped (repeatable)")
    cal.add_argument("--data-dir", default=None, metavar="DIR", help="data folder for --dataset NAME[/SPLIT]")
    cal.add_argument("--limit", default=None, help="first N questions of each file")
    cal.add_argument("--out", default=None, metavar="FILE",
                     help="labels file (default assets/calibration/<pool name>.jsonl: the one the app reads)")
    from .train_cli import add_parsers
    add_parsers(sub, router, store)
    return root


def parse(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    given = set(vars(args))
    for k, v in DEFAULTS.items():
        if not hasattr(args, k):
            setattr(args, k, v)
    args.cmd = args.cmd or "serve"
    allowed = {"serve": SERVE_ONLY, "serve-api": API_ONLY}.get(args.cmd, ())
    stray = [k for k in SERVE_ONLY if k in given and k not in allowed]
    if stray:
        where = "`serve`" if stray[0] not in API_ONLY else "`serve` and `serve-api`"
        raise CliError(f"--{stray[0].replace('_', '-')} applies to {where} only, not `{args.cmd}`")
    return args


# ---------------------------------------------------------------------- value checks

def integer(value: Any, flag: str, lo: int, hi: int) -> int:
    try:
        v = int(str(value).strip())
    except ValueError:
        raise CliError(f"{flag}: '{value}' is not a whole number") from None
    if not lo <= v <= hi:
        raise CliError(f"{flag}: {v} is outside {lo}..{hi}")
    return v


def number(value: Any, flag: str, lo: float = -math.inf, hi: float = math.inf) -> float | None:
    if value is None:
        return None
    try:
        v = float(str(value).strip())
    except ValueError:
        raise CliError(f"{flag}: '{value}' is not a number") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise CliError(f"{flag}: {v:g} is outside {lo:g}..{hi:g}")
    return v


def one_alpha(value: Any) -> float:
    from router_core.choice import parse_alpha
    try:
        return 0.0 if value is None else parse_alpha(value, "--alpha")
    except ValueError as e:
        raise CliError(str(e)) from None


def text_arg(value: str, what: str, max_chars: int = QUESTION_MAX_CHARS) -> str:
    """A question (or other free text) from argv: valid UTF-8, not empty, not over the cap (router_core.question)."""
    if problem := question_problem(value, max_chars):
        raise CliError(f"{what}: {problem}")
    return value.strip()


# ---------------------------------------------------------------------- building from options

def overrides(args: argparse.Namespace) -> dict[str, Any] | None:
    """Run settings given on the command line (--max-turns, --set KEY=VALUE); the preset checks their names."""
    from router_core.policy import setting_from_text
    out: dict[str, Any] = {}
    for kv in args.settings or []:
        key, sep, value = kv.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--set: expected KEY=VALUE, got '{kv[:40]}'")
        out[key.strip()] = setting_from_text(value.strip())
    if args.max_turns is not None:
        out["max_turns"] = integer(args.max_turns, "--max-turns", 0, 64)
    return out or None


def policy_from(args: argparse.Namespace):
    """The policy the options name (preset, then --policy-model/-engine/--template applied)."""
    from router_core.policy import customise, load_policies
    book = load_policies(args.policies)
    return book, customise(book.get(args.policy), model=args.policy_model, engine=args.policy_engine,
                           template=args.template)


def router_from(args: argparse.Namespace, progress: Callable[[str], None] | None = None):
    from evaluation.calibrate import quality_for
    from router_core.loop import Router
    from router_core.pool import load_pool
    _, policy = policy_from(args)
    pool, cfg = load_pool(args.pool), policy.run_config(overrides(args))
    return Router(policy, pool, config=cfg, progress=progress, quality=quality_for(policy, cfg, pool))


# ---------------------------------------------------------------------- commands

def golds_from(values: list[str]) -> list[str]:
    """--gold values (repeatable), each with aliases separated by | as in the page."""
    return [text_arg(g, "--gold") for v in values for g in v.split("|") if g.strip()]


def warm(router, say: Callable[[str], None] | None) -> None:
    """Read the router's instructions (the same for every question with this pool and template) before the
    first question, saying so: on two CPU cores the 1.5B router needs about 12 s for them. A llama.cpp router
    keeps them per machine (router_core/engines/prefix_state.py): the next process restores them in a moment."""
    engine = router.policy_engine()  # loaded first, so the time said is the instructions' own
    if say:
        say("· reading the router's instructions")
    t0 = time.perf_counter()
    router.warm()
    if say:
        restored = engine.stats().get("prefix_loads", 0) if hasattr(engine, "stats") else 0
        how = "restored from this machine's copy" if restored else "read"
        say(f"· instructions {how} in {time.perf_counter() - t0:.1f} s")


def run_one(router, store, question: str, alpha: float, gold: list[str], *, quiet: bool):
    """One stored (or not) session, its steps printed as they land unless `quiet`; (result, wall, first step s)."""
    from router_core.session import SessionResult

    from .terminal import step_line
    t0 = time.perf_counter()
    steps = []
    first_step_s = None
    session_id = uuid.uuid4().hex
    stream = router.run(question, alpha, session_id=session_id)
    if store is not None:
        from storage.recorder import recorded
        stream = recorded(store, stream, session_id=session_id, question=question, alpha=alpha,
                          policy=router.policy.name, engine=router.policy.engine, pool=router.pool.snapshot(),
                          gold=gold, settings=router.settings())
    for step in stream:
        steps.append(step)
        if first_step_s is None:
            first_step_s = time.perf_counter() - t0
        if not quiet:
            print(step_line(step, gold), flush=True)
    return SessionResult.of(steps, question, alpha, gold), time.perf_counter() - t0, first_step_s


def cmd_ask(args: argparse.Namespace) -> int:
    from .terminal import session_json, summary_lines

    question = text_arg(args.question, "question")
    gold = golds_from(args.gold)
    alpha = one_alpha(args.alpha)
    say = (lambda msg: print(msg, file=sys.stderr, flush=True))
    router = router_from(args, progress=None if args.json else (lambda m: say(f"· {m}")))
    store = None
    if not args.no_store:
        from storage import TraceStore
        store = TraceStore(args.db)
    try:
        warm(router, None if args.json else say)
        res, wall, first = run_one(router, store, question, alpha, gold, quiet=args.json)
    finally:
        if store is not None:
            store.close()
    where = store.where if store is not None else None
    if args.json:
        print(json.dumps(session_json(res, policy=router.policy.name, pool=router.pool.name, wall_s=wall,
                                      first_step_s=first, stored=where), ensure_ascii=False))
    else:
        print("\n".join(summary_lines(res, wall_s=wall, first_step_s=first, stored=where)))
    return 0 if res.answer is not None else 3


def cmd_sweep(args: argparse.Namespace) -> int:
    """The same question at each α in turn: how the routing and its cost change as α rises."""
    from router_core.choice import parse_alphas

    from .render import money
    from .terminal import RULE, session_json, summary_lines

    question = text_arg(args.question, "question")
    gold = golds_from(args.gold)
    try:
        alphas = parse_alphas(args.alpha if args.alpha is not None else "0,0.5,1", "--alpha", limit=12)
    except ValueError as e:
        raise CliError(str(e)) from None
    say = (lambda msg: print(msg, file=sys.stderr, flush=True))
    router = router_from(args, progress=None if args.json else (lambda m: say(f"· {m}")))
    store = None
    if not args.no_store:
        from storage import TraceStore
        store = TraceStore(args.db)
    runs = []
    try:
        warm(router, None if args.json else say)
        for a in alphas:
            if not args.json:
                print(f"{RULE}\nα = {a:g}", flush=True)
            res, wall, first = run_one(router, store, question, a, gold, quiet=args.json)
            runs.append(session_json(res, policy=router.policy.name, pool=router.pool.name, wall_s=wall,
                                     first_step_s=first, stored=store.where if store is not None else None))
            if not args.json:
                print("\n".join(summary_lines(res, wall_s=wall, first_step_s=first, stored=None)[1:]))
    finally:
        if store is not None:
            store.close()
    if args.json:
        print(json.dumps({"question": question, "gold": gold, "alphas": alphas, "runs": runs}, ensure_ascii=False))
    else:
        print(RULE)
        for r in runs:
            models = sorted({s["request_model"] for s in r["steps"] if s["kind"] == "route" and s["request_model"]})
            print(f"α {r['alpha']:<5g} {money(r['cost_usd']):>10} {r['calls']} call(s) "
                  f"[{', '.join(models) or 'none'}] → {r['answer']}" + (f"  EM {r['em']:.0f}" if r["em"] is not None
                                                                        else ""))
    return 0 if all(r["answer"] is not None for r in runs) else 3


def cmd_export_html(args: argparse.Namespace) -> int:
    from storage import TraceStore
    from storage.files import write_new_file
    from storage.summary import full_session_id

    from .export_html import session_page
    with TraceStore(args.db) as store:
        try:
            sid = full_session_id(store, args.session)
            sess, steps, notes = store.load_session(sid)
        except KeyError as e:
            raise CliError(f"--session: {e.args[0] if e.args else e}") from None
        _, out = write_new_file(args.out, lambda f: f.write(session_page(sess, steps, notes)))
    print(f"wrote the session page to {out} (open it in a browser; it needs no network)")
    return 0


def filters_from(args: argparse.Namespace):
    from storage import SessionFilter
    return SessionFilter(text=text_arg(args.text, "--text", 500) if args.text is not None else None,
                         dataset=args.dataset, correct=None if args.correct is None else args.correct == "yes",
                         model=args.model, alpha_min=number(args.alpha_min, "--alpha-min", 0, 1),
                         alpha_max=number(args.alpha_max, "--alpha-max", 0, 1),
                         cost_min=number(args.cost_min, "--cost-min", 0), cost_max=number(args.cost_max, "--cost-max", 0),
                         status=args.status, label=args.label, run_id=args.run_id)


def cmd_sessions(args: argparse.Namespace) -> int:
    import pandas as pd

    from storage import TraceStore

    from .terminal import when
    page = integer(args.page, "--page", 1, 10 ** 9)
    limit = integer(args.limit, "--limit", 1, 1000)
    f = filters_from(args)
    if args.refresh_failures:
        from .analysis import refresh_words
        with TraceStore(args.db) as store:
            print(refresh_words(store.refresh_failures(f)) + f" in {store.where}")
        return 0
    with TraceStore(args.db) as store:
        pg = store.list_sessions(f, sort=args.sort, desc=not args.asc, page=page - 1, page_size=limit)
    df = pg.rows
    if df.empty:
        print(f"no sessions on page {page} ({pg.total_text} match) in {store.where}")
        return 0
    show = df[["id", "created_at", "status", "alpha", "em", "cost_usd", "calls", "question", "answer"]].copy()
    show["id"] = show["id"].str[:12]
    show["created_at"] = [when(t) for t in show["created_at"]]
    show["question"] = show["question"].str.slice(0, 50)
    show["answer"] = show["answer"].fillna("").str.slice(0, 30)
    with pd.option_context("display.max_columns", None, "display.width", 200):
        print(show.to_string(index=False))
    first = (page - 1) * limit
    print(f"sessions {first + 1}–{first + len(df)} of {pg.total_text} in {store.where}")
    return 0


EXPORT_FORMATS = ("jsonl", "csv")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


def export_format(out: str, given: str | None) -> str:
    """The format of `export --out`: --format, else the file's extension; an extension that says another format
    than --format, or none that says one, is refused (a .csv holding JSON lines helps nobody)."""
    ext = Path(out).suffix.lower()
    said = _EXTENSIONS.get(ext)
    if given is None and said is None:
        raise CliError(f"export: cannot tell the format from '{out}' (end --out with .jsonl or .csv, or give "
                       f"--format {'|'.join(EXPORT_FORMATS)})")
    if given is not None and said is not None and said != given:
        raise CliError(f"export: --format {given} but --out ends with {ext} ({said}); make them agree")
    return given or said  # type: ignore[return-value]


def cmd_export(args: argparse.Namespace) -> int:
    from storage import TraceStore
    from storage.csv_export import write_csv
    from storage.files import check_target, write_new_file
    if args.out is None and not args.otlp:
        raise CliError("export: give --out FILE (.jsonl: JSON lines, .csv: a row per session) and/or --otlp URL "
                       "(traces)")
    fmt = None
    if args.out is not None:
        check_target(args.out)  # a device, link or missing folder is named before the format is looked at
        fmt = export_format(args.out, args.format)
    f = filters_from(args)
    with TraceStore(args.db) as store:
        if args.out is not None:
            write = (lambda fh: store.export_jsonl(fh, f)) if fmt == "jsonl" else (lambda fh: write_csv(store, fh, f))
            n, out = write_new_file(args.out, write)
            print(f"exported {n} session(s) to {out} ({'JSON lines' if fmt == 'jsonl' else 'CSV'})")
        if args.otlp:
            from storage.otlp import Tracer
            tracer = Tracer(args.otlp)
            n = 0
            try:
                for sid in store.iter_ids(f):
                    sess, steps, _ = store.load_session(sid)
                    tracer.export(sess, steps)
                    n += 1
                ok = tracer.flush(30)
            finally:
                tracer.close()
            if tracer.failed or not ok:
                print(f"error: could not send the traces to {args.otlp} (is the collector running?)",
                      file=sys.stderr)
                return 1
            print(f"sent {n} session(s) as traces to {args.otlp}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from storage import TraceStore
    path = Path(args.file)
    try:
        if path.is_dir():
            raise CliError(f"{path}: is a folder, not a JSON lines file")
        fh = open(path, "rb")
    except OSError as e:
        raise CliError(f"{path}: cannot read ({e.strerror or e})") from None
    with fh, TraceStore(args.db) as store:
        rep = store.import_jsonl(fh, source=str(path), replace=args.replace)
    for _, msg in rep.errors:
        print(f"bad line: {msg}", file=sys.stderr)
    for _, msg in rep.conflicting:
        print(f"conflict: {msg}", file=sys.stderr)
    print(f"{rep.summary()} into {store.where}")
    return 1 if (rep.errors or rep.conflicting) else 0


def datasets_from(names: list[str], limit: int | None, data_dir: str | None = None,
                  on_bad: Callable[[str], None] | None = None):
    """Items of each --dataset: a bundled set, a file, or a benchmark by name from the data folder (`on_bad`:
    report and skip bad records instead of stopping at the first)."""
    from evaluation.datasets import EVALUATION_SETS, bundled_datasets, data_folder, load_dataset, named_set
    bundled = bundled_datasets()
    paths: list[tuple[Path, str | None]] = []
    for n in names:
        if n == "bundled":
            paths += [(bundled[s], None) for s in EVALUATION_SETS]
        elif n in bundled:
            paths.append((bundled[n], None))
        elif Path(n).exists() or Path(n).suffix:
            paths.append((Path(n), None))
        else:  # a benchmark by name (musique, musique/dev) from the data folder; stored under that name
            name, path = named_set(n, data_folder(data_dir))
            paths.append((path, name))
    items = []
    for p, name in paths:
        if not p.exists():
            raise CliError(f"--dataset: no file {p} (or a bundled set: {', '.join(['bundled', *bundled])}, or a "
                           "benchmark by name from the data folder)")
        items += load_dataset(p, limit=limit, name=name, on_bad=on_bad)
    return items


def cmd_calibrate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from evaluation.calibrate import calibrate
    from router_core.pool import load_pool
    from router_core.quality import labels_path

    limit = integer(args.limit, "--limit", 1, 10 ** 7) if args.limit is not None else None
    for n in args.dataset:
        if "test" in Path(n).stem.lower() or n.rstrip("/").lower().endswith("/test"):
            raise CliError(f"--dataset: '{n}' looks like a test split; calibrate on train or dev splits only "
                           "(test splits are for reporting)")
    bad: list[str] = []
    items = datasets_from(args.dataset, limit, args.data_dir, on_bad=bad.append)
    for msg in bad:
        print(f"skipped: {msg}", file=sys.stderr)
    if not items:
        raise CliError("--dataset: no usable question in " + ", ".join(args.dataset))
    _, policy = policy_from(args)
    pool = load_pool(args.pool)
    out = Path(args.out) if args.out else labels_path(pool.name)
    print(f"calibrating pool {pool.name} ({', '.join(pool.names)}) on {len(items)} question(s)"
          f"{f', {len(bad)} bad line(s) skipped' if bad else ''}; labels in {out}", file=sys.stderr)
    bar = tqdm(total=1, unit="call", dynamic_ncols=True, file=sys.stderr, disable=None)

    def progress(done: int, total: int, what: str) -> None:
        bar.total = total
        bar.set_description(what[:40])
        bar.update(done - bar.n)

    try:
        summary = calibrate(policy, pool, items, out, dataset=",".join(args.dataset), progress=progress)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted: the labels so far are in {out}; run the same command to resume", file=sys.stderr)
        return 130
    bar.close()
    for f in summary.failed[:20]:
        print(f"failed: {f}", file=sys.stderr)
    if summary.answer_in_question:
        print(f"left out {len(summary.answer_in_question)} question(s) whose gold answer is in the question: "
              + ", ".join(summary.answer_in_question[:10]), file=sys.stderr)
    print(f"{summary.asked} call(s), {summary.skipped} already labelled, {len(summary.failed)} failed, "
          f"{summary.seconds:.0f}s", file=sys.stderr)
    for m, (rate, n) in summary.rates().items():
        print(f"{m}: {rate:.2f} correct over {n} question(s)")
    return 1 if summary.failed else 0


def cmd_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from evaluation.report import build_report, markdown, write
    from evaluation.runner import EvalRunner, default_run_id, parse_alphas, parse_baselines
    from router_core.pool import load_pool
    from storage import TraceStore

    limit = integer(args.limit, "--limit", 1, 10 ** 7) if args.limit is not None else None
    batch = integer(args.batch, "--concurrency", 1, 256)
    items = datasets_from(args.dataset, limit, args.data_dir)
    _, policy = policy_from(args)
    pool = load_pool(args.pool)
    alphas = parse_alphas(args.alpha if args.alpha is not None else "0,0.5,0.9")
    baselines = parse_baselines(args.baselines, pool)
    ov = overrides(args)
    run_id = args.run_id or default_run_id(items, policy, pool, ov)
    with TraceStore(args.db) as store:
        runner = EvalRunner(store, policy, pool, run_id=run_id, alphas=alphas, baselines=baselines,
                            overrides=ov, batch=batch)
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
        if summary.recomputed:
            print(f"note: {summary.recomputed} router session(s) were computed again after other sessions displaced "
                  "their cache (more sessions in flight than the engine keeps parked): their text may differ from "
                  "a run at --concurrency 1", file=sys.stderr)
        rep = build_report(store, [run_id], alphas)
    print(markdown(rep))
    out_dir = Path(args.report_dir or Path("eval-results") / run_id)
    files = write(rep, out_dir)
    print(f"report: {', '.join(str(f) for f in files)}", file=sys.stderr)
    if args.json_out:
        from storage.files import write_new_file
        body = json.dumps({"run_id": run_id, "summary": summary.__dict__ | {"session_ids": None},
                           "strong": rep.strong, "weak": rep.weak, "curves": rep.curves,
                           "table": rep.table.to_dict(orient="records")}, indent=2, default=str)
        write_new_file(args.json_out, lambda fh: fh.write(body))
    return 1 if summary.failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from evaluation.report import build_report, markdown, to_json, write
    from storage import TraceStore
    with TraceStore(args.db) as store:
        rep = build_report(store, args.run_id)
    if rep.empty:
        print(f"no finished sessions for run(s) {', '.join(args.run_id)} in {store.where}", file=sys.stderr)
        return 1
    print(json.dumps(to_json(rep), ensure_ascii=False, default=str) if args.json else markdown(rep))
    if args.out:
        print(f"report: {', '.join(str(f) for f in write(rep, Path(args.out)))}", file=sys.stderr)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from evaluation.diff import diff_sides, sides_from
    from storage import TraceStore

    from .analysis import side_words
    from .render import shorten
    alphas = [number(x.strip(), "--alpha", 0, 1) for x in args.alpha.split(",")] if args.alpha else []
    side_a, side_b = sides_from(args.run_id, args.method, alphas)
    with TraceStore(args.db) as store:
        d = diff_sides(store, side_a, side_b)
    if args.json:
        print(json.dumps(d.to_json(), ensure_ascii=False))
        return 0
    print(f"B: {side_words(d.side_b)}\nA: {side_words(d.side_a)}\n{d.summary()}")
    for title, pairs in (("gained", d.gained), ("lost", d.lost)):
        if pairs:
            print(f"\n{title} ({len(pairs)}):")
        for p in pairs:
            at = f"α {p.alpha_a:g}" if p.alpha_a == p.alpha_b else f"α {p.alpha_a:g} / {p.alpha_b:g}"
            print(f"  [{p.dataset} {p.item_id} {at}] {shorten(p.question, 90)}")
            print(f"      gold: {' | '.join(p.gold) or '—'}")
            for side, answer, cost, kind in (("A", p.answer_a, p.cost_a, p.failure_a),
                                             ("B", p.answer_b, p.cost_b, p.failure_b)):
                why = f" · why wrong: {kind.replace('_', ' ')}" if kind else ""
                print(f"      {side}: {shorten(answer, 60) or '—'} · ${cost:.2e}{why}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    args.port = integer(args.port, "--port", 1, 65535)
    from .app import serve
    return serve(args)


def cmd_serve_api(args: argparse.Namespace) -> int:
    args.port = integer(args.port, "--port", 1, 65535)
    from .app import serve_api
    return serve_api(args)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": cmd_serve, "serve-api": cmd_serve_api, "ask": cmd_ask, "sweep": cmd_sweep, "sessions": cmd_sessions, "export": cmd_export,
    "export-html": cmd_export_html, "import": cmd_import, "eval": cmd_eval, "report": cmd_report,
    "diff": cmd_diff, "calibrate": cmd_calibrate,
    "collect": lambda a: _train_cli().cmd_collect(a), "train": lambda a: _train_cli().cmd_train(a),
    "export-training": lambda a: _train_cli().cmd_export_training(a)}


def _train_cli():
    from . import train_cli
    return train_cli


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        args = parse(argv)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from router_core.engines import EngineError
    from router_core.engines.weights import WeightsError
    from storage import StoreError, otlp
    try:
        if args.cmd in TRACED:  # export --otlp sends stored sessions itself; other commands run no session
            otlp.configure(args.otlp)
        return HANDLERS[args.cmd](args)
    except (ValueError, WeightsError, EngineError, StoreError, OSError, otlp.TracingError) as e:
        # Pool, policy, template, dataset and eval errors are ValueErrors that name their file and field.
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        otlp.shutdown()  # sends what is still queued (bounded wait)
