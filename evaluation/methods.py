"""What answered an eval item: the router policy, or one of the single-round baselines.

A method is stored as the session's `policy` label (`prompted-qwen2.5-0.5b`, `baseline/only:SmolLM2-135M`,
`baseline/knn@25%`, …) so that the Explorer can filter on it; `Method` is the typed form the runner
plans with and the report groups by, and `Method.parse` is the only place that reads a label.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BASELINE_PREFIX = "baseline/"
BASELINES = ("only", "largest", "cheapest", "random", "knn")
KNN_FAMILY = "kNN router (RouteLLM-style)"

Kind = Literal["router", "only", "largest", "cheapest", "random", "knn"]


@dataclass(frozen=True)
class Method:
    kind: Kind
    policy: str | None = None    # router: the policy name
    model: str | None = None     # only: the candidate asked
    share: int | None = None     # knn: the target share (%) of calls sent to the strong model

    @classmethod
    def router(cls, policy: str) -> "Method":
        return cls("router", policy=policy)

    @classmethod
    def only(cls, model: str) -> "Method":
        return cls("only", model=model)

    @classmethod
    def knn(cls, share: int) -> "Method":
        return cls("knn", share=share)

    @property
    def is_baseline(self) -> bool:
        return self.kind != "router"

    @property
    def single_round_source(self) -> bool:
        """Baselines stored as a real call (`only`); the others reuse one of those calls."""
        return self.kind == "only"

    @property
    def label(self) -> str:
        if self.kind == "router":
            return self.policy or "router"
        if self.kind == "only":
            return f"{BASELINE_PREFIX}only:{self.model}"
        if self.kind == "knn":
            return f"{BASELINE_PREFIX}knn@{self.share}%"
        return f"{BASELINE_PREFIX}{self.kind}"

    @property
    def family(self) -> str:
        """Methods that form one curve: the router over α, the kNN router over its threshold."""
        if self.kind == "knn":
            return KNN_FAMILY
        return self.label.removeprefix(BASELINE_PREFIX)

    @property
    def is_curve(self) -> bool:
        return self.kind in ("router", "knn")

    @classmethod
    def parse(cls, label: str) -> "Method":
        """A stored label back into a Method; anything not a baseline label is a router policy."""
        if not label.startswith(BASELINE_PREFIX):
            return cls.router(label)
        name = label[len(BASELINE_PREFIX):]
        if name.startswith("only:"):
            return cls.only(name[5:])
        if name.startswith("knn@") and name.endswith("%"):
            try:
                return cls.knn(int(name[4:-1]))
            except ValueError:
                pass
        if name in ("largest", "cheapest", "random"):
            return cls(name)  # type: ignore[arg-type]
        return cls.router(label)  # an unknown baseline label: shown under its own name


def family(label: str) -> str:
    return Method.parse(label).family
