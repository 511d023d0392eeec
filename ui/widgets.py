"""Gradio building blocks shared by the Live tab and the replay, so both show a session the same way."""
from __future__ import annotations

import gradio as gr


def steps_and_charts(label: str, chat_id: str, chart_ids: tuple[str, str, str]) -> tuple[gr.Chatbot, gr.Plot,
                                                                                         gr.Plot, gr.Plot]:
    """The step list beside the timeline, cost and choice charts (one tab each, so only one draws at a time).

    Model text reaches the Chatbot already escaped by ui.render; its own sanitiser stays on as a second guard.
    """
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=340):
            chat = gr.Chatbot(label=label, height=None, max_height=720, autoscroll=False, sanitize_html=True,
                              latex_delimiters=[], elem_id=chat_id, group_consecutive_messages=False,
                              buttons=["copy", "copy_all"], elem_classes=["rs-steps"])
        with gr.Column(scale=2, min_width=300):
            with gr.Tabs():
                with gr.Tab("Timeline"):
                    timeline = gr.Plot(show_label=False, elem_id=chart_ids[0])
                with gr.Tab("Cost"):
                    cost = gr.Plot(show_label=False, elem_id=chart_ids[1])
                with gr.Tab("Choice before / after α"):
                    choice = gr.Plot(show_label=False, elem_id=chart_ids[2])
    return chat, timeline, cost, choice
