import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Sessions stored by tests (and by app.py subprocesses they start) never touch the user's store.
_TEST_DB_DIR = Path(os.environ.get("PYTEST_TMPDIR", "/tmp")) / f"router-studio-tests-{os.getpid()}"
_TEST_DB_DIR.mkdir(parents=True, exist_ok=True)
os.environ["ROUTER_STUDIO_DB"] = str(_TEST_DB_DIR / "traces.sqlite")

from router_core.engines import EngineSpec, get_engine  # noqa: E402

QWEN = EngineSpec(engine="llamacpp", model="shipped:qwen2.5-coder-0.5b-instruct")
SMOL = EngineSpec(engine="llamacpp", model="shipped:smollm2-135m-instruct")


@pytest.fixture(scope="session")
def qwen():
    return get_engine(QWEN)


@pytest.fixture(scope="session")
def smol():
    return get_engine(SMOL)
