"""Record the example sessions a presenter can load before any model has loaded (assets/examples/).

Runs real sessions on the embedded default (the shipped models, CPU) into a temporary store and
writes them as JSON lines, headed by a line that names this script and the command that made the
file. `python app.py` offers them under "Load example sessions" (imported idempotently).
Usage: .venv/bin/python scripts/record_examples.py [--out assets/examples/sessions.jsonl]
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from router_core.loop import Router
from router_core.policy import load_policies
from router_core.pool import load_pool
from storage import TraceStore
from storage.files import write_new_file
from storage.jsonl import HEADER_FORMAT
from storage.recorder import recorded

ROOT = Path(__file__).resolve().parent.parent
# (question, gold answers, α values): two-hop questions from the dev (tuning) set, never from the
# evaluation sets, and one single-hop control; one question is swept over α.
EXAMPLES = [
    ("Which country is the birthplace of the director of the film Interstellar?",
     ["United Kingdom", "England", "UK"], (0.0, 0.5, 1.0)),
    ("What is the capital of the country where the Colosseum stands?", ["Rome"], (0.0,)),
    ("Who wrote the novel that the film \"The Godfather\" is based on?", ["Mario Puzo", "Puzo"], (0.0,)),
    ("What language is mainly spoken in the country whose capital is Buenos Aires?", ["Spanish"], (0.0,)),
    ("Who directed the film \"Jurassic Park\"?", ["Steven Spielberg", "Spielberg"], (0.0,)),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "assets" / "examples" / "sessions.jsonl"))
    ap.add_argument("--policy", default=None)
    args = ap.parse_args()
    pol, pool = load_policies().get(args.policy), load_pool()
    snapshot = pool.snapshot()
    if Path(snapshot["path"]).resolve().is_relative_to(ROOT):  # the file ships: no path of this machine in it
        snapshot["path"] = Path(snapshot["path"]).resolve().relative_to(ROOT).as_posix()
    router = Router(pol, pool, config=pol.run_config())
    db = Path(tempfile.mkdtemp(prefix="examples-")) / "examples.sqlite"
    n = 0
    with TraceStore(str(db)) as store:
        for question, gold, alphas in EXAMPLES:
            for a in alphas:
                sid = f"example-{n:02d}"
                t0 = time.perf_counter()
                steps = list(recorded(store, router.run(question, a, session_id=sid), session_id=sid,
                                      question=question, alpha=a, policy=pol.name, engine=pol.engine,
                                      pool=snapshot, gold=gold, dataset="examples"))
                answer = next((s.text for s in reversed(steps) if s.kind == "answer"), None)
                print(f"{sid}: α {a:g} · {len(steps)} steps · {time.perf_counter() - t0:.0f} s · {answer}",
                      flush=True)
                n += 1
        buf = io.StringIO()
        store.export_jsonl(buf)
    header = {"format": HEADER_FORMAT, "made_by": "scripts/record_examples.py",
              "command": " ".join(["python", *sys.argv]), "policy": pol.name, "pool": pool.name,
              "recorded": time.strftime("%Y-%m-%d"), "sessions": n,
              "note": "real sessions of the embedded default on CPU; load them from the app's Explorer"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_new_file(out, lambda f: f.write(json.dumps(header) + "\n" + buf.getvalue()))
    print(f"wrote {n} sessions to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
