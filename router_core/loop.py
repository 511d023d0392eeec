"""The routing loop: a generator of Steps that knows nothing of who listens.

`Router` holds the policy, the pool and the engines, and the pieces every rollout shares (a think block, a scored
choice, a candidate call, the answer given). Two rollouts drive them (router_core/rollout/):
- guided (any instruct model, guided.py): think, score "search vs answer", score the candidate names and apply α,
  write the sub-question or the answer — every decision is visible and no format error is possible; the rules
  that steer a small router (interventions, one module each) plug in at fixed points of that driver;
- free (trained Router-R1 checkpoints, free.py): the policy writes the protocol itself up to `</search>` /
  `</answer>`; the tolerant parser reads it, and where the engine can score, the model name is re-decided with α.

Failures never escape as exceptions: an engine error in a candidate becomes an
error observation for the router and an `error`-status step; a policy failure ends
the session with an `error` step.

A stop (`stop_event`) ends the session at the next step boundary, and reaches the calls in flight too: every engine
call carries the flag as its `CacheHint.cancel`, so a call that has not streamed a token yet (a stalled endpoint, a
long prefill) is cut as well. A cut candidate call leaves its step flagged `call_stopped`; a cut policy call ends
the session with the `stopped` step in place of the step it was writing.
"""
from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from typing import Callable, Iterator, Sequence

from .asked_for import choices, hidden_fact
from .choice import adjust
from .engines import CacheHint, Engine, EngineError, EngineSpec, Stopped, get_engine
from .paths import CANDIDATE_TEMPLATE
from .policy import Policy, RunConfig, recorded_settings
from .pool import ModelSpec, Pool
from .protocol import Template, neutralise, question_for_prompt, truncate_words
from .quality import QualityEstimator
from .rollout.free import free
from .rollout.guided import Guided
from .rollout.state import Rollout
from .step import Choice, Step

OnText = Callable[[int, str, str], None]  # (step index, kind, text piece)
EngineProvider = Callable[[EngineSpec], Engine]


def spec_of_model(m: ModelSpec) -> EngineSpec:
    return EngineSpec(engine=m.engine, model=m.model, gguf_file=m.gguf_file, base_url=m.base_url,
                      api_key_env=m.api_key_env, timeout_s=m.timeout_s)


def spec_of_policy(p: Policy) -> EngineSpec:
    # role "router": the policy gets its own engine instance even when a candidate names the same
    # weights, so a candidate call never evicts the router's cached transcript
    return EngineSpec(engine=p.engine, model=p.model, gguf_file=p.gguf_file, base_url=p.base_url, role="router",
                      api_key_env=p.api_key_env, adapter=p.adapter_path())


class Router:
    """A policy, a pool and the engines to run them; `run()` yields the Steps of one session."""

    def __init__(self, policy: Policy, pool: Pool, *, engines: EngineProvider | None = None,
                 template: Template | None = None, config: RunConfig | None = None,
                 progress: Callable[[str], None] | None = None, quality: QualityEstimator | None = None) -> None:
        self.policy = policy
        self.pool = pool
        self.quality = quality  # per-hop quality estimates for this pool (used when the run's `quality` is on)
        self.progress = progress
        self._engines = engines or (lambda spec: get_engine(spec, self.progress))
        self.template = template or Template.load(policy.template)
        self.config = config or policy.run_config()
        if self.config.quality and (quality is None or policy.mode != "guided"):
            # no labels for this pool (or a free rollout): the sessions run, and are recorded, without the term
            self.config = dataclasses.replace(self.config, quality=False)
        self.candidate_template = Template.read_candidate(self.config.candidate_template or CANDIDATE_TEMPLATE)

    # ------------------------------------------------------------------ helpers

    def settings(self) -> dict:
        """The run settings a stored session of this router keeps (interventions on, settings off their defaults)."""
        return recorded_settings(self.config)

    def policy_engine(self) -> Engine:
        return self._engines(spec_of_policy(self.policy))

    def warm(self) -> Engine:
        """Load the policy and compute the instruction part of its prompt (the same for every question with
        this pool and template), so the first question pays only for itself; with the quality term on, embed the
        labelled questions too (about 10 s on two cores, paid by the first route otherwise)."""
        engine = self.policy_engine()
        engine.warm(engine.prompt_head(self.template.head(self._models(), self.pool.dearest().name)))
        if self.uses_quality():
            self.quality.prepare()
        return engine

    def _models(self) -> list[tuple[str, str]]:
        return [(m.name, m.description) for m in self.pool.models]

    def _new_step(self, ro: Rollout, kind: str, **kw) -> Step:
        s = Step(session_id=ro.session_id, index=ro.index, kind=kind, turn=ro.turn, **kw)  # type: ignore[arg-type]
        ro.index += 1
        return s

    def _finish(self, ro: Rollout, step: Step) -> Step:
        if step.ended_at is None:
            step.ended_at = time.time()
        ro.steps.append(step)
        return step

    def _score_options(self, engine: Engine, prefix: str, options: list[str], cache: CacheHint | None) -> list[float]:
        """The router's log-probability of each option it must pick one of (a model name, <search> or <answer>,
        one of two things), scored as a choice unless the run scores every token."""
        return engine.score(prefix, options, cache, choice=not self.config.score_forced_tokens)

    def _choose(self, engine: Engine, prefix: str, alpha: float, cache: CacheHint | None = None) -> Choice:
        names = self.pool.names
        t0 = time.perf_counter()
        lps = self._score_options(engine, prefix, [f"{n}:" for n in names], cache)
        costs = self.pool.norm_costs()
        return adjust(names, lps, [costs[n] for n in names], alpha, self.config.kappa,
                      score_seconds=time.perf_counter() - t0)

    def uses_quality(self) -> bool:
        return self.config.quality and self.quality is not None

    def _with_quality(self, prior: Choice, query: str, alpha: float) -> Choice:
        """The choice again, now that the sub-question is written: the router's scores, the quality estimate of
        each model for this sub-question and the price penalty at α (router_core/choice.py)."""
        t0 = time.perf_counter()
        if self.quality is None or not query:  # nothing to estimate for: the penalty alone (an empty one is flagged)
            return adjust(prior.models, prior.logprobs, prior.norm_costs, alpha, self.config.kappa,
                          score_seconds=prior.score_seconds)
        q = self.quality.estimate(query, prior.models)
        return adjust(prior.models, prior.logprobs, prior.norm_costs, alpha, self.config.kappa,
                      score_seconds=prior.score_seconds + time.perf_counter() - t0, quality=q,
                      prior_weight=self.config.prior_weight, quality_weight=self.config.quality_weight)

    def candidate_head(self) -> str:
        """The candidate template with its word limit filled in; `{{QUESTION}}` is left for the sub-question."""
        words = max(20, int(self.config.candidate_max_tokens * 0.7))
        return self.candidate_template.replace("{{MAX_WORDS}}", str(words))

    def call_candidate(self, step: Step, spec: ModelSpec, query: str,
                       on_text: Callable[[str], None] | None = None,
                       stop_event: threading.Event | None = None) -> str:
        """Ask one candidate; fill the step's call fields; return the observation text.

        A stop (`stop_event`) set while the call is in flight ends it: at the reply's next piece, or, before the first
        one, by the engine itself (the flag is the call's `CacheHint.cancel`: the HTTP request is cut, llama.cpp stops
        between prefill chunks); the session ends at the step boundary that follows."""
        step.call_started_at = time.time()
        if stop_event is not None:
            on_text = _watched(on_text, stop_event)
        try:
            engine = self._engines(spec_of_model(spec))
            head = self.candidate_head()
            content = head.replace("{{QUESTION}}", query)
            # the instruction before the sub-question is the same for every call: computed once
            c = engine.chat([{"role": "user", "content": content}], max_tokens=self.config.candidate_max_tokens,
                            temperature=0.0, on_text=on_text,
                            cache=CacheHint(prefix=head.split("{{QUESTION}}")[0], cancel=stop_event))
        except EngineError as e:
            step.call_ended_at = time.time()
            step.status = "error"
            step.error = str(e)
            return f"Error: model {spec.name} could not answer ({e}). Try another model or answer yourself."
        except Stopped:
            step.call_ended_at = time.time()
            step.flags.append("call_stopped")
            return "(the call was stopped before the reply was complete)"
        step.call_ended_at = time.time()
        step.input_tokens, step.output_tokens = c.input_tokens, c.output_tokens
        step.cost_usd = spec.call_cost(c.input_tokens, c.output_tokens)
        reply, cut = truncate_words(c.text.strip(), self.config.reply_max_tokens, engine.count_tokens)
        if cut:
            step.flags.append("reply_truncated")
        if not reply:
            step.flags.append("empty_reply")
            reply = "(no reply)"
        return reply

    # ------------------------------------------------------------------ the session

    def run(self, question: str, alpha: float = 0.0, *, session_id: str | None = None,
            stop_event: threading.Event | None = None, on_text: OnText | None = None) -> Iterator[Step]:
        """Yield each Step as soon as it is complete; the last one is an answer or an error."""
        if not (0.0 <= alpha <= 1.0):
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        sid = session_id or uuid.uuid4().hex
        ro = Rollout(session_id=sid, prompt="", question=question.strip(), options=choices(question),
                     fact=hidden_fact(question))
        try:
            engine = self.policy_engine()
            models, example = self._models(), self.pool.dearest().name
            # the question's own text never reads as protocol (the stored and shown question is unchanged)
            user = self.template.fill(question_for_prompt(question, [n for n, _ in models]), models, example,
                                      alpha=alpha)
            ro.prompt = engine.chat_prompt([{"role": "user", "content": user}])
            # everything before the question is the same for every question with this pool and template; a stop
            # cancels the policy's call in flight
            ro.cache = CacheHint(prefix=engine.prompt_head(self.template.head(models, example)), session=sid,
                                 cancel=stop_event)
        except EngineError as e:
            step = self._new_step(ro, "error", status="error", error=f"router policy unavailable: {e}")
            yield self._finish(ro, step)
            return
        try:
            if self.policy.mode == "guided":
                yield from Guided(self, ro, engine, alpha, stop_event, on_text).run()
            else:
                yield from free(self, ro, engine, alpha, stop_event, on_text)
        except EngineError as e:
            ro.index = len(ro.steps)  # the step that failed was never yielded: its number is free again
            step = self._new_step(ro, "error", status="error", error=f"router policy failed: {e}")
            yield self._finish(ro, step)
        except Stopped:
            ro.index = len(ro.steps)  # the policy's call was cut: the step it was writing is never yielded
            yield self._stop_step(ro, stop_event)

    def _stopped(self, ro: Rollout, stop_event: threading.Event | None) -> Step | None:
        """The `stopped` step once the stop flag is set (checked at each step boundary)."""
        if stop_event is not None and stop_event.is_set():
            return self._stop_step(ro, stop_event)
        return None

    def _stop_step(self, ro: Rollout, stop_event: threading.Event | None) -> Step:
        """The step that ends a stopped session; its message is the flag's `reason` where the one who stopped it gave
        one (an API client that went away), else a user's Stop."""
        reason = getattr(stop_event, "reason", "") or "stopped by the user"
        return self._finish(ro, self._new_step(ro, "error", status="stopped", error=reason))

    def _gen(self, engine: Engine, ro: Rollout, idx: int, kind: str, suffix: str, stop: Sequence[str],
             max_tokens: int, on_text: OnText | None):
        cb = (lambda piece: on_text(idx, kind, piece)) if on_text else None
        return engine.generate(ro.prompt + ro.transcript + suffix, stop=stop, max_tokens=max_tokens,
                               temperature=0.0, on_text=cb, cache=ro.cache)

    # ------------------------------------------------------------------ pieces the rollouts share

    def _think(self, ro: Rollout, engine: Engine, lead: str, on_text: OnText | None) -> Step:
        """A think block, finished and appended to the transcript. `lead` (an intervention's words) is written first
        and continued by the router; it is part of the text shown, and kept apart in `Step.lead` so measures of the
        router's own thinking can leave it out."""
        cfg = self.config
        step = self._new_step(ro, "think")
        stops = ["</think>", "<search>", "<information>", "<answer>"] if cfg.think_stops_at_tags else ["</think>"]
        lead = lead.strip()
        if lead and on_text:
            on_text(step.index, "think", lead)
        c = self._gen(engine, ro, step.index, "think", f"<think> {lead}" if lead else "<think>", stops,
                      cfg.think_tokens, on_text)
        text = (lead + c.text).strip()
        clean = neutralise(text)
        if clean != text:
            step.flags.append("tags_in_think")
        if c.finish_reason == "length":
            step.flags.append("think_truncated")
        step.text, step.lead = clean, lead or None
        step.router_input_tokens, step.router_output_tokens = c.input_tokens, c.output_tokens
        ro.transcript += f"<think> {clean} </think>\n"
        return self._finish(ro, step)

    def _give(self, ro: Rollout, step: Step) -> Step:
        if not step.text:
            step.status, step.flags = "flagged", step.flags + ["format:empty_answer"]
        ro.transcript += f"<answer> {step.text} </answer>"
        return self._finish(ro, step)


def _watched(on_text: Callable[[str], None] | None, stop_event: threading.Event) -> Callable[[str], None]:
    """`on_text` that first raises Stopped once the stop flag is set (the call is then ended at that piece)."""
    def cb(piece: str) -> None:
        if stop_event.is_set():
            raise Stopped(getattr(stop_event, "reason", "") or "stopped by the user")
        if on_text is not None:
            on_text(piece)
    return cb
