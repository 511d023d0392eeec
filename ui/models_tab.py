"""Models tab: the pool's descriptors, and adding or editing a model for the running app."""
from __future__ import annotations

import math
from typing import Any

import gradio as gr
import pandas as pd
from pydantic import ValidationError

from router_core.pool import ENGINES, PoolError

from .render import err_text, esc
from .studio import Studio

COLUMNS = ["name", "engine", "model", "params_b", "price_in", "price_out", "description", "base_url", "api_key_env"]


def pool_table(studio: Studio, pool_name: str) -> pd.DataFrame:
    pool = studio.pool(pool_name)
    return pd.DataFrame([{c: getattr(m, c) for c in COLUMNS} for m in pool.models], columns=COLUMNS)


def validation_message(e: ValidationError) -> str:
    """Pydantic's errors as 'field: problem' lines a user can act on."""
    return "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'model'}: {err['msg']}" for err in e.errors())


def save_model(studio: Studio, pool_name: str, form: dict[str, Any]) -> str:
    """Validate and add/replace; returns a message. Nothing changes when validation fails."""
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in form.items()}
    if isinstance(clean.get("name"), str):
        clean["name"] = clean["name"].strip()
    try:
        spec = studio.put_model(pool_name, clean)
    except ValidationError as e:
        raise ValueError(validation_message(e)) from None
    return f"saved **{esc(spec.name)}** in pool **{esc(pool_name)}**; the next session routes over it"


def build(studio: Studio) -> None:
    gr.Markdown("The candidates the router can call. Add an unseen model by its descriptor — the router reads "
                "the name and description in its prompt, and α uses the output price — or edit one. Changes apply "
                "to the next session and last until the app restarts (edit the pool YAML to keep them). "
                "A key is never typed here: give the NAME of the environment variable that holds it.")
    pool = gr.Dropdown(list(studio.pools), value=studio.default_pool, label="Pool", elem_id="rs-m-pool")
    table = gr.Dataframe(pool_table(studio, studio.default_pool), interactive=False, wrap=True, datatype="str",
                         elem_id="rs-m-table")
    with gr.Row():
        name = gr.Textbox(label="name (as the router writes it)", elem_id="rs-m-name", min_width=160)
        engine = gr.Dropdown(list(ENGINES), value="openai", label="engine", min_width=120)
        model = gr.Textbox(label="model (Hub id, path, shipped:<id> or endpoint model id)", elem_id="rs-m-model",
                           min_width=220)
        params = gr.Number(label="parameters (B)", elem_id="rs-m-params", min_width=90)
        p_in = gr.Number(label="$ / 1M input", elem_id="rs-m-pin", min_width=90)
        p_out = gr.Number(label="$ / 1M output", elem_id="rs-m-pout", min_width=90)
    with gr.Row():
        desc = gr.Textbox(label="description (what the router reads)", lines=2, scale=3, elem_id="rs-m-desc")
        base_url = gr.Textbox(label="base_url (openai engine)", min_width=200)
        key_env = gr.Textbox(label="api_key_env (variable NAME)", min_width=160)
    with gr.Row():
        save = gr.Button("Add / update model", variant="primary", elem_id="rs-m-save")
        remove = gr.Button("Remove model by name", variant="stop", size="sm")
    msg = gr.Markdown(elem_id="rs-m-msg")

    def do_save(pool_name, n, e, m, pb, pi, po, d, url, kenv):
        form = {"name": n, "engine": e, "model": m, "params_b": pb, "price_in": pi, "price_out": po,
                "description": d, "base_url": url, "api_key_env": kenv}
        try:
            text = save_model(studio, pool_name, form)
        except (ValueError, PoolError, KeyError) as ex:
            return f"⚠ {esc(err_text(ex))}", gr.update()
        return text, pool_table(studio, pool_name)

    def do_remove(pool_name, n):
        try:
            studio.remove_model(pool_name, (n or "").strip())
        except (PoolError, KeyError) as ex:
            return f"⚠ {esc(err_text(ex))}", gr.update()
        return f"removed **{esc(n)}**", pool_table(studio, pool_name)

    def do_select(pool_name, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        m = studio.pool(pool_name).models[row]
        return (m.name, m.engine, m.model, m.params_b, m.price_in, m.price_out, m.description, m.base_url or "",
                m.api_key_env or "")

    fields = [name, engine, model, params, p_in, p_out, desc, base_url, key_env]
    save.click(do_save, [pool] + fields, [msg, table], api_name="save_model")
    remove.click(do_remove, [pool, name], [msg, table], api_name=False)
    pool.change(lambda p: pool_table(studio, p), pool, table, api_name=False)
    table.select(do_select, pool, fields, api_name=False)
