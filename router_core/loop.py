"""The routing loop: a generator of Steps that knows nothing of who listens.

Two rollouts share one loop:
- guided (any instruct model): generate the think block, score "search vs answer",
  score the candidate names and apply α, generate the sub-question or the answer —
  every decision is visible and no format error is possible;
- free (trained Router-R1 checkpoints): the policy writes the protocol itself up to
  `</search>` / `</answer>`; the tolerant parser reads it, and where the engine can
  score, the model name is re-decided with α at the `<search>` point.

Failures never escape as exceptions: an engine error in a candidate becomes an
error observation for the router and an `error`-status step; a policy failure ends
the session with an `error` step.
"""
from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from .asked_for import (
    about_alone,
    asked_for,
    asks_for,
    assumed,
    choices,
    content_words,
    hidden_fact,
    stem,
    telling_words,
)
from .choice import adjust, softmax
from .engines import CacheHint, Engine, EngineError, EngineSpec, ScoringUnsupported, get_engine
from .metrics import found_in, normalize_answer
from .paths import CANDIDATE_TEMPLATE
from .policy import Policy, RunConfig
from .pool import ModelSpec, Pool
from .protocol import (
    Template,
    information_block,
    last_open_action,
    neutralise,
    parse_turn,
    resolve_model,
    truncate_words,
    unknown_model_information,
)
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
                      api_key_env=p.api_key_env)


@dataclass
class Rollout:
    """Mutable state of one session while it runs (the transcript the policy sees)."""

    session_id: str
    prompt: str
    transcript: str = ""
    index: int = 0
    turn: int = 0
    steps: list[Step] = field(default_factory=list)
    asked: dict[str, int] = field(default_factory=dict)  # normalised sub-question → step index
    force_answer: bool = False
    checked: bool = False  # an answer was already sent back for one more hop (check_answer, check_asked_for)
    compared: bool = False  # the think block before a choice question's answer was written (choice_lead)
    question: str = ""
    options: list[str] = field(default_factory=list)  # the two things a choice question names (asked_for.choices)
    fact: str = ""  # the first fact the question hides (asked_for.hidden_fact), "" for none
    cache: CacheHint | None = None  # the policy engine's cache hint: the instruction prefix, this session


class Router:
    """A policy, a pool and the engines to run them; `run()` yields the Steps of one session."""

    def __init__(self, policy: Policy, pool: Pool, *, engines: EngineProvider | None = None,
                 template: Template | None = None, config: RunConfig | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.policy = policy
        self.pool = pool
        self.progress = progress
        self._engines = engines or (lambda spec: get_engine(spec, self.progress))
        self.template = template or Template.load(policy.template)
        self.config = config or policy.run_config()
        self.candidate_template = Template.read_candidate(self.config.candidate_template or CANDIDATE_TEMPLATE)

    # ------------------------------------------------------------------ helpers

    def policy_engine(self) -> Engine:
        return self._engines(spec_of_policy(self.policy))

    def warm(self) -> Engine:
        """Load the policy and compute the instruction part of its prompt (the same for every question with
        this pool and template), so the first question pays only for itself."""
        engine = self.policy_engine()
        engine.warm(engine.prompt_head(self.template.head(self._models(), self.pool.dearest().name)))
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

    def call_candidate(self, step: Step, spec: ModelSpec, query: str,
                       on_text: Callable[[str], None] | None = None) -> str:
        """Ask one candidate; fill the step's call fields; return the observation text."""
        step.call_started_at = time.time()
        try:
            engine = self._engines(spec_of_model(spec))
            words = max(20, int(self.config.candidate_max_tokens * 0.7))
            head = self.candidate_template.replace("{{MAX_WORDS}}", str(words))
            content = head.replace("{{QUESTION}}", query)
            # the instruction before the sub-question is the same for every call: computed once
            c = engine.chat([{"role": "user", "content": content}], max_tokens=self.config.candidate_max_tokens,
                            temperature=0.0, on_text=on_text, cache=CacheHint(prefix=head.split("{{QUESTION}}")[0]))
        except EngineError as e:
            step.call_ended_at = time.time()
            step.status = "error"
            step.error = str(e)
            return f"Error: model {spec.name} could not answer ({e}). Try another model or answer yourself."
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
            user = self.template.fill(question, models, example)
            ro.prompt = engine.chat_prompt([{"role": "user", "content": user}])
            # everything before the question is the same for every question with this pool and template
            ro.cache = CacheHint(prefix=engine.prompt_head(self.template.head(models, example)), session=sid)
        except EngineError as e:
            step = self._new_step(ro, "error", status="error", error=f"router policy unavailable: {e}")
            yield self._finish(ro, step)
            return
        rollout = self._guided if self.policy.mode == "guided" else self._free
        try:
            yield from rollout(ro, engine, alpha, stop_event, on_text)
        except EngineError as e:
            ro.index = len(ro.steps)  # the step that failed was never yielded: its number is free again
            step = self._new_step(ro, "error", status="error", error=f"router policy failed: {e}")
            yield self._finish(ro, step)

    def _stopped(self, ro: Rollout, stop_event: threading.Event | None) -> Step | None:
        if stop_event is not None and stop_event.is_set():
            return self._finish(ro, self._new_step(ro, "error", status="stopped", error="stopped by the user"))
        return None

    def _gen(self, engine: Engine, ro: Rollout, idx: int, kind: str, suffix: str, stop: Sequence[str],
             max_tokens: int, on_text: OnText | None):
        cb = (lambda piece: on_text(idx, kind, piece)) if on_text else None
        return engine.generate(ro.prompt + ro.transcript + suffix, stop=stop, max_tokens=max_tokens,
                               temperature=0.0, on_text=cb, cache=ro.cache)

    # ------------------------------------------------------------------ guided

    def _guided(self, ro: Rollout, engine: Engine, alpha: float, stop_event, on_text) -> Iterator[Step]:
        cfg = self.config
        rewrite = False  # a sub-question restated the whole question: it is written again after a think block
        redecide = None  # (draft, flag): an answer went back with a think block saying why; decide again after it
        kept: tuple[str | None, list[str]] | None = None  # a rewritten hop's draft and flags, for the hop written again
        while True:
            if (s := self._stopped(ro, stop_event)):
                yield s
                return
            if not rewrite and redecide is None:
                yield self._think(ro, engine, cfg.think_lead_first if ro.turn == 0 else cfg.think_lead, on_text)
                if (s := self._stopped(ro, stop_event)):
                    yield s
                    return
            # decide: another route or the answer (a rewritten sub-question was already decided on)
            route_allowed = ro.turn < cfg.max_turns and not ro.force_answer
            decision = None
            if route_allowed and not rewrite:
                lp = self._score_options(engine, ro.prompt + ro.transcript, ["<search>", "<answer>"], ro.cache)
                p = softmax(lp)
                decision = {"search": p[0], "answer": p[1]}
                route_allowed = p[0] > p[1] or ro.turn < cfg.min_turns
            draft = uncarried = None
            if redecide is not None:
                (draft, flag), redecide = redecide, None
            composed = self._comparison(ro) if not route_allowed and decision is not None else ""
            if composed:
                route_allowed = True  # the comparison goes to a model before the answer (choice_hop)
            if not route_allowed:
                if (think := self._choice_think(ro, engine, on_text)) is not None:
                    yield think
                answer = self._write_answer(ro, engine, decision, on_text)
                back = self._send_back(ro, answer)
                if back is None:
                    yield self._give(ro, answer)
                    return
                flag, lead, then = back
                draft = uncarried = answer  # one more hop, shown with the answer it replaces
                if lead:
                    # a think block that names what is still missing, so the sub-question is not the first one again
                    think = _carry(self._think(ro, engine, lead, on_text), draft)
                    if then != "hop":  # no hop may follow: the think block says why the answer went back
                        think.flags.append(flag)
                    yield think
                    uncarried = None
                    if then == "answer":
                        # the question itself was asked and its reply is in the transcript: answer again from it
                        yield from self._answer(ro, engine, None, on_text)
                        return
                    if then == "decide":
                        # the router reads why its answer went back and decides again: search, or answer now
                        redecide = (draft, flag)
                        continue
            # route: choose the model with α, then write the sub-question
            step = self._new_step(ro, "route", decision=decision)
            if draft is not None:
                step.draft, step.flags = draft.text, [flag]
            elif kept is not None:
                step.draft, step.flags = kept
            kept = None
            if uncarried is not None:
                _carry(step, uncarried)
            before_search = ro.transcript
            prefix = ro.prompt + ro.transcript + "<search> "
            choice = self._choose(engine, prefix, alpha, ro.cache)
            step.choice = choice
            spec = self.pool.get(choice.chosen)
            step.request_model = step.written_model = spec.name
            ro.transcript += f"<search> {spec.name}:"
            if composed:
                # written by the rollout, not the router: the facts it read and the question (see _comparison)
                query = neutralise(composed)
                step.flags.append("comparison_hop")
                ro.force_answer = True  # the comparison's reply is the last one read: the answer comes next
                if on_text:
                    on_text(step.index, "route", " " + query)
            else:
                c = self._gen(engine, ro, step.index, "route", "", ["</search>", "\n"], cfg.query_tokens, on_text)
                query = neutralise(c.text.strip())
                step.router_input_tokens += c.input_tokens
                step.router_output_tokens += c.output_tokens
            step.query = query
            step.text = f"<search> {spec.name}: {query} </search>"
            rw_lead, rw_flag = _rewrite_lead(cfg, ro, query) if query and not composed else ("", "")
            if rw_lead:
                # Asked whole, a question that hides a first fact ("the country where …", asked_for.hidden_fact)
                # goes to one model in one hop: nothing to see decomposed, and a small candidate often gets it
                # wrong. The sub-question is not sent; a think block (the rollout's lead, continued by the router)
                # names the first fact — or, once replies were read, what they found (restated_lead: a router sent
                # back for a missing hop often asks the whole question again instead of carrying the fact a reply
                # gave) — and the sub-question is written again after it. A first sub-question that skips the fact
                # (assumed_lead: it names a thing the question does not, filled in from the router's memory, right
                # or wrong) is written again the same way, and so is a choice question's first sub-question that
                # speaks of both things or of neither (choice_split_lead: one hop for each thing, then the
                # comparison). Each once per session; a second one is sent as written. A question that hides
                # nothing is asked whole rightly.
                rewrite = True
                kept = (step.draft, list(step.flags))  # an answer sent back for this hop stays with the hop
                ro.transcript = before_search
                ro.index -= 1  # the think block takes the number the unsent sub-question streamed under
                think = _carry(self._think(ro, engine, rw_lead, on_text), step)
                think.flags.append(rw_flag)
                yield think
                continue
            rewrite = False
            if query and not composed and (swap := _swapped(cfg, ro, query)):
                # the router asked the whole question again after the think block meant to stop it: the rollout
                # sends its own sub-question instead (see _swapped); the router's wording stays on the step
                step.written_query = query
                query = neutralise(swap[0])
                step.flags.append(swap[1])
                step.query, step.text = query, f"<search> {spec.name}: {query} </search>"
            ro.transcript += f" {query} </search>\n"
            key = normalize_answer(query)
            asked = ro.asked.get(key)
            went = _models_asked(ro.steps, key) if asked is not None else []
            dearer = bool(went) and all(spec.price_out > self.pool.get(m).price_out for m in went)
            if asked is not None and cfg.repeat_escalates and dearer:
                asked = None  # the same question, up the price ladder: a cheaper model's reply did not settle it
            elif (asked is not None and cfg.repeat_climbs and not dearer
                  and not any("repeat_climbed" in x.flags for x in ro.steps)
                  and (up := self.pool.rung_above(went)) is not None):
                # α sent the repeat no dearer (at α ≥ 0.5 the cheapest model gets it again, and its reply is what
                # left the question open): the repeat goes one rung up the ladder instead of being dropped
                asked, spec = None, up
                step.request_model = spec.name
                step.flags.append("repeat_climbed")
                step.text = f"<search> {spec.name}: {query} </search>"
                ro.transcript = before_search + f"<search> {spec.name}: {query} </search>\n"
            if not query:
                step.status = "flagged"
                step.flags.append("format:empty_query")
                reply = "Error: the sub-question was empty. Write a question after the model name."
                step.request_model = None
            elif asked is not None:
                # A small router tends to loop on one question; asking again costs money and adds nothing,
                # so the guided rollout answers now. The step is kept (flagged, not sent) for whoever reads the
                # session, but the router's transcript goes back to before the repeat: a notice in its
                # <information> would otherwise be copied into its answer.
                step.status = "flagged"
                step.flags.append("repeated_query")
                step.request_model = None
                step.response = f"(Not asked again: this is the same sub-question as step {asked}.)"
                ro.transcript = before_search
                if cfg.repeat_drops_think:
                    # the thought that led to the repeat named a "missing" fact the replies already settle (a
                    # small router copies the worked example's "I still need …"); the answer is written after the
                    # last reply instead, so it answers the question rather than that thought
                    cut = ro.transcript.rfind("<think>")
                    ro.transcript = ro.transcript[:cut] if cut >= 0 else ro.transcript
                ro.turn += 1
                ro.force_answer = True
                yield self._finish(ro, step)
                yield from self._answer(ro, engine, None, on_text)
                return
            else:
                ro.asked.setdefault(key, step.index)
                reply = self.call_candidate(step, spec, query,
                                            (lambda piece, i=step.index: on_text(i, "reply", piece)) if on_text else None)
            step.response = neutralise(reply)
            ro.transcript += information_block(reply)
            ro.turn += 1
            yield self._finish(ro, step)

    def _think(self, ro: Rollout, engine: Engine, lead: str, on_text: OnText | None) -> Step:
        """A think block, finished and appended to the transcript. `lead` (a run setting, or the rollout's note on
        why an answer went back, whose quotes are neutralised) is written first and continued by the router; it is part of the text shown, and kept apart in `Step.lead` so measures
        of the router's own thinking can leave it out."""
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

    def _answer(self, ro: Rollout, engine: Engine, decision: dict[str, float] | None, on_text) -> Iterator[Step]:
        """The guided rollout's answer step, generated after `<answer>` (and a choice question's think block first)."""
        if (think := self._choice_think(ro, engine, on_text)) is not None:
            yield think
        yield self._give(ro, self._write_answer(ro, engine, decision, on_text))

    def _comparison(self, ro: Rollout) -> str:
        """The sub-question of a choice question's comparison hop (choice_hop), or "" when none is due: the replies
        that give a fact about each of the two things, then the question ("Lake Baikal … 1,644 meters … Lake
        Tanganyika is approximately 1,449 meters deep. Which lake is deeper, Lake Baikal or Lake Tanganyika?").

        Why: a 1.5B router that has read a fact about each thing and is about to answer picks the one named last
        about half the time ("Now I can compare the depths." → "Lake Tanganyika"); a model asked the comparison
        with both facts in one short question gets most of them right (measured in
        docs/results/bundled-1.5b-default.md). Written by the rollout from the replies, once per session, only
        when the replies speak of both things and the question itself was not asked already."""
        cfg = self.config
        opts = ro.options if cfg.choice_answer and cfg.choice_hop else []
        if not opts or ro.force_answer or ro.turn >= cfg.max_turns:
            return ""
        if any(s.sent and _restates(ro.question, s.query or "") for s in ro.steps):
            return ""  # the comparison itself was asked already: a model has compared them
        own = telling_words(opts)  # "University of Bologna": "bologna" tells it apart
        facts, covered = [], [False, False]
        for s in ro.steps:
            if not (s.sent and s.status == "ok" and s.response) or _restates(ro.question, s.query or ""):
                continue
            words = content_words(f"{s.query} {s.response}")
            hits = [bool(w & words) for w in own]
            if any(hits):
                facts.append(s.response)
                covered = [c or h for c, h in zip(covered, hits)]
        return f"{' '.join(facts)} {ro.question}" if all(covered) else ""

    def _choice_think(self, ro: Rollout, engine: Engine, on_text: OnText | None) -> Step | None:
        """The think block before the answer of a choice question ("…, A or B?") once some reply was read, begun
        with `choice_lead`: a small router that read a fact about each thing often answers without setting them
        side by side ("Now I can compare the populations." → "Japan"). Once per session; None when it does not
        apply."""
        cfg = self.config
        opts = ro.options if cfg.choice_answer and cfg.choice_lead else []
        if not opts or ro.compared or not any(s.sent and s.response for s in ro.steps):
            return None
        ro.compared = True
        return self._think(ro, engine, cfg.choice_lead.replace("{a}", opts[0]).replace("{b}", opts[1]), on_text)

    def _write_answer(self, ro: Rollout, engine: Engine, decision: dict[str, float] | None, on_text) -> Step:
        """Generate the answer into a new step, not yet given (see `_give` and `_send_back`). The answer to a choice
        question is one of the two things it names (choice_answer): the router's scores after `<answer>` pick it,
        so it is never a sentence, a date or a third thing."""
        step = self._new_step(ro, "answer", decision=decision)
        opts = ro.options if self.config.choice_answer else []
        if opts:
            lps = self._score_options(engine, ro.prompt + ro.transcript + "<answer>", [f" {o}" for o in opts],
                                      ro.cache)
            step.options = dict(zip(opts, softmax(lps)))
            step.text = opts[max(range(len(opts)), key=lambda i: lps[i])]
            if on_text:
                on_text(step.index, "answer", step.text)
            return step
        c = self._gen(engine, ro, step.index, "answer", "<answer>", ["</answer>", "\n"], self.config.answer_tokens,
                      on_text)
        step.text = neutralise(c.text.strip())
        step.router_input_tokens, step.router_output_tokens = c.input_tokens, c.output_tokens
        return step

    def _give(self, ro: Rollout, step: Step) -> Step:
        if not step.text:
            step.status, step.flags = "flagged", step.flags + ["format:empty_answer"]
        ro.transcript += f"<answer> {step.text} </answer>"
        return self._finish(ro, step)

    def _send_back(self, ro: Rollout, draft: Step) -> tuple[str, str, str] | None:
        """Whether a written answer goes back instead of being given: None to give it, else the flag an extra
        hop's route step carries, the lead of a think block before it ("" for none) and what follows that
        think block: "hop" (the extra hop), "decide" (the router decides again: search or answer) or "answer"
        (the answer is written again; for a question that was itself asked, whose reply the router has read).

        A small router often reads the first hop's reply and then answers the whole question from memory
        (`check_answer`: an answer no reply contains), or answers with the first hop's reply itself, one hop
        short (`check_asked_for`: the reply that holds the answer was to a sub-question that does not ask for
        what the question asks for, see asked_for.py). Asking for the missing fact instead is the hop a reader
        wants to see. Only after some reply was read, once per session and while a route turn remains; yes/no
        answers never go back (no reply spells them out). The draft's step number is freed and the transcript
        is left as it was: the router sees its draft only where a lead quotes it."""
        cfg = self.config
        sent = [s for s in ro.steps if s.sent and s.response]
        if not (sent and not ro.checked and not ro.force_answer and ro.turn < cfg.max_turns and draft.text
                and normalize_answer(draft.text) not in ("yes", "no")):
            return None
        if draft.options:
            return None  # one of the two things the question names: no reply needs to spell it out
        back = None
        holding = [s for s in sent if found_in(draft.text, [s.response])]
        if not holding:
            if cfg.check_answer:
                back = ("answer_not_in_replies", cfg.think_lead_recheck, "hop")
        elif cfg.check_asked_for and (lead := _short_hop_lead(ro.question, draft.text, holding[-1].query or "")):
            whole = next((s.query for s in sent if s.query and _restates(ro.question, s.query)), None)
            # asking the question again would be a repeat (and is not sent): the reply to it is pointed at instead
            back = (("answer_one_hop_short", f'{lead} The reply to "{whole}" answers it.', "answer") if whole
                    else ("answer_one_hop_short", lead, "decide"))
        if back is None:
            return None
        ro.index -= 1
        ro.checked = True
        return back

    # ------------------------------------------------------------------ free

    def _free(self, ro: Rollout, engine: Engine, alpha: float, stop_event, on_text) -> Iterator[Step]:
        cfg = self.config
        can_score = True
        while True:
            if (s := self._stopped(ro, stop_event)):
                yield s
                return
            routing = ro.turn < cfg.max_turns
            t0 = time.time()
            stops = ["</search>", "</answer>"] if routing else ["</answer>"]
            c = self._gen(engine, ro, ro.index, "think", "", stops, cfg.max_new_tokens, on_text)
            text = c.text
            if c.finish_reason == "stop":
                open_tag = last_open_action(text)
                if open_tag:
                    text += f"</{open_tag}>"
            turn = parse_turn(text)
            if not routing and turn.search is not None:
                turn.flags.append("format:search_after_limit")
                turn.search = None
            if c.finish_reason == "length":
                turn.flags.append("format:length")
            format_flags = [f for f in turn.flags if f.startswith("format:") and f != "format:no_action"]
            # one think step for the reasoning in this generation
            step = self._new_step(ro, "think", started_at=t0)
            step.text = neutralise("\n\n".join(turn.thinks))
            step.flags = [f for f in format_flags]
            step.status = "flagged" if step.flags else "ok"
            step.router_input_tokens, step.router_output_tokens = c.input_tokens, c.output_tokens
            yield self._finish(ro, step)

            if turn.search is not None:
                call = turn.search
                # keep the router's own text up to and including its search call
                ro.transcript += text[: _end_of_action(text, "search")] + "\n"
                step = self._new_step(ro, "route", written_model=call.model, query=neutralise(call.query))
                step.text = neutralise(f"<search> {call.raw.strip()} </search>")
                name = resolve_model(call.model, self.pool.names)
                reply: str
                if "format:malformed_search" in turn.flags or not call.query:
                    step.status, step.flags = "flagged", ["format:malformed_search"]
                    reply = ("Error: a search must look like <search> Model-Name: sub-question </search>. "
                             f"Valid models are: {', '.join(self.pool.names)}.")
                elif name is None:
                    step.status, step.flags = "flagged", ["unknown_model"]
                    reply = unknown_model_information(call.model, self.pool.names)
                else:
                    if can_score:
                        try:
                            step.choice = self._choose(engine, ro.prompt + ro.transcript[: _search_start(ro.transcript)]
                                                       + "<search> ", alpha, ro.cache)
                            if step.choice.chosen != name:
                                step.flags.append("name_rescored")
                                name = step.choice.chosen
                        except ScoringUnsupported:
                            can_score = False
                    spec = self.pool.get(name)
                    step.request_model = spec.name
                    reply = self.call_candidate(step, spec, call.query,
                                                (lambda piece, i=step.index: on_text(i, "reply", piece)) if on_text else None)
                step.response = neutralise(reply)
                ro.transcript += information_block(reply)
                ro.turn += 1
                yield self._finish(ro, step)
                continue

            ro.transcript += text
            if turn.answer is not None:
                step = self._new_step(ro, "answer", text=neutralise(turn.answer))
                if format_flags:
                    step.status, step.flags = "flagged", list(format_flags)
                yield self._finish(ro, step)
                return
            step = self._new_step(ro, "error", status="flagged", flags=["format:no_answer"],
                                  error="the router stopped without an <answer>")
            yield self._finish(ro, step)
            return


def _models_asked(steps: Sequence[Step], key: str) -> list[str]:
    """The models a sub-question (normalised) was sent to so far in this session."""
    return [s.request_model for s in steps
            if s.kind == "route" and s.sent and s.request_model and normalize_answer(s.query or "") == key]


def _restates(question: str, sub_question: str) -> bool:
    """Whether `sub_question` is `question` reworded, not a part of it: it asks for the same thing (when the
    wording says what, see asked_for.py) and holds most (four in five) of the question's meaningful words.
    "When did the war end by the 1919 Treaty of Versailles begin?" restates "In what year did the war ended by the
    1919 Treaty of Versailles begin?".
    "In which U.S. state does the Golden Gate Bridge stand?" holds six of the seven of "What is the capital of
    the U.S. state in which the Golden Gate Bridge stands?" but asks for a state, not a capital."""
    words = asked_for(question)
    if words and not asks_for(sub_question, words):
        return False
    q, sub = {stem(w) for w in content_words(question)}, {stem(w) for w in content_words(sub_question)}
    # what the question asks for is in the sub-question by the check above, though its word may differ ("in what
    # year" / "when"); words are compared without "-ed"/"-ing" ("the war ended by …" / "the war end by …")
    held = (q & sub) | (q & {stem(w) for w in words})
    return bool(q) and len(held) >= 0.8 * len(q)


def _rewrite_lead(cfg: RunConfig, ro: Rollout, query: str) -> tuple[str, str]:
    """The lead and flag of the think block a sub-question is written again after, its "{fact}", "{a}" and "{b}"
    filled in; ("", "") when it is sent as written (see the route turn in `_guided`). A first sub-question is written
    again once at most, whichever rule took it back (two think blocks of the rollout's in a row teach nothing);
    a later one once more."""
    done = {f for x in ro.steps for f in x.flags}
    first = not any(x.sent for x in ro.steps)
    if first and done & {"whole_question_rewritten", "assumed_rewritten", "choice_split_rewritten"}:
        return "", ""
    opts = ro.options if cfg.choice_answer else []
    if first and opts and cfg.choice_split_lead:
        # a choice question: its first sub-question should speak of one of the two things, not both or neither
        if about_alone(query, opts) is None:
            return cfg.choice_split_lead.replace("{a}", opts[0]).replace("{b}", opts[1]), "choice_split_rewritten"
        return "", ""
    if not ro.fact:
        return "", ""  # a question that hides nothing is asked whole rightly
    lead, flag = "", ""
    if first and _restates(ro.question, query):
        lead, flag = cfg.whole_question_lead, "whole_question_rewritten"
    elif first and cfg.assumed_lead and assumed(ro.question, query):
        lead, flag = cfg.assumed_lead, "assumed_rewritten"
    elif not first and "restated_rewritten" not in done and _restates(ro.question, query):
        lead, flag = cfg.restated_lead, "restated_rewritten"
    return lead.replace("{fact}", ro.fact), flag


def _swapped(cfg: RunConfig, ro: Rollout, query: str) -> tuple[str, str] | None:
    """The sub-question the rollout sends in place of the router's, and its flag; None to send the router's.

    Why: a 1.5B router often writes the whole question again right after the think block that names the first
    fact to find ("First I need to find the country where …"); sent as written, one model answers it in one hop,
    from memory, often wrongly, and nothing of the decomposition shows. After the lead had its one chance (see
    _rewrite_lead), the rollout asks for the first fact itself (`fact_question`, flag fact_hop) and the router
    writes the next hop. A later sub-question that restates the question is sent as written: tried with the
    replies' facts written in front, on the two bundled questions where that acted one answer stayed wrong and the
    other came right only after the router copied that form for two more hops (docs/results/bundled-1.5b-default.md)."""
    if not (cfg.fact_question and ro.fact and _restates(ro.question, query)) or any(x.sent for x in ro.steps):
        return None
    done = {f for x in ro.steps for f in x.flags}
    if done & {"whole_question_rewritten", "assumed_rewritten"} and not ro.fact.lower().startswith("when "):
        return cfg.fact_question.replace("{fact}", ro.fact), "fact_hop"
    return None


def _short_hop_lead(question: str, answer: str, sub_question: str) -> str:
    """The think lead for an answer taken from the reply to `sub_question` when that sub-question does not ask
    for what `question` asks for ("" when it does, or when that cannot be told): the answer of a first hop
    given as the answer of the whole question. An answer the question itself names (a comparison's choice) is
    left alone."""
    words = asked_for(question)
    if not words or found_in(answer, [question]) or asks_for(sub_question, words):
        return ""
    return f'{answer} answers "{sub_question}", but not yet the question "{neutralise(question)}".'


def _carry(step: Step, draft: Step) -> Step:
    """The first step after a draft answer that was sent back starts when the draft did and counts its tokens."""
    step.started_at = draft.started_at
    step.router_input_tokens += draft.router_input_tokens
    step.router_output_tokens += draft.router_output_tokens
    return step


def _end_of_action(text: str, tag: str) -> int:
    m = re.search(rf"<\s*/\s*{tag}\s*>", text, re.IGNORECASE)
    return m.end() if m else len(text)


def _search_start(transcript: str) -> int:
    starts = [m.start() for m in re.finditer(r"<\s*search\s*>", transcript, re.IGNORECASE)]
    return starts[-1] if starts else len(transcript)
