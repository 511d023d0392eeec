"""Where the shipped assets live: templates, pools, policies, question sets, CSS.

One module owns these paths so that no other module computes them from its own location.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
TEMPLATES = ASSETS / "templates"
POOLS = ASSETS / "pools"
QUESTIONS = ASSETS / "questions"
POLICIES_FILE = ASSETS / "policies.yaml"
DEFAULT_POOL_FILE = POOLS / "local.yaml"
ROUTER_TEMPLATE = TEMPLATES / "router_r1.txt"
CANDIDATE_TEMPLATE = TEMPLATES / "candidate.txt"
DIRECT_TEMPLATE = TEMPLATES / "direct.txt"
CSS_FILE = ASSETS / "studio.css"
JS_FILE = ASSETS / "studio.js"
EXAMPLES_FILE = ASSETS / "examples" / "sessions.jsonl"
CALIBRATION_DIR = ASSETS / "calibration"  # per-pool quality labels (app.py calibrate)


def resolve(path: str | Path) -> Path:
    """A file named in a policy or on the command line: as given, or relative to the project root when it is
    not found from the working directory (so `template: assets/templates/x.txt` works from anywhere)."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return ROOT / p if (ROOT / p).exists() else p
