"""Policy presets: the shipped file, its errors, and the default a deployment (or the test suite) picks."""
from __future__ import annotations

from dataclasses import asdict

import pytest

from router_core.policy import POLICY_ENV, PolicyError, RunConfig, load_policies, setting_from_text
from router_core.protocol import Template


def test_shipped_presets_load_with_their_templates(monkeypatch):
    monkeypatch.delenv(POLICY_ENV, raising=False)
    book = load_policies()
    names = [p.name for p in book.policies]
    assert book.default in names and {"prompted-qwen2.5-1.5b", "prompted-qwen2.5-0.5b"} <= set(names)
    for p in book.policies:
        Template.load(p.template)  # every preset's template is there and has its placeholders
        p.run_config()


def test_the_teaching_preset_is_the_default_with_comparisons_taken_one_thing_at_a_time(monkeypatch):
    monkeypatch.delenv(POLICY_ENV, raising=False)
    book = load_policies()
    default, teach = book.get("prompted-qwen2.5-1.5b"), book.get("prompted-qwen2.5-1.5b-teach")
    a, b = asdict(default.run_config()), asdict(teach.run_config())
    assert {k for k in a if a[k] != b[k]} == {"choice_split_lead"}
    assert "{a}" in b["choice_split_lead"] and "{b}" in b["choice_split_lead"] and b["choice_answer"]
    assert (teach.model, teach.engine, teach.mode, teach.template) == (default.model, default.engine, default.mode,
                                                                       default.template)


def test_the_environment_picks_the_default_and_a_bad_name_is_named(monkeypatch):
    monkeypatch.setenv(POLICY_ENV, "prompted-qwen2.5-0.5b")
    assert load_policies().default == "prompted-qwen2.5-0.5b"
    assert load_policies().get(None).name == "prompted-qwen2.5-0.5b"
    monkeypatch.setenv(POLICY_ENV, "nope")
    with pytest.raises(PolicyError, match=r"\$ROUTER_STUDIO_POLICY: no policy named 'nope'; known: "):
        load_policies()


@pytest.mark.parametrize("text,needle", [
    ("default: a\npolicies: []\n", "policies: List should have at least 1 item"),
    ("default: b\npolicies:\n  - {name: a, engine: llamacpp, model: m}\n", "no policy named 'b'"),
    ("default: a\npolicies:\n  - {name: a, engine: nope, model: m}\n", "policies[0].engine"),
    ("default: a\npolicies:\n  - {name: a, engine: llamacpp, model: m, run: {think_tokens: -3}}\n",
     "policy 'a': run:"),
    ("default: a\npolicies:\n  - {name: a, engine: llamacpp, model: m, run: {nope: 1}}\n", "policy 'a': run:"),
    ("default: a\npolicies:\n  - {name: a, engine: llamacpp, model: m, run: {think_stops_at_tags: 'false'}}\n",
     "think_stops_at_tags: must be true or false"),
    ("default: a\npolicies:\n  - {name: a, engine: llamacpp, model: m, run: {kappa: .nan}}\n", "kappa: must be"),
    ("default: [\n", "not valid YAML"),
])
def test_bad_policy_files_name_the_file_and_field(tmp_path, monkeypatch, text, needle):
    monkeypatch.delenv(POLICY_ENV, raising=False)
    f = tmp_path / "pol.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as e:
        load_policies(f)
    assert str(f) in str(e.value) and needle in str(e.value)


def test_setting_values_typed_on_a_command_line_are_read_by_one_rule():
    assert [setting_from_text(t) for t in ("true", "False", "3", "0.5", "A, then B")] == [True, False, 3, 0.5, "A, then B"]
    cfg = RunConfig().merged({"score_forced_tokens": setting_from_text("true"), "kappa": setting_from_text("4")})
    assert cfg.score_forced_tokens is True and cfg.kappa == 4.0
    with pytest.raises(ValueError, match="score_forced_tokens"):
        RunConfig().merged({"score_forced_tokens": setting_from_text("yes")})
