"""Step → chat message. The one renderer used by the live run, the replay and compare.

Model text is untrusted. `esc` turns it into inert text in one pass: HTML specials become
entities (no tag, attribute or URL can form) and Markdown specials become numeric entities
(no link, image, emphasis or code span can form), so whatever a candidate writes — a
`<script>`, an `onerror=`, `[x](javascript:…)`, a protocol tag — shows as the characters it is.
"""
from __future__ import annotations

from typing import Any, Sequence

from router_core.step import Step

_SAFE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
                       **{c: f"&#{ord(c)};" for c in "[]()*_`#|~!\\{}$=:"}})
LONG_REPLY = 400  # characters; longer replies are folded behind a <details> toggle


def esc(text: str | None) -> str:
    """Untrusted text → inert HTML/Markdown (single pass, so entities are never double-escaped)."""
    return (text or "").translate(_SAFE)


def err_text(e: BaseException) -> str:
    """An exception as a sentence for the page (KeyError's repr quotes would read as noise)."""
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


def money(usd: float) -> str:
    """Dollars with enough digits to tell small CPU-model calls apart."""
    if usd == 0:
        return "$0"
    return f"${usd:.6f}" if usd >= 1e-4 else f"${usd:.2e}"


def badge(model: str | None) -> str:
    return f'<span class="rs-badge">{esc(model or "?")}</span>'


def _reply(text: str | None) -> str:
    body = esc(text)
    if len(text or "") <= LONG_REPLY:
        return f"<blockquote>{body}</blockquote>"
    return (f"<details><summary>reply ({len(text or '')} characters, click to open)</summary>"
            f"<blockquote>{body}</blockquote></details>")


def choice_line(s: Step) -> str:
    if not s.choice:
        return ""
    pairs = ", ".join(f"{esc(m)} {b:.2f}→{a:.2f}" for m, b, a in
                      zip(s.choice.models, s.choice.probs_before, s.choice.probs_after))
    moved = "" if s.choice.chosen == s.choice.policy_choice else \
        f" · α moved the pick from {esc(s.choice.policy_choice)} to {esc(s.choice.chosen)}"
    return f"<small>choice before→after α={s.choice.alpha:g}: {pairs}{moved}</small>"


def step_message(s: Step) -> dict[str, Any]:
    """One chat message per step: think steps collapse (metadata title); route steps stay open."""
    flags = f" · ⚑ {esc(', '.join(s.flags))}" if s.flags else ""
    if s.kind == "think":
        return {"role": "assistant", "content": esc(s.text) or "<i>(empty)</i>",
                "metadata": {"title": f"💭 think · {s.latency_s:.1f}s{flags}", "status": "done"}}
    if s.kind == "route":
        model = s.request_model or s.written_model or "?"
        lines = [f"🔀 <b>route</b> → {badge(model)} <small>step {s.index} · {s.latency_s:.1f}s{flags}</small>",
                 f"<b>sub-question:</b> {esc(s.query)}", _reply(s.response),
                 f"<small>{s.input_tokens}+{s.output_tokens} tokens · {money(s.cost_usd)} · "
                 f"call {s.call_latency_s:.2f}s</small>"]
        if s.choice:
            lines.append(choice_line(s))
        if s.error:
            lines.append(f"<b>error:</b> {esc(s.error)}")
        return {"role": "assistant", "content": "\n".join(lines)}
    if s.kind == "answer":
        return {"role": "assistant", "content": f'<div class="rs-answer">✅ <b>Answer:</b> {esc(s.text)}{flags}</div>'}
    return {"role": "assistant", "content": f'<div class="rs-error">⚠ <b>{esc(s.status)}:</b> {esc(s.error)}{flags}</div>'}


def pending_message(kind: str, text: str) -> dict[str, Any]:
    """The step being generated right now (tokens as they stream)."""
    label = {"think": "💭 thinking…", "route": "🔀 writing the sub-question…", "reply": "📨 candidate replying…",
             "answer": "✍ answering…"}.get(kind, "…")
    return {"role": "assistant", "content": esc(text) or "…", "metadata": {"title": label, "status": "pending"}}


def session_messages(question: str, steps: Sequence[Step], pending: tuple[str, str] | None = None) -> list[dict]:
    """The whole conversation for a session (or its first k steps in a replay)."""
    msgs: list[dict[str, Any]] = [{"role": "user", "content": esc(question)}]
    msgs.extend(step_message(s) for s in steps)
    if pending is not None:
        msgs.append(pending_message(*pending))
    return msgs
