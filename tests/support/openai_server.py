"""A small OpenAI-compatible server for tests: serves a real local engine and injects faults.

Faults are queued per request (`server.faults.append("500")`): 500, 429, timeout,
malformed, stall (a stream that sends one event then goes silent), drop (closes the
connection). Every sleep is bounded so a test cannot hang.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from router_core.engines.base import Engine

SLEEP_S = 3.0


class _Handler(BaseHTTPRequestHandler):
    server: "OpenAITestServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _json(self, code: int, obj, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        n = int(self.headers.get("Content-Length") or 0)
        req = json.loads(self.rfile.read(n) or b"{}")
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": req})
        fault = self.server.faults.popleft() if self.server.faults else None
        if fault == "500":
            return self._json(500, {"error": {"message": "injected server error"}})
        if fault == "429":
            return self._json(429, {"error": {"message": "injected rate limit"}}, {"Retry-After": "0.1"})
        if fault == "timeout":
            time.sleep(SLEEP_S)
            return self._json(500, {"error": {"message": "too late"}})
        if fault == "malformed":
            body = b'{"choices": [ this is not json'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if fault == "stall":  # one event, then silence; no model call, so only the fault decides the timing
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': 'The'}}]})}\n\n".encode())
            self.wfile.flush()
            time.sleep(SLEEP_S)
            return
        if fault == "drop":
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        engine = self.server.engine
        if self.path == "/tokenize" and "prompt" in req:  # as vLLM's server: text to ids, no BOS
            if not self.server.forced_tokens:
                return self._json(404, {"error": {"message": "not found"}})
            toks = engine.tokens(req["prompt"])
            bos = engine.tokens("")
            return self._json(200, {"tokens": toks[len(bos):], "count": len(toks) - len(bos), "max_model_len": 4096})
        if self.path == "/tokenize":  # as vLLM's server: the chat template applied, as token ids
            prompt = engine.chat_prompt(req["messages"])
            toks = engine.tokens(prompt)
            self.server.rendered[tuple(toks)] = prompt
            return self._json(200, {"tokens": toks, "count": len(toks), "max_model_len": 4096})
        if isinstance(req.get("prompt"), list) and req.get("allowed_token_ids"):  # a forced token, as vLLM
            (token,) = req["allowed_token_ids"]
            lp = engine.next_token_logprob(req["prompt"], token)
            return self._json(200, {"choices": [{"index": 0, "text": "", "finish_reason": "length", "logprobs": {
                "tokens": [f"token_id:{token}"], "token_logprobs": [lp], "text_offset": [0]}}]})
        if self.path == "/detokenize":
            return self._json(200, {"prompt": self.server.rendered.get(tuple(req["tokens"]), "")})
        chat = self.path.endswith("/chat/completions")
        max_tokens = int(req.get("max_tokens") or 64)
        stop = req.get("stop") or []
        if not chat and req.get("echo"):
            return self._json(200, self._echo_logprobs(req["prompt"]))
        if chat:
            c = engine.chat(req["messages"], max_tokens=max_tokens, stop=stop)
        else:
            c = engine.generate(req["prompt"], max_tokens=max_tokens, stop=stop)
        usage = {"prompt_tokens": c.input_tokens, "completion_tokens": c.output_tokens,
                 "total_tokens": c.input_tokens + c.output_tokens}
        if not req.get("stream"):
            choice = ({"index": 0, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason}
                      if chat else {"index": 0, "text": c.text, "finish_reason": c.finish_reason})
            return self._json(200, {"id": "t", "object": "chat.completion" if chat else "text_completion",
                                    "model": req.get("model"), "choices": [choice], "usage": usage})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        words = c.text.split(" ")
        for i, w in enumerate(words):
            piece = w if i == 0 else " " + w
            delta = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
            self.wfile.write(f"data: {json.dumps({'choices': [delta]})}\n\n".encode())
            self.wfile.flush()
        end = {"index": 0, "delta": {}, "finish_reason": c.finish_reason} if chat else \
            {"index": 0, "text": "", "finish_reason": c.finish_reason}
        self.wfile.write(f"data: {json.dumps({'choices': [end]})}\n\n".encode())
        self.wfile.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _echo_logprobs(self, prompt: str) -> dict:
        """Prompt log-probabilities the way vLLM reports them (token_logprobs + text_offset)."""
        pieces, lps = self.server.engine.prompt_logprobs(prompt)
        offsets, pos = [], 0
        for p in pieces:
            offsets.append(pos)
            pos += len(p)
        return {"choices": [{"index": 0, "text": prompt, "finish_reason": "length",
                             "logprobs": {"tokens": pieces, "token_logprobs": lps, "text_offset": offsets}}]}


class OpenAITestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, engine: Engine) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.engine = engine
        self.faults: deque[str] = deque()
        self.requests: list[dict] = []
        self.rendered: dict[tuple, str] = {}  # /tokenize results, so /detokenize gives the same text back
        self.forced_tokens = True  # vLLM's text /tokenize and allowed_token_ids; False: a server with neither
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> "OpenAITestServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
