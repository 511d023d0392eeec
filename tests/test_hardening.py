"""What a hostile visitor or a careless user could do, checked: each finding of the review has a test.

1 the Models tab as a remote control (server-side and end to end through the launched app),
2 `export --out` replacing what is there, 5 keys in URLs, bad `--db` values, the Explorer's inputs,
a read-only store, web export files, and the warning when serving beyond this machine without a login.
Import/export findings (3, 4) are in test_import_hardening.py; CLI inputs in test_cli_options.py.
"""
from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from support.fake_engine import FakeEngine, fake_pool, fake_provider, guided_script, routes_then_answers
from support.servers import served_studio
from support.ui_fixtures import write_session

from router_core.policy import Policy, PolicyBook
from router_core.pool import PoolError, load_pool, pool_from_dict
from storage import StoreError, TraceStore
from storage.files import FileWriteError, write_new_file
from ui.studio import Studio

ROOT = Path(__file__).resolve().parent.parent
GUIDED = Policy(name="fake-guided", engine="llamacpp", model="fake:policy", mode="guided")


@pytest.fixture()
def store(tmp_path):
    s = TraceStore(str(tmp_path / "h.sqlite"))
    yield s
    s.close()


def studio_for(store, **kw) -> Studio:
    pool = fake_pool()
    policy = FakeEngine(guided_script(["t"], ["q"], "a"), scores=routes_then_answers(1, {"Big": -0.1}))
    return Studio(store=store, policies=PolicyBook(default="fake-guided", policies=[GUIDED]),
                  pools={pool.name: pool}, default_pool=pool.name, engines=fake_provider(policy), **kw)


HOSTILE = {"name": "Exfil", "engine": "openai", "model": "m", "params_b": 1, "price_in": 0, "price_out": 0,
           "description": "sends the server's HOME to an attacker", "base_url": "http://evil.example:9/v1",
           "api_key_env": "HOME"}


# ---------------------------------------------------------------------- 1. model edits

def test_edits_are_off_by_default_and_a_forged_edit_is_refused_on_use(store):
    st = studio_for(store)
    with pytest.raises(PoolError, match="model edits are off"):
        st.edit_model([], "fake-three", HOSTILE)
    forged = [{"pool": "fake-three", "action": "put", "spec": HOSTILE}]  # as if a visitor sent it anyway
    with pytest.raises(PoolError, match="model edits are off"):
        st.router(None, None, forged)
    assert st.pool(None).names == ["Tiny", "Mid", "Big"]


def test_allowed_edits_are_per_visitor_and_limited_to_allowed_keys_and_endpoints(store, monkeypatch):
    st = studio_for(store, allow_model_edits=True, allow_key_envs=("NIM_KEY",),
                    allow_endpoints=("http://127.0.0.1:8000/v1",))
    with pytest.raises(PoolError, match="api_key_env: 'HOME' is not one of the key variables this server allows"):
        st.edit_model([], "fake-three", {**HOSTILE, "base_url": "http://127.0.0.1:8000/v1"})
    with pytest.raises(PoolError, match="base_url: http://evil.example:9/v1 is not under an endpoint"):
        st.edit_model([], "fake-three", {**HOSTILE, "api_key_env": "NIM_KEY"})
    for sneaky in ("http://127.0.0.1:8000/v1evil", "http://127.0.0.1:80/v1", "https://127.0.0.1:8000/v1"):
        with pytest.raises(PoolError, match="base_url"):
            st.edit_model([], "fake-three", {**HOSTILE, "api_key_env": "NIM_KEY", "base_url": sneaky})
    with pytest.raises(PoolError, match="model: a visitor may load only shipped models"):
        st.edit_model([], "fake-three", {**HOSTILE, "engine": "llamacpp", "model": "/etc/passwd",
                                         "base_url": None, "api_key_env": None})
    ok = {**HOSTILE, "name": "Remote-8B", "api_key_env": "NIM_KEY", "base_url": "http://127.0.0.1:8000/v1/chat"}
    mine, spec = st.edit_model([], "fake-three", ok)
    assert spec.name == "Remote-8B" and st.apply_edits("fake-three", mine).names[-1] == "Remote-8B"
    assert st.pool("fake-three").names == ["Tiny", "Mid", "Big"]     # the server's pool is unchanged
    assert "Remote-8B" not in st.router(None, None, []).pool.names   # another visitor's runs
    assert "Remote-8B" in st.router(None, None, mine).pool.names     # this visitor's runs
    mine = st.remove_model(mine, "fake-three", "Tiny")
    assert st.apply_edits("fake-three", mine).names == ["Mid", "Big", "Remote-8B"]


def test_serving_with_edits_needs_auth_and_allow_lists_need_edits():
    from ui.cli import main
    assert main(["serve", "--allow-model-edits", "--db", "/tmp/x-never-created.sqlite"]) == 2
    assert main(["serve", "--allow-key-env", "HOME", "--db", "/tmp/x-never-created.sqlite"]) == 2
    assert not Path("/tmp/x-never-created.sqlite").exists()


@pytest.mark.parametrize("allow", [False, True])
def test_a_visitor_of_the_launched_app_cannot_change_a_model_unless_allowed(store, allow):
    """End to end through Gradio's HTTP API, as any visitor could call it."""
    from gradio_client import Client

    st = studio_for(store, allow_model_edits=allow, allow_key_envs=("NIM_KEY",) if allow else ())
    with served_studio(st, auth=[("ann", "pw")] if allow else None) as url:
        client = Client(url, verbose=False, auth=("ann", "pw") if allow else None)
        endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        if not allow:
            assert "/save_model" not in endpoints  # there is nothing to call
            with pytest.raises(Exception):
                client.predict("fake-three", *HOSTILE.values(), api_name="/save_model")
        else:
            args = ["fake-three", HOSTILE["name"], "openai", "m", 1, 0, 0, "d", "http://evil.example:9/v1", "HOME"]
            out = client.predict(*args, api_name="/save_model")
            assert "HOME" in out[0] and "not one of the key variables" in out[0]
        # a run afterwards routes over the server's own pool
        job = client.submit("What is X?", "", "fake-guided", "fake-three", 0.0, api_name="/run")
        job.result(timeout=60)
        sess = store.list_sessions().rows
        assert len(sess) == 1
        snap = store.get_session(sess["id"][0])["pool"]
        assert [m["name"] for m in snap["models"]] == ["Tiny", "Mid", "Big"]
        assert all(m.get("api_key_env") is None for m in snap["models"])


def test_serving_beyond_loopback_without_auth_warns_in_the_page(store):
    from ui.app import EXPOSED_WARNING, build, is_loopback
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    st = studio_for(store, exposed_without_auth=True)
    demo = build(st)
    htmls = [b.value for b in demo.blocks.values() if type(b).__name__ == "HTML" and b.value]
    assert any("rs-exposed" in h and EXPOSED_WARNING[:40] in h for h in htmls)
    assert not any("rs-exposed" in (b.value or "") for b in build(studio_for(store)).blocks.values()
                   if type(b).__name__ == "HTML")


# ---------------------------------------------------------------------- 2. files the app writes

def _special_targets(tmp: Path) -> dict[str, Path]:
    link_target = tmp / "victim.txt"
    link_target.write_text("keep me")
    (tmp / "link.jsonl").symlink_to(link_target)
    os.mkfifo(tmp / "fifo.jsonl")
    (tmp / "adir").mkdir()
    return {"a symbolic link": tmp / "link.jsonl", "a FIFO": tmp / "fifo.jsonl", "a folder": tmp / "adir",
            "a device": Path("/dev/null")}


def test_write_new_file_refuses_anything_but_a_regular_file(tmp_path):
    for kind, target in _special_targets(tmp_path).items():
        with pytest.raises(FileWriteError, match=f"is {kind}; refusing to replace it"):
            write_new_file(target, lambda f: f.write("x"))
    assert (tmp_path / "victim.txt").read_text() == "keep me" and (tmp_path / "link.jsonl").is_symlink()
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo.jsonl").st_mode)
    with pytest.raises(FileWriteError, match="folder .*nope does not exist"):
        write_new_file(tmp_path / "nope" / "x.jsonl", lambda f: f.write("x"))
    with pytest.raises(FileWriteError, match="output path is empty"):
        write_new_file("", lambda f: f.write("x"))
    # a failure midway leaves nothing: not the target, not a temporary file
    with pytest.raises(RuntimeError):
        write_new_file(tmp_path / "half.jsonl", lambda f: (f.write("partial"), (_ for _ in ()).throw(RuntimeError())))
    assert not (tmp_path / "half.jsonl").exists() and not list(tmp_path.glob(".half*"))
    n, p = write_new_file(tmp_path / "ok.jsonl", lambda f: f.write("line\n"))
    assert p.read_text() == "line\n" and stat.S_IMODE(p.stat().st_mode) == 0o644


@pytest.mark.parametrize("where", ["/dev/full", "{tmp}/link.jsonl", "{tmp}/fifo.jsonl", "{tmp}/adir", "{tmp}/no/x", ""])
def test_export_out_gives_one_line_and_replaces_nothing(tmp_path, where, capsys):
    from ui.cli import main
    _special_targets(tmp_path)
    db = tmp_path / "s.sqlite"
    with TraceStore(str(db)) as s:
        write_session(s, "Q?")
    target = where.format(tmp=tmp_path)
    before = os.lstat(target) if target and os.path.lexists(target) else None
    code = main(["export", "--db", str(db), "--out", target])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    if before is not None:
        after = os.lstat(target)
        assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_web_export_files_are_swept(store, tmp_path, monkeypatch):
    import ui.explorer as ex
    monkeypatch.setattr(ex, "EXPORT_DIR", tmp_path / "exports")
    write_session(store, "Q?")
    old = Path(ex.export_file(store, ex.make_filter(), "jsonl"))
    assert old.exists() and old.read_text().count("\n") == 1
    os.utime(old, (time.time() - ex.EXPORT_KEEP_S - 5,) * 2)
    new = Path(ex.export_file(store, ex.make_filter(), "csv"))
    assert new.exists() and not old.exists()
    assert ex.clean_exports(0) == 1 and not new.exists()


# ---------------------------------------------------------------------- 5. keys in URLs, database URLs, inputs

@pytest.mark.parametrize("url,needle", [
    ("http://user:sk-secret@host/v1", "user:password@ in the URL"),
    ("http://host/v1?api_key=sk-secret", "query parameter 'api_key'"),
    ("https://host/v1?token=abc&x=1", "query parameter 'token'"),
])
def test_keys_in_urls_are_refused_at_pool_load_and_never_echoed(url, needle, tmp_path):
    data = {"name": "p", "models": [{"name": "A", "engine": "openai", "model": "m", "params_b": 1, "price_in": 0,
                                      "price_out": 0, "description": "d", "base_url": url}]}
    with pytest.raises(PoolError) as e:
        pool_from_dict(data, "p.yaml")
    assert needle in str(e.value) and "sk-secret" not in str(e.value) and "abc" not in str(e.value)


def test_database_urls_and_passwords_in_messages(tmp_path):
    with pytest.raises(StoreError, match="cannot use this database URL") as e:
        TraceStore("mysql://admin:hunter2@db.example/traces")
    assert "hunter2" not in str(e.value) and "***" in str(e.value)
    with pytest.raises(StoreError, match="names no database file"):
        TraceStore("sqlite://")
    with pytest.raises(StoreError, match="is not a database file path"):
        TraceStore(":")
    assert not Path(":").exists()


def test_explorer_inputs_become_messages(store):
    from ui.explorer import make_filter, page_number
    with pytest.raises(ValueError, match="text: contains a NUL character"):
        make_filter(text="a\x00b")
    for bad in (10 ** 18, -1, 0, 2.5, float("inf"), "x"):
        with pytest.raises(ValueError, match="page"):
            page_number(bad)
    assert page_number(None) == 0 and page_number(3) == 2
    with pytest.raises(ValueError, match="must be a finite number"):
        make_filter(cost_max=float("inf"))


def test_a_read_only_store_opens_for_reading(tmp_path, capsys):
    d = tmp_path / "ro"
    d.mkdir()
    db = d / "t.sqlite"
    with TraceStore(str(db)) as s:
        sid = write_session(s, "Who wrote Dune?", gold=["Frank Herbert"])
    chattr = subprocess.run(["chattr", "+i", str(db)], capture_output=True, text=True) if os.geteuid() == 0 else None
    if chattr is not None and chattr.returncode != 0:
        pytest.skip(f"chattr +i is not supported here ({chattr.stderr.strip()})")
    if chattr is None:
        db.chmod(0o444)
        d.chmod(0o555)
    try:
        with TraceStore(str(db)) as s:
            assert s.read_only and s.list_sessions().ids == [sid] and len(s.load_steps(sid)) == 6
            with pytest.raises(StoreError, match="read-only") as e:
                s.annotate(sid, "other", "x")
            assert str(db) in str(e.value)
        from ui.cli import main
        assert main(["sessions", "--db", str(db)]) == 0
        assert "Who wrote Dune?" in capsys.readouterr().out
    finally:
        if chattr is not None:
            subprocess.run(["chattr", "-i", str(db)], check=False)
        d.chmod(0o755)
        db.chmod(0o644)


def test_the_shipped_pools_carry_no_keys():
    for p in (ROOT / "assets" / "pools").glob("*.yaml"):
        pool = load_pool(p)
        assert all(m.base_url is None or "@" not in m.base_url for m in pool.models)
