import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Sessions stored by tests (and by app.py subprocesses they start) never touch the user's store.
_TEST_DB_DIR = Path(os.environ.get("PYTEST_TMPDIR", "/tmp")) / f"router-studio-tests-{os.getpid()}"
_TEST_DB_DIR.mkdir(parents=True, exist_ok=True)
os.environ["ROUTER_STUDIO_DB"] = str(_TEST_DB_DIR / "traces.sqlite")
# Prefix states (the router's instructions kept per machine) would make the first session of a test depend on what
# an earlier test or run left behind: off, except in tests/test_prefix_state.py, which gives each test its own folder.
os.environ["ROUTER_STUDIO_PREFIX_STATES"] = "off"
# Sessions on real models run the fast preset (the 0.5B router), here and in the app.py subprocesses tests
# start: they test the product's mechanics, and the 1.5B default takes ~30 s a question on 2 cores. The
# default preset itself is run by tests/test_loop.py::test_the_default_router_decomposes_a_two_hop_question.
FAST_POLICY = "prompted-qwen2.5-0.5b"
os.environ["ROUTER_STUDIO_POLICY"] = FAST_POLICY

from router_core.engines import EngineSpec, get_engine  # noqa: E402

QWEN = EngineSpec(engine="llamacpp", model="shipped:qwen2.5-coder-0.5b-instruct")
SMOL = EngineSpec(engine="llamacpp", model="shipped:smollm2-135m-instruct")
# Fixtures that load a real shipped model: a test that uses one is marked `model` automatically.
MODEL_FIXTURES = {"qwen", "smol", "router", "hf", "embedder", "server", "scored"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


@pytest.fixture(scope="session")
def qwen():
    return get_engine(QWEN)


@pytest.fixture(scope="session")
def smol():
    return get_engine(SMOL)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for one browser-test module (tests/support/browser.py; skipped there when missing)."""
    from support.browser import chromium
    yield from chromium()
