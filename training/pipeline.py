"""`app.py train`: stored runs → kept trajectories → LoRA → GGUF adapter + training card, in one resumable command."""
from __future__ import annotations

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

from .card import build_card, write_card
from .sft import TrainConfig, TrainResult, lora_alpha_of, lora_state, train
from .trajectories import Decision, examples_from, load_trajectories, normalizer_for, select

ADAPTER_FILE = "adapter.gguf"


@dataclass
class Outcome:
    card: dict
    adapter: Path
    files: list[Path]
    decisions: list[Decision]


def prepare(store: TraceStore, runs: Sequence[str], alphas: Sequence[float], min_reward: float):
    """(trajectories, decisions, examples) of the runs at the training α values."""
    trajs = load_trajectories(store, runs)
    if not trajs:
        raise ValueError(f"--run: no router session in run(s) {', '.join(runs)}")
    decisions = select(trajs, alphas, min_reward=min_reward, norm=normalizer_for(trajs))
    return trajs, decisions, examples_from(decisions)


def run_training(store: TraceStore, runs: Sequence[str], pool: Pool, cfg: TrainConfig, *, alphas: Sequence[float],
                 min_reward: float, out_dir: str | Path, name: str, restart: bool = False,
                 progress: Callable[[str], None] | None = None, on_step: Callable[[dict], None] | None = None,
                 show_bar: bool = True, command: str | None = None) -> Outcome:
    trajs, decisions, examples = prepare(store, runs, alphas, min_reward)
    if progress:
        kept = sum(1 for d in decisions if d.kept)
        progress(f"{len(trajs)} trajectories × {len(alphas)} α → {kept} kept ({len(examples)} examples)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "examples.jsonl").write_text("".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n"
                                                for e in examples), encoding="utf-8")
    result: TrainResult = train(examples, pool, out, cfg, restart=restart, progress=progress, on_step=on_step,
                                show_bar=show_bar)
    base_path = resolve_model_path(cfg.base)
    base_sha = weights_sha256(cfg.base, base_path)
    summary = {k: v for k, v in asdict(result).items() if k != "log"}
    summary["loss_curve"] = [{"step": h.get("step"), "loss": h["loss"], "learning_rate": h.get("learning_rate")}
                             for h in result.log if "loss" in h]
    card = build_card(name=name, command=command or " ".join(shlex.quote(a) for a in ["app.py", *sys.argv[1:]]),
                      config=asdict(cfg), base=cfg.base, base_sha256=base_sha, adapter_sha256=None, runs=runs,
                      datasets=[t.dataset or "" for t in trajs], alphas=alphas, min_reward=min_reward,
                      decisions=decisions, examples=examples, result=summary,
                      teacher=[t.policy for t in trajs])
    adapter = write_adapter(lora_state(result.peft_dir), base_gguf=base_path, base_sha256=base_sha,
                            lora_alpha=lora_alpha_of(result.peft_dir), out=out / ADAPTER_FILE, card=card)
    card["adapter_sha256"] = sha256_file(adapter)
    files = write_card(card, out)
    return Outcome(card=card, adapter=adapter, files=[adapter, *files], decisions=decisions)
