"""The guided rollout's driver: think → decide → choose → write → call → read → answer, for any instruct model.

Every decision is scored by the policy engine (search or answer; which model, with α), every text is generated
with a stop string, so no format error is possible and each decision point is visible. The driver holds no rule of
its own: at fixed points it asks the run's interventions (registry.py; what each point expects in
intervention.POINTS) and carries out what the first one that fires returns. With none on, it is the plain loop:
think, decide, route or answer.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Iterator

from ..choice import softmax
from ..engines import Engine
from ..metrics import normalize_answer
from ..pool import ModelSpec
from ..protocol import information_block, neutralise
from ..step import Step
from .reading import models_asked
from .registry import at
from .state import Rollout

if TYPE_CHECKING:
    from ..loop import OnText, Router


class Guided:
    """One guided session. Between turns it remembers only what a rule left pending: a sub-question to write again
    after a think block (`rewrite`, with the draft and flags that hop carries in `kept`), or an answer sent back
    whose think block was written and whose next decision is due (`redecide`)."""

    def __init__(self, router: "Router", ro: Rollout, engine: Engine, alpha: float,
                 stop_event: threading.Event | None, on_text: "OnText | None") -> None:
        self.rt, self.ro, self.engine, self.alpha = router, ro, engine, alpha
        self.cfg = router.config
        self.stop_event, self.on_text = stop_event, on_text
        self.rewrite = False
        self.redecide: tuple[Step, str] | None = None
        self.kept: tuple[str | None, list[str]] | None = None

    # ------------------------------------------------------------------ asking the interventions

    def ask(self, point: str, *args: Any) -> tuple[Any, Any]:
        """(the first intervention at `point` that fires, what it returned), or (None, None)."""
        for iv in at(point, self.cfg):
            if iv.once and iv.once in self.ro.fired:
                continue
            out = iv.fire(self.ro, self.cfg, *args)
            if out is not None:
                return iv, out
        return None, None

    def acted(self, iv: Any, step: Step | None = None) -> None:
        """Note that `iv` changed this session (its once-per-session group is used up), and leave its flag on the
        step it changed, so a stored session says where each rule acted."""
        if iv.once:
            self.ro.fired.add(iv.once)
        if step is not None and iv.flag not in step.flags:
            step.flags.append(iv.flag)

    # ------------------------------------------------------------------ the loop

    def run(self) -> Iterator[Step]:
        ro, rt = self.ro, self.rt
        while True:
            if (s := rt._stopped(ro, self.stop_event)):
                yield s
                return
            if not self.rewrite and self.redecide is None:
                leader, lead = self.ask("think")
                think = rt._think(ro, self.engine, lead or "", self.on_text)
                if lead:
                    self.acted(leader, think)
                yield think
                if (s := rt._stopped(ro, self.stop_event)):
                    yield s
                    return
            decision, route_allowed = self.decide()
            draft: Step | None = None
            uncarried: Step | None = None
            flag = ""
            if self.redecide is not None:
                (draft, flag), self.redecide = self.redecide, None
            composer = composed = None
            if not route_allowed and decision is not None:
                composer, composed = self.ask("compose")
            if not route_allowed and composed is None:
                back = yield from self.answer_or_send_back(decision)
                if back is None:
                    return
                if back == "redecide":
                    continue
                draft, flag, uncarried = back
            done = yield from self.route(decision, draft, flag, uncarried, composer, composed)
            if done:
                return

    def decide(self) -> tuple[dict[str, float] | None, bool]:
        """Another route or the answer: the router's scores for `<search>` and `<answer>` (a sub-question to write
        again was already decided on)."""
        ro, cfg = self.ro, self.cfg
        route_allowed = ro.turn < cfg.max_turns and not ro.force_answer
        if not route_allowed or self.rewrite:
            return None, route_allowed
        lp = self.rt._score_options(self.engine, ro.prompt + ro.transcript, ["<search>", "<answer>"], ro.cache)
        p = softmax(lp)
        return {"search": p[0], "answer": p[1]}, p[0] > p[1] or ro.turn < cfg.min_turns

    # ------------------------------------------------------------------ answer

    def answer_or_send_back(self, decision: dict[str, float] | None):
        """Write the answer; give it (None), or, where a rule sends it back, write the think block that says why and
        return "redecide" (the router decides again next turn) or (draft, flag, the draft a hop still carries) for
        one more hop."""
        ro, rt = self.ro, self.rt
        yield from self.answer_think()
        answer = self.write_answer(decision)
        checker, back = self.ask("send_back", answer)
        if back is None:
            yield rt._give(ro, answer)
            return None
        ro.index -= 1  # the draft is not given: its step number is free again
        self.acted(checker)
        flag, lead, then = back
        if not lead:
            return answer, flag, answer
        # a think block that names what is still missing, so the sub-question is not the first one again
        think = _carry(rt._think(ro, self.engine, lead, self.on_text), answer)
        if then != "hop":  # no hop may follow: the think block says why the answer went back
            think.flags.append(flag)
        yield think
        if then == "answer":
            # the question itself was asked and its reply is in the transcript: answer again from it
            yield from self.final_answer()
            return None
        if then == "decide":
            self.redecide = (answer, flag)
            return "redecide"
        return answer, flag, None

    def answer_think(self) -> Iterator[Step]:
        """A think block before the answer, where a rule starts one."""
        iv, lead = self.ask("answer_think")
        if iv is not None:
            think = self.rt._think(self.ro, self.engine, lead, self.on_text)
            self.acted(iv, think)
            yield think

    def final_answer(self) -> Iterator[Step]:
        """The answer, given as written (after a repeat, or when the question's own reply was pointed at)."""
        yield from self.answer_think()
        yield self.rt._give(self.ro, self.write_answer(None))

    def write_answer(self, decision: dict[str, float] | None) -> Step:
        """Generate the answer into a new step, not yet given. Where a rule names the things the answer must be one
        of, the router's scores after `<answer>` pick it."""
        ro, rt = self.ro, self.rt
        step = rt._new_step(ro, "answer", decision=decision)
        chooser, opts = self.ask("answer")
        if opts:
            self.acted(chooser, step)
            lps = rt._score_options(self.engine, ro.prompt + ro.transcript + "<answer>", [f" {o}" for o in opts],
                                    ro.cache)
            step.options = dict(zip(opts, softmax(lps)))
            step.text = opts[max(range(len(opts)), key=lambda i: lps[i])]
            if self.on_text:
                self.on_text(step.index, "answer", step.text)
            return step
        c = rt._gen(self.engine, ro, step.index, "answer", "<answer>", ["</answer>", "\n"], self.cfg.answer_tokens,
                    self.on_text)
        step.text = neutralise(c.text.strip())
        step.router_input_tokens, step.router_output_tokens = c.input_tokens, c.output_tokens
        return step

    # ------------------------------------------------------------------ route

    def route(self, decision, draft: Step | None, flag: str, uncarried: Step | None, composer, composed: str | None):
        """One route turn: choose the model with α, write the sub-question, then send it (or write it again after a
        think block, or drop a repeat and answer). Returns True when the session is over."""
        ro, rt = self.ro, self.rt
        step = rt._new_step(ro, "route", decision=decision)
        if draft is not None:
            step.draft, step.flags = draft.text, [flag]
        elif self.kept is not None:
            step.draft, step.flags = self.kept
        self.kept = None
        if uncarried is not None:
            _carry(step, uncarried)
        before_search = ro.transcript
        # with the quality term, the sub-question is written after the router's own pick (α-free) and the model is
        # chosen once it is known: what α changes is who answers, never what is asked
        quality = rt.uses_quality()
        step.choice = rt._choose(self.engine, ro.prompt + ro.transcript + "<search> ", 0.0 if quality else self.alpha,
                                 ro.cache)
        spec = rt.pool.get(step.choice.policy_choice if quality else step.choice.chosen)
        step.request_model = step.written_model = spec.name
        ro.transcript += f"<search> {spec.name}:"
        query = self.write_query(step, spec, composer, composed)
        if query and composed is None:
            rewriter, again = self.ask("rewrite", query)
            if again is not None and again[0]:
                yield self.rethink(step, before_search, again, rewriter)
                return False
            self.rewrite = False
            swapper, swap = self.ask("swap", query)
            if swap is not None:
                # the rollout sends its own sub-question in place of the router's, whose wording stays on the step
                step.written_query = query
                query = neutralise(swap[0])
                step.flags.append(swap[1])
                step.query, step.text = query, _search(spec, query)
        else:
            self.rewrite = False
        if quality:
            step.choice = rt._with_quality(step.choice, query, self.alpha)
            if step.choice.chosen != spec.name:
                spec = rt.pool.get(step.choice.chosen)
                step.request_model = step.written_model = spec.name
                step.text = _search(spec, query)
                ro.transcript = before_search + f"<search> {spec.name}:"
        ro.transcript += f" {query} </search>\n"
        return (yield from self.send(step, spec, query, before_search))

    def write_query(self, step: Step, spec: ModelSpec, composer, composed: str | None) -> str:
        """The sub-question: the router's, generated after the model name, or one a rule composed."""
        ro = self.ro
        if composed is not None:
            query = neutralise(composed)
            if composer.flag:
                step.flags.append(composer.flag)
            ro.force_answer = True  # the composed hop's reply is the last one read: the answer comes next
            if self.on_text:
                self.on_text(step.index, "route", " " + query)
        else:
            c = self.rt._gen(self.engine, ro, step.index, "route", "", ["</search>", "\n"], self.cfg.query_tokens,
                             self.on_text)
            query = neutralise(c.text.strip())
            step.router_input_tokens += c.input_tokens
            step.router_output_tokens += c.output_tokens
        step.query = query
        step.text = _search(spec, query)
        return query

    def rethink(self, step: Step, before_search: str, again: tuple[str, str], rewriter) -> Step:
        """The sub-question is not sent: a think block begun with the rule's lead comes first, under the number the
        unsent sub-question streamed under, and the sub-question is written again after it (the answer sent back
        for this hop stays with the hop)."""
        ro = self.ro
        lead, flag = again
        self.acted(rewriter)
        self.rewrite = True
        self.kept = (step.draft, list(step.flags))
        ro.transcript = before_search
        ro.index -= 1
        think = _carry(self.rt._think(ro, self.engine, lead, self.on_text), step)
        think.flags.append(flag)
        return think

    def send(self, step: Step, spec: ModelSpec, query: str, before_search: str):
        """Send the sub-question, or flag it (empty; a repeat no rule sends on) and answer. True when over."""
        ro, rt = self.ro, self.rt
        key = normalize_answer(query)
        asked = ro.asked.get(key)
        if asked is not None:
            went = models_asked(ro.steps, key)
            dearer = bool(went) and all(spec.price_out > rt.pool.get(m).price_out for m in went)
            iv, other = self.ask("repeat", rt.pool, spec, went, dearer)
            if other is not None:
                self.acted(iv, step)
                asked = None
                if other.name != spec.name:  # sent to another model than α chose
                    spec = other
                    step.request_model = spec.name
                    step.text = _search(spec, query)
                    ro.transcript = before_search + f"{step.text}\n"
        if not query:
            step.status = "flagged"
            step.flags.append("format:empty_query")
            reply = "Error: the sub-question was empty. Write a question after the model name."
            step.request_model = None
        elif asked is not None:
            yield from self.drop_repeat(step, asked, before_search)
            return True
        else:
            ro.asked.setdefault(key, step.index)
            on = self.on_text
            reply = rt.call_candidate(step, spec, query,
                                      (lambda piece, i=step.index: on(i, "reply", piece)) if on else None,
                                      self.stop_event)
        step.response = neutralise(reply)
        ro.transcript += information_block(reply)
        ro.turn += 1
        yield rt._finish(ro, step)
        return False

    def drop_repeat(self, step: Step, asked: int, before_search: str) -> Iterator[Step]:
        """A small router tends to loop on one question; asking again costs money and adds nothing, so the rollout
        answers now. The step is kept (flagged, not sent) for whoever reads the session, but the router's transcript
        goes back to before the repeat: a notice in its <information> would otherwise be copied into its answer."""
        ro = self.ro
        step.status = "flagged"
        step.flags.append("repeated_query")
        step.request_model = None
        step.response = f"(Not asked again: this is the same sub-question as step {asked}.)"
        ro.transcript = before_search
        iv, transcript = self.ask("drop")
        if iv is not None:
            self.acted(iv, step)
            ro.transcript = transcript
        ro.turn += 1
        ro.force_answer = True
        yield self.rt._finish(ro, step)
        yield from self.final_answer()


def _search(spec: ModelSpec, query: str) -> str:
    return f"<search> {spec.name}: {query} </search>"


def _carry(step: Step, draft: Step) -> Step:
    """The first step after a draft answer that was sent back starts when the draft did and counts its tokens."""
    step.started_at = draft.started_at
    step.router_input_tokens += draft.router_input_tokens
    step.router_output_tokens += draft.router_output_tokens
    return step
