"""Step → Gradio chat message. Model text is untrusted: it is HTML-escaped here, once,
before it reaches the page, so tags in it show as text and never run."""
from __future__ import annotations

import html
from typing import Any

from router_core.step import Step


def esc(text: str | None) -> str:
    return html.escape(text or "", quote=True)


def step_message(s: Step) -> dict[str, Any]:
    """One chat message per step; think and route steps are collapsible (metadata title)."""
    flags = f" · ⚑ {esc(', '.join(s.flags))}" if s.flags else ""
    if s.kind == "think":
        return {"role": "assistant", "content": esc(s.text) or "<i>(empty)</i>",
                "metadata": {"title": f"💭 think · {s.latency_s:.1f}s{flags}", "status": "done"}}
    if s.kind == "route":
        model = esc(s.request_model or s.written_model or "?")
        lines = [f"<b>{model}</b> ← {esc(s.query)}", "", f"<blockquote>{esc(s.response)}</blockquote>",
                 f"{s.input_tokens}+{s.output_tokens} tokens · ${s.cost_usd:.8f} · call {s.call_latency_s:.2f}s"]
        if s.choice:
            pairs = ", ".join(f"{esc(m)} {b:.2f}→{a:.2f}" for m, b, a in
                              zip(s.choice.models, s.choice.probs_before, s.choice.probs_after))
            lines.append(f"choice before→after α={s.choice.alpha:g}: {pairs}")
        if s.error:
            lines.append(f"<b>error:</b> {esc(s.error)}")
        return {"role": "assistant", "content": "<br>".join(lines),
                "metadata": {"title": f"🔀 route → {model} · {s.latency_s:.1f}s{flags}", "status": "done"}}
    if s.kind == "answer":
        return {"role": "assistant", "content": f"<b>Answer:</b> {esc(s.text)}{flags}"}
    return {"role": "assistant", "content": f"<b>{esc(s.status)}:</b> {esc(s.error)}{flags}"}
