"""The Training tab: watch a router learn. The stored training runs, one run's curves, what the reward kept and
dropped and why, its trajectories (a click replays one in the Explorer, the reward's terms beside the answer), and
the same question answered before and after training, side by side in Compare.

A run started from the terminal (`app.py train`) appears when the tab is opened (or ↻) and moves: while the picked
run is `running`, a timer reads the store every few seconds. Everything shown is read from the store
(storage/training.py) and drawn by ui/training_view.py, which the exported page uses too.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import gradio as gr

from router_core.policy import Policy
from storage import SessionFilter, StoreError, TraceStore
from storage import training as stored
from storage.files import write_new_file
from training.trajectories import REASONS

from . import training_view as view
from .explorer import visitor_text
from .render import esc
from .studio import Studio

EMPTY = ("No training run stored yet. Load the one that made the shipped adapter (the button above), or train one "
         "from a terminal — `python app.py collect --dataset train_two_hop`, then the `python app.py train --run …` it "
         "prints — and it shows up here while it runs.")
POLL_S = 5.0
STUDENT_RUN = {"max_new_tokens": 160, "kappa": 0.0, "candidate_max_tokens": 96, "reply_max_tokens": 160}
ALL = "all"


def run_choices(store: TraceStore) -> list[tuple[str, str]]:
    return [(view.run_label(r), r["id"]) for r in stored.list_runs(store)]


def unloaded(store: TraceStore) -> list[Path]:
    """Shipped training runs (beside an adapter in assets/adapters) this store does not hold yet."""
    import json

    from training.bundle import RUN_FILE, shipped_bundles
    held = {r["id"] for r in stored.list_runs(store)}
    out = []
    for folder in shipped_bundles():
        try:
            rid = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))["run"]["id"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if rid not in held:
            out.append(folder)
    return out


def export_page(store: TraceStore, run_id: str) -> str:
    """The run as a standalone page in the export folder (swept like the Explorer's exports)."""
    from .explorer import EXPORT_DIR, EXPORT_KEEP_FILES, clean_exports
    from .export_training import training_page
    r = stored.get_run(store, run_id)
    EXPORT_DIR.mkdir(mode=0o700, exist_ok=True)
    clean_exports(keep=EXPORT_KEEP_FILES - 1)
    tag = "".join(c for c in run_id[-12:] if c.isalnum() or c == "-") or "run"  # an imported id is any text
    path = EXPORT_DIR / f"router-studio-training-{tag}-{time.strftime('%Y%m%d-%H%M%S')}.html"
    write_new_file(path, lambda f: f.write(training_page(r, stored.points(store, run_id),
                                                         stored.trajectories(store, run_id))))
    return str(path)


def policies_for(studio: Studio, run: dict[str, Any]) -> tuple[str, str]:
    """(policy before training, policy after) for a run, by name: the preset that loads this run's adapter where
    the presets file has one (its stored sessions are found by that name), else one made from the run's base and
    settings."""
    adapter = str(Path(run["out_dir"] or ".") / "adapter.gguf")
    cfg = run.get("config") or {}
    after = next((p for p in studio.policies.policies if p.adapter and Path(p.adapter_path() or "").resolve()
                  == Path(adapter).resolve()), None)
    if after is None:
        after = Policy(name=f"trained:{run['name']}", engine="llamacpp", model=run["base"], adapter=adapter,
                       mode="free", template=cfg.get("template"), run=STUDENT_RUN,
                       description=f"the student of training run {run['name']}")
        studio.add_policy(after)
    before = after.model_copy(update={"name": f"{after.name} (before training)", "adapter": None,
                                      "description": f"{after.model} with the student's prompt, no adapter"})
    studio.add_policy(before)
    return before.name, after.name


def stored_session(store: TraceStore, policy: str, question: str, alpha: float, *, pool: str,
                   since: float = 0.0) -> str | None:
    """The newest finished session of `policy` on this question at this α over this pool, run after `since` (the
    adapter file's time: a run trained again into the same folder is not answered by the old adapter's sessions)."""
    rows = [r for r in store.iter_sessions(SessionFilter(policy=policy, status="done", alpha_min=alpha,
                                                         alpha_max=alpha))
            if r["question"] == question and r["created_at"] >= since and r.get("pool_name") == pool]
    return rows[-1]["id"] if rows else None


def run_session(studio: Studio, policy: str, question: str, alpha: float, gold: list[str], client: str = "") -> str:
    """One stored session, run now (it waits for its turn in the visitor's lane like any other); its id."""
    sid = uuid.uuid4().hex
    err = ""
    for ev in studio.events(f"training-{sid}", question, alpha, policy=policy, gold=gold, session_id=sid,
                            client=client):
        if ev.kind == "end" and ev.text:
            err = ev.text
    if err:
        raise RuntimeError(f"{policy}: {err}")
    return sid


def build(studio: Studio, tabs: gr.Tabs, explorer: dict[str, Any], compare_ids: gr.State,
          tab: gr.Tab | None = None) -> None:
    store = studio.store
    gr.Markdown("How the studio's own router learns: `app.py train` keeps, for each question and α, the trajectory "
                "with the best Router-R1 reward (−1 protocol broken, 0 wrong, (1 − α) + α · R_cost right), fine-tunes "
                "a LoRA on them, and writes its progress here as it goes.")
    with gr.Row():
        run = gr.Dropdown(run_choices(store), label="Training run", scale=4, elem_id="rs-t-run",
                          allow_custom_value=True)
        refresh = gr.Button("↻ Refresh runs", size="sm", min_width=110)
        export = gr.Button("⬇ This run as a page", size="sm", min_width=150, elem_id="rs-t-export")
        load = gr.Button("Load the shipped adapter's training run", size="sm", min_width=200, elem_id="rs-t-load",
                         visible=bool(unloaded(store)))
    page_file = gr.File(label="Standalone page (opens offline)", interactive=False, height=80, visible=False,
                        elem_id="rs-t-page")
    status = gr.Markdown(EMPTY if not run_choices(store) else "", elem_id="rs-t-status")
    card = gr.Markdown(elem_id="rs-t-card")
    with gr.Row(equal_height=True):
        curves = gr.Plot(show_label=False, elem_id="rs-t-curves", min_width=300)
        reasons = gr.Plot(show_label=False, elem_id="rs-t-reasons", min_width=300)
        rewards = gr.Plot(show_label=False, elem_id="rs-t-rewards", min_width=300)
    words = gr.Markdown(elem_id="rs-t-words")
    with gr.Accordion("Before and after: one question, the base policy and the trained one side by side",
                      open=False, elem_id="rs-t-ba"):
        with gr.Row():
            question = gr.Dropdown([], label="Question from this run", scale=4, elem_id="rs-t-question",
                                   allow_custom_value=False)
            ba_alpha = gr.Dropdown([], label="α", min_width=90, elem_id="rs-t-ba-alpha")
            ba_go = gr.Button("Compare before / after", variant="primary", min_width=150, elem_id="rs-t-ba-go")
        ba_msg = gr.Markdown(elem_id="rs-t-ba-msg")
    gr.Markdown("**Trajectories** at each training α — click one to replay it in the Explorer (its reward's terms "
                "are beside the answer there).")
    with gr.Row():
        f_kept = gr.Dropdown([ALL, "kept", "dropped"], value=ALL, label="Kept or dropped", min_width=140)
        f_reason = gr.Dropdown([(ALL, ALL)] + [(view.REASON_WORDS[k], k) for k in REASONS], value=ALL,
                               label="Why", min_width=180)
        f_alpha = gr.Dropdown([ALL], value=ALL, label="α", min_width=100)
        f_dataset = gr.Dropdown([ALL], value=ALL, label="Dataset", min_width=160)
    table = gr.Dataframe(headers=view.TRAJECTORY_COLUMNS, interactive=False, datatype="str", wrap=True,
                         max_height=420, elem_id="rs-t-table", column_widths=view.TRAJECTORY_WIDTHS)
    ids = gr.State([])
    timer = gr.Timer(POLL_S, active=False)

    outs = [status, card, curves, reasons, rewards, words, table, ids, f_alpha, f_dataset, question, ba_alpha, timer]
    filters = [f_kept, f_reason, f_alpha, f_dataset]

    def filtered(run_id: str, kept: str, reason: str, alpha: str | None, dataset: str | None):
        trajs = stored.trajectories(store, run_id, kept=None if kept == ALL else kept == "kept",
                                    reason=None if reason in (ALL, None) else reason,
                                    alpha=None if alpha in (ALL, None) else float(alpha),
                                    dataset=None if dataset in (ALL, None) else dataset)
        return view.trajectory_table(trajs, stored.get_run(store, run_id))

    def show(run_id: str | None, kept: str, reason: str, alpha: str | None, dataset: str | None):
        blank = (gr.update(),) * (len(outs) - 2)  # all but the status line and the timer
        if not run_id:
            return (EMPTY if not run_choices(store) else "Pick a training run.", *blank, gr.Timer(active=False))
        try:
            r = stored.get_run(store, run_id)
            trajs = stored.trajectories(store, run_id)
            pts = stored.points(store, run_id)
            alphas = [(f"{a:g}", repr(a)) for a in sorted({t["alpha"] for t in trajs})]  # exact values, short labels
            datasets = sorted({t["dataset"] or "" for t in trajs} - {""})
            # a filter value the picked run does not have is reset, not kept (it would match nothing)
            alpha = alpha if alpha in {v for _, v in alphas} else ALL
            dataset = dataset if dataset in datasets else ALL
            tbl, sids = filtered(run_id, kept, reason, alpha, dataset)
        except (KeyError, ValueError, StoreError) as e:
            return (f"⚠ {esc(visitor_text(store, e))}", *blank, gr.Timer(active=False))
        qs = view.questions_of(trajs)
        return (view.status_line(r), view.card_summary(r), view.curves(pts), view.reasons_chart(trajs),
                view.rewards_chart(trajs, r), view.reasons_words(trajs), tbl, sids,
                gr.update(choices=[(ALL, ALL), *alphas], value=alpha),
                gr.update(choices=[ALL, *datasets], value=dataset),
                gr.update(choices=qs, value=qs[0] if qs else None),
                gr.update(choices=alphas, value=alphas[0][1] if alphas else None),
                gr.Timer(active=r["status"] == "running"))
    run.input(show, [run, *filters], outs, api_name="training_run")

    def tick(run_id: str | None):
        """While the run trains: the status line, the curves and (once written) the card."""
        if not run_id:
            return gr.update(), gr.update(), gr.update(), gr.Timer(active=False)
        try:
            r = stored.get_run(store, run_id)
        except (KeyError, StoreError):
            return gr.update(), gr.update(), gr.update(), gr.Timer(active=False)
        return (view.status_line(r), view.card_summary(r), view.curves(stored.points(store, run_id)),
                gr.Timer(active=r["status"] == "running"))
    timer.tick(tick, run, [status, card, curves, timer], api_name=False, show_progress="hidden")

    def refilter(run_id: str | None, *fs: str | None):
        if not run_id:
            return gr.update(), []
        try:
            return filtered(run_id, *fs)
        except (KeyError, ValueError, StoreError) as e:
            gr.Warning(visitor_text(store, e))
            return gr.update(), gr.update()
    for f in filters:
        f.change(refilter, [run, *filters], [table, ids], api_name=False)

    def do_refresh(current: str | None):
        choices = run_choices(store)
        value = current if current in {c[1] for c in choices} else (choices[0][1] if choices else None)
        return gr.update(choices=choices, value=value)
    refresh.click(do_refresh, run, run, api_name=False).then(show, [run, *filters], outs, api_name=False)

    def on_open(current: str | None):
        """Shown: the runs as stored now, the newest picked on a first visit (a blank tab looks broken)."""
        return do_refresh(current)
    if tab is not None:
        tab.select(on_open, run, run, api_name=False, show_progress="hidden").then(
            show, [run, *filters], outs, api_name=False, show_progress="hidden")

    def do_open(sids: list[str], evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if row is None or row >= len(sids):
            return gr.update(), gr.update()
        return gr.Tabs(selected="explorer"), sids[row]
    table.select(do_open, ids, [tabs, explorer["open_id"]], api_name=False).then(
        explorer["do_open"], explorer["open_ins"], explorer["open_outs"], api_name=False).then(
        None, None, None, js=explorer["scroll_to_replay"])

    def do_load():
        from training.bundle import load_bundle
        rid, said = None, []
        for folder in unloaded(store):
            try:
                rid, report = load_bundle(store, folder)
            except (OSError, ValueError, StoreError) as e:
                gr.Warning(visitor_text(store, e))
                continue
            said.append(f"{folder.name}: sessions {report}")
        choices = run_choices(store)
        if said:
            gr.Info("; ".join(said))
        picked = gr.update(choices=choices, value=rid) if rid else gr.update(choices=choices)
        return picked, gr.update(visible=bool(unloaded(store)))
    load.click(do_load, None, [run, load], api_name=False).then(show, [run, *filters], outs, api_name=False)

    def do_export(run_id: str | None):
        if not run_id:
            gr.Warning("Pick a training run first.")
            return gr.update(visible=False)
        try:
            path = export_page(store, run_id)
        except (KeyError, StoreError, OSError) as e:
            gr.Warning(visitor_text(store, e))
            return gr.update(visible=False)
        return gr.update(value=path, visible=True)
    export.click(do_export, run, page_file, api_name="training_page")

    def before_after(run_id: str | None, q: str | None, a: str | None, request: gr.Request):
        if not run_id or not q or a is None:
            yield "⚠ pick a run, a question and an α first", gr.update(), gr.update()
            return
        try:
            r = stored.get_run(store, run_id)
            if not r.get("out_dir") or not (Path(r["out_dir"]) / "adapter.gguf").is_file():
                raise ValueError(f"training run {r['name']} has no adapter file yet ({r['status']})")
            before, after = policies_for(studio, r)
            alpha = float(a)
            since = (Path(r["out_dir"]) / "adapter.gguf").stat().st_mtime
            pool = studio.default_pool
            gold = next((list(store.get_session(t["session_id"]).get("gold") or [])
                         for t in stored.trajectories(store, run_id) if t["question"] == q), [])
            pair = []
            for name in (before, after):
                sid = stored_session(store, name, q, alpha, pool=pool, since=since)
                if sid is None:
                    yield f"running “{esc(name)}” on this question at α {alpha:g} (none stored yet)…", gr.update(), \
                        gr.update()
                    lane = f"page:{getattr(request, 'session_hash', None) or 'anon'}"  # the visitor's, as Live's
                    sid = run_session(studio, name, q, alpha, gold, client=lane)
                pair.append(sid)
        except (KeyError, ValueError, RuntimeError, StoreError, OSError) as e:
            yield f"⚠ {esc(visitor_text(store, e))}", gr.update(), gr.update()
            return
        yield (f"before: {esc(before)} · after: {esc(after)} — opened in Compare", gr.Tabs(selected="compare"),
               pair)
    # two model sessions: in the engine's line with Live's runs (not the reads' concurrency), and not an API endpoint
    # (its question and α come from the picked run's choices)
    ba_go.click(before_after, [run, question, ba_alpha], [ba_msg, tabs, compare_ids], api_name=False,
                concurrency_limit=studio.admission.server_slots, concurrency_id="engine")
