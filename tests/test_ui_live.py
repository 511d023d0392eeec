"""The first live page: rendering escapes model text; a launched app answers through gradio_client."""

from router_core.loop import Router
from router_core.policy import load_policies
from router_core.pool import load_pool
from router_core.step import Step
from ui.render import step_message


def test_model_text_is_escaped():
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    for s in (Step("s", 0, "think", text=evil), Step("s", 1, "route", request_model="A", query=evil, response=evil),
              Step("s", 2, "answer", text=evil), Step("s", 3, "error", status="error", error=evil)):
        html = step_message(s)["content"]
        assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html


def test_launched_app_streams_a_session_and_stores_it(qwen, smol, tmp_path):
    from gradio_client import Client

    from storage import TraceStore
    from ui.app import build
    store = TraceStore(str(tmp_path / "ui.sqlite"))
    demo = build(Router(load_policies().get(None), load_pool()), store)
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False)
        msgs, status = client.predict("What is the capital of France?", 0.0, "Paris", api_name="/run")
        assert msgs[0]["role"] == "user" and len(msgs) >= 3
        last = msgs[-1]["content"]  # Gradio 6 returns content as a list of typed parts
        text = last if isinstance(last, str) else " ".join(p.get("text", "") for p in last)
        assert "Answer:" in text and "EM" in status
        df, total = store.list_sessions()
        assert total == 1 and df["status"][0] == "done" and df["question"][0] == "What is the capital of France?"
        assert df["id"][0][:12] in status and df["n_steps"][0] == len(msgs) - 1
    finally:
        demo.close()
        store.close()
