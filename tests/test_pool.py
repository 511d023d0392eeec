"""Pool files: the shipped ones load; every validation error names the file and field."""
import pytest

from router_core.pool import PoolError, load_pool, pool_from_dict


def base_model(**kw):
    m = {"name": "A", "engine": "llamacpp", "model": "shipped:smollm2-135m-instruct", "params_b": 0.1,
         "price_in": 0.1, "price_out": 0.2, "description": "d"}
    m.update(kw)
    return m


def test_shipped_pools_load():
    local = load_pool("assets/pools/local.yaml")
    assert len(local.models) >= 2
    assert len({m.price_out for m in local.models}) >= 2, "distinct costs"
    assert all(m.model.startswith("shipped:") for m in local.models)
    nim = load_pool("assets/pools/router-r1-nim.yaml")
    prices = {m.name: m.price_out for m in nim.models}
    assert prices["meta/llama-3.1-70b-instruct"] == 0.88
    assert prices["mistralai/mixtral-8x22b-instruct-v0.1"] == 1.20
    assert prices["writer/palmyra-creative-122b"] == 1.80
    assert len(nim.models) == 8
    assert all(m.api_key_env == "NVIDIA_API_KEY" for m in nim.models)


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d["models"][0].update(price_out=-1), "models[0].price_out"),
    (lambda d: d["models"][0].update(engine="tensorrt"), "models[0].engine"),
    (lambda d: d["models"][0].pop("description"), "models[0].description"),
    (lambda d: d["models"][0].update(name="bad: name"), "models[0].name"),
    (lambda d: d["models"][0].update(params_b=0), "models[0].params_b"),
    (lambda d: d["models"][0].update(colour="red"), "models[0].colour"),
    (lambda d: d["models"].append(base_model(name="a")), "appears twice"),
    (lambda d: d["models"].append(base_model(name="B", engine="openai")), "base_url is required"),
    (lambda d: d["models"].append(base_model(name="C", api_key_env="sk-abc.def")), "models[1].api_key_env"),
    (lambda d: d.update(models=[]), "models"),
    (lambda d: d["models"][0].update(api_key="sk-secret"), "models[0].api_key"),
])
def test_validation_errors_name_file_and_field(mutate, needle):
    data = {"name": "p", "models": [base_model()]}
    mutate(data)
    with pytest.raises(PoolError) as e:
        pool_from_dict(data, "mypool.yaml")
    assert "mypool.yaml" in str(e.value) and needle in str(e.value)
    assert "sk-secret" not in str(e.value)


def test_bad_yaml_and_missing_file(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nmodels: [\n  - {name: a")
    with pytest.raises(PoolError, match=r"broken.yaml: not valid YAML at line"):
        load_pool(p)
    with pytest.raises(PoolError, match="nope.yaml: cannot read"):
        load_pool(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(PoolError, match="list.yaml: expected a mapping"):
        load_pool(tmp_path / "list.yaml")


def test_norm_costs_and_snapshot_has_no_secret(monkeypatch):
    monkeypatch.setenv("NVIDIA_API_KEY", "sk-test-very-secret")
    nim = load_pool("assets/pools/router-r1-nim.yaml")
    c = nim.norm_costs()
    assert min(c.values()) == 0.0 and max(c.values()) == 1.0
    assert "sk-test-very-secret" not in str(nim.snapshot())
    assert nim.models[0].api_key() == "sk-test-very-secret"


def test_dearest_is_the_highest_output_price_first_of_equals():
    pool = pool_from_dict({"name": "p", "models": [base_model(name="A", price_out=2.0), base_model(name="B", price_out=9.0),
                                                   base_model(name="C", price_out=9.0), base_model(name="D", price_out=1.0)]})
    assert pool.dearest().name == "B"
    assert load_pool("assets/pools/local.yaml").dearest().name == "Qwen2.5-1.5B"


def test_with_model_adds_or_replaces():
    pool = pool_from_dict({"name": "p", "models": [base_model()]})
    p2 = pool.with_model(pool_from_dict({"name": "q", "models": [base_model(name="B", price_out=1.0)]}).models[0])
    assert p2.names == ["A", "B"]
    p3 = p2.with_model(pool_from_dict({"name": "q", "models": [base_model(name="a", price_out=5.0)]}).models[0])
    assert p3.names == ["B", "a"] and p3.get("a").price_out == 5.0


def test_the_local_pool_says_what_was_measured_beside_what_the_router_reads(tmp_path):
    """Each shipped model carries its measurement (the middle tier is the least accurate on hops); the Models tab
    shows it, and the router's prompt holds the description only (measured wordings in the prompt cost the prompted
    default EM, docs/results/trained_router.md)."""
    from router_core.policy import load_policies
    from router_core.protocol import Template
    from ui.models_tab import HEADERS, pool_table
    from ui.studio import Studio
    local = load_pool("assets/pools/local.yaml")
    measured = {m.name: m.measured or "" for m in local.models}
    assert all(measured.values()) and "least accurate" in measured["Qwen2.5-0.5B"]
    tpl = Template.load(load_policies().get("prompted-qwen2.5-1.5b").template)
    prompt = tpl.head([(m.name, m.description) for m in local.models], local.dearest().name)
    assert all(m.description.split(":")[0] in prompt and measured[m.name][:40] not in prompt for m in local.models)
    with_measured = pool_from_dict({"name": "p", "models": [base_model(measured="EM 0.5 here")]})
    assert with_measured.models[0].measured == "EM 0.5 here"
    from storage import TraceStore
    with TraceStore(str(tmp_path / "t.sqlite")) as st:
        tbl = pool_table(Studio.from_files(st, load_policies(), "assets/pools/local.yaml"), "local")
    assert "measured here" in HEADERS and list(tbl["measured here"]) == [measured[m.name] for m in local.models]
