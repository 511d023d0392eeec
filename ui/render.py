"""Step → what a person reads. The one renderer for the live page, replay, compare and the terminal.

`describe()` decides what a step shows (a `StepView` of plain, unescaped text); `html()` and
`text()` only lay that out, each in a full and a compact form. So a route step reads the same
everywhere: the model (or "not sent"), the sub-question, the reply, tokens, $, seconds and the
choice before → after α.

Model text is untrusted. `esc` turns it into inert text in one pass: HTML specials become
entities (no tag, attribute or URL can form) and Markdown specials become numeric entities
(no link, image, emphasis or code span can form), so whatever a candidate writes — a
`<script>`, an `onerror=`, `[x](javascript:…)`, a protocol tag — shows as the characters it is.
This module imports no Gradio: the terminal uses it too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from router_core.metrics import exact_match
from router_core.step import Step

from .rules import flag_words, flags_text, rules_used

_SAFE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
                       **{c: f"&#{ord(c)};" for c in "[]()*_`#|~!\\{}$=:"}})
LONG_REPLY = 400  # characters; longer replies are folded behind a <details> toggle
COMPACT_TEXT = 160
LEAD_NOTE = "these first words were written by the studio (a run setting); the router continued them"
DRAFT_NOTE = "the router had answered “{draft}”, {why}, so it asks once more"


def draft_why(flags: Sequence[str]) -> str:
    """Why a draft answer was sent back for one more hop (the route step's flag says which check did it)."""
    if "answer_one_hop_short" in flags:
        return "a reply to a sub-question that asks for something other than what the question asks for"
    return "which no reply says"


def esc(text: str | None) -> str:
    """Untrusted text → inert HTML/Markdown (single pass, so entities are never double-escaped)."""
    return (text or "").translate(_SAFE)


def flags_html(flags: Sequence[str]) -> str:
    """Flags as plain words, each with its tooltip."""
    return ", ".join(f'<span class="rs-flag" title="{esc(tip)}">{esc(words)}</span>'
                     for words, tip in map(flag_words, flags))


def choice_line(session: dict[str, Any]) -> str:
    """How the session chose its models, when it used the per-hop quality estimate (a run setting, stored with the
    session): the three terms, with their weights."""
    run = (session.get("settings") or {}).get("run") or {}
    if not run.get("quality"):
        return ""
    return (f'<br><span class="rs-muted" title="run settings quality, prior_weight, quality_weight">model choice: '
            f"the router's preference × {float(run.get('prior_weight', 1.0)):g} + expected share right on the "
            f"sub-question × {float(run.get('quality_weight', 0.0)):g} − price × κ·α</span>")


def rules_details(session: dict[str, Any], steps: Sequence[Step]) -> str:
    """The rules of a session folded under one line that counts those that acted (replay header)."""
    rules = rules_used(session, steps)
    if not rules:
        return ""
    n = sum(1 for r in rules if r["steps"])
    return (f'<details class="rs-rules-box"><summary>studio rules: {n} of {len(rules)} acted</summary>'
            f"{rules_html(session, steps)}</details>")


def rules_html(session: dict[str, Any], steps: Sequence[Step]) -> str:
    """The rules of a session as a short list: those that acted first (with their steps), then those that did not."""
    rules = rules_used(session, steps)
    if not rules:
        why = ("none was on: the router decided every step itself" if session.get("settings")
               else "which rules were on was not recorded for this session")
        return f'<p class="rs-muted">No studio rule acted in this session ({why}).</p>'
    rules.sort(key=lambda r: not r["steps"])
    items = []
    for r in rules:
        where = ("acted at step " + ", ".join(map(str, r["steps"]))) if r["steps"] else "on, did not act"
        items.append(f'<li title="{esc(r["caption"])}"><b>{esc(r["label"])}</b> — {esc(where)}'
                     f'<br><small>{esc(r["caption"])}</small></li>')
    return f'<ul class="rs-rules">{"".join(items)}</ul>'


def err_text(e: BaseException) -> str:
    """An exception as a sentence for the page (KeyError's repr quotes would read as noise)."""
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


def money(usd: float | None) -> str:
    """Dollars readable at the scale of small CPU models: µ$ below a cent, $ above."""
    usd = usd or 0.0
    if usd == 0:
        return "$0"
    if usd < 0.01:
        micro = usd * 1e6
        return f"{micro:.3g} µ$" if micro < 100 else f"{micro:,.0f} µ$"
    return f"${usd:.4f}" if usd < 1 else f"${usd:,.2f}"


def shorten(text: str | None, n: int) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= n else t[: n - 1] + "…"


@dataclass(frozen=True)
class StepView:
    """What one step shows, as plain text (escaping happens when it is laid out)."""

    index: int
    kind: str                      # think | route | answer | error
    icon: str
    label: str                     # "think", "route", "answer", "stopped", …
    seconds: float
    status: str
    text: str = ""                 # think / answer text, or the error message
    model: str | None = None       # route: who answered
    sent: bool = False             # route: the sub-question reached a candidate
    note: str = ""                 # route: why it was not sent, or that it failed
    query: str | None = None
    reply: str | None = None
    metrics: str = ""              # route: tokens · $ · call seconds
    choice: str = ""               # route: the model distribution before → after α; answer: the options scored
    verdict: str | None = None     # answer: "correct" | "wrong" | None (no gold)
    draft: str | None = None       # route: the answer it replaces (sent back: see draft_why)
    lead: str | None = None        # think: the words the rollout wrote first (the router continued them)
    rollout_note: str = ""         # route: what the rollout changed in the router's request (rollout_note())
    flags: list[str] = field(default_factory=list)


def choice_summary(s: Step) -> str:
    if not s.choice:
        return ""
    pairs = ", ".join(f"{m} {b:.2f}→{a:.2f}" for m, b, a in
                      zip(s.choice.models, s.choice.probs_before, s.choice.probs_after))
    moved = "" if s.choice.chosen == s.choice.policy_choice else \
        f" · α moved the pick from {s.choice.policy_choice} to {s.choice.chosen}"
    return f"choice before→after α={s.choice.alpha:g}: {pairs}{moved}"


def rollout_note(s: Step) -> str:
    """What the rollout changed in a route step the router wrote: the sub-question it sent in place of the whole
    question asked again (fact_hop), the model a repeat went to instead of α's pick (repeat_climbed)."""
    notes = []
    if "fact_hop" in s.flags and s.written_query:
        notes.append(f"the router wrote “{s.written_query}”, the whole question again; the studio asked for the "
                     "first fact instead")
    if "repeat_climbed" in s.flags and s.choice:
        notes.append(f"a repeat: sent one rung up the price ladder, not to {s.choice.chosen} where α sent it")
    return "; ".join(notes)


def options_summary(s: Step) -> str:
    """An answer picked between the two things a choice question names, with the router's probability for each."""
    if not s.options:
        return ""
    return "picked by the router's scores between the two the question names: " + ", ".join(
        f"{name} {p:.2f}" for name, p in s.options.items())


def describe(s: Step, gold: Sequence[str] = ()) -> StepView:
    """The one decision of what a step shows."""
    base = dict(index=s.index, kind=s.kind, seconds=s.latency_s, status=s.status, flags=list(s.flags))
    if s.kind == "think":
        return StepView(icon="💭", label="think", text=s.text, lead=s.split_lead()[0] or None, **base)
    if s.kind == "route":
        note = ""
        if not s.sent:
            if "repeated_query" in s.flags:
                note = "not sent (repeat of an earlier sub-question)"
            elif "unknown_model" in s.flags:
                note = f"not sent (no model named '{s.written_model}')"
            else:
                note = "not sent (malformed request)"
        elif s.status == "error":
            note = "the call failed"
        metrics = ""
        if s.sent:
            metrics = (f"{s.input_tokens} tokens in, {s.output_tokens} out · {money(s.cost_usd)} · "
                       f"call {s.call_latency_s:.2f}s")
        return StepView(icon="🔀", label="route", model=s.request_model or s.written_model, sent=s.sent, note=note,
                        query=s.query, reply=s.response, metrics=metrics, choice=choice_summary(s),
                        text=s.error or "", draft=s.draft, rollout_note=rollout_note(s), **base)
    if s.kind == "answer":
        verdict = None
        if gold:
            verdict = "correct" if exact_match(s.text, gold) >= 1 else "wrong"
        return StepView(icon="🏁", label="answer", text=s.text, verdict=verdict, choice=options_summary(s), **base)
    return StepView(icon="⚠", label=s.status, text=s.error or "", **base)


# ---------------------------------------------------------------------- HTML (page, replay, compare)

def badge(model: str | None) -> str:
    return f'<span class="rs-badge">{esc(model or "?")}</span>'


def _reply_html(text: str | None) -> str:
    body = esc(text)
    if len(text or "") <= LONG_REPLY:
        return f"<blockquote>{body}</blockquote>"
    return (f"<details><summary>reply ({len(text or '')} characters, click to open)</summary>"
            f"<blockquote>{body}</blockquote></details>")


def _verdict_html(v: StepView) -> str:
    if v.verdict == "correct":
        return '<span class="rs-ok">✓ correct</span> '
    if v.verdict == "wrong":
        return '<span class="rs-bad">✗ wrong</span> '
    return ""


def html(v: StepView, compact: bool = False) -> str:
    """A step as escaped HTML; `compact` is one short block (compare cells)."""
    flags = f" · ⚑ {flags_html(v.flags)}" if v.flags else ""
    if compact:
        if v.kind == "think":
            return f'<div class="rs-think">💭 {esc(shorten(v.text, COMPACT_TEXT))}</div>'
        if v.kind == "route":
            who = badge(v.model) if v.sent else f'<span class="rs-muted">{esc(v.note)}</span>'
            cost = f" <small>{esc(v.metrics.split(' · ')[1])}</small>" if v.sent else ""
            return f"<div>{who} {esc(v.query)}{cost}</div>"
        if v.kind == "answer":
            return f'<div class="rs-answer">{_verdict_html(v)}🏁 {esc(v.text)}</div>'
        return f'<div class="rs-error">⚠ {esc(v.text)}</div>'
    if v.kind == "think":
        if v.lead:  # the rollout's words look apart from the router's, so nobody credits the router with them
            return (f'<span class="rs-lead" title="{esc(LEAD_NOTE)}">{esc(v.lead)}</span>'
                    f"{esc(v.text[len(v.lead):])}")
        return esc(v.text) or "<i>(empty)</i>"
    if v.kind == "route":
        who = badge(v.model) if v.sent else f'<span class="rs-muted">{esc(v.note)}</span>'
        lines = [f"🔀 <b>route</b> → {who} <small>step {v.index} · {v.seconds:.1f}s{flags}</small>"]
        if v.draft:
            lines.append(f"<small>{esc(DRAFT_NOTE.format(draft=v.draft, why=draft_why(v.flags)))}</small>")
        if v.rollout_note:
            lines.append(f"<small>{esc(v.rollout_note)}</small>")
        lines.append(f"<b>sub-question:</b> {esc(v.query)}")
        if v.sent or v.reply:
            lines.append(_reply_html(v.reply))
        if v.metrics:
            lines.append(f"<small>{esc(v.metrics)}</small>")
        if v.choice:
            lines.append(f"<small>{esc(v.choice)}</small>")
        if v.sent and v.status == "error" and v.text:
            lines.append(f"<b>error:</b> {esc(v.text)}")
        return "\n".join(lines)
    if v.kind == "answer":
        cls = {"correct": "rs-answer rs-answer-ok", "wrong": "rs-answer rs-answer-bad"}.get(v.verdict or "", "rs-answer")
        scored = f"<br><small>{esc(v.choice)}</small>" if v.choice else ""
        return f'<div class="{cls}">{_verdict_html(v)}🏁 <b>Answer:</b> {esc(v.text)}{flags}{scored}</div>'
    return f'<div class="rs-error">⚠ <b>{esc(v.label)}:</b> {esc(v.text)}{flags}</div>'


def anchor(target: str, index: int) -> str:
    """An invisible marker the graph's node clicks scroll to (ids survive the chatbot's sanitiser)."""
    return f'<span class="rs-anchor" id="rs-{esc(target)}-step-{index}"></span>'


def step_message(s: Step, gold: Sequence[str] = (), target: str = "") -> dict[str, Any]:
    """One chat message per step (the live page and replay). A think step is a titled block that stays
    open, so the reasoning a learner wants to read is shown, not folded away."""
    v = describe(s, gold)
    mark = anchor(target, v.index) if target else ""
    if v.kind == "think":
        flags = f" · ⚑ {flags_text(v.flags)}" if v.flags else ""
        return {"role": "assistant", "content": mark + html(v),
                "metadata": {"title": f"💭 think · step {v.index} · {v.seconds:.1f}s{flags}"}}
    return {"role": "assistant", "content": mark + html(v)}


def pending_message(kind: str, text: str) -> dict[str, Any]:
    """The step being generated right now (tokens as they stream)."""
    label = {"think": "💭 thinking…", "route": "🔀 writing the sub-question…", "reply": "📨 candidate replying…",
             "answer": "✍ answering…"}.get(kind, "…")
    return {"role": "assistant", "content": esc(text) or "…", "metadata": {"title": label, "status": "pending"}}


def session_messages(question: str, steps: Sequence[Step], pending: tuple[str, str] | None = None,
                     gold: Sequence[str] = (), target: str = "") -> list[dict]:
    """The whole conversation for a session (or its first k steps in a replay); `target` names the step
    list for the graph's clicks ("live", "replay")."""
    msgs: list[dict[str, Any]] = [{"role": "user", "content": esc(question)}]
    msgs.extend(step_message(s, gold, target) for s in steps)
    if pending is not None:
        msgs.append(pending_message(*pending))
    return msgs


# ---------------------------------------------------------------------- plain text (terminal)

def text(v: StepView, compact: bool = False) -> str:
    """A step as terminal text (model text is printed as is: a terminal runs no markup)."""
    head = f"[{v.index:>2}] {v.label:<6} {v.seconds:6.2f}s"
    flag = f"  ⚑ {flags_text(v.flags)}" if v.flags else ""
    pad = " " * 19
    if v.kind == "think":
        return f"{head}  {shorten(v.text, COMPACT_TEXT if compact else 300)}{flag}"
    if v.kind == "route":
        who = v.model if v.sent else f"({v.note})"
        lines = [f"{head}  → {who or '?'}: {v.query or ''}{flag}"]
        if compact:
            return lines[0]
        if v.draft:
            lines.append(pad + DRAFT_NOTE.format(draft=v.draft, why=draft_why(v.flags)))
        if v.rollout_note:
            lines.append(pad + v.rollout_note)
        if v.choice:
            lines.append(pad + v.choice)
        if v.sent or v.reply:
            lines.append(f"{pad}← {shorten(v.reply, 400)}")
        if v.metrics:
            lines.append(pad + v.metrics + (f"  error: {v.text}" if v.status == "error" and v.text else ""))
        return "\n".join(lines)
    if v.kind == "answer":
        verdict = {"correct": "  ✓ correct", "wrong": "  ✗ wrong"}.get(v.verdict or "", "")
        scored = f"\n{pad}{v.choice}" if v.choice and not compact else ""
        return f"{head}  ANSWER: {v.text}{verdict}{flag}{scored}"
    return f"{head}  {v.status.upper()}: {v.text}{flag}"
