"""LoRA fine-tuning of a student router on kept trajectories: peft on a base loaded from its GGUF by transformers,
transformers' Trainer for the loop, a loss only on the policy's own tokens.

The text the student learns is its prompt (the student template with the question and α, under the base's chat
template, exactly as the free rollout renders it) followed by the protocol segments of a kept trajectory. Each token
is trained on when it starts inside a segment the policy wrote; the prompt and the replies inside <information> get
label -100 (Router-R1 masks the replies out of its loss the same way). The whole string is tokenised at once and the
labels come from character offsets, so the tokens are the ones inference sees, not a per-segment re-tokenisation.

Checkpoints go to `<out>/checkpoints` every `save_steps` optimizer steps with the data's hash beside them; the same
command resumes from the last one, and refuses to resume on other data (`--restart` starts over). A GPU is used when
torch sees one; on CPU the default dtype is bf16 autocast where the processor has it (measured faster here).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from router_core.protocol import Template
from router_core.pool import Pool

from .trajectories import Example, data_hash

CLOCK_FILE = "studio_clock.json"  # beside each checkpoint: seconds and tokens so far, so a resumed run's clock goes on

class TrainError(ValueError):
    """A training run that cannot start or resume; the message names the file or setting."""


@dataclass
class TrainConfig:
    """What `app.py train` trains with (every field is in the card)."""

    base: str = "shipped:qwen2.5-coder-0.5b-instruct"
    template: str = "assets/templates/router_trained.txt"
    rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.05
    learning_rate: float = 2e-4
    epochs: float = 2.0
    batch_size: int = 1
    grad_accum: int = 4
    max_len: int = 768
    max_steps: int = -1           # > 0: stop after this many optimizer steps (a toy run)
    save_steps: int = 10
    seed: int = 0
    dtype: str = "auto"            # auto | fp32 | bf16


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != -100)


def student_prompt(tokenizer: Any, template: Template, pool: Pool, question: str, alpha: float) -> str:
    """The student's prompt as the free rollout renders it: the template filled in, one user message, the chat
    template with the generation prompt (router_core/loop.py: `template.fill` → `engine.chat_prompt`)."""
    content = template.fill(question, [(m.name, m.description) for m in pool.models], pool.dearest().name,
                            alpha=alpha)
    return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                         add_generation_prompt=True)


def encode(tokenizer: Any, prompt: str, segments: Sequence[tuple[str, bool]], max_len: int) -> Encoded:
    """Token ids of prompt + segments, with labels only where a token starts inside a trained segment."""
    text = prompt
    spans: list[tuple[int, int]] = []
    for seg, trained in segments:
        if trained:
            spans.append((len(text), len(text) + len(seg)))
        text += seg
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = []
    for tok, (start, _end) in zip(ids, offsets):
        labels.append(tok if any(a <= start < b for a, b in spans) else -100)
    return Encoded(input_ids=list(ids[:max_len]), labels=labels[:max_len])


def load_base(base: str, progress: Callable[[str], None] | None = None):
    """(tokenizer, model, GGUF path) for a shipped id, a local GGUF or a checkpoint directory (transformers)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from router_core.engines.weights import resolve_model_path
    path = resolve_model_path(base, progress)
    kw: dict[str, Any] = {}
    where = path
    if path.endswith(".gguf"):
        if not os.path.isfile(path):
            raise TrainError(f"--base: {path}: GGUF file not found")
        kw["gguf_file"] = os.path.basename(path)
        where = os.path.dirname(path) or "."
    if progress:
        progress(f"loading {base} with transformers (a GGUF is dequantised to fp32)")
    try:
        tok = AutoTokenizer.from_pretrained(where, **kw)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **kw)
    except Exception as e:
        raise TrainError(f"--base: transformers could not load {path} ({type(e).__name__}: {e})") from e
    if kw.get("gguf_file"):
        # A GGUF is dequantised on load: the weights are plain fp32 tensors, but transformers still marks the model
        # as GGUF-quantized and its Trainer refuses to train one. The mark is dropped; nothing quantized remains.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok, model, path


def _use_bf16(dtype: str) -> bool:
    import torch
    if dtype == "bf16":
        return True
    if dtype == "fp32":
        return False
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass
class TrainResult:
    out_dir: str
    steps: int
    epochs: float
    examples: int
    tokens: int                  # tokens the model read (prompt + text), all epochs
    trained_tokens: int          # of which the loss was taken on
    seconds: float
    tokens_per_s: float
    loss_first: float | None
    loss_last: float | None
    log: list[dict] = field(default_factory=list)  # trainer.state.log_history (step, loss, learning_rate, …)
    resumed_from: str | None = None
    device: str = "cpu"
    bf16: bool = False
    peft_dir: str = ""


class _Counter:
    """Tokens the collator handed to the model (for tokens/s)."""

    def __init__(self) -> None:
        self.tokens = 0


def _collator(pad_id: int, counter: _Counter):
    import torch

    def collate(batch: list[dict]) -> dict:
        n = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), n), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        for i, b in enumerate(batch):
            k = len(b["input_ids"])
            ids[i, :k] = torch.tensor(b["input_ids"])
            labels[i, :k] = torch.tensor(b["labels"])
            mask[i, :k] = 1
            counter.tokens += k
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
    return collate


def preflight(examples: Sequence[Example], pool: Pool, out_dir: str | Path, cfg: TrainConfig,
              restart: bool = False) -> tuple[str, str | None]:
    """What `train` checks before it changes anything (the data's hash, the checkpoint to resume from); TrainError
    names the file or setting. `app.py train` calls it before it writes its files or touches the store, so a command
    that cannot resume loses nothing."""
    if not examples:
        raise TrainError("no kept trajectory to train on (see the selection's counts by reason)")
    ckpt = Path(out_dir) / "checkpoints"
    template = Template.load(cfg.template)
    if not template.states_alpha:
        raise TrainError(f"{cfg.template}: a student template must state α ({{{{ALPHA}}}}), so one adapter serves "
                         "the whole slider")
    digest = data_hash(examples, template.text, json.dumps(asdict(cfg), sort_keys=True), json.dumps(pool.snapshot(),
                                                                                                      sort_keys=True))
    if not ckpt.exists() or restart:
        return digest, None
    try:
        held = json.loads((ckpt / "data.json").read_text())
    except (OSError, json.JSONDecodeError):
        held = {}
    if held.get("data_hash") != digest:
        raise TrainError(f"{ckpt}: its checkpoints were trained on other data or settings (hash "
                         f"{str(held.get('data_hash'))[:12]} vs {digest[:12]} now); run with --restart to start "
                         "over, or give another --out")
    found = sorted((p for p in ckpt.glob("checkpoint-*") if p.is_dir()), key=lambda p: int(p.name.split("-")[1]))
    return digest, str(found[-1]) if found else None


def train(examples: Sequence[Example], pool: Pool, out_dir: str | Path, cfg: TrainConfig, *,
          restart: bool = False, progress: Callable[[str], None] | None = None,
          on_step: Callable[[dict], None] | None = None, show_bar: bool = True) -> TrainResult:
    """Fine-tune, checkpointing as it goes; returns where the peft adapter is and what it cost.

    `on_step(state)` after every optimizer step (step, max_steps, loss, learning_rate, tokens, seconds): the store
    writer of `app.py train` hangs there."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments, set_seed

    out = Path(out_dir)
    ckpt = out / "checkpoints"
    digest, resume = preflight(examples, pool, out, cfg, restart)
    template = Template.load(cfg.template)
    marker = ckpt / "data.json"
    if ckpt.exists() and restart:
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"data_hash": digest, "examples": len(examples)}))
    finished = ckpt / "finished.json"
    if resume and finished.is_file() and (out / "peft" / "adapter_model.safetensors").is_file():
        done = TrainResult(**json.loads(finished.read_text()))  # trained to the end before: nothing left to do
        if progress:
            progress(f"already trained to step {done.steps} on this data ({finished}); exporting again")
        return done

    set_seed(cfg.seed)
    tok, model, _ = load_base(cfg.base, progress)
    rows = []
    for e in examples:
        enc = encode(tok, student_prompt(tok, template, pool, e.question, e.alpha), e.segments, cfg.max_len)
        if enc.trained_tokens:
            rows.append({"input_ids": enc.input_ids, "labels": enc.labels})
    if not rows:
        raise TrainError(f"every example is longer than --max-len {cfg.max_len} before its first trained token")
    lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    bf16 = _use_bf16(cfg.dtype)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    steps_per_epoch = math.ceil(len(rows) / (cfg.batch_size * cfg.grad_accum))
    total = cfg.max_steps if cfg.max_steps > 0 else math.ceil(steps_per_epoch * cfg.epochs)
    args = TrainingArguments(
        output_dir=str(ckpt), per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=max(1, total // 20), logging_steps=1, save_strategy="steps",
        save_steps=cfg.save_steps, save_total_limit=2, report_to=[], disable_tqdm=True, seed=cfg.seed,
        bf16=bf16, use_cpu=device == "cpu", dataloader_num_workers=0, remove_unused_columns=False)
    counter = _Counter()
    start_step = int(Path(resume).name.split("-")[1]) if resume else 0
    before_s = 0.0  # a resumed run's clock and token count go on from its checkpoint's (time left, the card)
    if resume:
        try:
            held_clock = json.loads((Path(resume) / CLOCK_FILE).read_text())
            before_s, counter.tokens = float(held_clock["seconds"]), int(held_clock["tokens"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a checkpoint from before the clock was saved: time counts from this process
    t0 = time.perf_counter() - before_s
    bar = _bar(total, show_bar)

    said = [0.0]

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
            if logs and "loss" in logs:
                elapsed = time.perf_counter() - t0
                tps = counter.tokens / elapsed if elapsed > 0 else 0.0
                bar.set_postfix_str(f"loss {logs['loss']:.3f} · {tps:.0f} tok/s")
                if bar.disable and show_bar and (time.monotonic() - said[0] > 30 or state.global_step >= total):
                    said[0] = time.monotonic()  # not a terminal (a log file, CI): a line now and then
                    done = state.global_step - (0 if before_s else start_step)  # steps the clock has seen
                    left = elapsed / done * (total - state.global_step) if done else 0.0
                    print(f"training: step {state.global_step}/{total}, loss {logs['loss']:.3f}, {tps:.0f} tokens/s, "
                          f"about {left / 60:.0f} min left", file=sys.stderr, flush=True)
                if on_step:
                    on_step({"step": state.global_step, "max_steps": state.max_steps, "loss": float(logs["loss"]),
                             "learning_rate": float(logs.get("learning_rate", 0.0)), "tokens": counter.tokens,
                             "seconds": elapsed, "epoch": float(state.epoch or 0.0)})

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            bar.update(state.global_step - bar.n)

        def on_save(self, args, state, control, **kw):  # noqa: ANN001
            """Beside each checkpoint (written just before): the clock and tokens so far, for a resume."""
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                (folder / CLOCK_FILE).write_text(json.dumps({"seconds": time.perf_counter() - t0,
                                                             "tokens": counter.tokens}))

    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=_collator(tok.pad_token_id, counter),
                      callbacks=[Progress()])
    trainer.remove_callback(PrinterCallback)  # the bar above says it in one line
    if resume:
        bar.update(start_step)
        if progress:
            progress(f"resuming from {resume}")
    trainer.train(resume_from_checkpoint=resume)
    bar.close()
    seconds = time.perf_counter() - t0
    peft_dir = out / "peft"
    model.save_pretrained(str(peft_dir))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    trained = sum(sum(1 for x in r["labels"] if x != -100) for r in rows)
    result = TrainResult(out_dir=str(out), steps=trainer.state.global_step, epochs=float(trainer.state.epoch or 0.0),
                       examples=len(rows), tokens=counter.tokens,
                       trained_tokens=int(trained * (trainer.state.epoch or 0.0)), seconds=seconds,
                       tokens_per_s=counter.tokens / seconds if seconds > 0 else 0.0,
                       loss_first=losses[0] if losses else None, loss_last=losses[-1] if losses else None,
                       log=list(trainer.state.log_history), resumed_from=resume, device=device, bf16=bf16,
                       peft_dir=str(peft_dir))
    finished.write_text(json.dumps(asdict(result)))
    return result


def _bar(total: int, show: bool):
    from tqdm import tqdm
    return tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr, disable=None if show else True,
                desc="training")


def lora_state(peft_dir: str | Path) -> dict:
    """The saved adapter's tensors as numpy arrays, by peft's names (for the GGUF writer)."""
    from safetensors.numpy import load_file
    f = Path(peft_dir) / "adapter_model.safetensors"
    if not f.is_file():
        raise TrainError(f"{peft_dir}: no adapter_model.safetensors (training did not finish?)")
    return load_file(str(f))


def lora_alpha_of(peft_dir: str | Path) -> float:
    cfg = json.loads((Path(peft_dir) / "adapter_config.json").read_text())
    return float(cfg["lora_alpha"])
