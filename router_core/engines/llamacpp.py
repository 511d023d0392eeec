"""llama.cpp engine (llama-cpp-python): GGUF natively, the fastest CPU path measured here.

The engine runs its own prefill / decode loop on llama.cpp's low-level API instead of
`create_completion`, because what is computed, and in which batches, decides both speed and
determinism:

* **What is reused.** A call's `CacheHint` names a shared prefix (computed once, always as its
  own prefill from position 0, and kept across calls and sessions) and a session (whose calls
  continue each other, so the router's transcript is never recomputed). Nothing else is reused.
* **Determinism.** llama.cpp's kernels round differently for a 1-token and a many-token batch, so
  a prompt's numbers depend on how it was split into batches. Because reuse never crosses a
  session and the prefix is always computed the same way, a session performs the same
  operations on a fresh and on a warm engine: the same question at temperature 0 gives the same
  text, whatever ran before. A call without a hint is computed from scratch.
* **Scoring** evaluates only the continuation tokens after the cached prefix, with logits for
  just those positions, each shared start of two continuations once, and for a choice among
  options only up to the last token where an option parts from another (the library's
  `echo=True, logprobs=…` path computes a full-vocabulary log-softmax in Python for every prompt
  token: about a minute for two names).

A call whose `CacheHint.cancel` is set ends before its next prefill chunk or token with `Stopped`; the cache keeps
the shared prefix (computed as always) and drops the rest.

Counters (`stats()`, and `prefill_tokens` / `cached_tokens` on each Completion) report how many
prompt tokens were computed and how many came from the cache; `scored_tokens` how many option
tokens scoring computed. Private attributes of `Llama`
used here (`_ctx`, `_batch`, `_model`) are pinned by the exact version in requirements.txt.
"""
from __future__ import annotations

import codecs
import contextlib
import ctypes
import dataclasses
import os
import time
from collections import OrderedDict
from typing import Iterator, Sequence

import numpy as np

from .base import (CacheHint, Completion, Engine, EngineError, OnText, Stopped, TextCollector, check_cancel,
                   common_prefix_len, scored_positions, shared_prefix_len)
from .kv_states import KVStates, _Parked
from .llamacpp_util import log_softmax_at, pending_stop, quiet_stderr


class LlamaCppEngine(KVStates, Engine):
    name = "llamacpp"

    def __init__(self, model_path: str, *, n_ctx: int = 4096, n_threads: int | None = None,
                 seed: int = 0, lora_path: str | None = None) -> None:
        super().__init__()
        try:
            import llama_cpp
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as e:  # pragma: no cover - import guard
            raise EngineError(f"llama-cpp-python is not installed ({e}); run the README's setup command") from e
        if not os.path.isfile(model_path):
            raise EngineError(f"{model_path}: GGUF file not found")
        self._lib = llama_cpp
        t0 = time.perf_counter()
        try:
            with quiet_stderr(bool(lora_path)):
                self.llm = Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads or os.cpu_count() or 2,
                                 n_batch=512, logits_all=False, verbose=False, seed=seed, lora_path=lora_path)
        except Exception as e:  # llama.cpp raises ValueError for unreadable files
            what = f" with the adapter {lora_path}" if lora_path else ""
            raise EngineError(f"{model_path}: llama.cpp could not load the model{what} ({e})") from e
        self.lora_path = lora_path
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
        self._add_bos = bool(vocab.add_bos_token()) and self.llm.token_bos() >= 0
        self._n_vocab = self.llm.n_vocab()
        self._vocab_ptr = vocab.vocab
        self._rng = np.random.default_rng(seed)
        # What the KV cache holds: the tokens at positions [0, len), the shared prefix among them
        # (computed as its own prefill from 0) and the session that computed the rest.
        self._cached: list[int] = []
        self._prefix: tuple[int, ...] = ()
        self._owner: str | None = None
        self._call: CacheHint | None = None  # the hint of the call in progress (its cancel signal)
        self._parked: OrderedDict[str, _Parked] = OrderedDict()  # displaced sessions' caches, oldest first
        self._seen: OrderedDict[str, None] = OrderedDict()       # recent sessions, to tell a recomputation
        self._stats = {"calls": 0, "prefill_tokens": 0, "cached_tokens": 0, "generated_tokens": 0,
                       "scored_tokens": 0, "prefill_s": 0.0, "decode_s": 0.0, "prefix_builds": 0,
                       "parked_sessions": 0, "restored_sessions": 0, "recomputed_sessions": 0,
                       "prefix_loads": 0}
        self._n_threads = n_threads or os.cpu_count() or 2

    # ------------------------------------------------------------------ tokens

    def tokens(self, text: str) -> list[int]:
        """Tokenise exactly as a generation sees the prompt (special tokens parsed)."""
        toks = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return ([self.llm.token_bos()] if self._add_bos else []) + toks

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        prompt = self._formatter(messages=messages).prompt
        # The template writes BOS as text; tokens() adds it as a token when needed.
        bos = self._formatter.bos_token
        if bos and self._add_bos and prompt.startswith(bos):
            prompt = prompt[len(bos):]
        return prompt

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._lib.llama_token_to_piece(self._vocab_ptr, token, buf, 64, 0, False)
        return buf.raw[:max(0, n)]

    def _is_end(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab_ptr, token))

    def stats(self) -> dict[str, float]:
        return dict(self._stats)

    def memory_bytes(self) -> dict[str, int]:
        """The model file (memory-mapped and shared by every instance of it — except with an adapter, where
        llama-cpp-python turns mmap off and this instance holds its own copy) and this instance's context."""
        return {"weights": os.path.getsize(self.model_path), "context": int(self.llm._ctx.get_state_size())}

    # ------------------------------------------------------------------ the cache

    def _decode(self, toks: Sequence[int], n_past: int, all_logits: bool) -> np.ndarray:
        """Evaluate `toks` at position `n_past` (after dropping whatever the cache held from there on);
        logits for every token (2-D), or only the last (1-D). A cancelled call (`_call`) stops before its next chunk
        (a long prompt takes seconds a chunk on a CPU); the chunks stay n_batch long, so what is computed never
        changes."""
        llm = self.llm
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        del self._cached[n_past:]
        rows: list[np.ndarray] = []
        nb = llm.n_batch
        for i in range(0, len(toks), nb):
            check_cancel(self._call)
            chunk = list(toks[i:i + nb])
            llm._batch.set_batch(batch=chunk, n_past=n_past + i, logits_all=all_logits)
            llm._ctx.decode(llm._batch)
            n = len(chunk) if all_logits else 1
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n * self._n_vocab,))
            rows.append(logits.reshape(n, self._n_vocab).copy())
            self._cached.extend(chunk)
        llm.n_tokens = len(self._cached)  # keep the library's own view consistent (close(), save_state)
        return np.concatenate(rows) if all_logits else rows[-1][0]

    def _prefix_len(self, toks: Sequence[int], prefix_text: str) -> int:
        if not prefix_text:
            return 0
        head = self.tokens(prefix_text)
        # The last head token may merge with what follows (" " + "Who" → " Who"), so it is never part of
        # the shared prefix: the prefix is then the same whatever follows it (and warm() builds the same).
        # At least one prompt token is left to evaluate.
        return min(common_prefix_len(head, toks), len(head) - 1, len(toks) - 1)

    def _prefill(self, toks: list[int], hint: CacheHint | None) -> tuple[np.ndarray, int, int]:
        """Bring the cache to `toks`, reusing only what the hint allows.

        Returns the last position's logits, how many prompt tokens this call computed and how many
        it took from the cache (computed by an earlier call).
        """
        t0 = time.perf_counter()
        hint = hint or CacheHint()
        if hint.session != self._owner:
            self._park()
            if hint.session is not None:
                self._unpark(hint.session)
        a = self._prefix_len(toks, hint.prefix)
        built = 0
        if a > 0 and (self._prefix != tuple(toks[:a]) or self._cached[:a] != toks[:a]):
            # the shared prefix, always computed the same way: its own prefill from position 0 (no prefix is
            # claimed until it is whole, so a call cut short meanwhile leaves none)
            self._prefix = ()
            if self._load_prefix(toks[:a]):
                self._stats["prefix_loads"] += 1
            else:
                self._decode(toks[:a], 0, all_logits=False)
                self._save_prefix(toks[:a])
                built = a
                self._stats["prefix_builds"] += 1
            self._prefix, self._owner = tuple(toks[:a]), None
        elif a == 0:
            self._prefix = ()
        reuse = a
        if hint.session is not None and hint.session == self._owner and a == len(self._prefix):
            reuse = max(a, common_prefix_len(self._cached, toks))
        reuse = min(reuse, len(toks) - 1)  # the last prompt token is evaluated for its logits
        logits = self._decode(toks[reuse:], reuse, all_logits=False)
        self._owner = hint.session
        computed, cached = len(toks) - reuse + built, reuse - built
        self._stats["prefill_tokens"] += computed
        self._stats["cached_tokens"] += cached
        self._stats["prefill_s"] += time.perf_counter() - t0
        return logits, computed, cached

    def warm(self, prefix: str) -> None:
        """Compute `prefix` as the shared prefix now (the app does this at start for its default pool)."""
        with self.lock:
            toks = self.tokens(prefix)
            if len(toks) > 2 and self._prefix != tuple(toks[:-1]):
                try:
                    self._prefill(toks, CacheHint(prefix=prefix))
                except Exception as e:
                    self._reset()  # never leave the cache bookkeeping half-updated
                    raise EngineError(f"llama.cpp could not compute the shared prefix: {e}") from e

    # ------------------------------------------------------------------ generation

    @contextlib.contextmanager
    def _calling(self, cache: CacheHint | None) -> Iterator[None]:
        """The hint of the call in progress (calls are serialised by the lock), whose `cancel` the prefill and decode
        loops look at."""
        outer, self._call = self._call, cache
        try:
            yield
        finally:
            self._call = outer

    def generate(self, prompt: str, *, stop: Sequence[str] = (), max_tokens: int = 256,
                 temperature: float = 0.0, on_text: OnText | None = None,
                 cache: CacheHint | None = None) -> Completion:
        with self.lock, self._calling(cache):
            toks = self.tokens(prompt)
            n_ctx = self.llm.n_ctx()
            if len(toks) + 1 >= n_ctx:
                raise EngineError(f"prompt of {len(toks)} tokens fills the {n_ctx}-token context")
            max_tokens = min(max_tokens, n_ctx - len(toks) - 1)
            t0 = time.perf_counter()
            got = TextCollector(on_text, t0)
            try:
                logits, prefilled, reused = self._prefill(toks, cache)
                text, n_out, finish = self._decode_loop(logits, len(toks), stop, max_tokens, temperature, got)
            except EngineError:
                raise
            except Stopped:  # the caller ended the call: the cache holds a half-computed tail
                self._cut_back()
                raise
            except Exception as e:
                self._reset()
                raise EngineError(f"llama.cpp generation failed: {e}") from e
            self._stats["calls"] += 1
            return Completion(text=text, input_tokens=len(toks), output_tokens=n_out, finish_reason=finish,
                              seconds=time.perf_counter() - t0, first_token_s=got.first,
                              prefill_tokens=prefilled, cached_tokens=reused)

    def _decode_loop(self, logits: np.ndarray, pos: int, stop: Sequence[str], max_tokens: int,
                     temperature: float, got: TextCollector) -> tuple[str, int, str]:
        """Sample until an end token, a stop string or the limit; stream text that cannot be a stop string."""
        t0 = time.perf_counter()
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text, sent, n_out, finish = "", 0, 0, "length"
        for _ in range(max_tokens):
            tok = int(np.argmax(logits)) if temperature <= 0 else self._sample(logits, temperature)
            if self._is_end(tok):
                finish = "stop"
                break
            n_out += 1
            text += utf8.decode(self._piece(tok))
            cut = min((text.find(s) for s in stop if s and s in text), default=-1)
            if cut >= 0:
                text, finish = text[:cut], "stop"
                break
            # stream all but a tail that could still grow into a stop string
            safe = len(text) - pending_stop(text, stop)
            if safe > sent:
                got.add(text[sent:safe])
                sent = safe
            check_cancel(self._call)
            logits = self._decode([tok], pos, all_logits=False)
            pos += 1
        else:
            text += utf8.decode(b"", final=True)
        if len(text) > sent:
            got.add(text[sent:])
        self._stats["generated_tokens"] += n_out
        self._stats["decode_s"] += time.perf_counter() - t0
        return text, n_out, finish

    def _sample(self, logits: np.ndarray, temperature: float, top_k: int = 40) -> int:
        idx = np.argpartition(logits, -top_k)[-top_k:]
        z = logits[idx].astype(np.float64) / temperature
        p = np.exp(z - z.max())
        return int(idx[self._rng.choice(len(idx), p=p / p.sum())])

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.0,
             stop: Sequence[str] = (), on_text: OnText | None = None, cache: CacheHint | None = None) -> Completion:
        prompt = self.chat_prompt(messages)
        if cache is not None and cache.prefix:
            head = self.prompt_head(cache.prefix, messages[-1].get("role", "user")) if len(messages) == 1 else ""
            cache = dataclasses.replace(cache, prefix=head if prompt.startswith(head) else "")
        return self.generate(prompt, stop=stop, max_tokens=max_tokens, temperature=temperature, on_text=on_text,
                             cache=cache)

    # ------------------------------------------------------------------ scoring

    def score(self, prefix: str, continuations: Sequence[str], cache: CacheHint | None = None, *,
              choice: bool = False) -> list[float]:
        if not continuations:
            return []
        with self.lock, self._calling(cache):
            base = self.tokens(prefix)
            fulls = [self.tokens(prefix + c) for c in continuations]
            # Shared tokens of the prefix and every full string; BPE may merge across the
            # boundary (" Name"), so what differs is scored as part of each continuation.
            k = shared_prefix_len(base, fulls)
            if max(len(f) for f in fulls) + 1 >= self.llm.n_ctx():
                raise EngineError(f"scoring prompt of {max(len(f) for f in fulls)} tokens exceeds the context")
            rests = [f[k:] for f in fulls]
            wanted = scored_positions(rests, choice)
            scores = [0.0] * len(rests)
            try:
                last, _, _ = self._prefill(base[:k], cache)
                rows: dict[tuple[int, ...], np.ndarray] = {(): last}  # logits after prefix + these tokens
                # In token order each continuation decodes only what it does not share with those before it
                # (the names "Qwen2.5-0.5B" and "Qwen2.5-1.5B" compute "Qwen2.5-" once), and only up to
                # the last position it is scored at.
                for i in sorted(range(len(rests)), key=lambda i: rests[i]):
                    r, pos = rests[i], wanted[i]
                    if not pos:
                        continue
                    need = max(pos)
                    if tuple(r[:need]) not in rows:
                        have = common_prefix_len(self._cached[k:], r[:need])
                        got = self._decode(r[have:need], k + have, all_logits=True)
                        self._stats["scored_tokens"] += need - have
                        for t in range(have, need):
                            rows[tuple(r[:t + 1])] = got[t - have]
                    scores[i] = sum(log_softmax_at(rows[tuple(r[:j])], r[j]) for j in pos)
                # What was decoded last stays cached: a generation of the same session that goes on with that
                # option ("<search> Qwen2.5-1.5B: …") reuses its start; any other call overwrites it.
            except EngineError:
                raise
            except Stopped:
                self._cut_back()
                raise
            except Exception as e:
                self._reset()
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
            self._park()
            self._prefix, self._owner = (), None
            rows = self._decode(toks, 0, all_logits=True)
            lps: list[float | None] = [None] + [log_softmax_at(rows[i - 1], toks[i]) for i in range(1, len(toks))]
            pieces = [self.llm.detokenize([t], special=True).decode("utf-8", "replace") for t in toks]
            if self._add_bos:
                pieces, lps = pieces[1:], lps[1:]
            return pieces, lps

    def next_token_logprob(self, ids: Sequence[int], token: int) -> float:
        """log P(token | ids) (a BOS goes in front where the model uses one), reusing whatever the cache
        holds of `ids` as a server's prefix cache would: what a vLLM server reports for a token forced with
        allowed_token_ids. The OpenAI test server answers with it."""
        with self.lock:
            toks = ([self.llm.token_bos()] if self._add_bos else []) + list(ids)
            if not toks or len(toks) >= self.llm.n_ctx():
                raise EngineError(f"{len(toks)} tokens: empty or beyond the context")
            reuse = min(common_prefix_len(self._cached, toks), len(toks) - 1)
            self._park()
            self._prefix, self._owner = (), None  # no session or shared prefix owns the cache any more
            return log_softmax_at(self._decode(toks[reuse:], reuse, all_logits=False), token)

    def close(self) -> None:
        try:
            self.llm.close()
        except Exception:
            pass
