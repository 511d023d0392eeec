"""Models tab: the pool's descriptors, and — where the operator allows it — a visitor's own model edits.

A model names an endpoint and the *name* of an environment variable whose value is sent as the
key, so an edit is a request to make the server call a URL with one of its secrets. Edits are
therefore off unless the server runs with `--allow-model-edits` (which needs `--auth`); then they
live in the visitor's own session (other visitors never see them), may name only the key variables
and endpoints the operator allowed (plus those of the pools loaded at start), and are validated
again each time a run uses them.
"""
from __future__ import annotations

import math
from typing import Any

import gradio as gr
import pandas as pd
from pydantic import ValidationError

from router_core.pool import ENGINES, PoolError

from .render import err_text, esc
from .studio import Studio

COLUMNS = ["name", "engine", "model", "params_b", "price_in", "price_out", "description", "measured", "base_url",
           "api_key_env"]
HEADERS = ["name", "engine", "model", "params (B)", "$ / 1M in", "$ / 1M out", "description (the router reads it)",
           "measured here", "base_url", "key variable"]
# the two texts get the room; the rest wrap in theirs (the table fits its box at 1024 px, no sideways scroll)
WIDTHS = ["9%", "6%", "12%", "6%", "6%", "6%", "21%", "24%", "5%", "5%"]


def pool_table(studio: Studio, pool_name: str, edits: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    pool = studio.apply_edits(pool_name, edits)
    rows = [[getattr(m, c) if getattr(m, c) is not None else "" for c in COLUMNS] for m in pool.models]
    return pd.DataFrame(rows, columns=HEADERS)


def validation_message(e: ValidationError) -> str:
    """Pydantic's errors as 'field: problem' lines a user can act on."""
    return "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'model'}: {err['msg']}" for err in e.errors())


def save_model(studio: Studio, edits: list[dict[str, Any]], pool_name: str, form: dict[str, Any]
               ) -> tuple[list[dict[str, Any]], str]:
    """Validate and add/replace in this visitor's edits; returns (edits, message). Nothing changes on failure."""
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in form.items()}
    if isinstance(clean.get("name"), str):
        clean["name"] = clean["name"].strip()
    try:
        edits, spec = studio.edit_model(edits, pool_name, clean)
    except ValidationError as e:
        raise ValueError(validation_message(e)) from None
    return edits, (f"saved **{esc(spec.name)}** in pool **{esc(pool_name)}** for this browser session; "
                   "your next run routes over it")


def build(studio: Studio, edits: gr.State) -> None:
    if studio.allow_model_edits:
        keys, endpoints = studio.allowed()
        gr.Markdown("The candidates the router can call. Add an unseen model by its descriptor — the router reads "
                    "the name and description in its prompt, and α uses the output price — or edit one. Your "
                    "changes apply to **your** runs in this browser tab until you reload; other visitors do not see "
                    "them (edit the pool YAML to keep a model). A key is never typed here: give the NAME of an "
                    f"environment variable the server allows (**{esc(', '.join(sorted(keys)) or 'none')}**); "
                    f"endpoints must be under **{esc(', '.join(endpoints) or 'none')}**.")
    else:
        gr.Markdown("The candidates the router can call, with their prices, what the router reads about them and what was measured of them here. "
                    "Model edits are **off** on this server: a model names an endpoint and the key variable sent to "
                    "it, so the operator enables edits only with `--allow-model-edits` (and `--auth`).",
                    elem_id="rs-m-off")
    pool = gr.Dropdown(list(studio.pools), value=studio.default_pool, label="Pool", elem_id="rs-m-pool")
    table = gr.Dataframe(pool_table(studio, studio.default_pool), interactive=False, wrap=True, datatype="str",
                         elem_id="rs-m-table", column_widths=WIDTHS, max_height=720)
    pool.change(lambda p, e: pool_table(studio, p, e), [pool, edits], table, api_name=False)
    if not studio.allow_model_edits:
        return  # no form and no endpoint: nothing a visitor sends can change a model
    with gr.Row():
        name = gr.Textbox(label="name (as the router writes it)", elem_id="rs-m-name", min_width=160)
        engine = gr.Dropdown(list(ENGINES), value="openai", label="engine", min_width=120)
        model = gr.Textbox(label="model (shipped:<id> or the endpoint's model id)", elem_id="rs-m-model",
                           min_width=220)
        params = gr.Number(label="parameters (B)", elem_id="rs-m-params", min_width=90)
        p_in = gr.Number(label="$ / 1M input tokens", elem_id="rs-m-pin", min_width=90)
        p_out = gr.Number(label="$ / 1M output tokens", elem_id="rs-m-pout", min_width=90)
    with gr.Row():
        desc = gr.Textbox(label="description (what the router reads)", lines=2, scale=3, elem_id="rs-m-desc")
        base_url = gr.Textbox(label="base_url (openai engine)", min_width=200, elem_id="rs-m-url")
        key_env = gr.Textbox(label="api_key_env (variable NAME)", min_width=160, elem_id="rs-m-key")
    with gr.Row():
        save = gr.Button("Add / update model", variant="primary", elem_id="rs-m-save")
        remove = gr.Button("Remove model by name", variant="stop", size="sm")
    msg = gr.Markdown(elem_id="rs-m-msg")

    def do_save(e, pool_name, n, eng, m, pb, pi, po, d, url, kenv):
        form = {"name": n, "engine": eng, "model": m, "params_b": pb, "price_in": pi, "price_out": po,
                "description": d, "base_url": url, "api_key_env": kenv}
        try:
            e, text = save_model(studio, e, pool_name, form)
        except (ValueError, PoolError, KeyError) as ex:
            return gr.update(), f"⚠ {esc(err_text(ex))}", gr.update()
        return e, text, pool_table(studio, pool_name, e)

    def do_remove(e, pool_name, n):
        try:
            e = studio.remove_model(e, pool_name, (n or "").strip())
        except (PoolError, KeyError) as ex:
            return gr.update(), f"⚠ {esc(err_text(ex))}", gr.update()
        return e, f"removed **{esc(n)}** for this browser session", pool_table(studio, pool_name, e)

    def do_select(e, pool_name, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        m = studio.apply_edits(pool_name, e).models[row]
        return (m.name, m.engine, m.model, m.params_b, m.price_in, m.price_out, m.description, m.base_url or "",
                m.api_key_env or "")

    fields = [name, engine, model, params, p_in, p_out, desc, base_url, key_env]
    save.click(do_save, [edits, pool] + fields, [edits, msg, table], api_name="save_model")
    remove.click(do_remove, [edits, pool, name], [edits, msg, table], api_name=False)
    table.select(do_select, [edits, pool], fields, api_name=False)
