"""What a llama.cpp engine's KV cache holds beyond one call: parked sessions and the prefix kept per machine.

* **The prefix per machine.** A shared prefix long enough to matter is also kept in a file
  (prefix_state.py): the next process restores its KV cells instead of computing them (the
  router's instructions: 12 s on the 1.5B on 2 cores), the same numbers to the bit.
* **Sessions side by side.** When calls of several sessions take turns (eval `--concurrency`, two
  visitors), a call of another session would overwrite a session's cache, and the session's next
  call would compute its transcript again in one batch where it had been computed call by call:
  other numbers, sometimes another greedy word. So a session whose cache another call is about to
  overwrite is *parked* (llama.cpp's per-sequence state, a copy of its KV cells) and restored when
  it calls again: each session computes exactly what it would alone, at a memcpy's cost (~30 KB a
  token on the 1.5B). Parked states are kept newest first within PARK_BYTES; a session whose state
  was dropped is computed again and counted (`stats()["recomputed_sessions"]`): then, and only
  then, its text may differ from a run alone.

The engine (llamacpp.py) owns the cache's bookkeeping: `_cached` (the tokens at positions [0, len)),
`_prefix` (the shared prefix among them), `_owner` (the session that computed the rest); this mixin
copies it, with llama.cpp's per-sequence state of the cells, out and back in.
"""
from __future__ import annotations

import ctypes
from collections import OrderedDict
from typing import Sequence

from . import prefix_state

PARK_BYTES = 512 * 2 ** 20  # parked session states kept at most (newest first): ~10 two-hop sessions of the 1.5B


class _Parked:
    """A session's cache as it stood when another call displaced it: its tokens, shared prefix and KV cells."""

    def __init__(self, cached: list[int], prefix: tuple[int, ...], state: "ctypes.Array[ctypes.c_uint8]") -> None:
        self.cached, self.prefix, self.state = cached, prefix, state


class KVStates:
    """Parking, the prefix file and putting the cache right after a failure or a cut, for LlamaCppEngine (which
    provides llm, _lib, model_path, lora_path, _n_threads, the cache bookkeeping and _stats)."""

    _parked: OrderedDict[str, _Parked]
    _seen: OrderedDict[str, None]

    def _park(self) -> None:
        """Keep the owning session's cache aside before another call overwrites it (see the module's docstring)."""
        owner, n = self._owner, len(self._cached)
        if owner is None:
            return
        if n <= len(self._prefix):  # nothing of its own to keep: its next call computes no more than before
            self._seen.pop(owner, None)
            return
        buf = self._seq_state()
        if buf is None:  # then the session is computed again, as before parking existed
            return
        self._parked.pop(owner, None)
        self._parked[owner] = _Parked(list(self._cached), self._prefix, buf)
        self._stats["parked_sessions"] += 1
        while sum(len(p.state) for p in self._parked.values()) > PARK_BYTES and len(self._parked) > 1:
            self._parked.popitem(last=False)

    def _seq_state(self) -> "ctypes.Array[ctypes.c_uint8] | None":
        """A copy of the cache's KV cells (llama.cpp's per-sequence state), or None where llama.cpp cannot give it."""
        lib, ctx = self._lib, self.llm._ctx.ctx
        try:
            size = lib.llama_state_seq_get_size(ctx, 0)
            buf = (ctypes.c_uint8 * size)()
            return buf if lib.llama_state_seq_get_data(ctx, buf, size, 0) == size else None
        except Exception:  # noqa: BLE001
            return None

    def _set_seq_state(self, data: "ctypes.Array[ctypes.c_uint8] | bytes") -> bool:
        """Replace the cache with a copied state; False (and an empty cache) where llama.cpp refuses it."""
        llm = self.llm
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        buf = data if isinstance(data, ctypes.Array) else (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if self._lib.llama_state_seq_set_data(llm._ctx.ctx, buf, len(buf), 0) == 0:
            self._reset()
            return False
        return True

    def _prefix_file(self, toks: Sequence[int]):
        """(path, header) of the stored state of this prefix, or None where states are off or it is too short."""
        folder = prefix_state.state_dir()
        if folder is None or len(toks) < prefix_state.MIN_TOKENS:
            return None
        want = prefix_state.expected(self.model_path, self.lora_path, toks, version=self._lib.__version__,
                                     n_batch=self.llm.n_batch, n_threads=self._n_threads)
        return prefix_state.path_for(folder, self.model_path, self.lora_path, toks), want

    def _load_prefix(self, toks: Sequence[int]) -> bool:
        """The shared prefix restored from its state file (see prefix_state); False: compute it."""
        found = self._prefix_file(toks)
        payload = prefix_state.read(*found) if found else None
        if payload is None:
            return False
        if not self._set_seq_state(payload):
            prefix_state.log.warning("prefix state %s is corrupt (llama.cpp refused it): computing the prefix again",
                                     found[0].name)
            return False
        self._cached = list(toks)
        self.llm.n_tokens = len(toks)
        return True

    def _save_prefix(self, toks: Sequence[int]) -> None:
        """Keep the prefix just computed (the cache holds exactly it) for the next process."""
        found = self._prefix_file(toks)
        if found is None or self._cached != list(toks):
            return
        buf = self._seq_state()
        if buf is not None:
            prefix_state.write(found[0], found[1], bytes(buf))

    def _unpark(self, session: str) -> None:
        """Bring back `session`'s parked cache, if there is one; count a session seen before that has none."""
        parked = self._parked.pop(session, None)
        if parked is None:
            if session in self._seen:
                self._stats["recomputed_sessions"] += 1
            self._seen[session] = None
            self._seen.move_to_end(session)
            while len(self._seen) > 4096:
                self._seen.popitem(last=False)
            return
        if not self._set_seq_state(parked.state):  # nothing half restored: the session is computed again
            self._stats["recomputed_sessions"] += 1
            return
        self._cached, self._prefix, self._owner = parked.cached, parked.prefix, session
        self.llm.n_tokens = len(self._cached)
        self._stats["restored_sessions"] += 1

    def _reset(self) -> None:
        try:
            self.llm._ctx.kv_cache_clear()
        except Exception:  # noqa: BLE001 — best effort after a failure
            pass
        self._cached, self._prefix, self._owner = [], (), None
        self.llm.n_tokens = 0

    def _cut_back(self) -> None:
        """After a call was cut short: keep the shared prefix where the cache holds all of it (it is only claimed once
        whole, computed as always), drop the half-computed rest and the session's claim on it."""
        n = len(self._prefix)
        if n == 0 or self._cached[:n] != list(self._prefix):
            self._reset()
            return
        try:
            self.llm._ctx.kv_cache_seq_rm(-1, n, -1)
        except Exception:  # noqa: BLE001 — then start again from nothing
            self._reset()
            return
        del self._cached[n:]
        self._owner = None
        self.llm.n_tokens = n
