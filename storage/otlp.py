"""Sessions as OpenTelemetry traces, sent over OTLP/HTTP to Phoenix, Langfuse or any collector.

One trace per session: the session is the root span (OpenInference kind AGENT, `session.id`, the
question in and the answer out, α, policy and pool); each router generation is an LLM span; each
route step is a CHAIN span carrying the model-choice distribution before and after α, with the
candidate call as a child LLM span (model, tokens, dollars, the sub-question and the reply as
messages). Attributes use the OpenInference names (`llm.model_name`, `llm.token_count.*`,
`llm.cost.*`, `llm.input_messages.*`) and, where one exists, the OpenTelemetry GenAI name as well
(`gen_ai.request.model`, `gen_ai.usage.*`, `gen_ai.conversation.id`). Keys are never exported: the
pool snapshot carries only the *names* of key variables, and only names and prices are sent.

Export never slows or breaks a session: spans go through the SDK's BatchSpanProcessor (a bounded
queue drained by a background thread, each send with a short timeout), and an unreachable
collector is logged once, not per span. Span and trace ids derive from the session id and step
index, so exporting a stored session again is idempotent (a collector keeps the first copy).
The SDK is imported only when tracing is on.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from typing import Any, Iterable, Iterator, Sequence

from router_core.session import SessionResult
from router_core.step import Step

PROJECT = "router-r1-studio"
ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
_LOGGERS = ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "opentelemetry.exporter.otlp.proto.http",
            "opentelemetry.sdk._shared_internal", "opentelemetry.sdk.trace.export")
log = logging.getLogger("router_studio.otlp")


class TracingError(RuntimeError):
    """Tracing that cannot be set up (the SDK is missing, the endpoint is not a URL)."""


def _ns(t: float | None) -> int:
    return int((t or time.time()) * 1e9)


def _id(*parts: object, bits: int) -> int:
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    v = int.from_bytes(h[: bits // 8], "big")
    return v or 1


class _Once(logging.Filter):
    """Lets the first failure through (as one line of ours), then drops the SDK's repeats."""

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint, self.seen = endpoint, False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        if not self.seen:
            self.seen = True
            log.warning("traces cannot be sent to %s (%s); sessions go on, later failures are not logged",
                        self.endpoint, record.getMessage()[:160])
        return False


class Tracer:
    """An OTLP/HTTP exporter of sessions; `session()` wraps a live Step stream, `export()` a stored one."""

    def __init__(self, endpoint: str, *, project: str = PROJECT, timeout_s: float = 5.0, max_queue: int = 4096,
                 delay_ms: int = 500) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise TracingError(f"--otlp: '{endpoint}' is not an http(s) URL (e.g. http://127.0.0.1:6006/v1/traces)")
        try:
            from opentelemetry import trace
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import SpanLimits, TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.sdk.trace.id_generator import IdGenerator
            from opentelemetry.trace import Status, StatusCode
        except ImportError as e:  # pragma: no cover - installed by requirements.txt
            raise TracingError(f"OpenTelemetry is not installed ({e}); run the README's setup command") from e
        self.endpoint = endpoint
        self._trace, self._Status, self._StatusCode = trace, Status, StatusCode
        self._next: dict[str, int] = {}
        self._lock = threading.Lock()
        outer = self

        class Ids(IdGenerator):  # ids set per span by `_span`, so a re-export of a session repeats them
            def generate_span_id(self) -> int:
                return outer._next.pop("span", None) or _id(time.time_ns(), os.getpid(), "s", bits=64)

            def generate_trace_id(self) -> int:
                return outer._next.pop("trace", None) or _id(time.time_ns(), os.getpid(), "t", bits=128)

        self.provider = TracerProvider(
            resource=Resource.create({"service.name": project, "openinference.project.name": project}),
            id_generator=Ids(), span_limits=SpanLimits(max_span_attributes=2048, max_attribute_length=32_000),
            shutdown_on_exit=False)
        self.exporter = OTLPSpanExporter(endpoint=endpoint, timeout=timeout_s)
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter, max_queue_size=max_queue,
                                                            max_export_batch_size=min(512, max_queue),
                                                            schedule_delay_millis=delay_ms))
        self.tracer = self.provider.get_tracer("router-r1-studio")
        self._filter = _Once(endpoint)
        for name in _LOGGERS:
            logging.getLogger(name).addFilter(self._filter)

    # ------------------------------------------------------------------ spans

    def _span(self, name: str, start: float | None, session_id: str, key: str, parent: Any = None,
              attrs: dict[str, Any] | None = None):
        with self._lock:
            if parent is None:
                self._next["trace"] = _id(session_id, bits=128)
            self._next["span"] = _id(session_id, key, bits=64)
            ctx = self._trace.set_span_in_context(parent) if parent is not None else None
            try:
                span = self.tracer.start_span(name, context=ctx, start_time=_ns(start),
                                              attributes={k: v for k, v in (attrs or {}).items() if v is not None})
            finally:
                self._next.clear()  # never left over for another span, even when this one failed
        return span

    def _end(self, span: Any, end: float | None, error: str | None = None) -> None:
        """Close a span with its status: ERROR with the message where something failed, else OK (a span left UNSET
        tells a trace viewer nothing; a session the user stopped did not fail)."""
        if error:
            span.set_status(self._Status(self._StatusCode.ERROR, error[:300]))
        else:
            span.set_status(self._Status(self._StatusCode.OK))
        span.end(end_time=_ns(end))

    def root(self, meta: dict[str, Any]) -> Any:
        sid = meta["session_id"]
        pool = meta.get("pool") or {}
        attrs = {"openinference.span.kind": "AGENT", "session.id": sid, "gen_ai.conversation.id": sid,
                 "gen_ai.operation.name": "invoke_agent", "input.value": meta.get("question"),
                 "input.mime_type": "text/plain", "router.alpha": float(meta.get("alpha") or 0.0),
                 "router.policy": meta.get("policy"), "router.pool": pool.get("name") if isinstance(pool, dict)
                 else str(pool), "gen_ai.agent.name": meta.get("policy"),
                 "metadata": json.dumps({"alpha": meta.get("alpha"), "policy": meta.get("policy"),
                                         "pool": pool.get("name") if isinstance(pool, dict) else pool,
                                         "dataset": meta.get("dataset"), "run_id": meta.get("run_id")})}
        if meta.get("gold"):
            attrs["router.gold"] = list(meta["gold"])
        return self._span("router session", meta.get("created_at"), sid, "root", attrs=attrs)

    def step(self, root: Any, s: Step, meta: dict[str, Any], prices: dict[str, tuple[float, float]]) -> None:
        """The spans of one finished step, under the session's root span."""
        sid = meta["session_id"]
        policy = meta.get("policy") or "router"
        router_tokens = {"llm.token_count.prompt": s.router_input_tokens,
                         "llm.token_count.completion": s.router_output_tokens,
                         "llm.token_count.total": s.router_input_tokens + s.router_output_tokens,
                         "gen_ai.usage.input_tokens": s.router_input_tokens,
                         "gen_ai.usage.output_tokens": s.router_output_tokens}
        router_llm = {"openinference.span.kind": "LLM", "llm.model_name": policy, "gen_ai.request.model": policy,
                      "gen_ai.operation.name": "text_completion", "router.step": s.index, "router.kind": s.kind,
                      "gen_ai.conversation.id": sid, "session.id": sid, **router_tokens}
        err = s.error if s.status in ("error",) else None
        if s.kind in ("think", "answer"):
            # the router's input is the whole transcript (not kept); the span names what it was working on and the
            # words the rollout wrote first, if any
            attrs = {**router_llm, "input.value": meta.get("question"), "input.mime_type": "text/plain",
                     "router.lead": s.lead, "output.value": s.text, "output.mime_type": "text/plain"}
            if s.decision:
                attrs["router.decision"] = json.dumps(s.decision)
            span = self._span(f"router {s.kind}", s.started_at, sid, f"step-{s.index}", root, attrs)
            self._end(span, s.ended_at or s.started_at, err)
            return
        if s.kind == "error":
            span = self._span(f"router {s.status}", s.started_at, sid, f"step-{s.index}", root,
                              {"openinference.span.kind": "CHAIN", "router.step": s.index, "session.id": sid,
                               "output.value": s.error})
            failed = s.status != "stopped"  # a stop (the user, a client that left) is not a failure
            self._end(span, s.ended_at or s.started_at, (s.error or s.status) if failed else None)
            return
        model = s.request_model or s.written_model or "?"
        attrs: dict[str, Any] = {"openinference.span.kind": "CHAIN", "router.step": s.index, "session.id": sid,
                                 "input.value": s.query, "output.value": s.response, "router.route.model": model,
                                 "router.route.sent": s.sent, "router.flags": list(s.flags) or None}
        if s.choice is not None:
            c = s.choice
            attrs.update({"router.choice.models": list(c.models), "router.choice.probs_before": list(c.probs_before),
                          "router.choice.probs_after": list(c.probs_after), "router.choice.alpha": c.alpha,
                          "router.choice.chosen": c.chosen, "router.choice.policy_choice": c.policy_choice,
                          "router.choice.norm_costs": list(c.norm_costs)})
            if c.quality is not None:  # the three terms of each candidate's utility (router_core/choice.py)
                t = c.terms()
                attrs.update({"router.choice.prior_term": [x["prior"] for x in t],
                              "router.choice.quality_term": [x["quality"] for x in t],
                              "router.choice.price_penalty": [x["penalty"] for x in t],
                              "router.choice.quality_estimate": [x["estimate"] for x in t],
                              "router.choice.calibrated": [bool(x["calibrated"]) for x in t]})
        chain = self._span(f"route → {model}", s.started_at, sid, f"step-{s.index}", root, attrs)
        # the router writing the sub-question
        write_end = s.call_started_at or s.ended_at or s.started_at
        w = self._span("router writes the sub-question", s.started_at, sid, f"step-{s.index}-write", chain,
                       {**router_llm, "output.value": s.query})
        self._end(w, write_end)
        if s.sent:
            p_in, p_out = prices.get(model, (0.0, 0.0))
            cost_in, cost_out = s.input_tokens * p_in / 1e6, s.output_tokens * p_out / 1e6
            call = {"openinference.span.kind": "LLM", "llm.model_name": model, "gen_ai.request.model": model,
                    "gen_ai.operation.name": "chat", "session.id": sid, "gen_ai.conversation.id": sid,
                    "llm.token_count.prompt": s.input_tokens, "llm.token_count.completion": s.output_tokens,
                    "llm.token_count.total": s.input_tokens + s.output_tokens,
                    "gen_ai.usage.input_tokens": s.input_tokens, "gen_ai.usage.output_tokens": s.output_tokens,
                    "llm.cost.prompt": cost_in, "llm.cost.completion": cost_out, "llm.cost.total": s.cost_usd,
                    "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": s.query,
                    "llm.output_messages.0.message.role": "assistant",
                    "llm.output_messages.0.message.content": s.response, "input.value": s.query,
                    "output.value": s.response}
            span = self._span(f"candidate {model}", s.call_started_at, sid, f"step-{s.index}-call", chain, call)
            self._end(span, s.call_ended_at or s.call_started_at, err)
        self._end(chain, s.ended_at or s.started_at, err)

    def close_root(self, root: Any, res: SessionResult, status: str, end: float | None = None) -> None:
        root.set_attribute("output.value", res.answer or "")
        root.set_attribute("output.mime_type", "text/plain")
        root.set_attribute("router.status", status)
        root.set_attribute("llm.cost.total", res.cost_usd)
        root.set_attribute("router.calls", res.calls)
        if res.em is not None:
            root.set_attribute("router.em", res.em)
        last = max(((s.ended_at or s.started_at) for s in res.steps), default=None)
        failed = status in ("error", "interrupted")
        self._end(root, end or last, (res.error or status) if failed else None)

    # ------------------------------------------------------------------ whole sessions

    def session(self, steps: Iterable[Step], meta: dict[str, Any]) -> Iterator[Step]:
        """Yield a live session's steps unchanged, tracing each as it finishes; the root closes at the end."""
        meta = {**meta, "created_at": meta.get("created_at") or time.time()}
        prices = _prices(meta.get("pool"))
        root = self.root(meta)
        seen: list[Step] = []
        status = "error"
        try:
            for s in steps:
                seen.append(s)
                try:
                    self.step(root, s, meta, prices)
                except Exception as e:  # noqa: BLE001 — tracing must never break a session
                    log.warning("could not trace step %s: %s", s.index, e)
                yield s
            status = SessionResult.of(seen, meta.get("question", ""), 0.0).status
        except GeneratorExit:
            status = "stopped"
            raise
        finally:
            res = SessionResult.of(seen, meta.get("question", ""), float(meta.get("alpha") or 0.0),
                                   meta.get("gold") or [])
            try:
                self.close_root(root, res, status)
            except Exception as e:  # noqa: BLE001
                log.warning("could not close the session span: %s", e)

    def export(self, session: dict[str, Any], steps: Sequence[Step]) -> None:
        """A stored session, after the fact, with its recorded times (same ids as when it ran live)."""
        meta = {"session_id": session["id"], "question": session.get("question"), "alpha": session.get("alpha"),
                "policy": session.get("policy"), "pool": session.get("pool") or {}, "gold": session.get("gold"),
                "dataset": session.get("dataset"), "run_id": session.get("run_id"),
                "created_at": session.get("created_at")}
        prices = _prices(meta["pool"])
        root = self.root(meta)
        for s in steps:
            self.step(root, s, meta, prices)
        res = SessionResult.of(list(steps), meta["question"] or "", float(meta["alpha"] or 0.0), meta["gold"] or [])
        start, took = session.get("created_at"), session.get("latency_s")
        self.close_root(root, res, session.get("status") or res.status,
                        end=start + took if start is not None and took is not None else None)

    @property
    def failed(self) -> bool:
        """Whether a send has failed (the collector is unreachable or refused the spans)."""
        return self._filter.seen

    def flush(self, timeout_s: float = 10.0) -> bool:
        return self.provider.force_flush(int(timeout_s * 1000))

    def close(self) -> None:
        try:
            self.provider.shutdown()
        finally:
            for name in _LOGGERS:
                logging.getLogger(name).removeFilter(self._filter)


def _prices(pool: Any) -> dict[str, tuple[float, float]]:
    models = pool.get("models", []) if isinstance(pool, dict) else []
    return {m["name"]: (float(m.get("price_in") or 0), float(m.get("price_out") or 0))
            for m in models if isinstance(m, dict) and m.get("name")}


# ---------------------------------------------------------------------- the process's tracer (--otlp)

_current: Tracer | None = None


def configure(endpoint: str | None, *, timeout_s: float = 5.0) -> Tracer | None:
    """Turn tracing on for this process (`--otlp URL`, else $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), or leave it off.
    `timeout_s` bounds each send, its retries included."""
    global _current
    url = (endpoint or os.environ.get(ENV) or "").strip()
    if not url:
        return None
    if _current is not None and _current.endpoint == url:
        return _current
    shutdown()
    _current = Tracer(url, timeout_s=timeout_s)
    return _current


def current() -> Tracer | None:
    return _current


def shutdown() -> None:
    global _current
    if _current is not None:
        _current.flush(5)
        _current.close()
        _current = None
