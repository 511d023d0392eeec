"""`app.py collect` and `app.py train`: the command-line side of training a router (training/ holds the work)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .cli import CliError, datasets_from, integer, number, overrides, policy_from

DEFAULT_TRAIN_ALPHAS = "0,0.5,1"


def add_parsers(sub, router: argparse.ArgumentParser, store: argparse.ArgumentParser) -> None:
    co = sub.add_parser("collect", parents=[router, store],
                        help="run a teacher policy (the default preset, or --policy: a trained one for a second "
                             "round) over train questions at each --alpha (default 0,1), stored as eval runs for "
                             "`train`; resumable")
    co.add_argument("--dataset", action="append", required=True,
                    help="train questions: a bundled set (train_two_hop), a file, or a public set by name "
                         "(hotpotqa/train, 2wiki/train, musique/train); test splits are refused (repeatable)")
    co.add_argument("--data-dir", default=None, metavar="DIR", help="data folder for --dataset NAME[/SPLIT]")
    co.add_argument("--limit", default=None, help="first N questions of each file")
    co.add_argument("--no-screen", action="store_true",
                    help="run the teacher on every question, not only on those the pool's largest model answers "
                         "right when asked once")
    co.add_argument("--run-id", default=None, help="the teacher run's id (default: derived from the questions, "
                                                   "teacher and pool, so the same command resumes)")
    tr = sub.add_parser("train", parents=[router, store],
                        help="keep the best trajectory per question and α by Router-R1's reward, fine-tune a LoRA "
                             "on them, write the GGUF adapter llama.cpp loads and its training card; resumable")
    tr.add_argument("--run", action="append", required=True, metavar="RUN_ID",
                    help="a collected run (the teacher's, or a trained policy's in a later round); repeatable")
    tr.add_argument("--out", default=None, metavar="DIR",
                    help="where the adapter, card, checkpoints and examples go (default adapters/<name>)")
    tr.add_argument("--name", default=None, help="the adapter's name (default router-<base>)")
    tr.add_argument("--base", default="shipped:qwen2.5-coder-0.5b-instruct",
                    help="the model trained: shipped:<id> or a local GGUF file, the base llama.cpp loads the "
                         "adapter on (default the shipped Qwen2.5-Coder-0.5B)")
    tr.add_argument("--student-template", default="assets/templates/router_trained.txt", metavar="FILE",
                    help="the student's prompt; it must hold {{ALPHA}} (default assets/templates/router_trained.txt)")
    tr.add_argument("--train-alphas", default=DEFAULT_TRAIN_ALPHAS, metavar="A,B,…",
                    help=f"α values the student is trained at (default {DEFAULT_TRAIN_ALPHAS})")
    tr.add_argument("--min-reward", default="0.5", help="keep a trajectory when its Router-R1 reward at the α "
                                                        "reaches this (default 0.5)")
    tr.add_argument("--epochs", default="2")
    tr.add_argument("--max-steps", default="-1", help="stop after this many optimizer steps (a toy run)")
    tr.add_argument("--rank", default="8", help="LoRA rank (default 8)")
    tr.add_argument("--lr", default="2e-4", help="learning rate (default 2e-4)")
    tr.add_argument("--grad-accum", default="4", help="examples per optimizer step (default 4)")
    tr.add_argument("--max-len", default="768", help="tokens per example at most (default 768)")
    tr.add_argument("--save-steps", default="10", help="checkpoint every N optimizer steps (default 10)")
    tr.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"],
                    help="auto: bf16 autocast where the processor has it (faster here), else fp32")
    tr.add_argument("--think", default="first-sentence", choices=["first-sentence", "whole"],
                    help="how much of each teacher think block the student learns to write (default its first "
                         "sentence: fewer router tokens per session)")
    tr.add_argument("--no-alpha-lead", action="store_true",
                    help="do not start each example's first think block with α in words (alpha_words)")
    tr.add_argument("--no-balance", action="store_true",
                    help="do not repeat the examples of the α values with fewer kept trajectories")
    tr.add_argument("--restart", action="store_true", help="drop checkpoints made on other data and start over")
    tr.add_argument("--select-only", action="store_true",
                    help="print what would be kept and dropped, by reason and α, and stop")
    et = sub.add_parser("export-training", parents=[store],
                        help="a stored training run as one HTML page that opens offline (the Training tab's view)")
    et.add_argument("--run", required=True, metavar="TRAINING_RUN_ID",
                    help="the training run's id (the Training tab and `app.py train` name it: train-…)")
    et.add_argument("--out", default=None, help="the .html file to write (a new regular file)")
    et.add_argument("--data", default=None, metavar="DIR",
                    help="also (or instead) write the run as data into DIR: training_run.json and its sessions as "
                         "trajectories.jsonl, which the Training tab loads into another store (how the shipped "
                         "adapter's run travels)")


def _alphas(text: str, flag: str) -> list[float]:
    from router_core.choice import parse_alphas
    try:
        return sorted(set(parse_alphas(text, flag)))
    except ValueError as e:
        raise CliError(str(e)) from None


def _progress_bar():
    from tqdm import tqdm
    bar = tqdm(total=1, unit="session", dynamic_ncols=True, file=sys.stderr, disable=None)
    last = [0.0, ""]

    def progress(phase: str, done: int, total: int) -> None:
        bar.total = total
        bar.set_description(phase[:48])
        bar.update(done - bar.n)
        if bar.disable and (time.monotonic() - last[0] > 30 or done == total or phase != last[1]):
            last[0], last[1] = time.monotonic(), phase  # not a terminal: a line now and then
            print(f"{phase}: {done}/{total}", file=sys.stderr, flush=True)
    return bar, progress


def cmd_collect(args: argparse.Namespace) -> int:
    from router_core.pool import load_pool
    from storage import TraceStore
    from training.collect import check_items, collect

    limit = integer(args.limit, "--limit", 1, 10 ** 7) if args.limit is not None else None
    alphas = _alphas(args.alpha if args.alpha is not None else "0,1", "--alpha")
    items = datasets_from(args.dataset, limit, args.data_dir)
    check_items(items, args.dataset)
    _, teacher = policy_from(args)
    pool = load_pool(args.pool)
    bar, progress = _progress_bar()
    with TraceStore(args.db) as store:
        print(f"collecting: {len(items)} question(s), teacher {teacher.name}, α {', '.join(f'{a:g}' for a in alphas)}"
              f"{'' if args.no_screen else ', screened by the largest model first'}; storing in {store.where}",
              file=sys.stderr)
        try:
            s = collect(store, teacher, pool, items, alphas, screen=not args.no_screen, overrides=overrides(args),
                        run_id=args.run_id, progress=progress)
        except KeyboardInterrupt:
            bar.close()
            print("interrupted: finished sessions are stored; run the same command to resume", file=sys.stderr)
            return 130
    bar.close()
    if s.screen_run:
        print(f"screen run {s.screen_run}: {s.screened_in} of {s.questions} question(s) answered right by the "
              "largest model asked once")
    if not s.teacher_run or s.teacher is None:
        print("no question passed the screen: nothing for the teacher to run (try other questions, or --no-screen)")
        return 1
    t = s.teacher
    print(f"teacher run {s.teacher_run}: {t.done} session(s) run, {t.skipped} already done, {t.failed} failed, "
          f"{t.stopped} stopped, {t.seconds:.0f}s; calls computed {s.calls_computed}, replayed {s.calls_replayed}")
    print(f"next: python app.py train --run {s.teacher_run}")
    return 1 if t.failed else 0


def cmd_train(args: argparse.Namespace) -> int:
    from router_core.engines.weights import resolve_model_path
    from router_core.pool import load_pool
    from storage import TraceStore
    from training.card import selection_summary
    from training.pipeline import prepare, run_training
    from training.sft import TrainConfig
    from training.trajectories import REASONS

    alphas = _alphas(args.train_alphas, "--train-alphas")
    min_reward = number(args.min_reward, "--min-reward", -1.0, 1.0)
    rank = integer(args.rank, "--rank", 1, 256)
    cfg = TrainConfig(base=args.base, template=args.student_template, rank=rank,
                      learning_rate=number(args.lr, "--lr", 1e-7, 1.0),
                      epochs=number(args.epochs, "--epochs", 0.01, 100),
                      grad_accum=integer(args.grad_accum, "--grad-accum", 1, 1024),
                      max_len=integer(args.max_len, "--max-len", 32, 32768),
                      max_steps=integer(args.max_steps, "--max-steps", -1, 10 ** 6),
                      save_steps=integer(args.save_steps, "--save-steps", 1, 10 ** 6), dtype=args.dtype,
                      lora_alpha=2.0 * rank)
    pool = load_pool(args.pool)
    name = args.name or "router-" + Path(cfg.base.removeprefix("shipped:")).name.removesuffix(".gguf")
    out = Path(args.out or Path("adapters") / name)
    with TraceStore(args.db) as store:
        if args.select_only:
            trajs, decisions, examples = prepare(store, args.run, alphas, min_reward, args.think,
                                                 not args.no_alpha_lead, not args.no_balance)
            print(f"{len(trajs)} trajectories of {len({t.key for t in trajs})} questions; {len(examples)} examples")
            for a, s in selection_summary(decisions).items():
                print(f"α {a}: kept {s['kept']} of {s['trajectories']} (mean reward {s['kept_reward_mean']}); "
                      + ", ".join(f"{k} {v}" for k, v in s["reasons"].items() if k != "kept"))
            print("reasons: " + "; ".join(f"{k} = {v}" for k, v in REASONS.items()))
            return 0
        base_path = resolve_model_path(cfg.base)  # a missing or corrupt shipped base fails here, before any reading
        if not (str(base_path).endswith(".gguf") and Path(base_path).is_file()):
            raise CliError(f"--base: {cfg.base} is not a GGUF file (the adapter is written for llama.cpp to load on "
                           "that very file; give shipped:<id> or a path to a .gguf)")
        try:
            outcome = run_training(store, args.run, pool, cfg, alphas=alphas, min_reward=min_reward, out_dir=out,
                                   name=name, restart=args.restart, progress=lambda m: print(m, file=sys.stderr),
                                   think=args.think, alpha_lead=not args.no_alpha_lead,
                                   balance=not args.no_balance)
        except KeyboardInterrupt:
            print(f"interrupted: checkpoints are in {out / 'checkpoints'}; run the same command to resume",
                  file=sys.stderr)
            return 130
    t = outcome.card["training"]
    print(f"adapter {outcome.adapter} ({outcome.adapter.stat().st_size / 1e6:.1f} MB); card "
          f"{', '.join(str(f) for f in outcome.files[1:])}")
    loss = " → ".join("—" if v is None else f"{v:.3f}" for v in (t["loss_first"], t["loss_last"]))
    print(f"{t['steps']} steps, loss {loss}, {t['seconds'] / 60:.1f} min, "
          f"{t['tokens_per_s']:.1f} tokens/s")
    return 0


def cmd_export_training(args: argparse.Namespace) -> int:
    from storage import TraceStore
    from storage import training as stored
    from storage.files import write_new_file
    from ui.export_training import training_page

    if not args.out and not args.data:
        raise CliError("give --out FILE.html (a page), --data DIR (the run as data), or both")
    with TraceStore(args.db) as store:
        try:
            run = stored.get_run(store, args.run)
        except KeyError as e:
            known = ", ".join(r["id"] for r in stored.list_runs(store)[:10]) or "none stored"
            raise CliError(f"--run: {e.args[0]} (known: {known})") from None
        if args.out:
            html = training_page(run, stored.points(store, args.run), stored.trajectories(store, args.run))
            _, path = write_new_file(args.out, lambda f: f.write(html))
            print(f"training run {run['name']} → {path}")
        if args.data:
            from training.bundle import write_bundle
            files = write_bundle(store, args.run, args.data)
            print(f"training run {run['name']} as data → {', '.join(str(f) for f in files)}")
    return 0
