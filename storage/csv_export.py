"""Sessions as spreadsheet rows: the CSV the Explorer's download and `app.py export --format csv` both write.

One row per session (no steps): the list columns, an ISO timestamp beside the epoch seconds, the method in words
and the gold answers joined with " | " (as the question files write aliases), so a run opens in a spreadsheet as is.
"""
from __future__ import annotations

import csv
import datetime as dt
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .queries import SessionFilter
    from .store import TraceStore

CSV_COLUMNS = ["id", "created", "method", "dataset", "item_id", "run_id", "question", "gold", "answer", "em", "f1",
               "failure", "status", "alpha", "cost_usd", "calls", "n_steps", "latency_s", "input_tokens",
               "output_tokens", "router_tokens", "reward", "policy", "pool_name", "format_ok", "created_at"]


def method_words(policy: str) -> str:
    """A stored method label in words: a baseline by its name, a router by its policy."""
    return policy.removeprefix("baseline/") if policy.startswith("baseline/") else f"router ({policy})"


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """One listed session (TraceStore.iter_sessions' columns) as a CSV row of CSV_COLUMNS."""
    when = dt.datetime.fromtimestamp(float(row["created_at"]), dt.timezone.utc).isoformat(timespec="seconds")
    out = {k: row.get(k) for k in CSV_COLUMNS if k in row}
    return {**out, "created": when, "method": method_words(row.get("policy") or ""),
            "gold": " | ".join(row.get("gold") or [])}


def write_csv(store: "TraceStore", out: IO[str], filters: "SessionFilter | None" = None) -> int:
    """Write the matching sessions as CSV (a header, then a row each, oldest first); returns how many rows."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    n = 0
    for row in store.iter_sessions(filters):
        writer.writerow(csv_row(row))
        n += 1
    return n
