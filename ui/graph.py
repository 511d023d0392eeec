"""The decomposition graph: question → one node per sub-question (and its reply) → answer, with bridges.

Built from stored Steps alone (`graph_of`), so every stored session — live, imported, eval — gets it,
and laid out deterministically left to right (`graph_html`): the question, then each hop's
sub-question (model badge, $, tokens, seconds; flagged, failed and unsent hops marked) above its
reply, then the answer with the gold answer and EM. A *bridge* — a later sub-question that reuses a
span of an earlier reply, found by evaluation.decomposition — is drawn as a labelled arrow between
the hops, and the span is highlighted in both texts. Every node carries `data-step` (its step
index); a click selects that step in the step list (assets/studio.js). All model text is escaped;
on narrow screens the columns stack top to bottom.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from evaluation.decomposition import Bridge, bridges
from router_core.metrics import exact_match
from router_core.step import COMPOSED_FLAGS, Step

from .render import describe, draft_why, esc, money, shorten
from .rules import flags_text

REPLY_SHORT = 110


@dataclass
class Hop:
    step: Step
    bridges_in: list[tuple[int, Bridge]] = field(default_factory=list)    # (bridge number, bridge) into this query
    bridges_out: list[tuple[int, Bridge]] = field(default_factory=list)   # out of this reply


@dataclass
class Graph:
    question: str
    hops: list[Hop]
    answer: Step | None
    end: Step | None               # an error or stop step that ended the session
    bridges: list[Bridge]
    gold: list[str]
    alpha: float

    @property
    def em(self) -> float | None:
        if not self.gold or self.answer is None:
            return None
        return exact_match(self.answer.text, self.gold)


def graph_of(question: str, steps: Sequence[Step], gold: Sequence[str] = (), alpha: float = 0.0) -> Graph:
    routes = [s for s in steps if s.kind == "route"]
    found = bridges(steps, question)
    hops = {s.index: Hop(s) for s in routes}
    for n, b in enumerate(found):
        hops[b.from_step].bridges_out.append((n, b))
        hops[b.to_step].bridges_in.append((n, b))
    answers = [s for s in steps if s.kind == "answer"]
    ends = [s for s in steps if s.kind == "error"]
    return Graph(question, [hops[s.index] for s in routes], answers[-1] if answers else None,
                 ends[-1] if ends else None, found, list(gold), alpha)


def _marked(text: str, spans: list[tuple[int, int, int]]) -> str:
    """Escape `text`, wrapping each (start, end, bridge number) span in <mark> (spans must not overlap)."""
    out, pos = [], 0
    for start, end, n in sorted(spans):
        if start < pos or end > len(text):
            continue
        out += [esc(text[pos:start]), f'<mark class="rs-g-span rs-g-b{n % 6}">{esc(text[start:end])}</mark>']
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def _hop_html(h: Hop) -> str:
    s = h.step
    v = describe(s)
    state = "rs-g-error" if s.status == "error" else "rs-g-flagged" if s.status == "flagged" else ""
    unsent = "" if v.sent else " rs-g-unsent"
    who = (f'<span class="rs-badge">{esc(v.model)}</span>' if v.sent
           else f'<span class="rs-muted">{esc(v.note)}</span>')
    meta = (f"{money(s.cost_usd)} · {s.input_tokens + s.output_tokens} tok · {s.call_latency_s:.1f}s"
            if v.sent else "$0")
    mark = " ⚑" if s.status == "flagged" else " ⚠" if s.status == "error" else ""
    q_spans = [(b.query_span[0], b.query_span[1], n) for n, b in h.bridges_in]
    uses = "".join(f'<div class="rs-g-uses">⤷ uses “{esc(b.span)}” from step {b.from_step}</div>'
                   for n, b in h.bridges_in)
    if s.draft:
        uses += (f'<div class="rs-g-uses">✍ asked instead of answering “{esc(shorten(s.draft, 40))}”, '
                 f"{esc(draft_why(s.flags))}</div>")
    if v.rollout_note:  # the rollout, not the router, wrote this sub-question or picked its model
        uses += f'<div class="rs-g-uses">✎ {esc(shorten(v.rollout_note, 140))}</div>'
    elif s.composed:
        uses += (f'<div class="rs-g-uses">✎ the studio wrote this sub-question '
                 f'({esc(flags_text([f for f in s.flags if f in COMPOSED_FLAGS]))})</div>')

    sub = (f'<div class="rs-g-node rs-g-sub {state}{unsent}" data-step="{s.index}" tabindex="0" '
           f'title="step {s.index}: click to show it in the step list">'
           f'<div class="rs-g-head">{who}<span class="rs-g-meta">{esc(meta)}{mark}</span></div>'
           f'<div class="rs-g-text">{_marked(s.query or "", q_spans)}</div>{uses}</div>')
    reply = s.response or ""
    if not v.sent:
        body = f'<div class="rs-g-text rs-muted">{esc(shorten(reply, REPLY_SHORT))}</div>'
    else:
        r_spans = [(b.reply_span[0], b.reply_span[1], n) for n, b in h.bridges_out]
        if len(reply) <= REPLY_SHORT:
            body = f'<div class="rs-g-text">{_marked(reply, r_spans)}</div>'
        else:
            short_spans = [sp for sp in r_spans if sp[1] <= REPLY_SHORT]
            body = (f'<details><summary class="rs-g-text">{_marked(reply[:REPLY_SHORT], short_spans)}…</summary>'
                    f'<div class="rs-g-text">{_marked(reply, r_spans)}</div></details>')
    rep = (f'<div class="rs-g-node rs-g-reply {state}{unsent}" data-step="{s.index}" tabindex="0">'
           f'<div class="rs-g-label">reply</div>{body}</div>')
    return f'<div class="rs-g-col rs-g-hop">{sub}{rep}</div>'


def _link(bridges_between: list[tuple[int, Bridge]], composed: bool = False,
          far: Sequence[tuple[int, Bridge]] = ()) -> str:
    """The arrow into a hop; a bridge when its sub-question reuses the previous reply (dashed when the studio, not
    the router, wrote that sub-question). Bridges from replies further back (`far`) are labelled here with their
    source step; the page's script draws their arcs from that reply (assets/studio.js)."""
    far_labels = "".join(f'<div class="rs-g-bridge-label rs-g-far rs-g-b{n % 6}">“{esc(b.span)}” '
                         f'<span class="rs-muted">from step {b.from_step}</span></div>' for n, b in far)
    if not bridges_between:
        cls = " rs-g-link-far" if far else ""
        return f'<div class="rs-g-link{cls}"><span aria-hidden="true">→</span>{far_labels}</div>'
    labels = "".join(f'<div class="rs-g-bridge-label rs-g-b{n % 6}">“{esc(b.span)}”</div>' for n, b in bridges_between)
    cls, tip = (" rs-g-bridge-rollout", "the studio wrote the next sub-question from what this reply found") \
        if composed else ("", "bridge: the next sub-question reuses what this reply found")
    return (f'<div class="rs-g-link rs-g-bridge{cls}" title="{tip}">'
            f'<svg viewBox="0 0 40 100" preserveAspectRatio="none" aria-hidden="true">'
            f'<path d="M2 82 C 20 82, 20 18, 36 18" /><path d="M30 12 L37 18 L30 24" /></svg>{labels}{far_labels}</div>')


def graph_html(g: Graph, target: str | None = "live") -> str:
    """The graph as HTML; `target` names the step list a node click selects ("live", "replay", …); None for
    a graph with no step list beside it (its nodes are then not clickable)."""
    parts = [f'<div class="rs-g-col rs-g-q"><div class="rs-g-node rs-g-question"><div class="rs-g-label">question</div>'
             f'<div class="rs-g-text">{esc(g.question)}</div></div></div>']
    arcs: list[str] = []  # "from-to-number" of each bridge from a reply that is not the one just before
    for i, h in enumerate(g.hops):
        prev = g.hops[i - 1].step.index if i else None
        between = [(n, b) for n, b in h.bridges_in if b.from_step == prev]
        far = [(n, b) for n, b in h.bridges_in if b.from_step != prev]
        arcs += [f"{b.from_step}-{b.to_step}-{n % 6}" for n, b in far]
        parts.append(_link(between, h.step.composed, far))
        parts.append(_hop_html(h))
    parts.append(_link([]))
    if g.answer is not None:
        a = g.answer
        em = g.em
        verdict = "" if em is None else (' <span class="rs-ok">✓ correct</span>' if em >= 1
                                         else ' <span class="rs-bad">✗ wrong</span>')
        gold = f'<div class="rs-g-meta">gold: {esc(" | ".join(g.gold))} · EM {em:.0f}</div>' if em is not None else ""
        cls = "" if em is None else " rs-g-ok" if em >= 1 else " rs-g-wrong"
        parts.append(f'<div class="rs-g-col rs-g-a"><div class="rs-g-node rs-g-answer{cls}" data-step="{a.index}" '
                     f'tabindex="0"><div class="rs-g-head"><span class="rs-g-label">answer</span>{verdict}</div>'
                     f'<div class="rs-g-text"><b>{esc(a.text)}</b></div>{gold}</div></div>')
    elif g.end is not None:
        e = g.end
        parts.append(f'<div class="rs-g-col rs-g-a"><div class="rs-g-node rs-g-error" data-step="{e.index}" '
                     f'tabindex="0"><div class="rs-g-label">⚠ {esc(e.status)}</div>'
                     f'<div class="rs-g-text">{esc(shorten(e.error, 120))}</div></div></div>')
    else:
        parts.append('<div class="rs-g-col rs-g-a"><div class="rs-g-node rs-g-pending">'
                     '<div class="rs-g-label">answer</div><div class="rs-g-text rs-muted">…</div></div></div>')
    total = sum(h.step.cost_usd for h in g.hops)
    sent = sum(1 for h in g.hops if h.step.sent)
    composed = {h.step.index for h in g.hops if h.step.composed}
    own = [b for b in g.bridges if b.to_step not in composed]  # the router's bridges; the rollout's counted apart
    theirs = len(g.bridges) - len(own)
    summary = (f'<div class="rs-g-summary">{len(g.hops)} sub-question{"s" if len(g.hops) != 1 else ""}, '
               f'{sent} sent · {money(total)} · α {g.alpha:g}'
               + (f' · {len(own)} bridge{"s" if len(own) != 1 else ""}' if own else "")
               + (f' · {theirs} into sub-questions the studio wrote' if theirs else "") + "</div>")
    attr = f' data-target="{esc(target)}"' if target else ' data-static="1"'
    # the arcs run below the cards, one lane each (integers only: nothing from the model reaches the attribute)
    row = (f' data-arcs="{" ".join(arcs)}" style="padding-bottom: {14 + 10 * len(arcs)}px"' if arcs else "")
    return (f'<div class="rs-graph"{attr}>{summary}'
            f'<div class="rs-g-row"{row}>{"".join(parts)}</div></div>')


def empty_graph_html(message: str = "The decomposition appears here as the router works.") -> str:
    return f'<div class="rs-graph rs-graph-empty"><div class="rs-muted">{esc(message)}</div></div>'
