"""transformers engine: any Hub id or local checkpoint directory, or a GGUF file (`gguf_file=`).

This is the loading path for real Router-R1 checkpoints on a machine without vLLM.
Scoring runs the prefix once with a KV cache, then one forward per continuation over
its tokens only (for a choice, up to the last one where it parts from another option),
cropping the cache back to the prefix in between.

A cancelled call (`CacheHint.cancel`) ends at its next token with `Stopped`; the prompt's one forward pass cannot be
cut, so a long prompt is read to its end first.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Sequence

from .base import (CacheHint, Completion, Engine, EngineError, OnText, Stopped, TextCollector, cancelled,
                   check_cancel, scored_positions, shared_prefix_len)


class TransformersEngine(Engine):
    name = "transformers"
    batches_natively = True

    def __init__(self, model: str, *, gguf_file: str | None = None, dtype: str = "auto",
                 device: str | None = None) -> None:
        super().__init__()
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:  # pragma: no cover - import guard
            raise EngineError(f"transformers/torch not installed ({e})") from e
        self.torch = torch
        # A GGUF given as a file path: load from its directory with gguf_file=.
        if gguf_file is None and model.endswith(".gguf") and os.path.isfile(model):
            model, gguf_file = os.path.dirname(model) or ".", os.path.basename(model)
        kw = {"gguf_file": gguf_file} if gguf_file else {}
        t0 = time.perf_counter()
        try:
            self.tok = AutoTokenizer.from_pretrained(model, **kw)
            torch_dtype = {"auto": "auto", "fp32": torch.float32, "bf16": torch.bfloat16,
                           "fp16": torch.float16}.get(dtype, "auto")
            if gguf_file and torch_dtype == "auto":
                torch_dtype = torch.float32  # GGUF dequantises; fp32 is what it yields on CPU
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype, **kw)
        except Exception as e:
            where = f"{model}/{gguf_file}" if gguf_file else model
            raise EngineError(f"{where}: transformers could not load the model ({type(e).__name__}: {e})") from e
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.load_seconds = time.perf_counter() - t0
        self.model_id = model
        if not getattr(self.tok, "chat_template", None):
            raise EngineError(f"{model}: the tokenizer has no chat template")

    def count_tokens(self, text: str) -> int:
        return len(self.tok.encode(text, add_special_tokens=False)) if text else 0

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _ids(self, text: str):
        # Chat-templated text already carries its special tokens.
        return self.tok(text, add_special_tokens=False, return_tensors="pt").input_ids.to(self.device)

    def generate(self, prompt: str, *, stop: Sequence[str] = (), max_tokens: int = 256,
                 temperature: float = 0.0, on_text: OnText | None = None, cache: CacheHint | None = None) -> Completion:
        from transformers import StoppingCriteriaList, TextIteratorStreamer
        torch = self.torch
        with self.lock:
            check_cancel(cache)
            ids = self._ids(prompt)
            streamer = TextIteratorStreamer(self.tok, skip_prompt=True, skip_special_tokens=True)
            kw = dict(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                      do_sample=temperature > 0, streamer=streamer,
                      pad_token_id=self.tok.pad_token_id or self.tok.eos_token_id)
            if temperature > 0:
                kw["temperature"] = temperature
            if stop:
                kw.update(stop_strings=list(stop), tokenizer=self.tok)
            halt = threading.Event()  # set when the caller stops the call: generation ends at its next token
            kw["stopping_criteria"] = StoppingCriteriaList([_Halt(halt, torch, cache.cancel if cache else None)])
            out: dict = {}

            def run() -> None:
                try:
                    with torch.inference_mode():
                        out["seq"] = self.model.generate(**kw)
                except Exception as e:  # surfaced below
                    out["error"] = e
                    streamer.end()

            t0 = time.perf_counter()
            th = threading.Thread(target=run, daemon=True)
            th.start()
            got = TextCollector(on_text, t0)
            try:
                for piece in streamer:
                    got.add(piece)
            except Stopped:
                halt.set()
                for _ in streamer:  # let the generation thread finish its token before the lock is let go
                    pass
                th.join()
                raise
            th.join()
            if "error" in out:
                raise EngineError(f"transformers generation failed: {out['error']}")
            if cancelled(cache):  # halted by the cancel signal: what came is not the whole reply
                raise Stopped("the call was cancelled")
            new = out["seq"][0, ids.shape[1]:]
            text = got.text
            finish = "length" if len(new) >= max_tokens else "stop"
            cut = min((text.find(s) for s in stop if s in text), default=-1)
            if cut >= 0:
                text, finish = text[:cut], "stop"
            return Completion(text=text, input_tokens=int(ids.shape[1]), output_tokens=int(len(new)),
                              finish_reason=finish, seconds=time.perf_counter() - t0, first_token_s=got.first)

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.0,
             stop: Sequence[str] = (), on_text: OnText | None = None, cache: CacheHint | None = None) -> Completion:
        return self.generate(self.chat_prompt(messages), stop=stop, max_tokens=max_tokens,
                             temperature=temperature, on_text=on_text, cache=cache)

    def generate_batch(self, prompts: Sequence[str], *, stop: Sequence[str] = (), max_tokens: int = 256,
                       temperature: float = 0.0, on_text: OnText | None = None, cache: CacheHint | None = None) -> list[Completion]:
        """Greedy continuation of several prompts in one padded forward per token.

        On a CPU the weights are read once per step for the whole batch, which is where
        batched eval rollouts gain. Left padding keeps every prompt's last token aligned.
        """
        torch = self.torch
        if len(prompts) == 1:
            return [self.generate(prompts[0], stop=stop, max_tokens=max_tokens, temperature=temperature,
                                  on_text=on_text, cache=cache)]
        with self.lock:
            t0 = time.perf_counter()
            pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
            side, self.tok.padding_side = self.tok.padding_side, "left"
            try:
                if self.tok.pad_token_id is None:
                    self.tok.pad_token = self.tok.eos_token
                enc = self.tok(list(prompts), add_special_tokens=False, return_tensors="pt", padding=True)
            finally:
                self.tok.padding_side = side
            ids, mask = enc.input_ids.to(self.device), enc.attention_mask.to(self.device)
            kw = dict(input_ids=ids, attention_mask=mask, max_new_tokens=max_tokens, do_sample=temperature > 0,
                      pad_token_id=pad)
            if temperature > 0:
                kw["temperature"] = temperature
            if stop:
                kw.update(stop_strings=list(stop), tokenizer=self.tok)
            try:
                with torch.inference_mode():
                    seq = self.model.generate(**kw)
            except Exception as e:
                raise EngineError(f"transformers batch generation failed: {e}") from e
            dt = time.perf_counter() - t0
            out = []
            eos = {t for t in (self.tok.eos_token_id, pad) if t is not None}
            for i in range(len(prompts)):
                new = seq[i, ids.shape[1]:].tolist()
                while new and new[-1] in eos:  # finished rows are padded to the longest
                    new.pop()
                text = self.tok.decode(new, skip_special_tokens=True)
                finish = "length" if len(new) >= max_tokens else "stop"
                cut = min((text.find(x) for x in stop if x in text), default=-1)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
                if on_text and text:
                    on_text(text)
                out.append(Completion(text=text, input_tokens=int(mask[i].sum()), output_tokens=len(new),
                                      finish_reason=finish, seconds=dt, first_token_s=None))
            return out

    def score(self, prefix: str, continuations: Sequence[str], cache: CacheHint | None = None, *,
              choice: bool = False) -> list[float]:
        torch = self.torch
        with self.lock, torch.inference_mode():
            check_cancel(cache)
            base = self._ids(prefix)[0].tolist()
            fulls = [self._ids(prefix + c)[0].tolist() for c in continuations]
            k = shared_prefix_len(base, fulls)
            pre = torch.tensor([base[:k]], device=self.device)
            res = self.model(input_ids=pre, use_cache=True)
            kv = res.past_key_values
            last = torch.log_softmax(res.logits[0, -1].float(), -1)
            scores: list[float] = []
            rests = [f[k:] for f in fulls]
            for rest, pos in zip(rests, scored_positions(rests, choice)):
                need = max(pos, default=0)  # tokens decoded: up to the last scored position
                lp = float(last[rest[0]]) if 0 in pos else 0.0
                if need > 0:
                    r = self.model(input_ids=torch.tensor([rest[:need]], device=self.device),
                                   past_key_values=kv, use_cache=True)
                    logp = torch.log_softmax(r.logits[0].float(), -1)
                    lp += float(sum(logp[j - 1, rest[j]] for j in pos if j > 0))
                    kv.crop(-need)  # back to the shared prefix
                scores.append(lp)
            return scores


def export_checkpoint(source: "str | TransformersEngine", out_dir: str) -> str:
    """Write a GGUF model as a Hugging Face checkpoint directory (safetensors, fp32).

    vLLM loads only Hugging Face format weights; this lets it run the shipped GGUF models.
    `source` is a GGUF path, or an engine that already loaded one: parsing a GGUF through
    transformers takes about 40 s even for the 135M model, so a caller holding the engine
    should not pay it twice. The engine stays usable afterwards.
    """
    eng = source if isinstance(source, TransformersEngine) else TransformersEngine(source)
    # A GGUF-loaded model refuses save_pretrained; once dequantised the weights are plain fp32.
    eng.model.hf_quantizer = None
    if hasattr(eng.model.config, "quantization_config"):
        del eng.model.config.quantization_config
    eng.model.save_pretrained(out_dir)
    eng.tok.save_pretrained(out_dir)
    return out_dir


class _Halt:
    """A stopping criterion that ends generation once `flag` (the caller stopped the call mid-stream) or `cancel` (the
    call's cancel signal) is set."""

    def __init__(self, flag: threading.Event, torch, cancel: threading.Event | None = None) -> None:
        self.flag, self.torch, self.cancel = flag, torch, cancel

    def __call__(self, input_ids, scores, **kwargs):
        halt = self.flag.is_set() or (self.cancel is not None and self.cancel.is_set())
        return self.torch.full((input_ids.shape[0],), halt, dtype=self.torch.bool, device=input_ids.device)
