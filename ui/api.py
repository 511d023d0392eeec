"""The router as an OpenAI-compatible model: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`.

Served on the web app's own port and process (same engines, same store), or alone by `app.py
serve-api`. The model id names the policy and the cost coefficient: `router:<policy>:<alpha>`
(`router:default:0.3` for the default policy; `router` alone is the default at α 0); an `alpha`
field in the body overrides it, and an `x-router-pool` header picks a pool the server loaded, by name
or by its file name in assets/pools. The last user message is the question; the reply's content is
the answer. Every call is a stored session (it appears in the Explorer), its id comes back in
`x-router-session-id` and in a `router` object (cost, calls, the steps in compact form, the replay
URL). Streaming sends each finished step as an SSE comment line (`: router-step {...}`, which OpenAI
clients skip) and the answer as `content` once it is given: the tokens of an answer being written go out as
`: router-draft {"index", "text"}` comments, since the rollout may still send that draft back for one more hop,
so the streamed content is always the stored answer, trimmed. A non-streamed request whose client goes away
(its own timeout, a closed script) stops its session at the next step boundary (stored `stopped`, with why).

Errors are OpenAI-style JSON (`{"error": {"message", "type", "param", "code"}}`): 400 for a bad
request or a policy/pool/template that cannot be used, 401 for a missing or wrong token
(`--api-token-env NAME`), 404 for an unknown model id, 413/415 for an oversized or non-JSON body, 429
with Retry-After when the queue is full or no place to run freed within the bound wait, 502 when the router or an engine failed (that session is
stored with its status; once a stream has started, the failure is one error event before [DONE]).
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterator

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from router_core.choice import parse_alpha
from router_core.pool import PoolError
from router_core.question import question_problem
from router_core.session import SessionResult
from router_core.step import Step

from .admission import Busy
from .studio import Event, Studio

QUEUE_MAX = 16          # requests running or waiting for the engines; beyond this, 429
PER_CLIENT_MAX = 4      # of those, at most this many from one client (its token, else its address); beyond, 429
RETRY_AFTER_S = 5
QUEUE_WAIT_S = 60.0     # the longest a request waits in line for a place to run; then 429 (nothing ran or was stored)
BODY_MAX = 1 << 20     # bytes of request body
MODEL_PREFIX = "router"


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error", headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "type": self.kind, "param": self.param,
                                       "code": self.code}}, status_code=self.status, headers=self.headers)


@dataclass
class Call:
    """A validated chat-completions request."""

    question: str
    policy: str
    alpha: float
    pool: str
    stream: bool
    include_usage: bool
    model: str


def model_id(policy: str, alpha: float) -> str:
    return f"{MODEL_PREFIX}:{policy}:{alpha:g}"


def parse_model(model: Any, studio: Studio) -> tuple[str, float]:
    """`router`, `router:<policy>` or `router:<policy>:<alpha>` → (policy name, α); policy `default` is the default."""
    if not isinstance(model, str) or not model.strip():
        raise ApiError(400, "model: give a router model id such as router:default:0.3", "model", "model_not_found")
    m = model.strip()
    if m != MODEL_PREFIX and not m.startswith(MODEL_PREFIX + ":"):
        raise ApiError(404, f"The model '{m[:80]}' does not exist here: this server is a router; use "
                            f"router:<policy>:<alpha>, e.g. {model_id('default', 0.3)}", "model", "model_not_found")
    rest = m[len(MODEL_PREFIX) + 1:] if m != MODEL_PREFIX else ""
    alpha = 0.0
    if ":" in rest:
        head, tail = rest.rsplit(":", 1)
        try:
            alpha = float(tail)
            rest = head
        except ValueError:
            pass
    policy = rest or "default"
    if policy != "default" and policy not in studio.policy_names:
        raise ApiError(404, f"model: no policy '{policy[:80]}'; known: default, {', '.join(studio.policy_names)}",
                       "model", "model_not_found")
    return (studio.policies.default if policy == "default" else policy), alpha


def _alpha(value: Any, field: str) -> float:
    if not isinstance(value, (int, float)):  # JSON: a number, not a string that looks like one
        raise ApiError(400, f"{field}: α must be a number in [0, 1], got {str(value)[:40]}", field)
    try:
        return parse_alpha(value, field)
    except ValueError:
        raise ApiError(400, f"{field}: α must be a number in [0, 1], got {str(value)[:40]}", field) from None


def _content(msg: dict[str, Any]) -> str:
    c = msg.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):  # [{"type": "text", "text": ...}, ...]
        parts = [p.get("text") for p in c if isinstance(p, dict) and p.get("type") == "text"]
        if any(not isinstance(t, str) for t in parts):
            raise ApiError(400, "messages: a text part's 'text' must be a string", "messages")
        return " ".join(parts)
    return ""


def parse_request(body: Any, studio: Studio, pool_header: str | None) -> Call:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    policy, alpha = parse_model(body.get("model"), studio)
    if "alpha" in body and body["alpha"] is not None:
        alpha = _alpha(body["alpha"], "alpha")
    else:
        alpha = _alpha(alpha, "model")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise ApiError(400, "messages: give at least one message with role 'user'", "messages")
    users = [m for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise ApiError(400, "messages: no message with role 'user' (its content is the question)", "messages")
    question = _content(users[-1]).strip()
    if not question:
        raise ApiError(400, "messages: the last user message is empty", "messages")
    if problem := question_problem(question):
        raise ApiError(400, f"messages: the question: {problem}", "messages")
    pool = resolve_pool(pool_header, studio)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "stream: must be true or false", "stream")
    opts = body.get("stream_options") or {}
    return Call(question, policy, alpha, pool, stream, bool(isinstance(opts, dict) and opts.get("include_usage")),
                str(body.get("model")))


def resolve_pool(name: str | None, studio: Studio) -> str:
    """A pool the server loaded at start, by its name or by its file name in assets/pools (`local.yaml`)."""
    if not name or not name.strip():
        return studio.default_pool
    n = name.strip()
    if "/" in n or "\\" in n or n.startswith("."):
        raise ApiError(400, "x-router-pool: give a pool name or a file name from assets/pools, not a path",
                       "x-router-pool")
    found = n if n in studio.pools else studio.pool_files.get(n.removesuffix(".yaml"))
    if not found:
        raise ApiError(400, f"x-router-pool: no pool '{n[:80]}'; known: {', '.join(sorted(studio.pools))}",
                       "x-router-pool")
    return found


def compact(s: Step) -> dict[str, Any]:
    d: dict[str, Any] = {"index": s.index, "kind": s.kind, "status": s.status}
    if s.kind == "route":
        d.update(model=s.request_model or s.written_model, query=s.query, sent=s.sent, cost_usd=s.cost_usd,
                 output_tokens=s.output_tokens)
    elif s.kind in ("think", "answer"):
        d["text"] = s.text[:300]
    else:
        d["error"] = (s.error or "")[:300]
    return d


def usage(res: SessionResult) -> dict[str, int]:
    prompt = sum(s.router_input_tokens + s.input_tokens for s in res.steps)
    completion = sum(s.router_output_tokens + s.output_tokens for s in res.steps)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def router_object(res: SessionResult, call: Call) -> dict[str, Any]:
    return {"session_id": res.session_id, "status": res.status, "cost_usd": res.cost_usd, "calls": res.calls,
            "alpha": call.alpha, "policy": call.policy, "pool": call.pool, "replay_url": f"/?session={res.session_id}",
            "steps": [compact(s) for s in res.steps]}


class Gate:
    """A bounded room in front of the admission line: requests in it run or wait their turn (how many run at once is
    the studio's admission, ui/admission.py, shared with the page); beyond `limit` a request is answered 429 at once,
    and so is one from a client that already holds `per_client` places, so one client (a script with many workers, a
    retry loop) cannot fill the room and shut everyone else out."""

    def __init__(self, limit: int = QUEUE_MAX, per_client: int = PER_CLIENT_MAX) -> None:
        self.limit, self.per_client, self.in_flight = limit, max(1, min(per_client, limit)), 0
        self.by_client: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, client: str = "") -> Callable[[], None]:
        """Take a place for `client`; returns its release, which gives the place back once however often it is
        called."""
        with self._lock:
            if self.in_flight >= self.limit:
                raise ApiError(429, f"the router is busy ({self.in_flight} requests running or waiting); retry in "
                                    f"{RETRY_AFTER_S} s", kind="rate_limit_error", code="queue_full",
                               headers={"Retry-After": str(RETRY_AFTER_S)})
            if self.by_client.get(client, 0) >= self.per_client:
                raise ApiError(429, f"this client already has {self.per_client} requests running or waiting; retry "
                                    f"in {RETRY_AFTER_S} s", kind="rate_limit_error", code="client_queue_full",
                               headers={"Retry-After": str(RETRY_AFTER_S)})
            self.in_flight += 1
            self.by_client[client] = self.by_client.get(client, 0) + 1
        done = threading.Event()

        def release() -> None:
            with self._lock:
                if not done.is_set():
                    done.set()
                    self.in_flight -= 1
                    left = self.by_client.get(client, 1) - 1
                    if left > 0:
                        self.by_client[client] = left
                    else:
                        self.by_client.pop(client, None)
        return release


def client_key(request: Request) -> str:
    """Who a request is from, for the gate's per-client share: its bearer token (hashed; a team shares one per
    member), else its network address. Forwarded-for headers are not trusted (anyone can write them)."""
    auth = request.headers.get("authorization", "")
    if auth:
        return "token:" + hashlib.sha256(auth.encode("latin-1", "replace")).hexdigest()[:16]
    return "addr:" + (request.client.host if request.client else "?")


def check_token(request: Request, token_env: str | None) -> None:
    if not token_env:
        return
    want = (os.environ.get(token_env) or "").encode()
    scheme, _, got = request.headers.get("authorization", "").partition(" ")
    # bytes on both sides: compare_digest refuses non-ASCII str, and header values arrive as latin-1
    if not want or scheme.lower() != "bearer" or not hmac.compare_digest(got.strip().encode("latin-1", "replace"),
                                                                         want):
        raise ApiError(401, "missing or wrong API token: send Authorization: Bearer <token>",
                       kind="authentication_error", code="invalid_api_key")


async def read_body(request: Request) -> Any:
    """The JSON body, refused unless it is declared JSON (a web page cannot send that cross-site without a
    CORS preflight) and at most BODY_MAX bytes."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, "send the request body as JSON with Content-Type: application/json", code="content_type")
    size = request.headers.get("content-length")
    if size and size.isdigit() and int(size) > BODY_MAX:
        raise ApiError(413, f"the request body is over {BODY_MAX // 1024} KiB", code="too_large")
    raw = bytearray()
    async for part in request.stream():
        raw += part
        if len(raw) > BODY_MAX:
            raise ApiError(413, f"the request body is over {BODY_MAX // 1024} KiB", code="too_large")
    try:
        return json.loads(bytes(raw))
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply", code="too_deep") from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None


def routes(studio: Studio, *, token_env: str | None = None, gate: Gate | None = None,
           wait_s: float = QUEUE_WAIT_S) -> APIRouter:
    """The API's routes (mount them before the Gradio app: its catch-all would hide later routes)."""
    r = APIRouter()
    gate = gate or Gate()

    @r.get("/health")
    def health() -> dict[str, Any]:
        ready = any("router policy ready" in m for m in studio.progress_log)
        return {"status": "ok", "policy": studio.policies.default, "pool": studio.default_pool,
                "router_ready": ready, "in_flight": gate.in_flight, "sessions": studio.admission.state()}

    @r.get("/v1/models")
    def models(request: Request):
        try:
            check_token(request, token_env)
        except ApiError as e:
            return e.response()
        ids = [model_id("default", 0)] + [model_id(p, 0) for p in studio.policy_names]
        now = int(time.time())
        return {"object": "list", "data": [{"id": i, "object": "model", "created": now, "owned_by": "router-r1-studio",
                                             "description": "any α in [0, 1] after the last colon"} for i in ids]}

    @r.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            check_token(request, token_env)
            call = parse_request(await read_body(request), studio, request.headers.get("x-router-pool"))
            release = gate.enter(client_key(request))
        except ApiError as e:
            return e.response()
        sid = uuid.uuid4().hex
        headers = {"x-router-session-id": sid}
        try:
            # the first event is taken here, once the session has a place to run, so a policy, pool or template
            # that cannot be used, or a line that did not move within the bound wait, is a proper 4xx (streaming
            # or not) instead of an error inside a 200 stream
            events = _events(studio, call, sid, client_key(request), wait_s)
            first = await _unless_gone(request, studio, sid, next, events, None)
        except ApiError as e:
            release()
            e.headers.update(headers)
            return e.response()
        if first is None:  # the client went away while waiting: nothing ran, nothing was stored
            release()
            return ApiError(400, CLIENT_GONE, code="client_gone", headers=headers).response()
        if call.stream:
            return GatedStream(_stream(events, first, call, sid), release, media_type="text/event-stream",
                               headers={**headers, "cache-control": "no-cache"})
        try:
            res, failure = await _unless_gone(request, studio, sid, _collect, events, first, call)
        finally:
            release()
        if res.status != "done" or failure:
            status = res.status if res.status != "done" else "error"
            return ApiError(502, f"the router session ended with status {status}: {_short(res.error or failure)}",
                            kind="server_error", code=status, headers=headers).response()
        return JSONResponse({"id": f"chatcmpl-{sid}", "object": "chat.completion", "created": int(time.time()),
                             "model": call.model,
                             "choices": [{"index": 0, "message": {"role": "assistant",
                                                                  "content": (res.answer or "").strip()},
                                          "finish_reason": "stop"}],
                             "usage": usage(res), "router": router_object(res, call)}, headers=headers)

    @r.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                 include_in_schema=False)
    def elsewhere(path: str, request: Request):
        """Every other /v1 path or method answers in OpenAI's error shape, as the known ones do."""
        known = {"chat/completions": "POST", "models": "GET"}
        if path in known:
            return ApiError(405, f"/v1/{path} takes {known[path]}, not {request.method}", code="method_not_allowed",
                            headers={"Allow": known[path]}).response()
        return ApiError(404, f"no endpoint /v1/{path[:80]} here; this server has POST /v1/chat/completions and "
                             "GET /v1/models", code="not_found").response()

    return r


class GatedStream(StreamingResponse):
    """A streamed reply that gives its place in the gate back however it ends: finished, failed, or a client
    that went away before the first byte (when the body generator never starts, its own `finally` never runs)."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None], **kw: Any) -> None:
        super().__init__(content, **kw)
        self._release = release

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _short(text: str | None, n: int = 300) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= n else t[:n - 1] + "…"


def _events(studio: Studio, call: Call, sid: str, client: str, wait_s: float) -> Iterator[Event]:
    """The session's events once it has a place to run; a failure to start (a pool, policy or template that cannot
    be used) is an ApiError raised by the first next(), and so is no place freeing within `wait_s` (429)."""
    events = studio.events(f"api-{sid}", call.question, call.alpha, policy=call.policy, pool=call.pool,
                           session_id=sid, client=client, wait_s=wait_s)
    try:
        first = next(events)
        while first.kind == "progress" and first.text_kind == "waiting":  # in line: a client has nothing to show
            first = next(events)
    except StopIteration:
        return
    except Busy as e:
        raise ApiError(429, f"{e}; retry in {RETRY_AFTER_S} s", kind="rate_limit_error", code="queue_timeout",
                       headers={"Retry-After": str(RETRY_AFTER_S)}) from None
    except (PoolError, ValidationError, KeyError, ValueError) as e:
        raise ApiError(400, _short(str(e))) from None
    except Exception as e:  # noqa: BLE001 — a router that cannot even be built
        raise ApiError(502, f"the router could not start: {_short(str(e))}", kind="server_error") from None
    yield first
    yield from events


CLIENT_GONE = "stopped: the API client closed the connection before the answer"
DISCONNECT_POLL_S = 0.25


async def _unless_gone(request: Request, studio: Studio, sid: str, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a worker thread while the client is watched: a client that goes away (its own timeout, a
    retry, a closed script) stops the session — out of the line if it is still waiting, at its next step boundary
    if it runs, stored `stopped` with the reason — so an abandoned request does not keep the router busy."""
    out: list[tuple[bool, Any]] = []

    async def work() -> None:
        try:
            out.append((True, await run_in_threadpool(fn, *args)))
        except Exception as e:  # noqa: BLE001 — raised again below, outside the task group
            out.append((False, e))
        tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(work)
        while True:
            await anyio.sleep(DISCONNECT_POLL_S)
            # keep watching until the stop lands: the session registers its stop flag when it starts
            if await request.is_disconnected() and studio.stop(f"api-{sid}", CLIENT_GONE):
                break  # the task group still waits for the worker, which ends at its next step boundary
    ok, value = out[0]
    if not ok:
        raise value
    return value


def _collect(events: Iterator[Event], first: Event | None, call: Call) -> tuple[SessionResult, str | None]:
    """The session's result, and the worker's failure if it failed after the last step (e.g. the store)."""
    steps: list[Step] = []
    failure = None
    for ev in itertools.chain([first] if first else [], events):
        if ev.kind == "step" and ev.step is not None:
            steps.append(ev.step)
        elif ev.kind == "end" and ev.text:
            failure = ev.text
    return SessionResult.of(steps, call.question, call.alpha), failure


async def _stream(events: Iterator[Event], first: Event | None, call: Call, sid: str) -> AsyncIterator[str]:
    """SSE: a role chunk, each finished step as a `: router-step` comment, the answer's tokens as `: router-draft`
    comments while it is written and as content once it is given, then one error event (if the session failed) or
    the closing chunk with the router object, then [DONE].

    The session's events are read in a worker thread; when the client goes away the iterator is closed there
    (its rollout stops at the next step boundary) without holding up the server's event loop."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": f"chatcmpl-{sid}", "object": "chat.completion.chunk", "created": created, "model": call.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def error(message: str, code: str) -> str:
        err = {"message": message, "type": "server_error", "param": None, "code": code}
        return f"data: {json.dumps({'error': err}, ensure_ascii=False)}\n\n"

    steps: list[Step] = []
    sent, failure = "", None
    ev: Event | None = first
    try:
        yield chunk({"role": "assistant", "content": ""})
        while ev is not None:
            if ev.kind == "step" and ev.step is not None:
                steps.append(ev.step)
                yield f": router-step {json.dumps(compact(ev.step), ensure_ascii=False)}\n\n"
                if ev.step.kind == "answer" and ev.step.text.strip() and not sent:
                    sent = ev.step.text.strip()
                    yield chunk({"content": sent})
            elif ev.kind == "text" and ev.text_kind == "answer":
                # the answer being written may still be sent back for one more hop (a draft): its tokens go out as
                # comments the clients skip; the content is the answer once it is given (the answer step)
                yield f": router-draft {json.dumps({'index': ev.index, 'text': ev.text}, ensure_ascii=False)}\n\n"
            elif ev.kind == "end" and ev.text:
                failure = ev.text
            ev = await run_in_threadpool(next, events, None)
        res = SessionResult.of(steps, call.question, call.alpha)
        if res.status != "done" or failure:
            status = res.status if res.status != "done" else "error"
            yield error(f"the router session ended with status {status}: {_short(res.error or failure)}", status)
        else:
            yield chunk({}, "stop", router=router_object(res, call))
            if call.include_usage:
                body = {"id": f"chatcmpl-{sid}", "object": "chat.completion.chunk", "created": created,
                        "model": call.model, "choices": [], "usage": usage(res)}
                yield f"data: {json.dumps(body)}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(events.close)
