"""Model pools: YAML files describing the candidate LLMs a router may call.

Validation errors name the file and the field (`local.yaml: models[1].price_out: ...`),
and a key written into a pool file is refused: keys come from environment variables
whose *names* the pool holds, so a pool snapshot can be stored and exported safely.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .paths import DEFAULT_POOL_FILE as DEFAULT_POOL

ENGINES = ("llamacpp", "transformers", "vllm", "openai")
EngineName = Literal["llamacpp", "transformers", "vllm", "openai"]
_SECRET_KEYS = {"api_key", "key", "token", "secret", "password", "authorization"}
_SECRET_PARAMS = {"api_key", "apikey", "key", "token", "access_token", "secret", "password", "auth", "sig",
                  "signature", "x_api_key"}


class PoolError(ValueError):
    """A pool file that cannot be used; the message names the file and field."""


class ModelSpec(BaseModel):
    """One candidate model as the router and the engines see it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=80)
    engine: EngineName
    model: str = Field(min_length=1)   # Hub id, local path, shipped:<id>, or endpoint model id
    params_b: float = Field(gt=0)       # parameter count in billions
    price_in: float = Field(ge=0)       # $ per 1M input tokens
    price_out: float = Field(ge=0)      # $ per 1M output tokens
    description: str = Field(min_length=1)  # what the router's prompt says of it (tuned text: see `measured`)
    # what measurements here say of it, for people (the Models tab, the docs); not in the router's prompt, where
    # two measured wordings made the prompted default send a third of its α-0 calls to the cheapest model
    # (docs/results/trained_router.md). An edited model has none: it was not measured.
    measured: str | None = Field(default=None, max_length=600)
    base_url: str | None = None         # openai engine only
    api_key_env: str | None = None      # NAME of the environment variable holding the key
    api: Literal["chat", "completions"] = "chat"
    gguf_file: str | None = None        # transformers engine: a GGUF file inside `model`
    source: str | None = None           # where the weights come from (informational)
    timeout_s: float = Field(default=60.0, gt=0)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if v != v.strip() or ":" in v or "<" in v or ">" in v or "\n" in v:
            raise ValueError("must not contain ':', '<', '>' or newlines, nor start/end with spaces "
                             "(the router writes it as `<search> Name: question </search>`)")
        return v

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not v.replace("_", "").isalnum():
            raise ValueError("must be the NAME of an environment variable (letters, digits, _), not a key")
        return v

    @field_validator("base_url")
    @classmethod
    def _url_ok(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:8000/v1")
        cred = url_credentials(v)
        if cred:
            raise ValueError(f"must not carry a key ({cred}); put the key in an environment variable "
                             "and name it in api_key_env")
        return v

    @model_validator(mode="after")
    def _engine_fields(self) -> "ModelSpec":
        if self.engine == "openai" and not self.base_url:
            raise ValueError("base_url is required for engine 'openai'")
        if self.engine != "openai" and (self.base_url or self.api_key_env):
            raise ValueError(f"base_url/api_key_env only apply to engine 'openai', not '{self.engine}'")
        return self

    def api_key(self) -> str | None:
        """Read the key from the environment at call time; it is never kept on the spec."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def call_cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.price_in + output_tokens * self.price_out) / 1e6


class Pool(BaseModel):
    """A named, ordered set of candidate models with unique names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    pricing_note: str = ""
    models: list[ModelSpec] = Field(min_length=1)
    path: str = "<inline>"

    @model_validator(mode="after")
    def _unique(self) -> "Pool":
        seen: set[str] = set()
        for m in self.models:
            key = m.name.casefold()
            if key in seen:
                raise ValueError(f"model name '{m.name}' appears twice (names are matched case-insensitively)")
            seen.add(key)
        return self

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def get(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"pool '{self.name}' has no model '{name}'; it has: {', '.join(self.names)}")

    def norm_costs(self) -> dict[str, float]:
        """ĉ in [0, 1]: the output price scaled between the pool's cheapest (0) and dearest (1)."""
        prices = [m.price_out for m in self.models]
        lo, hi = min(prices), max(prices)
        span = hi - lo
        return {m.name: (0.0 if span <= 0 else (m.price_out - lo) / span) for m in self.models}

    def rung_above(self, names: list[str]) -> ModelSpec | None:
        """The cheapest model dearer (by output price) than every one of `names`; None at the top of the ladder."""
        top = max((self.get(n).price_out for n in names), default=-1.0)
        dearer = [m for m in self.models if m.price_out > top]
        return min(dearer, key=lambda m: m.price_out) if dearer else None

    def dearest(self) -> ModelSpec:
        """The model with the highest output price (the first of equals): the pool's own word for strongest."""
        return max(self.models, key=lambda m: m.price_out)  # max returns the first of equals

    def with_model(self, spec: ModelSpec) -> "Pool":
        """A copy with `spec` added, or replacing the model of the same name."""
        models = [m for m in self.models if m.name.casefold() != spec.name.casefold()] + [spec]
        return Pool(name=self.name, description=self.description, pricing_note=self.pricing_note,
                    models=models, path=self.path)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy with no secrets (only env-var names), for storage and export."""
        return self.model_dump(mode="json")


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def url_credentials(url: str) -> str | None:
    """What in a URL looks like a credential (a password, or a key/token query parameter), or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.username or parts.password:
        return "user:password@ in the URL"
    for k, _v in parse_qsl(parts.query, keep_blank_values=True):
        if k.lower().replace("-", "_") in _SECRET_PARAMS:
            return f"query parameter '{k}'"
    return None


def find_secrets(obj: Any, where: str = "") -> str | None:
    """Where in a pool (or its snapshot) a key is written: a key-like field or a URL with credentials."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if str(k).lower() in _SECRET_KEYS:
                return f"{where}.{k}".lstrip(".")
            hit = find_secrets(v, f"{where}.{k}")
            if hit:
                return hit
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            hit = find_secrets(v, f"{where}[{i}]")
            if hit:
                return hit
    elif isinstance(obj, str) and "://" in obj and url_credentials(obj):
        return f"{where.lstrip('.')} ({url_credentials(obj)})"
    return None


def pool_from_dict(data: Any, path: str = "<inline>") -> Pool:
    if not isinstance(data, dict):
        raise PoolError(f"{path}: expected a mapping with 'name' and 'models', got {type(data).__name__}")
    secret = find_secrets(data)
    if secret:
        raise PoolError(f"{path}: {secret}: keys must not be written in a pool file; "
                        "put the key in an environment variable and name it in api_key_env")
    data = {**data, "path": path}
    try:
        pool = Pool.model_validate(data)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            msg = err["msg"].removeprefix("Value error, ")
            msgs.append(f"{path}: {_loc(err['loc'])}: {msg}")
        raise PoolError("\n".join(msgs)) from None
    for m in pool.models:
        if not all(math.isfinite(x) for x in (m.price_in, m.price_out, m.params_b)):
            raise PoolError(f"{path}: model '{m.name}': prices and params_b must be finite numbers")
    return pool


def load_pool(path: str | Path | None = None) -> Pool:
    """Load and validate a pool YAML file (default: the embedded local pool)."""
    p = Path(path) if path else DEFAULT_POOL
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise PoolError(f"{p}: cannot read pool file ({e.strerror or e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PoolError(f"{p}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    return pool_from_dict(data, str(p))
