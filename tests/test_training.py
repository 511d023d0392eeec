"""Training a router: the reward and rejection sampling, the training text against the free rollout's transcript,
the GGUF adapter's checks, resume refusal, and the whole pipeline at toy size on the shipped 135M."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support.fake_engine import FakeEngine, fake_pool, fake_provider

from router_core.engines import EngineError, EngineSpec, get_engine
from router_core.engines.adapters import AdapterError, check_adapter, read_adapter, write_adapter
from router_core.engines.weights import resolve_shipped, weights_sha256
from router_core.loop import Router
from router_core.policy import Policy
from router_core.protocol import Template
from router_core.step import Step
from training.collect import CollectError, check_items
from training.sft import TrainConfig, TrainError, train
from training.trajectories import Example, Trajectory, examples_from, protocol_segments, select

ROOT = Path(__file__).resolve().parent.parent
PRICES = {"Tiny": 0.03, "Mid": 0.1, "Big": 0.3}


def _route(i: int, model: str, query: str, reply: str, out_tokens: int = 10, **kw) -> Step:
    s = Step("s", i, "route", request_model=model, written_model=model, query=query, response=reply,
             output_tokens=out_tokens, input_tokens=20, **kw)
    s.call_started_at, s.call_ended_at = time.time(), time.time()
    return s


def _traj(sid: str, alpha: float, model: str, answer: str, *, golds=("Paris",), extra: list[Step] | None = None,
          out_tokens: int = 10, item: str = "q1") -> Trajectory:
    steps = [Step(sid, 0, "think", text="I need the country first."),
             _route(1, model, "Where is the Eiffel Tower?", "In France.", out_tokens),
             Step(sid, 2, "think", text="It is in France. I need its capital."),
             _route(3, model, "What is the capital of France?", "Paris.", out_tokens),
             *(extra or []),
             Step(sid, 9, "answer", text=answer)]
    for s in steps:
        s.session_id = sid
    return Trajectory(session_id=sid, question="What is the capital of the country where the Eiffel Tower stands?",
                      golds=list(golds), alpha=alpha, policy="teacher", steps=steps, dataset="d", item_id=item,
                      prices=PRICES)


# --------------------------------------------------------------------------------------------- the reward

def test_the_reward_decides_what_is_kept_at_each_alpha_not_the_alpha_it_ran_at():
    dear = _traj("dear", 0.0, "Big", "Paris", out_tokens=40)
    cheap = _traj("cheap", 1.0, "Tiny", "Paris", out_tokens=10)
    wrong = _traj("wrong", 0.5, "Mid", "Lyon", out_tokens=20)
    ds = select([dear, cheap, wrong], [0.0, 0.5, 1.0], min_reward=0.5)
    kept = {d.alpha: d.trajectory.session_id for d in ds if d.kept}
    # α 0: both right with reward 1; the tie goes to the one run nearest α 0 (the dear model's)
    assert kept[0.0] == "dear"
    # α 0.5 and 1: the cheap right answer has the higher reward, whatever α the teacher ran it at
    assert kept[0.5] == "cheap" and kept[1.0] == "cheap"
    reasons = {(d.alpha, d.trajectory.session_id): d.reason for d in ds}
    assert reasons[(0.0, "wrong")] == "wrong" and reasons[(0.5, "dear")] == "outranked"
    # at α 1 the dear trajectory's reward is its R_cost: the costliest of the collection scores 0 → too dear
    assert reasons[(1.0, "dear")] == "too_dear"
    d = next(d for d in ds if d.alpha == 0.5 and d.trajectory.session_id == "cheap")
    assert d.terms.reward == pytest.approx(0.5 + 0.5 * d.terms.r_cost) and d.terms.r_cost == 1.0


def test_a_broken_protocol_or_a_repeat_is_never_kept():
    broken = _traj("broken", 0.0, "Big", "Paris")
    broken.steps[-1].flags.append("format:empty_answer")
    rep = _traj("rep", 0.0, "Big", "Paris", extra=[_route(5, "Big", "What is the capital of France?",
                                                          "(Not asked again)", flags=["repeated_query"])])
    ds = select([broken, rep], [0.0], min_reward=0.0)
    assert {d.trajectory.session_id: d.reason for d in ds} == {"broken": "protocol", "rep": "repeat"}
    assert next(d for d in ds if d.trajectory.session_id == "broken").terms.reward == -1.0


def test_min_reward_zero_keeps_a_wrong_but_sound_trajectory():
    ds = select([_traj("w", 0.0, "Big", "Lyon")], [0.0], min_reward=0.0)
    assert [d.reason for d in ds] == ["kept"]
    assert [d.reason for d in select([_traj("w", 0.0, "Big", "Lyon")], [0.0], min_reward=0.5)] == ["wrong"]


# ------------------------------------------------------------------------------------ the training text

def test_training_text_is_the_plain_protocol_with_replies_masked_and_rules_as_data():
    t = _traj("t", 0.0, "Big", "Paris")
    # a think a rule wrote after the router's own (an answer sent back): the last one of the two is kept
    t.steps.insert(4, Step("t", 4, "think", text="Paris answers the hop, but not yet the question.", lead="Paris"))
    # a first hop a rule refused before it was sent: not in the text
    refused = Step("t", 1, "route", request_model=None, query="What is the capital of the country …?",
                   flags=["whole_question"])
    t.steps.insert(1, refused)
    segs = protocol_segments(t.steps)
    assert [trained for _, trained in segs] == [True, False, True, False, True]
    assert segs[0][0] == ("<think> I need the country first. </think>\n"
                          "<search> Big: Where is the Eiffel Tower? </search>")
    assert segs[1][0] == "\n\n<information> In France. </information>\n"
    assert segs[4][0] == "<think> Paris answers the hop, but not yet the question. </think>\n<answer> Paris </answer>"
    assert "whole" not in "".join(s for s, _ in segs)


def test_every_think_block_keeps_its_first_sentence_and_the_first_says_alpha_in_words():
    t = _traj("t", 0.0, "Big", "Paris")
    t.steps[0].text = 'Christopher Nolan directed "Interstellar." I still need where Nolan was born. And more.'
    t.steps[2].text = "It is in France. I need its capital."
    segs = protocol_segments(t.steps, alpha=1.0)
    thinks = [seg.split("</think>")[0] for seg, trained in segs if trained]
    assert thinks[0] == ('<think> α is 1: every dollar counts, so the cheapest model that can answer. '
                         'Christopher Nolan directed "Interstellar." ')
    assert thinks[1] == "<think> It is in France. "  # every block, not only the first (a loop once lost the mode)
    assert "α is" not in "".join(thinks[1:])
    whole = protocol_segments(t.steps, think="whole")
    assert "I still need where Nolan was born. And more." in whole[0][0]
    with pytest.raises(ValueError, match="think"):
        protocol_segments(t.steps, think="none")


def test_alpha_values_with_fewer_kept_trajectories_are_repeated_to_weigh_the_same():
    trajs = [_traj(f"d{i}", 0.0, "Big", "Paris", out_tokens=40, item=f"q{i}") for i in range(3)]
    trajs.append(_traj("c0", 1.0, "Tiny", "Paris", item="q0"))  # only q0 has a right cheap answer
    ds = select(trajs, [0.0, 1.0])
    plain, balanced = examples_from(ds, balance=False), examples_from(ds)
    assert sorted(e.alpha for e in plain) == [0.0, 0.0, 0.0, 1.0]
    assert sorted(e.alpha for e in balanced) == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert {e.session_id for e in balanced if e.alpha == 1.0} == {"c0"}
    assert balanced[0].segments[0][0].startswith("<think> α is 0: the answer counts, not the cost.")


def test_training_text_matches_the_free_rollouts_transcript_exactly():
    """What the student learns is laid out exactly as the free rollout lays out what it writes and reads."""
    t = _traj("t", 0.5, "Big", "Paris")
    segs = protocol_segments(t.steps)
    written = [s for s, trained in segs if trained]
    policy = FakeEngine(written)  # the student writes exactly its training text, turn by turn
    cand = FakeEngine(reply=lambda q: {"Where is the Eiffel Tower?": "In France.",
                                       "What is the capital of France?": "Paris."}[q])
    pol = Policy(name="student", engine="llamacpp", model="fake:policy", mode="free",
                 template=str(ROOT / "assets/templates/router_trained.txt"))
    rt = Router(pol, fake_pool(), engines=fake_provider(policy, default=cand),
                config=pol.run_config({"kappa": 0.0}))
    steps = list(rt.run(t.question, 0.5))
    assert steps[-1].kind == "answer" and steps[-1].text == "Paris"
    last_prompt = policy.prompts("generate")[-1]
    head = policy.chat_prompt([{"role": "user", "content": Template.load(pol.template).fill(
        t.question, [(m.name, m.description) for m in fake_pool().models], "Big", alpha=0.5)}])
    assert last_prompt == head + "".join(s for s, _ in segs[:-1])
    assert "α = 0.5" in head


def test_student_template_states_alpha_after_the_question_so_the_instructions_stay_cached():
    tpl = Template.load(ROOT / "assets/templates/router_trained.txt")
    models = [(m.name, m.description) for m in fake_pool().models]
    assert tpl.states_alpha
    a, b = tpl.fill("Q?", models, "Big", alpha=0.25), tpl.fill("Q?", models, "Big", alpha=1.0)
    assert "α = 0.25" in a and "α = 1" in b
    head = tpl.head(models, "Big")
    assert a.startswith(head) and b.startswith(head) and "Q?" not in head


def test_examples_carry_alpha_and_reward():
    ds = select([_traj("c", 1.0, "Tiny", "Paris")], [0.0, 1.0], min_reward=0.5)
    ex = examples_from(ds)
    assert [e.alpha for e in ex] == [0.0, 1.0] and all(e.reward >= 0.5 for e in ex) and ex[0].models == ["Tiny", "Tiny"]
    assert ex[1].segments[0][0].startswith("<think> α is 1: every dollar counts")


# --------------------------------------------------------------------------------------------- bad input

def test_collect_refuses_test_splits_and_questions_without_gold():
    from evaluation.datasets import Item
    items = [Item("1", "Q?", ["A"], "d")]
    with pytest.raises(CollectError, match="test split"):
        check_items(items, ["hotpotqa/test"])
    with pytest.raises(CollectError, match="no gold answer"):
        check_items([Item("2", "Q?", [" "], "d")], ["mine.jsonl"])
    check_items(items, ["hotpotqa/train"])


def test_collect_names_a_dataset_without_gold_answers(tmp_path):
    f = tmp_path / "nogold.jsonl"
    f.write_text(json.dumps({"id": "1", "question": "What is the capital of France?"}) + "\n")
    r = subprocess.run([sys.executable, str(ROOT / "app.py"), "collect", "--dataset", str(f), "--db",
                        str(tmp_path / "t.sqlite")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "nogold.jsonl line 1" in r.stderr and "answer" in r.stderr


def test_resuming_against_changed_data_is_refused_before_anything_loads(tmp_path):
    ex = [Example("Q?", 0.0, [("<answer> A </answer>", True)], "s", "d", "1", 1.0, [])]
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / "data.json").write_text(json.dumps({"data_hash": "0" * 64}))
    with pytest.raises(TrainError, match="other data or settings.*--restart"):
        train(ex, fake_pool(), tmp_path, TrainConfig(base="shipped:smollm2-135m-instruct"))


def test_a_train_command_that_cannot_resume_changes_no_file_and_nothing_stored(tmp_path):
    """Refused before `app.py train` writes its examples or touches the store: a finished run of the same folder
    keeps its card and selection."""
    from support.ui_fixtures import write_session

    from storage import TraceStore
    from storage import training as stored
    from training.pipeline import run_training, training_run_id
    out = tmp_path / "adapter"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "data.json").write_text(json.dumps({"data_hash": "0" * 64}))
    (out / "examples.jsonl").write_text("held\n")
    with TraceStore(str(tmp_path / "t.sqlite")) as st:
        write_session(st, "What is the capital of France?", alpha=0.0, answer="Paris", gold=["Paris"], run_id="c")
        rid = training_run_id(out, "x")
        stored.start_run(st, run_id=rid, name="x", base="b", out_dir=str(out), source_runs=["c"], alphas=[0.0],
                         config={})
        stored.finish_run(st, rid, status="done", card={"name": "x"})
        with pytest.raises(TrainError, match="other data or settings"):
            run_training(st, ["c", "c"], fake_pool(), TrainConfig(base="shipped:smollm2-135m-instruct"),
                         alphas=[0.0], min_reward=0.0, out_dir=out, name="x")
        run = stored.get_run(st, rid)
        assert run["status"] == "done" and run["card"] == {"name": "x"} and stored.trajectories(st, rid) == []
    assert (out / "examples.jsonl").read_text() == "held\n"


def test_the_cards_command_never_holds_a_database_password():
    from training.pipeline import command_line
    line = command_line(["train", "--db", "postgresql://u:s3cret@h/db", "--run", "r", "--db=mysql://u:s3cret@h/x"])
    assert "s3cret" not in line and "postgresql://u:***@h/db" in line and line.startswith("app.py train")
    assert command_line(["train", "--db", "traces.sqlite"]) == "app.py train --db traces.sqlite"


def _toy_adapter(tmp_path: Path, base: Path, sha: str, name: str = "a.gguf", alpha: float = 16.0) -> Path:
    rng = np.random.default_rng(0)
    lora = {}
    for i in range(2):
        for proj, (out, inn) in {"q_proj": (576, 576), "k_proj": (192, 576)}.items():
            pre = f"base_model.model.model.layers.{i}.self_attn.{proj}"
            lora[f"{pre}.lora_A.weight"] = rng.normal(size=(4, inn)).astype(np.float32)
            lora[f"{pre}.lora_B.weight"] = rng.normal(size=(out, 4)).astype(np.float32)
    return write_adapter(lora, base_gguf=base, base_sha256=sha, lora_alpha=alpha, out=tmp_path / name,
                         card={"name": "toy"})


def test_an_adapter_is_checked_before_llama_cpp_sees_it(tmp_path):
    base = resolve_shipped("smollm2-135m-instruct")
    sha = weights_sha256("shipped:smollm2-135m-instruct", base)
    a = _toy_adapter(tmp_path, base, sha)
    info = check_adapter(a, base, sha)
    assert info.arch == "llama" and info.pairs == 4 and info.card == {"name": "toy"} and info.lora_alpha == 16.0
    # made for another base: refused by hash, naming both
    other = _toy_adapter(tmp_path, base, "f" * 64, "other.gguf")
    with pytest.raises(AdapterError, match="trained on the base with sha256 ffffffff"):
        check_adapter(other, base, sha)
    # missing, truncated, or not an adapter at all
    with pytest.raises(AdapterError, match="not found"):
        check_adapter(tmp_path / "missing.gguf", base, sha)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(a.read_bytes()[: a.stat().st_size // 3])
    with pytest.raises(AdapterError, match="corrupt or truncated"):
        read_adapter(cut)
    with pytest.raises(AdapterError, match="not a LoRA adapter"):
        read_adapter(base)
    # through the engine registry: an EngineError naming the adapter, never a crash in llama.cpp
    with pytest.raises(EngineError, match="trained on the base"):
        get_engine(EngineSpec(engine="llamacpp", model="shipped:smollm2-135m-instruct", adapter=str(other),
                              role="router"))
    with pytest.raises(EngineError, match="'llamacpp' only"):
        get_engine(EngineSpec(engine="transformers", model="shipped:smollm2-135m-instruct", adapter=str(a)))


def test_the_adapter_writer_permutes_llama_query_rows_as_llama_cpp_does(tmp_path):
    """llama.cpp's converter reorders the query/key rows of the llama architecture per head; B must follow (Qwen2
    needs nothing). The whole round trip is checked on a trained adapter in the toy pipeline test below."""
    from router_core.engines.adapters import _permute_rows, base_info
    info = base_info(resolve_shipped("smollm2-135m-instruct"))
    assert (info.arch, info.n_head, info.n_head_kv) == ("llama", 9, 3)
    w = np.arange(576 * 2, dtype=np.float32).reshape(576, 2)
    p = _permute_rows(w, 9)
    assert p.shape == w.shape and not np.array_equal(p, w) and sorted(p[:, 0]) == sorted(w[:, 0])


# ------------------------------------------------------------------------------ the whole pipeline, toy size

TOY_POOL = {"name": "toy", "models": [{"name": "SmolLM2-135M", "engine": "llamacpp",
                                       "model": "shipped:smollm2-135m-instruct", "params_b": 0.135,
                                       "price_in": 0.0135, "price_out": 0.027,
                                       "description": "The only model here."}]}


def _app(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """collect (the 135M guided router over two questions, no screen) → train two steps (checkpoint each step)."""
    import yaml
    tmp = tmp_path_factory.mktemp("toy")
    pool_file = tmp / "pool.yaml"
    pool_file.write_text(yaml.safe_dump(TOY_POOL))
    qs = tmp / "train.jsonl"
    qs.write_text("".join(json.dumps(q) + "\n" for q in [
        {"id": "1", "question": "What is the capital of France?", "golden_answers": ["Paris"]},
        {"id": "2", "question": "Who wrote the play Romeo and Juliet?", "golden_answers": ["William Shakespeare"]}]))
    db = str(tmp / "t.sqlite")
    t0 = time.perf_counter()
    r = _app("collect", "--dataset", str(qs), "--policy", "prompted-smollm2-135m", "--pool", str(pool_file),
             "--no-screen", "--alpha", "0", "--db", db)
    run = r.stdout.split("teacher run ")[1].split(":")[0]
    out = tmp / "adapter"
    train_args = ("train", "--run", run, "--base", "shipped:smollm2-135m-instruct", "--max-steps", "2",
                  "--grad-accum", "1", "--lr", "1e-2", "--min-reward", "0", "--train-alphas", "0,1", "--out", str(out),
                  "--pool", str(pool_file), "--db", db, "--dtype", "fp32", "--name", "toy", "--save-steps", "1")
    _app(*train_args)
    return {"tmp": tmp, "pool_file": pool_file, "db": db, "run": run, "out": out, "args": train_args,
            "seconds": time.perf_counter() - t0}


@pytest.mark.model
def test_the_whole_pipeline_at_toy_size_on_the_shipped_135m(toy):
    """collect → train two steps → GGUF adapter → llama.cpp loads it on the quantized base → its output changes."""
    out, run = toy["out"], toy["run"]
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["steps"] == 2 and card["data"]["examples"] == 4 and card["data"]["runs"] == [run]
    assert card["base_sha256"] == weights_sha256("shipped:smollm2-135m-instruct", resolve_shipped(
        "smollm2-135m-instruct"))
    assert card["selection"]["0"]["reasons"]["kept"] == 2 and len(card["training"]["loss_curve"]) == 2
    from storage import TraceStore
    from storage import training as stored
    with TraceStore(toy["db"]) as st:
        run_row = stored.get_run(st, card["training_run"])
        assert run_row["status"] == "done" and run_row["source_runs"] == [run]
        assert [p["step"] for p in stored.points(st, run_row["id"])] == [1, 2]
        assert len(stored.trajectories(st, run_row["id"])) == 2 * 2  # two trajectories × two training α
    info = read_adapter(out / "adapter.gguf")
    assert info.card["name"] == "toy" and info.pairs == 30 * 7  # every linear layer of the 30 blocks

    # llama.cpp loads it on the quantized base; the greedy text changes
    from router_core.engines.llamacpp import LlamaCppEngine
    base_path = str(resolve_shipped("smollm2-135m-instruct"))
    plain, adapted = LlamaCppEngine(base_path, n_ctx=1024), LlamaCppEngine(base_path, n_ctx=1024,
                                                                          lora_path=str(out / "adapter.gguf"))
    prompt = _toy_prompt(toy, plain)[0]
    assert plain.generate(prompt, max_tokens=24).text != adapted.generate(prompt, max_tokens=24).text
    # collect + train + export time is printed, not asserted (a busy CI machine must not fail a correct pipeline)
    print(f"toy pipeline: {toy['seconds']:.0f} s")


def _toy_prompt(toy, engine) -> tuple[str, dict]:
    from router_core.pool import load_pool
    ex = json.loads((toy["out"] / "examples.jsonl").read_text().splitlines()[0])
    tpl = Template.load(ROOT / "assets/templates/router_trained.txt")
    pool = load_pool(str(toy["pool_file"]))
    content = tpl.fill(ex["question"], [(m.name, m.description) for m in pool.models], "SmolLM2-135M",
                       alpha=ex["alpha"])
    return engine.chat_prompt([{"role": "user", "content": content}]), ex


@pytest.mark.model
def test_peft_in_transformers_and_the_gguf_adapter_in_llama_cpp_agree(toy):
    """The same greedy next token at most positions of a training example (the adapter means in llama.cpp what it
    meant in training), and the adapter is what makes them agree."""
    import torch
    from llama_cpp import Llama
    from peft import PeftModel

    from router_core.engines.llamacpp import LlamaCppEngine
    from router_core.pool import load_pool
    from training.sft import load_base, student_prompt
    base_path = str(resolve_shipped("smollm2-135m-instruct"))
    prompt, ex = _toy_prompt(toy, LlamaCppEngine(base_path, n_ctx=256))
    tok, model, _ = load_base("shipped:smollm2-135m-instruct")
    tpl = Template.load(ROOT / "assets/templates/router_trained.txt")
    # training renders the prompt exactly as inference does
    assert student_prompt(tok, tpl, load_pool(str(toy["pool_file"])), ex["question"], ex["alpha"]) == prompt
    peft_model = PeftModel.from_pretrained(model, str(toy["out"] / "peft")).eval()
    text = prompt + "".join(s for s, _ in ex["segments"])
    ids = tok(text, add_special_tokens=False).input_ids
    with torch.no_grad():
        hf = peft_model(torch.tensor([ids])).logits[0].argmax(-1).numpy()
    agree = {}
    for label, lora in (("adapter", str(toy["out"] / "adapter.gguf")), ("none", None)):
        llm = Llama(model_path=base_path, lora_path=lora, n_ctx=1024, logits_all=True, verbose=False)
        toks = llm.tokenize(text.encode(), add_bos=False, special=True)
        assert toks == ids
        llm.eval(toks)
        agree[label] = float((np.array(llm.scores[: len(toks)]).argmax(-1) == hf).mean())
    assert agree["adapter"] >= 0.9 and agree["adapter"] > agree["none"] + 0.05, agree


@pytest.mark.model
def test_the_same_train_command_resumes_from_its_last_checkpoint(toy):
    import shutil
    ckpt = toy["out"] / "checkpoints"
    r = _app(*toy["args"])  # finished before: nothing is trained again
    assert "already trained to step 2" in r.stderr
    # as if the process had been killed after step 1: the run goes on from checkpoint-1 and ends at step 2
    shutil.rmtree(ckpt / "checkpoint-2")
    (ckpt / "finished.json").unlink()
    from training.sft import CLOCK_FILE
    clock = json.loads((ckpt / "checkpoint-1" / CLOCK_FILE).read_text())  # the time and tokens up to step 1
    r = _app(*toy["args"])
    assert "resuming from" in r.stderr and "checkpoint-1" in r.stderr
    card = json.loads((toy["out"] / "card.json").read_text())
    assert card["training"]["steps"] == 2 and [p["step"] for p in card["training"]["loss_curve"]] == [1, 2]
    # the clock goes on from the checkpoint's: the card's time and tokens count step 1 too (so does time left)
    assert card["training"]["seconds"] > clock["seconds"] > 0 and card["training"]["tokens"] > clock["tokens"] > 0


def test_a_training_run_is_stored_as_it_goes_and_a_dead_writer_reads_interrupted(tmp_path):
    from storage import TraceStore
    from storage import training as stored
    from training.pipeline import decision_rows
    with TraceStore(str(tmp_path / "t.sqlite")) as st:
        stored.start_run(st, run_id="train-x", name="x", base="b", out_dir=str(tmp_path), source_runs=["r1"],
                         alphas=[0.0, 1.0], config={"rank": 8})
        ds = select([_traj("dear", 0.0, "Big", "Paris", out_tokens=40), _traj("cheap", 1.0, "Tiny", "Paris")],
                    [0.0, 1.0])
        assert stored.record_selection(st, "train-x", decision_rows(ds)) == 4
        stored.add_point(st, "train-x", {"step": 1, "epoch": 0.5, "loss": 1.5, "learning_rate": 2e-4, "tokens": 300,
                                         "seconds": 10.0}, max_steps=2)
        run = stored.get_run(st, "train-x")
        assert run["status"] == "running" and run["last"]["loss"] == 1.5 and run["max_steps"] == 2
        kept = stored.trajectories(st, "train-x", kept=True)
        assert {(t["alpha"], t["session_id"]) for t in kept} == {(0.0, "dear"), (1.0, "cheap")}
        assert [t["reason"] for t in stored.trajectories(st, "train-x", alpha=1.0, kept=False)] == ["too_dear"]
        stored.finish_run(st, "train-x", status="done", card={"name": "x"})
        assert stored.get_run(st, "train-x")["card"] == {"name": "x"}
        # a run whose process is gone shows interrupted
        stored.start_run(st, run_id="train-y", name="y", base="b", out_dir=None, source_runs=[], alphas=[0.0],
                         config={})
        with st._tx() as conn:
            from sqlalchemy import update

            from storage.models import TrainingRunRow
            conn.execute(update(TrainingRunRow).where(TrainingRunRow.id == "train-y").values(pid=2 ** 22 + 7))
        assert stored.get_run(st, "train-y")["status"] == "interrupted"
        assert [r["id"] for r in stored.list_runs(st)] == ["train-y", "train-x"]


@pytest.mark.model
@pytest.mark.browser
def test_before_and_after_opens_in_compare_for_a_question_of_the_run(toy, browser):
    """The Training tab's before/after on the toy run: the base (no adapter) and the trained policy each answer a
    question of the run (run now: none is stored), and Compare shows the two sessions side by side."""
    import os
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("/usr/bin/chromium missing")
    from support.browser import new_page
    from support.servers import served_studio

    from router_core.policy import load_policies
    from storage import TraceStore
    from storage import training as stored
    from ui.studio import Studio
    store = TraceStore(toy["db"])
    studio = Studio.from_files(store, load_policies(), str(toy["pool_file"]))
    try:
        with served_studio(studio) as url:
            ctx, page = new_page(browser, 1440, 900)
            page.goto(url)
            page.get_by_role("tab", name="Training").click()
            page.wait_for_function("() => document.querySelector('#rs-t-status').innerText.includes('toy')")
            page.get_by_text("Before and after").click()
            page.click("#rs-t-ba-go")
            page.wait_for_selector("#rs-compare-table table", timeout=180_000)
            run = stored.list_runs(store)[0]
            names = [f"trained:{run['name']}", f"trained:{run['name']} (before training)"]
            held = {r["policy"] for r in store.iter_sessions() if r["policy"] in names}
            assert held == set(names)  # both ran, stored under their own names
            # the summary table fills after the aligned table: wait for its two rows, one per policy
            page.wait_for_function("() => document.querySelector('#rs-compare-summary [role=grid]')"
                                   "?.getAttribute('aria-rowcount') === '3'", timeout=30_000)  # a header + 2
            summary = page.inner_text("#rs-compare-summary")
            assert all(n in summary for n in names), summary
            ctx.close()
    finally:
        store.close()


@pytest.mark.model
def test_the_shipped_trained_router_decomposes_with_no_rules_and_reads_alpha_from_its_prompt():
    """The shipped adapter on a question it was never trained on (no entity of the bundled sets is in its data): the
    protocol written whole by the policy, two hops with the director carried into the second, the dearest model at
    α 0; at α 1 it says so in its first thought and asks the cheapest model first, for less."""
    from evaluation.decomposition import bridges, repeated
    from router_core.policy import load_policies
    from router_core.pool import load_pool
    from router_core.session import SessionResult
    pol, pool = load_policies().get("trained-qwen2.5-0.5b"), load_pool()
    router = Router(pol, pool)
    assert router.settings()["interventions"] == [] and pol.mode == "free"
    q, gold = "Which country is the birthplace of the director of the film Interstellar?", ["United Kingdom", "England"]
    runs = {a: list(router.run(q, a)) for a in (0.0, 1.0)}
    res = {a: SessionResult.of(s, q, a, gold) for a, s in runs.items()}
    steps = runs[0.0]
    sent = [s for s in steps if s.kind == "route" and s.sent]
    assert res[0.0].status == "done" and res[0.0].format_ok and res[0.0].em == 1.0, [s.text for s in steps]
    assert len(sent) >= 2 and not repeated(steps) and bridges(steps, q)
    assert {s.request_model for s in sent} == {pool.dearest().name}
    first = {a: next(s.text for s in st if s.kind == "think") for a, st in runs.items()}
    assert first[0.0].startswith("α is 0:") and first[1.0].startswith("α is 1:")
    cheap = min(pool.models, key=lambda m: m.price_out).name
    assert next(s.request_model for s in runs[1.0] if s.kind == "route" and s.sent) == cheap
    assert res[1.0].format_ok and res[1.0].cost_usd < res[0.0].cost_usd
