"""A LoRA adapter as a GGUF file llama.cpp loads on the shipped quantized base, and the checks before loading it.

llama.cpp reads a LoRA adapter from a GGUF of its own kind (`general.type = adapter`, `adapter.type = lora`,
`adapter.lora.alpha`), one `<base tensor>.lora_a` / `.lora_b` pair per adapted matrix, with the shapes peft keeps
(A: rank × in, B: out × rank) and the scale alpha / rank. Writing it here with the `gguf` package keeps the
conversion to a page of our own code (no script from llama.cpp's source tree, which no wheel ships).

One detail decides whether the adapter means on llama.cpp what it meant in training: for the `llama` architecture
(SmolLM2) llama.cpp's converter permutes the rows of the query and key projections (its RoPE layout), and
transformers un-permutes them when it loads the GGUF. A LoRA's B matrix lives in transformers' layout, so its rows are
permuted here the same way; Qwen2 needs nothing. tests/test_training.py checks that transformers+peft and
llama.cpp+adapter agree on the greedy next token of a training example.

Besides llama.cpp's keys, the file carries the sha256 of the base it was trained on (`router_studio.base_sha256`),
so an adapter for another base is refused by hash before llama.cpp sees it (llama.cpp only checks the architecture
and the shapes, and two models of one family can share both).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

BASE_SHA_KEY = "router_studio.base_sha256"
CARD_KEY = "router_studio.card"
# architectures whose query/key rows llama.cpp's converter permutes (so a LoRA's B must be too), and those it leaves
PERMUTED, UNPERMUTED = frozenset({"llama"}), frozenset({"qwen2"})


class AdapterError(ValueError):
    """An adapter file that cannot be used: missing, corrupt, not a LoRA, or made for another base."""


@dataclass(frozen=True)
class BaseInfo:
    """What the adapter must match in its base GGUF."""

    arch: str
    n_blocks: int
    n_head: int
    n_head_kv: int


def base_info(base_gguf: str | Path) -> BaseInfo:
    import gguf
    try:
        r = gguf.GGUFReader(str(base_gguf))
    except Exception as e:  # the reader raises ValueError / struct errors on a bad file
        raise AdapterError(f"{base_gguf}: not a readable GGUF ({e})") from None
    arch = _field_str(r, "general.architecture")

    def num(key: str) -> int:
        f = r.fields.get(f"{arch}.{key}")
        if f is None:
            raise AdapterError(f"{base_gguf}: no {arch}.{key} in its metadata")
        return int(f.parts[-1][0])
    return BaseInfo(arch=arch, n_blocks=num("block_count"), n_head=num("attention.head_count"),
                    n_head_kv=num("attention.head_count_kv"))


def _field_str(reader: Any, key: str) -> str:
    f = reader.fields.get(key)
    if f is None:
        return ""
    return bytes(f.parts[-1]).decode("utf-8", "replace")


def _permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's row order for a RoPE'd projection of the llama architecture (rows = heads × 2 × half)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def gguf_pairs(lora: Mapping[str, np.ndarray], info: BaseInfo) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """peft's state dict (`…model.layers.3.self_attn.q_proj.lora_A.weight` → array) as base tensor name
    (`blk.3.attn_q.weight`) → (A, B) in llama.cpp's layout."""
    import gguf
    arch = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == info.arch), None)
    if arch is None:
        raise AdapterError(f"architecture '{info.arch}' is unknown to the gguf package")
    names = gguf.get_tensor_name_map(arch, info.n_blocks)
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, value in lora.items():
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in key:
                module = key.split(marker)[0]
                module = module[module.index("model.layers."):] if "model.layers." in module else module
                modules.setdefault(module, {})[part] = np.asarray(value, dtype=np.float32)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for module, ab in sorted(modules.items()):
        if set(ab) != {"lora_A", "lora_B"}:
            raise AdapterError(f"{module}: has {sorted(ab)} but a LoRA needs both lora_A and lora_B")
        target = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if target is None:
            raise AdapterError(f"{module}: no tensor of a {info.arch} GGUF corresponds to it")
        a, b = ab["lora_A"], ab["lora_B"]
        if info.arch in PERMUTED and module.endswith("self_attn.q_proj"):
            b = _permute_rows(b, info.n_head)
        elif info.arch in PERMUTED and module.endswith("self_attn.k_proj"):
            b = _permute_rows(b, info.n_head_kv)
        out[target] = (a, b)
    if not out:
        raise AdapterError("the state dict holds no LoRA weights (no lora_A / lora_B keys)")
    return out


def write_adapter(lora: Mapping[str, np.ndarray], *, base_gguf: str | Path, base_sha256: str, lora_alpha: float,
                  out: str | Path, card: Mapping[str, Any] | None = None) -> Path:
    """Write the GGUF adapter (F16 tensors) atomically: a failed write leaves no half file under `out`."""
    import gguf
    info = base_info(base_gguf)
    if info.arch not in PERMUTED | UNPERMUTED:
        # llama.cpp's converter reorders some architectures' weights; only these two are known to need (or not)
        # the query/key permutation here: another could load and quietly compute something else
        raise AdapterError(f"{base_gguf}: architecture '{info.arch}' is not supported for adapters here "
                           f"(supported: {', '.join(sorted(PERMUTED | UNPERMUTED))})")
    pairs = gguf_pairs(lora, info)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    os.close(fd)
    w = None
    try:
        w = gguf.GGUFWriter(tmp, info.arch)
        w.add_string("general.type", "adapter")
        w.add_string("adapter.type", "lora")
        w.add_float32("adapter.lora.alpha", float(lora_alpha))
        w.add_string(BASE_SHA_KEY, base_sha256)
        if card:
            w.add_string(CARD_KEY, json.dumps(card, sort_keys=True, default=str))
        for name, (a, b) in pairs.items():
            w.add_tensor(f"{name}.lora_a", a.astype(np.float16))
            w.add_tensor(f"{name}.lora_b", b.astype(np.float16))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        w = None
        os.chmod(tmp, 0o644)  # mkstemp made it 0600: the adapter is a shipped asset, readable like the base
        os.replace(tmp, out)
    finally:
        if w is not None:
            w.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


@dataclass(frozen=True)
class AdapterInfo:
    path: str
    arch: str
    base_sha256: str
    lora_alpha: float
    pairs: int
    card: dict[str, Any]


def read_adapter(path: str | Path) -> AdapterInfo:
    """The adapter's metadata; AdapterError names the file when it is missing, unreadable or not a LoRA adapter."""
    import gguf
    p = Path(path)
    if not p.is_file():
        raise AdapterError(f"{p}: adapter file not found")
    try:
        r = gguf.GGUFReader(str(p))
    except Exception as e:
        raise AdapterError(f"{p}: not a readable GGUF file (corrupt or truncated: {type(e).__name__}: {e})") from None
    if _field_str(r, "general.type") != "adapter" or _field_str(r, "adapter.type") != "lora":
        raise AdapterError(f"{p}: not a LoRA adapter (general.type '{_field_str(r, 'general.type')}', "
                           f"adapter.type '{_field_str(r, 'adapter.type')}')")
    alpha_f = r.fields.get("adapter.lora.alpha")
    names = [t.name for t in r.tensors]
    a_names = {n[: -len(".lora_a")] for n in names if n.endswith(".lora_a")}
    b_names = {n[: -len(".lora_b")] for n in names if n.endswith(".lora_b")}
    if not a_names or a_names != b_names:
        raise AdapterError(f"{p}: its lora_a and lora_b tensors do not pair up ({len(a_names)} vs {len(b_names)})")
    card_text = _field_str(r, CARD_KEY)
    try:
        card = json.loads(card_text) if card_text else {}
    except json.JSONDecodeError:
        raise AdapterError(f"{p}: its {CARD_KEY} metadata is not JSON (corrupt)") from None
    return AdapterInfo(path=str(p), arch=_field_str(r, "general.architecture"), base_sha256=_field_str(r, BASE_SHA_KEY),
                       lora_alpha=float(alpha_f.parts[-1][0]) if alpha_f is not None else 0.0, pairs=len(a_names),
                       card=card)


def check_adapter(path: str | Path, base_gguf: str | Path, base_sha256: str) -> AdapterInfo:
    """The adapter, checked against the base it is about to be loaded on by the base's sha256 (the same file, so
    the same architecture and shapes: nothing else need be read from a base of hundreds of MB)."""
    info = read_adapter(path)
    if not info.base_sha256:
        raise AdapterError(f"{path}: the adapter does not say which base it was trained on ({BASE_SHA_KEY}); "
                           "refusing to load it on a base it may not fit")
    if info.base_sha256 != base_sha256:
        raise AdapterError(f"{path}: trained on the base with sha256 {info.base_sha256[:16]}…, but the model it would "
                           f"be loaded on ({Path(base_gguf).name}) has sha256 {base_sha256[:16]}…")
    return info
