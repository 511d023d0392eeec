"""`python app.py ask` as a user runs it: JSON summary, streamed text, clear errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parent.parent


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_ask_json_summary():
    p = run("ask", "What is the capital of France?", "--gold", "Paris", "--alpha", "0.3", "--json")
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    for k in ("session_id", "question", "answer", "em", "f1", "cost_usd", "alpha", "steps"):
        assert k in out
    assert out["alpha"] == 0.3 and out["question"] == "What is the capital of France?"
    assert out["em"] in (0.0, 1.0) and 0.0 <= out["f1"] <= 1.0
    assert out["steps"][-1]["kind"] == "answer" and out["answer"] == out["steps"][-1]["text"]
    for s in out["steps"]:
        for k in ("kind", "model", "query", "response", "input_tokens", "output_tokens", "cost_usd",
                  "latency_s", "status"):
            assert k in s
    routes = [s for s in out["steps"] if s["kind"] == "route" and s["status"] == "ok"]
    assert all("choice" in s and s["choice"]["alpha"] == 0.3 for s in routes)
    assert abs(sum(s["cost_usd"] for s in out["steps"]) - out["cost_usd"]) < 1e-12


def test_ask_streams_steps_and_summary_without_gold():
    p = run("ask", "Who directed the film Interstellar?")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "think" in p.stdout and "ANSWER:" in p.stdout and "answer " in p.stdout and "cost " in p.stdout


def test_ask_json_without_gold_has_null_em():
    p = run("ask", "What is 2 plus 2?", "--json", "--max-turns", "0")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["em"] is None and out["f1"] is None
    assert not any(s["kind"] == "route" for s in out["steps"])


def test_bad_inputs_give_clear_errors(tmp_path):
    bad = tmp_path / "pool.yaml"
    bad.write_text("name: p\nmodels:\n  - {name: A, engine: llamacpp, model: x, params_b: 1, price_in: 0, price_out: -2, description: d}\n")
    p = run("ask", "q", "--pool", str(bad))
    assert p.returncode == 2 and "pool.yaml: models[0].price_out" in p.stderr and "Traceback" not in p.stderr
    p = run("ask", "q", "--alpha", "1.5")
    assert p.returncode == 2 and "--alpha: 1.5 is outside [0, 1]" in p.stderr
    p = run("ask", "q", "--policy", "nope")
    assert p.returncode == 2 and "no policy named 'nope'" in p.stderr


def test_calibrate_labels_the_local_pool_resumes_and_refuses_a_test_split(tmp_path):
    """`app.py calibrate` on the shipped models: one good question and two bad lines (named, skipped), each model
    asked once; the same command again asks nothing; a test split is refused before anything runs."""
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"id": "q1", "question": "What is the capital of France?", "golden_answers": ["Paris"]})
                    + "\n{oops\n" + json.dumps({"id": "q2", "golden_answers": ["x"]}) + "\n", encoding="utf-8")
    out = tmp_path / "labels.jsonl"
    p = run("calibrate", "--dataset", str(data), "--out", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "line 2: not valid JSON" in p.stderr and "line 3" in p.stderr and "2 bad line(s) skipped" in p.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0]["kind"] == "router-studio-calibration" and lines[0]["pool"] == "local"
    assert sorted(x["model"] for x in lines[1:]) == ["Qwen2.5-0.5B", "Qwen2.5-1.5B", "SmolLM2-135M"]
    assert all(x["id"] == "q1" and x["correct"] in (0.0, 1.0) and x["reply"] for x in lines[1:])
    again = run("calibrate", "--dataset", str(data), "--out", str(out))
    assert again.returncode == 0 and "0 call(s), 3 already labelled" in again.stderr
    test_split = tmp_path / "test.jsonl"
    test_split.write_text(data.read_text())
    p = run("calibrate", "--dataset", str(test_split), "--out", str(tmp_path / "t.jsonl"))
    assert p.returncode == 2 and "looks like a test split" in p.stderr and not (tmp_path / "t.jsonl").exists()
