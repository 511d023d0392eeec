"""Engines on the real shipped models: scoring is checked against a full re-evaluation and
against another engine (transformers on the same GGUF), and the Hub-id / local-directory
loading path is exercised on a small shipped model."""
import math

import pytest

from router_core.engines import EngineError, EngineSpec, Stopped, get_engine
from router_core.engines.base import CacheHint, branch_points, shared_prefix_len
from router_core.engines.weights import SHIPPED, WeightsError, resolve_shipped, sha256_file

PROMPT = [{"role": "user", "content": "Which assistant should answer 'Who directed Interstellar?': Smol or Qwen?"}]
NAMES = ["Smol:", "Qwen:", "Llama-70B:"]


def test_shipped_weights_verified(smol):
    p = resolve_shipped("smollm2-135m-instruct")
    assert sha256_file(p) == SHIPPED["smollm2-135m-instruct"].sha256
    with pytest.raises(WeightsError, match="unknown shipped model"):
        resolve_shipped("nope")


def test_llamacpp_generate_with_stop_and_counts(smol):
    c = smol.generate(smol.chat_prompt([{"role": "user", "content": "Count: 1, 2, 3, 4, 5, 6"}]),
                      stop=["4"], max_tokens=40)
    assert "4" not in c.text and c.output_tokens > 0 and c.input_tokens > 5
    pieces = []
    c2 = smol.chat([{"role": "user", "content": "Name a colour."}], max_tokens=12, on_text=pieces.append)
    assert "".join(pieces) == c2.text and c2.first_token_s is not None


def test_llamacpp_score_matches_full_reevaluation(qwen):
    prefix = qwen.chat_prompt(PROMPT) + "<search> "
    fast = qwen.score(prefix, NAMES)
    # reference: one pass over each whole string with logits for every position
    ref = []
    for n in NAMES:
        pieces, lps = qwen.prompt_logprobs(prefix + n)
        base, _ = qwen.prompt_logprobs(prefix)
        k = 0
        while k < min(len(base), len(pieces)) and base[k] == pieces[k]:
            k += 1
        ref.append(sum(lps[k:]))
    # The two paths split the tokens into different batches, and llama.cpp's quantised kernels give slightly
    # different logits for different batch shapes: bench/determinism.py measures |Δ| ≤ 0.18 nat over 30
    # prompt × name pairs (last-position logits move by up to 0.30). An off-by-one position or a wrong
    # boundary token is off by several nats, so 0.6 separates the two with room to spare.
    for a, b in zip(fast, ref):
        assert a == pytest.approx(b, abs=0.6)
    # the ranking agrees wherever two names are further apart than the noise
    for i in range(3):
        for j in range(3):
            if ref[i] - ref[j] > 1.2:
                assert fast[i] > fast[j]
    # scoring twice (prefix now cached) gives the same numbers
    assert qwen.score(prefix, NAMES) == pytest.approx(fast, abs=1e-4)
    assert all(math.isfinite(x) and x < 0 for x in fast)


def test_llamacpp_choice_computes_shared_starts_once_and_scores_only_where_options_part(qwen, monkeypatch):
    prefix = qwen.chat_prompt(PROMPT) + "<search> "
    opts = ["Qwen2.5-0.5B:", "SmolLM2-135M:", "Qwen2.5-1.5B:"]
    base, fulls = qwen.tokens(prefix), [qwen.tokens(prefix + o) for o in opts]
    k = shared_prefix_len(base, fulls)
    rests = [f[k:] for f in fulls]
    parts = branch_points(rests)
    assert parts[0] == parts[2] and len(parts[0]) == 2 and parts[1] == [0]  # "Qwen2.5-" is shared
    decoded: list[int] = []
    real = qwen._decode

    def counting(toks, n_past, all_logits):
        if all_logits:  # the continuations' tokens (the prefix is brought in with last-position logits only)
            decoded.append(len(toks))
        return real(toks, n_past, all_logits)

    monkeypatch.setattr(qwen, "_decode", counting)
    full = qwen.score(prefix, opts)
    n_full, decoded[:] = sum(decoded), []
    chosen = qwen.score(prefix, opts, choice=True)
    n_choice = sum(decoded)
    monkeypatch.undo()
    # every token that ends no option is computed once: "Qwen2.5-" for both Qwen names
    assert n_full == len({tuple(r[:t]) for r in rests for t in range(1, len(r))}) < sum(len(r) - 1 for r in rests)
    # a choice stops at the last token where its option parts from another: ".5B:" is never computed
    assert n_choice == max(parts[0]) < n_full
    # the values are the per-token log-probabilities of a full pass at those positions (up to batch-shape noise,
    # see test_llamacpp_score_matches_full_reevaluation)
    for i, o in enumerate(opts):
        _, lps = qwen.prompt_logprobs(prefix + o)
        assert full[i] == pytest.approx(sum(lps[k:]), abs=0.6)
        assert chosen[i] == pytest.approx(sum(lps[k + j] for j in parts[i]), abs=0.6)
    assert qwen.score(prefix, opts, choice=True) == pytest.approx(chosen, abs=1e-4)
    # in a session, the generation that goes on with a name reuses what scoring computed of it ("Qwen2.5-")
    hint = CacheHint(session="choice-test")
    qwen.score(prefix, opts, hint, choice=True)
    c = qwen.generate(prefix + opts[2], max_tokens=4, cache=hint)
    assert c.cached_tokens >= k + max(parts[2]) - 1 and c.prefill_tokens <= len(fulls[2]) - k - max(parts[2]) + 1


def test_generation_after_scoring_reuses_cache_and_is_unchanged(qwen):
    prompt = qwen.chat_prompt([{"role": "user", "content": "What is the capital of France? One word."}])
    a = qwen.generate(prompt, max_tokens=8).text
    qwen.score(prompt, ["Paris", "Lyon"])
    b = qwen.generate(prompt, max_tokens=8).text
    assert a == b and "Paris" in a


def _stop_at(n: int):
    got: list[str] = []

    def on_text(piece: str) -> None:
        if len(got) >= n:
            raise Stopped("stopped mid-reply")
        got.append(piece)
    return got, on_text


@pytest.mark.parametrize("backend", ["llamacpp", "transformers"])
def test_a_call_stopped_mid_stream_ends_there_and_the_engine_answers_the_same_afterwards(smol, backend):
    engine = smol if backend == "llamacpp" else get_engine(EngineSpec(engine="transformers",
                                                                      model=str(resolve_shipped("smollm2-135m-instruct"))))
    msgs = [{"role": "user", "content": "Write a long list of fruits, one per line."}]
    whole = engine.chat(msgs, max_tokens=40).text
    got, cut = _stop_at(3)
    with pytest.raises(Stopped):  # not an EngineError: nothing failed
        engine.chat(msgs, max_tokens=40, on_text=cut)
    assert len(got) == 3 and "".join(got) != whole
    assert engine.chat(msgs, max_tokens=40).text == whole  # nothing half-decoded is left behind


def test_transformers_loads_gguf_and_agrees_with_llamacpp(smol, tmp_path):
    """The transformers path (gguf_file=) on the same weights; then the local-directory path
    that real checkpoints use, via save_pretrained of that model."""
    path = str(resolve_shipped("smollm2-135m-instruct"))
    hf = get_engine(EngineSpec(engine="transformers", model=path))
    prefix = smol.chat_prompt(PROMPT) + "<search> "
    assert hf.chat_prompt(PROMPT) == smol.chat_prompt(PROMPT)
    a, b = smol.score(prefix, NAMES), hf.score(prefix, NAMES)
    # Q4_1 weights, llama.cpp quantised matmuls vs dequantised fp32: close, same ranking
    assert sorted(range(3), key=lambda i: a[i]) == sorted(range(3), key=lambda i: b[i])
    for x, y in zip(a, b):
        assert abs(x - y) < 0.6 + 0.05 * abs(y), (a, b)
    out = hf.chat([{"role": "user", "content": "Who directed the film Interstellar?"}], max_tokens=16)
    assert out.output_tokens > 0 and out.text.strip()
    # a local checkpoint directory (what `--policy-model /path/to/Router-R1` loads)
    from router_core.engines.transformers import export_checkpoint
    d = export_checkpoint(hf, str(tmp_path / "ckpt"))
    assert hf.score(prefix, NAMES) == b  # exporting leaves the loaded engine as it was
    local = get_engine(EngineSpec(engine="transformers", model=str(d)))
    assert local.score(prefix, NAMES) == pytest.approx(b, abs=1e-3)


@pytest.mark.model  # loads the transformers and llama.cpp backends
def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(EngineError, match="nope"):
        get_engine(EngineSpec(engine="transformers", model=str(tmp_path / "nope")))
    with pytest.raises(EngineError, match="GGUF file not found"):
        get_engine(EngineSpec(engine="llamacpp", model=str(tmp_path / "x.gguf")))



def test_vllm_missing_gives_clear_error():
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed here; this checks the message when it is not")
    except ImportError:
        pass
    with pytest.raises(EngineError, match="vLLM is not installed"):
        get_engine(EngineSpec(engine="vllm", model="ulab-ai/Router-R1-Qwen2.5-3B-Instruct"))
