"""The training card: what a trained adapter was made from and what it cost, written beside it (JSON and Markdown).

Its JSON is also stored inside the GGUF adapter's metadata, so an adapter copied alone still says what it is.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from .trajectories import REASONS, Decision, Example

DROPPED = [k for k in REASONS if k != "kept"]


def selection_summary(decisions: Sequence[Decision]) -> dict[str, Any]:
    """Counts by reason, and the kept trajectories' reward and models, per training α."""
    out: dict[str, Any] = {}
    for a in sorted({d.alpha for d in decisions}):
        ds = [d for d in decisions if d.alpha == a]
        kept = [d for d in ds if d.kept]
        models = Counter(m for d in kept for m in d.trajectory.models)
        out[f"{a:g}"] = {
            "trajectories": len(ds), "kept": len(kept),
            "reasons": {k: sum(1 for d in ds if d.reason == k) for k in REASONS},
            "kept_reward_mean": round(sum(d.terms.reward for d in kept) / len(kept), 4) if kept else None,
            "kept_calls_by_model": dict(models),
        }
    return out


def build_card(*, name: str, command: str, config: dict, base: str, base_sha256: str, adapter_sha256: str | None,
               runs: Sequence[str], datasets: Sequence[str], alphas: Sequence[float], min_reward: float,
               decisions: Sequence[Decision], examples: Sequence[Example], result: dict, rounds: int = 1,
               teacher: Sequence[str] = ()) -> dict[str, Any]:
    questions = {(e.dataset, e.item_id) for e in examples}
    return {
        "name": name, "command": command, "base": base, "base_sha256": base_sha256,
        "adapter_sha256": adapter_sha256, "rounds": rounds, "teacher_policies": sorted(set(teacher)),
        "data": {"runs": list(runs), "datasets": sorted(set(datasets)), "trajectories": len({d.trajectory.session_id
                                                                                             for d in decisions}),
                 "examples": len(examples), "questions": len(questions)},
        "alphas": [float(a) for a in alphas], "min_reward": min_reward,
        "selection": selection_summary(decisions),
        "config": config,
        "training": result,
    }


def card_markdown(card: dict[str, Any]) -> str:
    t = card["training"]
    lines = [f"# Training card: {card['name']}", "",
             f"Made by `{card['command']}`.", "",
             f"- base: `{card['base']}` (sha256 `{card['base_sha256']}`)",
             f"- adapter sha256: `{card.get('adapter_sha256') or '—'}`",
             f"- policies that collected: {', '.join(card['teacher_policies']) or '—'}; rounds (collected runs): "
             f"{card['rounds']}",
             f"- data: {card['data']['examples']} examples from {card['data']['questions']} questions, "
             f"{card['data']['trajectories']} trajectories in runs {', '.join(card['data']['runs'])} "
             f"({', '.join(card['data']['datasets'])})",
             f"- training α: {', '.join(f'{a:g}' for a in card['alphas'])}; kept when Router-R1's reward ≥ "
             f"{card['min_reward']:g}; think blocks: {card.get('think', 'whole')}"
             f"{'; the first starts with α in words' if card.get('alpha_lead') else ''}"
             f"{'; the α values balanced by repeating examples' if card.get('balance') else ''}",
             f"- steps {t['steps']} ({t['epochs']:.2f} epochs), loss {_f(t.get('loss_first'))} → "
             f"{_f(t.get('loss_last'))}, {t['seconds'] / 60:.1f} min on {t['device']}"
             f"{' (bf16 autocast)' if t.get('bf16') else ''}, {t['tokens_per_s']:.1f} tokens/s "
             f"({t['tokens']:,} tokens read, loss on {t['trained_tokens']:,})", "",
             "| α | trajectories | kept | mean reward kept | " + " | ".join(DROPPED) + " |",
             "|---|---|---|---|" + "---|" * len(DROPPED)]
    for a, s in card["selection"].items():
        lines.append(f"| {a} | {s['trajectories']} | {s['kept']} | {_f(s['kept_reward_mean'])} | "
                     + " | ".join(str(s["reasons"][k]) for k in DROPPED) + " |")
    lines += ["", "Dropped, in words: " + "; ".join(f"{k} = {REASONS[k].removeprefix('dropped: ')}" for k in DROPPED)
              + "."]
    lines += ["", "Calls of the kept trajectories, by model and α: "
              + "; ".join(f"α {a}: " + ", ".join(f"{m} {n}" for m, n in sorted(s["kept_calls_by_model"].items()))
                          for a, s in card["selection"].items()), "",
              "Settings: `" + json.dumps(card["config"], sort_keys=True) + "`", ""]
    return "\n".join(lines)


def _f(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def write_card(card: dict[str, Any], out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    j, m = out / "card.json", out / "card.md"
    j.write_text(json.dumps(card, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    m.write_text(card_markdown(card), encoding="utf-8")
    return [j, m]
