"""The launched app answers through gradio_client: steps stream in and the session is stored."""

from support.servers import served_studio

from router_core.policy import load_policies
from router_core.step import Step
from storage import TraceStore
from ui.render import step_message
from ui.studio import Studio


def test_model_text_is_escaped():
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    for s in (Step("s", 0, "think", text=evil), Step("s", 1, "route", request_model="A", query=evil, response=evil),
              Step("s", 2, "answer", text=evil), Step("s", 3, "error", status="error", error=evil)):
        html = step_message(s)["content"]
        assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html


def _text(content) -> str:
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


def test_launched_app_streams_a_session_and_stores_it(qwen, smol, tmp_path):
    from gradio_client import Client

    store = TraceStore(str(tmp_path / "ui.sqlite"))
    studio = Studio.from_files(store, load_policies(), None)
    try:
        with served_studio(studio) as url:
            client = Client(url, verbose=False)
            job = client.submit("What is the capital of France?", "Paris", studio.policies.default, "local", 0.0,
                                api_name="/run")
            counts = [len(out[0]) for out in job]  # every streamed update: the conversation so far
            msgs, status = job.result()[:2]
            assert msgs[0]["role"] == "user" and len(msgs) >= 4
            assert max(counts) == len(msgs) and len(set(counts)) >= 3  # steps arrived one by one
            assert "Answer:" in _text(msgs[-1]["content"]) and "EM" in status
            pg = store.list_sessions()
            df, total = pg.rows, pg.total
            assert total == 1 and df["status"][0] == "done" and df["question"][0] == "What is the capital of France?"
            assert df["id"][0] in status and df["n_steps"][0] == len(msgs) - 1
            # the same session through the explorer's API: its replay header names it
            header = client.predict(df["id"][0][:12], api_name="/open_session")[0]
            assert df["id"][0] in header
    finally:
        store.close()


def test_a_sweep_column_reads_running_until_its_answer_then_right_or_wrong():
    """A sweep's last column is drawn while its session runs: no answer yet is not a wrong answer."""
    from ui.live import LiveView, sweep_html
    q = "What is the capital of the country where the Eiffel Tower stands?"
    think = Step("s", 0, "think", text="I need the country first.")
    route = Step("s", 1, "route", request_model="Qwen2.5-1.5B", query="Where is the Eiffel Tower?",
                 response="France", cost_usd=1e-6)
    done = LiveView(q, [], steps=[think, route, Step("s", 2, "answer", text="Paris")], golds=["Paris"], alpha=0.0)
    wrong = LiveView(q, [], steps=[think, route, Step("s", 2, "answer", text="Lyon")], golds=["Paris"], alpha=0.5)
    running = LiveView(q, [], steps=[think, route], golds=["Paris"], alpha=1.0)
    starting = LiveView(q, [], steps=[], golds=["Paris"], alpha=1.0)
    html = sweep_html([done, wrong, running])
    heads = html.split('class="rs-sweep-head"')[1:]
    assert "✓" in heads[0] and "✗" in heads[1]
    assert "running" in heads[2] and "✗" not in heads[2] and "✓" not in heads[2]
    assert "running" in sweep_html([starting]) and "✗" not in sweep_html([starting])
    stopped = LiveView(q, [], steps=[think, Step("s", 1, "error", status="stopped", error="stopped by the user")],
                       golds=["Paris"], alpha=1.0)
    assert "running" not in sweep_html([stopped])
