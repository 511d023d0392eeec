"""`app.py train`: stored runs → kept trajectories → LoRA → GGUF adapter + training card, in one resumable command."""
from __future__ import annotations

import hashlib
import json
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from router_core.engines.adapters import write_adapter
from router_core.engines.weights import resolve_model_path, sha256_file, weights_sha256
from router_core.pool import Pool
from storage import TraceStore
from storage.connection import redact
from storage import training as stored

from .card import build_card, write_card
from .sft import TrainConfig, TrainResult, lora_alpha_of, lora_state, preflight, train
from .trajectories import Decision, examples_from, load_trajectories, normalizer_for, select

ADAPTER_FILE = "adapter.gguf"


@dataclass
class Outcome:
    card: dict
    adapter: Path
    files: list[Path]
    decisions: list[Decision]
    run_id: str = ""


def prepare(store: TraceStore, runs: Sequence[str], alphas: Sequence[float], min_reward: float,
            think: str = "first-sentence", alpha_lead: bool = True, balance: bool = True):
    """(trajectories, decisions, examples) of the runs at the training α values."""
    trajs = load_trajectories(store, runs)
    if not trajs:
        raise ValueError(f"--run: no router session in run(s) {', '.join(runs)}")
    decisions = select(trajs, alphas, min_reward=min_reward, norm=normalizer_for(trajs))
    return trajs, decisions, examples_from(decisions, think, alpha_lead, balance)


def command_line(argv: Sequence[str]) -> str:
    """The command that made a run, for its card (which ships inside the adapter): a database URL's password is
    hidden as the store hides it everywhere."""
    out, hide = [], False
    for a in argv:
        if hide:
            a, hide = redact(a), False
        elif a == "--db":
            hide = True
        elif a.startswith("--db="):
            a = "--db=" + redact(a[5:])
        out.append(a)
    return " ".join(shlex.quote(a) for a in ["app.py", *out])


def training_run_id(out_dir: str | Path, name: str) -> str:
    """The store's id for a run: the same output folder and name (the same command, resumed) → the same id."""
    key = f"{Path(out_dir).resolve()}|{name}"
    return "train-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def decision_rows(decisions: Sequence[Decision]) -> list[dict]:
    """The selection as the store keeps it (storage/training.py)."""
    return [{"session_id": d.trajectory.session_id, "alpha": float(d.alpha), "reason": d.reason, "kept": d.kept,
             "reward": d.terms.reward, "em": d.terms.em, "r_cost": d.terms.r_cost, "format_ok": d.terms.format_ok,
             "raw_cost": d.trajectory.raw_cost, "source_alpha": d.trajectory.alpha,
             "source_run": d.trajectory.run_id, "policy": d.trajectory.policy, "dataset": d.trajectory.dataset,
             "item_id": d.trajectory.item_id, "question": d.trajectory.question, "answer": d.trajectory.answer,
             "models": d.trajectory.models} for d in decisions]


def run_training(store: TraceStore, runs: Sequence[str], pool: Pool, cfg: TrainConfig, *, alphas: Sequence[float],
                 min_reward: float, out_dir: str | Path, name: str, restart: bool = False,
                 progress: Callable[[str], None] | None = None, on_step: Callable[[dict], None] | None = None,
                 show_bar: bool = True, command: str | None = None, think: str = "first-sentence",
                 alpha_lead: bool = True, balance: bool = True) -> Outcome:
    """Select, train, export and write the card; the run, its selection and every step go to the store as they
    happen (the Training tab follows it live), and its status says how it ended."""
    runs, alphas = list(dict.fromkeys(runs)), list(dict.fromkeys(float(a) for a in alphas))  # a repeat counts once
    trajs, decisions, examples = prepare(store, runs, alphas, min_reward, think, alpha_lead, balance)
    if progress:
        kept = sum(1 for d in decisions if d.kept)
        progress(f"{len(trajs)} trajectories × {len(alphas)} α → {kept} kept ({len(examples)} examples)")
    preflight(examples, pool, out_dir, cfg, restart)  # nothing written or stored if this command cannot go on
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "examples.jsonl").write_text("".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n"
                                                for e in examples), encoding="utf-8")
    run_id = training_run_id(out, name)
    fresh = restart or not (out / "checkpoints").is_dir()
    stored.start_run(store, run_id=run_id, name=name, base=cfg.base, out_dir=str(out.resolve()), source_runs=list(runs),
                     fresh=fresh,
                     alphas=list(alphas), config={**asdict(cfg), "min_reward": min_reward, "think": think,
                                                  "alpha_lead": alpha_lead, "balance": balance})
    stored.record_selection(store, run_id, decision_rows(decisions))

    def step(point: dict) -> None:
        stored.add_point(store, run_id, point, point.get("max_steps"))
        if on_step:
            on_step(point)
    try:
        card, adapter, files = _train_and_export(examples, pool, out, cfg, restart=restart, progress=progress,
                                                 on_step=step, show_bar=show_bar, name=name, command=command,
                                                 runs=runs, trajs=trajs, alphas=alphas, min_reward=min_reward,
                                                 decisions=decisions, think=think, run_id=run_id,
                                                 extra={"alpha_lead": alpha_lead, "balance": balance})
    except KeyboardInterrupt:
        stored.finish_run(store, run_id, status="interrupted", error="stopped (Ctrl-C); the same command resumes")
        raise
    except BaseException as e:
        stored.finish_run(store, run_id, status="error", error=f"{type(e).__name__}: {e}"[:2000])
        raise
    stored.finish_run(store, run_id, status="done", card=card)
    return Outcome(card=card, adapter=adapter, files=files, decisions=decisions, run_id=run_id)


def _train_and_export(examples, pool, out: Path, cfg: TrainConfig, *, restart, progress, on_step, show_bar, name,
                      command, runs, trajs, alphas, min_reward, decisions, think, run_id, extra):
    result: TrainResult = train(examples, pool, out, cfg, restart=restart, progress=progress, on_step=on_step,
                                show_bar=show_bar)
    base_path = resolve_model_path(cfg.base)
    base_sha = weights_sha256(cfg.base, base_path)
    summary = {k: v for k, v in asdict(result).items() if k != "log"}
    summary["loss_curve"] = [{"step": h.get("step"), "loss": h["loss"], "learning_rate": h.get("learning_rate")}
                             for h in result.log if "loss" in h]
    card = build_card(name=name, command=command or command_line(sys.argv[1:]),
                      config=asdict(cfg), base=cfg.base, base_sha256=base_sha, adapter_sha256=None, runs=runs,
                      datasets=[t.dataset or "" for t in trajs], alphas=alphas, min_reward=min_reward,
                      decisions=decisions, examples=examples, result=summary, rounds=len(runs),
                      teacher=[t.policy for t in trajs])
    card["think"] = think
    card.update(extra)
    card["training_run"] = run_id
    adapter = write_adapter(lora_state(result.peft_dir), base_gguf=base_path, base_sha256=base_sha,
                            lora_alpha=lora_alpha_of(result.peft_dir), out=out / ADAPTER_FILE, card=card)
    card["adapter_sha256"] = sha256_file(adapter)
    return card, adapter, [adapter, *write_card(card, out)]
