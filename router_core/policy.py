"""Router policies (presets in assets/policies.yaml) and the per-run limits they set."""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .choice import DEFAULT_KAPPA
from .paths import POLICIES_FILE as DEFAULT_POLICIES
from .pool import ENGINES, EngineName, _loc


@dataclass(frozen=True)
class RunConfig:
    """Limits of one rollout. Defaults follow the Router-R1 reference where it states one."""

    max_turns: int = 4                # route turns, then one last generation with routing disabled
    min_turns: int = 0                # guided: route at least this often before answering (teaching demos)
    max_new_tokens: int = 1024        # per free generation
    think_tokens: int = 256           # guided: per think block
    think_stops_at_tags: bool = True  # guided: a think block ends where the router starts a tag of its own
                                      # (it would otherwise write a search and an invented reply inside it)
    think_lead_first: str = ""        # guided: words the first think block starts with, continued by the router
                                      # (e.g. "The first fact I need is": it names one fact, not the question)
    think_lead: str = ""              # guided: the same for every later think block
    think_lead_recheck: str = ""      # guided, with check_answer: when an answer is sent back, a think block
                                      # starting with these words comes before the extra sub-question
    whole_question_lead: str = ""     # guided: a first sub-question that restates a question hiding a first fact
                                      # ("the country where …", asked_for.hidden_fact) is not sent; a
                                      # think block starting with these words comes first and it is written again
    restated_lead: str = ""           # guided: the same for a later sub-question that restates such a question
                                      # after some reply was read: a think block starting with these words ("What I
                                      # know so far:") says what the replies found before it is written again
    assumed_lead: str = ""            # guided: a first sub-question that names a thing such a question does not
                                      # ("What is the capital of France?" for "… of the country where the Eiffel Tower
                                      # stands?": the first fact filled in from memory) is not sent either; a think
                                      # block starting with these words comes first and it is written again. In
                                      # these three leads "{fact}" stands for the fact the question hides
    fact_question: str = ""           # guided: a first sub-question that still restates such a question after one
                                      # of those leads ("What is the name of {fact}?"): the rollout sends this
                                      # question for the first fact in its place (flag fact_hop), so the hops show;
                                      # the router's wording is kept in Step.written_query. A fact that is a time
                                      # ("when …") has no such question and is left alone
    choice_answer: bool = False       # guided: a question naming two things to choose between ("…, A or B?",
                                      # asked_for.choices) is answered with one of them, the one the router scores
                                      # higher after <answer>; named by the question, it never goes back as absent
                                      # from the replies
    choice_lead: str = ""             # guided, with choice_answer: once a reply was read, a think block starting
                                      # with these words ("{a}" and "{b}" stand for the two things) comes before
                                      # the answer, so the router sets the two facts side by side
    choice_split_lead: str = ""       # guided, with choice_answer: a first sub-question of a choice question that
                                      # speaks of both things or of neither ("Who was born first, A or B?" asked
                                      # whole) is not sent; a think block starting with these words ("{a}", "{b}")
                                      # comes first and it is written again, so each thing gets its own hop
    choice_hop: bool = False          # guided, with choice_answer: when the router is about to answer a choice
                                      # question whose replies give a fact about each thing, the rollout first asks
                                      # a model (chosen by the router with α) the question with those facts in it
    query_tokens: int = 64            # guided: per sub-question
    check_answer: bool = False        # guided: an answer that no reply contains sends the router back for one
                                      # more sub-question (once per session, while turns remain)
    check_asked_for: bool = False     # guided: an answer taken from the reply to a sub-question that does not ask for
                                      # what the question asks for ("which river …" answered from "What is the capital
                                      # of Hungary?") sends the router back for one more hop, with a think block that
                                      # says so (once per session, shared with check_answer)
    repeat_drops_think: bool = False  # guided: after a repeated sub-question, the answer is written after the last
                                      # reply, without the think block that led to the repeat
    repeat_escalates: bool = False    # guided: a repeated sub-question to a dearer model than every one it went to is
                                      # sent (a second opinion up the price ladder), not dropped
    repeat_climbs: bool = False       # guided: a repeated sub-question that α sends no dearer goes to the next model
                                      # up the price ladder from every one it went to, once per session (flag
                                      # repeat_climbed): asking again says the cheaper reply did not settle it.
                                      # Without it (or at the top of the ladder) the repeat is not sent
    answer_tokens: int = 64           # guided: the answer
    candidate_max_tokens: int = 512   # candidates are asked with temperature 0 and this limit
    candidate_template: str = ""      # the instruction candidates get ("" = assets/templates/candidate.txt)
    reply_max_tokens: int = 600       # replies are cut to this many tokens before insertion
    kappa: float = DEFAULT_KAPPA      # strength of the α cost penalty, in nats at α = 1
    quality: bool = False             # guided: add the per-hop quality estimate to the model choice (the pool's
                                      # labels from `app.py calibrate`, router_core/quality.py); the sub-question is
                                      # then written before the model is chosen, after the router's own pick. Off
                                      # for trained checkpoints, whose name choice was trained to know quality
    prior_weight: float = 1.0         # with quality: weight of the router's log-probability of a name
    quality_weight: float = 0.0       # with quality: weight of the estimate (in nats per unit of probability)
    score_forced_tokens: bool = False  # the router's choices (model name, <search> or <answer>, one of two things)
                                      # score every token of each option; off: only the tokens where an option
                                      # parts from another, as constrained decoding among the options would (the
                                      # rest is certain, and need not be computed: "Qwen2.5-" once, ".5B:" never)

    def merged(self, overrides: dict[str, Any] | None) -> "RunConfig":
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise ValueError(f"unknown run setting(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        return replace(self, **{k: _setting(k, v, getattr(self, k)) for k, v in overrides.items()})


def _setting(name: str, value: Any, default: Any) -> Any:
    """One run setting checked against the type of its default: a bool is true or false (never the text
    "false", which bool() would read as true), a count is a whole number ≥ 0 (token limits ≥ 1)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name}: must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, float)
                                                                          and value.is_integer()):
            raise ValueError(f"{name}: must be a whole number, got {value!r}")
        lo = 1 if name.endswith("tokens") else 0
        if not lo <= int(value) <= 1_000_000:
            raise ValueError(f"{name}: {value} is outside {lo}..1000000")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}: must be a number ≥ 0, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{name}: must be text, got {value!r}")
    return value


def setting_from_text(text: str) -> Any:
    """A run setting's value as typed on a command line ("true", "3", "0.5", or text); RunConfig.merged checks it."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def recorded_settings(cfg: RunConfig) -> dict[str, Any]:
    """What a stored session keeps of its run settings: the interventions on, and every setting off its default
    (so a replay can say which rules shaped it, and an old session stays readable after a default changes)."""
    from .rollout.registry import active

    base = RunConfig()
    return {"interventions": active(cfg),
            "run": {f.name: getattr(cfg, f.name) for f in fields(cfg) if getattr(cfg, f.name) != getattr(base, f.name)}}


class PolicyError(ValueError):
    """A policy file or preset that cannot be used; the message names the file and field."""


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    engine: EngineName
    model: str = Field(min_length=1)
    mode: Literal["guided", "free"] = "guided"
    description: str = ""
    template: str | None = None       # path to a template file; default assets/templates/router_r1.txt
    gguf_file: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    adapter: str | None = None        # a GGUF LoRA adapter (llamacpp) trained on `model` by `app.py train`
    # the rules of the guided rollout this preset turns on, by name, each alone or with its own settings
    # (`- whole_question_lead: {lead: "…"}`); router_core/rollout/registry.py lists them
    interventions: list[str | dict[str, dict[str, Any] | None]] = Field(default_factory=list)
    run: dict[str, Any] = Field(default_factory=dict)

    def run_config(self, overrides: dict[str, Any] | None = None) -> RunConfig:
        return RunConfig().merged(intervention_settings(self.interventions)).merged(self.run).merged(overrides)

    def adapter_path(self) -> str | None:
        """The adapter file, resolved like templates (relative to the project unless absolute)."""
        from .paths import resolve
        return str(resolve(self.adapter)) if self.adapter else None

    def old_keys(self) -> list[str]:
        """Run settings this preset writes under `run:` that now belong to an intervention."""
        from .rollout.registry import OWNED
        return [k for k in self.run if k in OWNED]


def intervention_settings(listed: list[str | dict[str, dict[str, Any] | None]]) -> dict[str, Any]:
    """The run settings a preset's `interventions:` list stands for. ValueError names an unknown intervention or
    setting; listing one twice is refused (its settings would be ambiguous)."""
    from .rollout.registry import BY_NAME

    out: dict[str, Any] = {}
    seen: set[str] = set()
    for i, entry in enumerate(listed):
        if isinstance(entry, str):
            name, given = entry, None
        elif isinstance(entry, dict) and len(entry) == 1:
            name, given = next(iter(entry.items()))
        else:
            raise ValueError(f"interventions[{i}]: write a name, or one name with its settings ({{name: {{...}}}})")
        if name not in BY_NAME:
            raise ValueError(f"interventions[{i}]: no intervention named '{name}'; known: {', '.join(BY_NAME)}")
        if name in seen:
            raise ValueError(f"interventions[{i}]: '{name}' is listed twice")
        if given is not None and not isinstance(given, dict):
            raise ValueError(f"interventions[{i}]: {name}: its settings must be a mapping, got {given!r}")
        seen.add(name)
        out.update(BY_NAME[name].settings_for(given))
    return out


class PolicyBook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: str
    policies: list[Policy] = Field(min_length=1)

    def get(self, name: str | None) -> Policy:
        name = name or self.default
        for p in self.policies:
            if p.name == name:
                return p
        raise PolicyError(f"no policy named '{name}'; known: {', '.join(p.name for p in self.policies)}")


POLICY_ENV = "ROUTER_STUDIO_POLICY"


def load_policies(path: str | Path | None = None) -> PolicyBook:
    p = Path(path) if path else DEFAULT_POLICIES
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise PolicyError(f"{p}: cannot read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise PolicyError(f"{p}: not valid YAML: {e}") from None
    try:
        book = PolicyBook.model_validate(data)
    except ValidationError as e:
        raise PolicyError("\n".join(f"{p}: {_loc(err['loc'])}: {err['msg']}" for err in e.errors())) from None
    for pol in book.policies:
        try:
            RunConfig().merged(intervention_settings(pol.interventions))
        except (ValueError, TypeError) as e:
            raise PolicyError(f"{p}: policy '{pol.name}': {e}") from None
        try:
            pol.run_config()
        except (ValueError, TypeError) as e:
            raise PolicyError(f"{p}: policy '{pol.name}': run: {e}") from None
        if old := pol.old_keys():
            warnings.warn(f"{p}: policy '{pol.name}': run: {', '.join(old)} now belong to interventions; list them "
                          "under `interventions:` (the old keys work until the next release)", FutureWarning,
                          stacklevel=2)
    try:
        book.get(book.default)
    except PolicyError as e:
        raise PolicyError(f"{p}: default: {e}") from None
    env = os.environ.get(POLICY_ENV, "").strip()
    if env:  # the preset used when none is named: $ROUTER_STUDIO_POLICY overrides the file's default
        if env not in {p.name for p in book.policies}:
            raise PolicyError(f"${POLICY_ENV}: no policy named '{env}'; known: "
                              f"{', '.join(p.name for p in book.policies)}")
        book = book.model_copy(update={"default": env})
    return book


def customise(policy: Policy, *, model: str | None = None, engine: str | None = None,
              mode: str | None = None, template: str | None = None) -> Policy:
    """A preset pointed at another checkpoint / engine / template (e.g. a local download)."""
    if engine is not None and engine not in ENGINES:
        raise PolicyError(f"--policy-engine: unknown engine '{engine}' (known: {', '.join(ENGINES)})")
    upd = {k: v for k, v in dict(model=model, engine=engine, mode=mode, template=template).items() if v}
    return policy.model_copy(update=upd) if upd else policy
