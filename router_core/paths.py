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
