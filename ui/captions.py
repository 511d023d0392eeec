"""Plain-language captions for lesson mode, written from a step's numbers — never by a model.

Each caption says what happened at that step and why, in terms a class can follow: how sure the
router was that it needed help, which model it preferred, what the cost coefficient α changed and
what that saved, what the candidate answered, and whether the final answer matches the gold one.
Everything is computed from the stored Step and the session's pool snapshot, so any stored session
(live, imported, eval) gets the same captions, whatever its pool.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from evaluation.decomposition import bridges, rollout_only
from router_core.asked_for import about_alone, choices, hidden_fact
from router_core.metrics import exact_match
from router_core.step import Choice, Step

from .render import draft_why, money, shorten
from .rules import flags_text


@dataclass(frozen=True)
class Prices:
    """$ per 1M input / output tokens by model name, from the session's pool snapshot."""

    price_in: dict[str, float]
    price_out: dict[str, float]

    @classmethod
    def of(cls, pool_snapshot: dict[str, Any] | None) -> "Prices":
        models = [m for m in (pool_snapshot or {}).get("models", []) if isinstance(m, dict) and m.get("name")]
        return cls({m["name"]: float(m.get("price_in") or 0) for m in models},
                   {m["name"]: float(m.get("price_out") or 0) for m in models})

    def call(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        if not model or model not in self.price_out:
            return None
        return (input_tokens * self.price_in.get(model, 0.0) + output_tokens * self.price_out[model]) / 1e6


def pct(p: float) -> str:
    return f"{round(100 * p)} %"


def _quote(text: str | None, n: int = 90) -> str:
    return f"“{shorten(text, n)}”" if text else "nothing"


def caption(s: Step, *, alpha: float, prices: Prices, gold: Sequence[str] = (), steps: Sequence[Step] = (),
            question: str = "") -> str:
    """One or two sentences about step `s` (the session's other steps give context for the answer; the question
    names the fact a whole-question sub-question skipped)."""
    if s.kind == "think":
        if not s.text.strip():
            return f"Step {s.index}: the router wrote an empty thought."
        lead = s.split_lead()[0]
        told = f" (the studio began it with {_quote(lead, 60)})" if lead else ""
        why = ""
        if "whole_question_rewritten" in s.flags:
            fact = hidden_fact(question)
            hides = f", which hides a first fact ({_quote(fact, 80)})," if fact else ""
            why = (f" Its first sub-question asked the whole question{hides} at once, so it was not sent: this "
                   "think block names the first fact to look up, and the router writes the sub-question again.")
        elif "assumed_rewritten" in s.flags:
            fact = hidden_fact(question)
            hides = f" ({_quote(fact, 80)})" if fact else ""
            why = (f" Its first sub-question named something the question does not: it had filled in the fact the "
                   f"question hides{hides} from memory, so it was not sent: this think block names that fact to "
                   "look up first, and the router writes the sub-question again.")
        elif "choice_split_rewritten" in s.flags:
            why = (" Its first sub-question spoke of both things the question compares, or of neither, so it was not "
                   "sent: the comparison is taken one thing at a time, and the router writes the sub-question again.")
        elif "restated_rewritten" in s.flags:
            why = (" Its sub-question asked the whole question again after replies were read, so it was not sent: "
                   "the router says what the replies found, then writes the sub-question again to carry it.")
        elif "answer_one_hop_short" in s.flags:
            why = (f" The router was about to answer, but from {draft_why(s.flags)}: the studio wrote why, and "
                   "the router decides again whether to ask or to answer.")
        if rollout_only(s):
            # the page shows the lead apart; "the router thinks" would credit it with words it did not write
            return f"Step {s.index}: the studio writes this think block for the router — {_quote(s.text, 140)}.{why}"
        return f"Step {s.index}: the router thinks before acting — {_quote(s.text, 140)}{told}.{why}"
    if s.kind == "route":
        return _route_caption(s, alpha, prices, _decomposes(s, steps, question))
    if s.kind == "answer":
        calls = [x for x in steps if x.kind == "route" and x.sent]
        spent = sum(x.cost_usd for x in steps)
        head = f"Step {s.index}: the router answers {_quote(s.text, 60)}"
        if s.decision:
            head += f", {pct(s.decision.get('answer', 0.0))} sure it had enough to answer"
        head += (f", after {len(calls)} call{'s' if len(calls) != 1 else ''} costing {money(spent)} in all."
                 if calls else " without asking any model (it cost nothing).")
        if s.options and s.text in s.options:
            others = [f"{_quote(k, 40)} ({pct(p)})" for k, p in s.options.items() if k != s.text]
            head += (f" It was picked between the two things the question names by the router's own scores: "
                     f"{_quote(s.text, 40)} ({pct(s.options[s.text])}) over {', '.join(others)}.")
        if s.status == "flagged":
            head += f" The answer broke the protocol ({flags_text(s.flags)})."
        if gold:
            ok = exact_match(s.text, gold) >= 1
            head += (f" The gold answer is {_quote(' | '.join(gold), 60)}: "
                     + ("an exact match — correct." if ok else "no exact match — wrong."))
        return head
    if s.status == "stopped":
        return f"Step {s.index}: the session was stopped here ({s.error or 'by the user'})."
    if s.status == "flagged":
        return f"Step {s.index}: the router broke the protocol ({flags_text(s.flags) or s.error}) and the session ended."
    return f"Step {s.index}: something failed — {s.error or 'an error'}; the session ended here."


def _decomposes(s: Step, steps: Sequence[Step], question: str) -> str:
    """What a sent sub-question shows of the decomposition: the span of an earlier reply it carries (a bridge), or
    the one of a choice question's two things it asks about on its own; "" for neither."""
    if not (s.sent and question) or s.composed:
        return ""
    before = [x for x in steps if x.index < s.index] + [s]
    into = [b for b in bridges(before, question) if b.to_step == s.index]
    if into:
        b = max(into, key=lambda b: b.reply_span[1] - b.reply_span[0])
        src = next(x for x in steps if x.index == b.from_step)
        found = (src.response or "")[b.reply_span[0]:b.reply_span[1]]
        return (f"It carries {_quote(found, 60)} from the reply at step {b.from_step} into this sub-question: "
                "this hop builds on what that reply found.")
    options = choices(question)
    if options and (thing := about_alone(s.query or "", options)):
        return (f"It asks about {_quote(thing, 60)} on its own, one of the two things the question compares: a "
                "comparison is looked up side by side, one thing per sub-question.")
    return ""


def _route_caption(s: Step, alpha: float, prices: Prices, decomposes: str = "") -> str:
    parts: list[str] = []
    if s.draft:
        sure = f" ({pct(s.decision['answer'])} sure)" if s.decision and "answer" in s.decision else ""
        why = ("but that answers a sub-question, not yet what the question asks for"
               if "answer_one_hop_short" in s.flags else "but no reply said so")
        parts.append(f"The router was ready to answer {_quote(s.draft, 60)}{sure}, {why}: it was sent "
                     "back to ask for the missing fact.")
    elif "comparison_hop" in s.flags:
        sure = f" ({pct(s.decision['answer'])} sure)" if s.decision and "answer" in s.decision else ""
        parts.append(f"The router had read a fact about each of the two things and was ready to answer{sure}; the "
                     "studio first asks the comparison itself, with those facts written into the sub-question, "
                     "because a small router picks the one it read about last about half the time.")
    elif s.decision and "search" in s.decision:
        parts.append(f"The router was {pct(s.decision['search'])} sure it needed help.")
    if "fact_hop" in s.flags:
        parts.append(f"The router asked the whole question again ({_quote(s.written_query or '', 100)}) after the "
                     "think block that names the first fact; the studio asks for that fact instead, so one model "
                     "does not answer the whole question in one hop from memory.")
    c = s.choice
    if c is not None and c.models and c.quality is not None:
        parts.append(quality_sentence(s, c))
    elif c is not None and c.models:
        pref = c.policy_choice
        p_pref = c.probs_before[c.models.index(pref)] if pref in c.models else 0.0
        if c.chosen == pref:
            parts.append(f"It preferred {pref} (p {p_pref:.2f})"
                         + (f" and at α {c.alpha:g} the price penalty did not change that." if c.alpha > 0 else "."))
        else:
            p_after = c.probs_after[c.models.index(c.chosen)]
            saved = ""
            would = prices.call(pref, s.input_tokens, s.output_tokens)
            paid = prices.call(c.chosen, s.input_tokens, s.output_tokens)
            if would is not None and paid is not None and s.sent and would > paid and s.request_model == c.chosen:
                saved = f", saving {money(would - paid)} on this call"
            parts.append(f"It preferred {pref} (p {p_pref:.2f}); at α {c.alpha:g} the price penalty made "
                         f"{c.chosen} the pick (p {p_after:.2f}){saved}.")
    model = s.request_model or s.written_model or "a model"
    if "repeat_climbed" in s.flags:
        parts.append(f"This sub-question had been asked before, of a cheaper model; asked again, it goes one rung up "
                     f"the price ladder to {model} instead of where α sent it, because the cheaper reply did not "
                     "settle it.")
    if not s.sent:
        why = ("it repeats an earlier sub-question" if "repeated_query" in s.flags
               else f"there is no model named “{s.written_model}”" if "unknown_model" in s.flags
               else "the request was malformed")
        parts.append(f"It wrote the sub-question {_quote(s.query)}, but it was not sent: {why}, so it cost nothing.")
        return f"Step {s.index}: " + " ".join(parts)
    parts.append(f"It asked {model}: {_quote(s.query)}.")
    if decomposes:
        parts.append(decomposes)
    if s.status == "error":
        parts.append(f"The call failed ({shorten(s.error, 80)}); the router was told and carried on.")
    else:
        parts.append(f"{model} replied in {s.call_latency_s:.1f} s with {s.output_tokens} tokens "
                     f"({money(s.cost_usd)}): {_quote(s.response)}.")
    return f"Step {s.index}: " + " ".join(parts)


def quality_sentence(s: Step, c: Choice) -> str:
    """How the three terms of the choice (router_core/choice.py) picked the model: the router's own preference,
    each model's expected accuracy on this sub-question, and whether the price penalty at α moved the pick."""
    t = c.terms()
    at0 = max(range(len(c.models)), key=lambda i: (t[i]["prior"] + t[i]["quality"], -c.norm_costs[i], -i))
    best, chosen = c.models[at0], c.models.index(c.chosen)
    est = ", ".join(f"{m} {x['estimate']:.2f}" + ("" if x["calibrated"] else " (not calibrated)")
                    for m, x in zip(c.models, t))
    out = [f"Expected share right on this sub-question (from similar training questions): {est}."]
    if best != c.policy_choice:
        p = c.probs_before[c.models.index(c.policy_choice)]
        out.append(f"The router itself preferred {c.policy_choice} (p {p:.2f}); with the expected accuracy {best} "
                   "came first.")
    if c.chosen != best:
        out.append(f"At α {c.alpha:g} the price penalty outweighed {best}'s higher expected accuracy "
                   f"({t[at0]['estimate']:.2f}): {c.chosen} expected {t[chosen]['estimate']:.2f} correct, for less.")
    elif c.alpha > 0:
        out.append(f"At α {c.alpha:g} the price penalty did not change that: {c.chosen} it is.")
    else:
        out.append(f"{c.chosen} it is.")
    return " ".join(out)


def captions(steps: Sequence[Step], session: dict[str, Any]) -> list[str]:
    """A caption for every step of a stored session (its `alpha`, `gold` and `pool` snapshot)."""
    prices = Prices.of(session.get("pool"))
    gold = list(session.get("gold") or [])
    return [caption(s, alpha=float(session.get("alpha") or 0.0), prices=prices, gold=gold, steps=steps,
                    question=str(session.get("question") or "")) for s in steps]
