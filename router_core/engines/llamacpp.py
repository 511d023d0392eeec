"""llama.cpp engine (llama-cpp-python): GGUF natively, the fastest CPU path measured here.

Scoring keeps the shared prefix in the KV cache and runs one forward pass over each
continuation's tokens with logits for just those positions, instead of the library's
`echo=True, logprobs=…` path (a full-vocabulary log-softmax in Python for every prompt
token: about a minute for two names). Private attributes of `Llama` used here
(`_ctx`, `_batch`, `n_tokens`, `input_ids`) are pinned by the exact version in
requirements.txt.
"""
from __future__ import annotations

import os
import time
from typing import Sequence

import numpy as np

from .base import Completion, Engine, EngineError, OnText, TextCollector, shared_prefix_len


def _log_softmax_at(logits: np.ndarray, token: int) -> float:
    m = float(logits.max())
    return float(logits[token] - m - np.log(np.exp(logits - m, dtype=np.float64).sum()))


class LlamaCppEngine(Engine):
    name = "llamacpp"

    def __init__(self, model_path: str, *, n_ctx: int = 4096, n_threads: int | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as e:  # pragma: no cover - import guard
            raise EngineError(f"llama-cpp-python is not installed ({e}); run the README's setup command") from e
        if not os.path.isfile(model_path):
            raise EngineError(f"{model_path}: GGUF file not found")
        t0 = time.perf_counter()
        try:
            self.llm = Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads or os.cpu_count() or 2,
                             n_batch=512, logits_all=False, verbose=False, seed=seed)
        except Exception as e:  # llama.cpp raises ValueError for unreadable files
            raise EngineError(f"{model_path}: llama.cpp could not load the model ({e})") from e
        self.load_seconds = time.perf_counter() - t0
        self.model_path = model_path
        meta = self.llm.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise EngineError(f"{model_path}: the GGUF has no chat template (tokenizer.chat_template)")
        vocab = self.llm._model
        bos = vocab.token_get_text(self.llm.token_bos()) if self.llm.token_bos() >= 0 else ""
        eos = vocab.token_get_text(self.llm.token_eos()) if self.llm.token_eos() >= 0 else ""
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                              add_generation_prompt=True)
        self._eos_text = eos
        self._add_bos = bool(vocab.add_bos_token()) and self.llm.token_bos() >= 0
        self._n_vocab = self.llm.n_vocab()

    # ------------------------------------------------------------------ tokens

    def tokens(self, text: str) -> list[int]:
        """Tokenise exactly as the completion call will see the prompt (special tokens parsed)."""
        toks = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return ([self.llm.token_bos()] if self._add_bos else []) + toks

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        prompt = self._formatter(messages=messages).prompt
        # The template writes BOS as text; our tokens() adds it as a token when needed.
        bos = self._formatter.bos_token
        if bos and self._add_bos and prompt.startswith(bos):
            prompt = prompt[len(bos):]
        return prompt

    # ------------------------------------------------------------------ generation

    def generate(self, prompt: str, *, stop: Sequence[str] = (), max_tokens: int = 256,
                 temperature: float = 0.0, on_text: OnText | None = None) -> Completion:
        with self.lock:
            toks = self.tokens(prompt)
            if len(toks) + max_tokens > self.llm.n_ctx():
                max_tokens = self.llm.n_ctx() - len(toks)
                if max_tokens <= 0:
                    raise EngineError(f"prompt of {len(toks)} tokens fills the {self.llm.n_ctx()}-token context")
            t0 = time.perf_counter()
            got = TextCollector(on_text, t0)
            finish = "length"
            try:
                for chunk in self.llm.create_completion(toks, max_tokens=max_tokens, stop=list(stop) or None,
                                                        temperature=temperature, top_k=1 if temperature == 0 else 40,
                                                        repeat_penalty=1.0, stream=True):
                    choice = chunk["choices"][0]
                    got.add(choice.get("text"))
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
            except Exception as e:
                raise EngineError(f"llama.cpp generation failed: {e}") from e
            text = got.text
            return Completion(text=text, input_tokens=len(toks), output_tokens=self.count_tokens(text),
                              finish_reason=finish, seconds=time.perf_counter() - t0, first_token_s=got.first)

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.0,
             stop: Sequence[str] = (), on_text: OnText | None = None) -> Completion:
        stops = list(stop) + ([self._eos_text] if self._eos_text else [])
        return self.generate(self.chat_prompt(messages), stop=stops, max_tokens=max_tokens,
                             temperature=temperature, on_text=on_text)

    # ------------------------------------------------------------------ scoring

    def _decode(self, toks: list[int], n_past: int, all_logits: bool) -> np.ndarray:
        """Evaluate `toks` at position `n_past`; return logits for every token or only the last."""
        llm = self.llm
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        rows: list[np.ndarray] = []
        nb = llm.n_batch
        for i in range(0, len(toks), nb):
            chunk = toks[i:i + nb]
            llm._batch.set_batch(batch=chunk, n_past=n_past + i, logits_all=all_logits)
            llm._ctx.decode(llm._batch)
            n = len(chunk) if all_logits else 1
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n * self._n_vocab,))
            rows.append(logits.reshape(n, self._n_vocab).copy())
            llm.input_ids[n_past + i:n_past + i + len(chunk)] = chunk
            llm.n_tokens = n_past + i + len(chunk)
        return np.concatenate(rows) if all_logits else rows[-1]

    def score(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        if not continuations:
            return []
        with self.lock:
            llm = self.llm
            base = self.tokens(prefix)
            fulls = [self.tokens(prefix + c) for c in continuations]
            # Shared tokens of the prefix and every full string; BPE may merge across the
            # boundary (" Name"), so what differs is scored as part of each continuation.
            k = shared_prefix_len(base, fulls)
            if max(len(f) for f in fulls) + 1 >= llm.n_ctx():
                raise EngineError(f"scoring prompt of {max(len(f) for f in fulls)} tokens exceeds the context")
            try:
                cached = 0
                for a, b in zip(llm.input_ids[:llm.n_tokens], base[:k]):
                    if a != b:
                        break
                    cached += 1
                cached = min(cached, k - 1)  # re-run at least the last shared token for its logits
                if cached < k - 1:
                    self._decode(base[cached:k - 1], cached, all_logits=False)
                last = self._decode([base[k - 1]], k - 1, all_logits=False)[0]
                scores: list[float] = []
                for f in fulls:
                    rest = f[k:]
                    lp = _log_softmax_at(last, rest[0])
                    if len(rest) > 1:
                        rows = self._decode(rest[:-1], k, all_logits=True)
                        for j in range(1, len(rest)):
                            lp += _log_softmax_at(rows[j - 1], rest[j])
                    scores.append(lp)
                llm.n_tokens = k  # keep the shared prefix cached for the next generation
                llm._requires_eval = True  # the live logits belong to a candidate, not the prefix
            except EngineError:
                raise
            except Exception as e:
                llm.n_tokens = 0
                raise EngineError(f"llama.cpp scoring failed: {e}") from e
            return scores

    def prompt_logprobs(self, text: str) -> tuple[list[str], list[float | None]]:
        """Each token of `text` with its log-probability given the tokens before it (one pass).

        This is what an OpenAI-compatible `echo` + `logprobs` request returns; the first
        token has no context and gets None.
        """
        with self.lock:
            toks = self.tokens(text)
            if len(toks) >= self.llm.n_ctx():
                raise EngineError(f"text of {len(toks)} tokens exceeds the context")
            rows = self._decode(toks, 0, all_logits=True)
            self.llm._requires_eval = True
            lps: list[float | None] = [None] + [_log_softmax_at(rows[i - 1], toks[i]) for i in range(1, len(toks))]
            pieces = [self.llm.detokenize([t], special=True).decode("utf-8", "replace") for t in toks]
            if self._add_bos:
                pieces, lps = pieces[1:], lps[1:]
            return pieces, lps

    def close(self) -> None:
        try:
            self.llm.close()
        except Exception:
            pass
