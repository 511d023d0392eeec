"""The OpenAI-compatible engine against a local server that serves a real small model
(SmolLM2-135M through llama.cpp) and injects faults. Every fault ends in a recorded
step and a finished session, never a stack trace."""
import time

import pytest
from support.openai_server import OpenAITestServer

from router_core.engines import EngineError, Stopped
from router_core.engines.base import common_prefix_len
from router_core.engines.openai_http import OpenAIEngine
from router_core.loop import Router
from router_core.policy import load_policies
from router_core.pool import pool_from_dict

pytestmark = pytest.mark.model

KEY = "sk-test-4b1d-very-secret-value"


@pytest.fixture(scope="module")
def server(smol):
    with OpenAITestServer(smol) as s:
        yield s


def _engine(server, monkeypatch, timeout_s: float):
    monkeypatch.setenv("TEST_ROUTER_KEY", KEY)
    server.faults.clear()
    return OpenAIEngine(server.base_url, "smollm2", api_key_env="TEST_ROUTER_KEY", timeout_s=timeout_s,
                        stall_s=timeout_s, max_retries=2, backoff_s=0.05)


@pytest.fixture
def engine(server, monkeypatch):
    """For calls that reach the model: a real generation on a loaded machine can take seconds."""
    e = _engine(server, monkeypatch, 120.0)
    yield e
    e.close()


@pytest.fixture
def quick(server, monkeypatch):
    """For injected faults, which never reach the model: a 1 s timeout against the server's 3 s silences."""
    e = _engine(server, monkeypatch, 1.0)
    yield e
    e.close()


Q = [{"role": "user", "content": "Who directed the film Interstellar?"}]


def test_chat_streaming_and_plain(engine, server):
    pieces = []
    c = engine.chat(Q, max_tokens=24, on_text=pieces.append)
    assert c.text and "".join(pieces) == c.text and c.output_tokens > 0 and c.input_tokens > 0
    engine.stream = False
    c2 = engine.chat(Q, max_tokens=24)
    assert c2.text == c.text  # temperature 0 on the same model
    assert server.requests[-1]["auth"] == f"Bearer {KEY}"


def test_completions_and_scoring_match_the_local_engine(engine, server, smol, monkeypatch):
    """Scores by forced tokens (vLLM's allowed_token_ids: the server's prefix cache is used), names sharing
    their first tokens asking for them once; a server without that falls back to echo, once and for all."""
    prompt = smol.chat_prompt(Q)
    assert engine.generate(prompt, max_tokens=12).text == smol.generate(prompt, max_tokens=12).text
    prefix = prompt + "<search> "
    names = ["Smol:", "Qwen:", "Qwen2:"]
    local = smol.score(prefix, names)
    n = len(server.requests)
    forced = engine.score(prefix, names)
    sent = server.requests[n:]
    one_token = [r for r in sent if r["body"].get("allowed_token_ids")]
    assert one_token and not any(r["body"].get("echo") for r in sent)
    base = smol.tokens(prefix)
    scored = [len(f) - common_prefix_len(base, f) for f in (smol.tokens(prefix + c) for c in names)]
    assert len(one_token) < sum(scored)  # the tokens the names share are asked for once
    assert forced == pytest.approx(local, abs=0.3)
    n = len(server.requests)
    assert engine.score(prefix, names, choice=True) == pytest.approx(smol.score(prefix, names, choice=True), abs=0.3)
    asked = [r for r in server.requests[n:] if r["body"].get("allowed_token_ids")]
    assert 0 < len(asked) < len(one_token)  # a choice asks only where the names part
    monkeypatch.setattr(server, "forced_tokens", False)
    plain = _engine(server, monkeypatch, 120.0)
    echo = plain.score(prefix, names)
    n = len(server.requests)
    assert plain.score(prefix, names) == echo
    assert all(r["body"].get("echo") for r in server.requests[n:])  # no second try of /tokenize
    assert echo == pytest.approx(forced, abs=0.3)
    plain.close()


def test_a_call_stopped_mid_stream_closes_the_request_and_is_not_an_error(engine, server):
    got: list[str] = []

    def cut(piece: str) -> None:
        if len(got) >= 2:
            raise Stopped("stopped mid-reply")
        got.append(piece)
    with pytest.raises(Stopped):
        engine.chat(Q, max_tokens=24, on_text=cut)
    assert len(got) == 2
    assert engine.chat(Q, max_tokens=24).text  # the client is still good for the next call


def test_retry_then_success_on_500_and_429(engine, server):
    server.faults.extend(["500", "429"])
    n = len(server.requests)
    c = engine.chat(Q, max_tokens=8)
    assert c.text and len(server.requests) - n == 3


@pytest.mark.parametrize("faults,needle", [
    (["500", "500", "500"], "HTTP 500"),
    (["429", "429", "429"], "HTTP 429"),
    (["timeout", "timeout", "timeout"], "no data"),
    (["malformed"], "malformed JSON"),
    (["stall"], "stalled"),
    (["drop", "drop", "drop"], "cannot reach"),
])
def test_faults_become_engine_errors(quick, server, faults, needle):
    server.faults.extend(faults)
    t0 = time.monotonic()
    with pytest.raises(EngineError, match=needle) as e:
        quick.chat(Q, max_tokens=8)
    assert KEY not in str(e.value)
    assert time.monotonic() - t0 < 15


def test_missing_key_is_named(server, monkeypatch):
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    e = OpenAIEngine(server.base_url, "m", api_key_env="NOT_SET_KEY", timeout_s=1)
    with pytest.raises(EngineError, match="NOT_SET_KEY is not set"):
        e.chat(Q)


@pytest.mark.parametrize("fault", ["500", "timeout", "malformed", "stall", "429"])
def test_every_fault_ends_in_a_recorded_step_and_a_finished_session(server, qwen, monkeypatch, fault):
    monkeypatch.setenv("TEST_ROUTER_KEY", KEY)
    pool = pool_from_dict({"name": "http", "models": [
        {"name": "Remote-Smol", "engine": "openai", "model": "smollm2", "base_url": server.base_url,
         "api_key_env": "TEST_ROUTER_KEY", "params_b": 0.135, "price_in": 0.01, "price_out": 0.03,
         "description": "a small model behind an HTTP endpoint", "timeout_s": 1.0}]})
    pol = load_policies().get(None)
    r = Router(pol, pool, config=pol.run_config({"min_turns": 1, "max_turns": 1}))
    server.faults.clear()
    server.faults.extend([fault] * 4)  # more than the retries: the call fails for good
    steps = list(r.run("Who directed the film Interstellar?", 0.0))
    server.faults.clear()
    route = next(s for s in steps if s.kind == "route")
    assert route.status == "error" and route.error and KEY not in route.error
    assert route.response.startswith("Error: model Remote-Smol could not answer")
    assert steps[-1].kind == "answer"


def test_a_router_policy_behind_an_endpoint_keeps_alpha_live(server, smol):
    """The policy on a server (as on a GPU vLLM server): its chat template rendered by /tokenize +
    /detokenize, generation through /completions, the model choice scored through prompt logprobs."""
    from router_core.loop import Router
    from router_core.policy import Policy
    from router_core.pool import load_pool
    server.faults.clear()
    remote = Policy(name="remote-smol", engine="openai", model="smollm2", base_url=server.base_url)
    r = Router(remote, load_pool(), config=remote.run_config({"min_turns": 1, "max_turns": 1,
                                                              "think_tokens": 24, "query_tokens": 16}))
    steps = list(r.run("Who directed the film Interstellar?", 1.0))
    route = next(s for s in steps if s.kind == "route")
    c = route.choice
    assert c is not None and c.alpha == 1.0 and route.request_model == c.chosen
    cost = dict(zip(c.models, c.norm_costs))
    assert cost[c.chosen] < cost[c.policy_choice]  # α = 1 went down the price ladder from the router's own pick
    assert route.choice.probs_before != route.choice.probs_after  # α moved the distribution: scoring works
    paths = [q["path"] for q in server.requests]
    assert "/tokenize" in paths and "/detokenize" in paths and "/v1/completions" in paths
    assert steps[-1].kind == "answer"
