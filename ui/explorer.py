"""Explorer tab: filter and page the stored sessions, replay one step by step, annotate, export."""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from router_core.failures import KINDS, kind_text
from router_core.paths import EXAMPLES_FILE
from router_core.step import Step
from storage import SessionFilter, StoreError, TraceStore
from storage.csv_export import write_csv
from storage.files import write_new_file
from storage.models import LABELS
from storage.summary import MIN_PREFIX, distinct_values, full_session_id, usage_by_model
from storage.training import of_session as training_of_session

from . import charts
from .analysis import BY, breakdown, cell_filter, method_name
from .captions import captions
from .graph import graph_html, graph_of
from .render import choice_line, err_text, esc, money, rules_details, session_messages, shorten
from .rules import word_choices, words
from .terminal import when
from .training_view import reward_terms
from .widgets import steps_and_charts

PAGE_SIZE = 25
BULK_MAX = 1000  # bulk labelling refuses a larger set: narrow the filters first
SUMMARY_MAX = 5000  # summary charts cover at most this many of the matching sessions
SORTS = {"newest": ("created_at", True), "oldest": ("created_at", False), "cost ↓": ("cost_usd", True),
         "cost ↑": ("cost_usd", False), "α ↓": ("alpha", True), "α ↑": ("alpha", False), "EM ↓": ("em", True),
         "EM ↑": ("em", False), "latency ↓": ("latency_s", True), "calls ↓": ("calls", True)}
STATUSES = ["", "done", "running", "stopped", "error", "interrupted"]
# what an analyst reads first comes first (answer, gold, EM, why wrong and $ fit at 1440 px); status and id last
TABLE_COLUMNS = ["when", "method", "question", "answer", "gold", "EM", "F1", "why wrong", "$", "calls", "α",
                 "dataset", "status", "id"]
# fixed shares of the table's width, so long questions wrap instead of pushing the answer and gold off screen
TABLE_WIDTHS = ["7%", "9%", "19%", "10%", "9%", "3%", "4%", "8%", "6%", "4%", "3%", "7%", "5%", "6%"]


def _num(value: Any, field: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: '{str(value)[:40]}' is not a number") from None
    if math.isnan(v):
        return None
    if math.isinf(v):
        raise ValueError(f"{field}: must be a finite number")
    return v


MAX_PAGE = 1_000_000


def page_number(value: Any) -> int:
    """The Page box (from 1) as a 0-based page; a bad or absurd value raises ValueError naming the field."""
    try:
        v = float(value if value not in (None, "") else 1)
    except (TypeError, ValueError):
        raise ValueError(f"page: '{str(value)[:40]}' is not a page number") from None
    if not math.isfinite(v) or v != int(v) or not 1 <= v <= MAX_PAGE:
        raise ValueError(f"page: {value} is not a page number from 1 to {MAX_PAGE:,}")
    return int(v) - 1


def _plain(value: Any, field: str, limit: int = 500) -> str:
    v = "" if value is None else str(value)
    if "\x00" in v:
        raise ValueError(f"{field}: contains a NUL character")
    if len(v) > limit:
        raise ValueError(f"{field}: longer than {limit} characters")
    return v


def make_filter(text: str = "", dataset: str = "", correct: str = "any", model: str = "", alpha_min: Any = None,
                alpha_max: Any = None, cost_min: Any = None, cost_max: Any = None, status: str = "",
                label: str = "", run_id: str = "", method: str = "", failure: str = "",
                calls: Any = None, gold: str = "") -> SessionFilter:
    """Form values → SessionFilter; a bad value raises ValueError naming the field."""
    text, dataset, model = _plain(text, "text"), _plain(dataset, "dataset"), _plain(model, "model used")
    label, run_id, status = _plain(label, "label"), _plain(run_id, "eval run"), _plain(status, "status")
    method, failure, gold = _plain(method, "method"), _plain(failure, "why wrong"), _plain(gold, "gold")
    n_calls = _num(calls, "calls")
    if n_calls is not None and (n_calls != int(n_calls) or not 0 <= n_calls <= 1000):
        raise ValueError(f"calls: {calls} is not a number of calls (0, 1, 2, …)")
    f = SessionFilter(text=(text or "").strip() or None, dataset=dataset or None,
                      correct={"correct": True, "wrong": False}.get(correct or "any"), model=model or None,
                      alpha_min=_num(alpha_min, "α min"), alpha_max=_num(alpha_max, "α max"),
                      cost_min=_num(cost_min, "$ min"), cost_max=_num(cost_max, "$ max"),
                      status=status or None, label=label or None, run_id=(run_id or "").strip() or None,
                      policy=method or None, failure=failure or None, gold=(gold or "").strip() or None,
                      calls=None if n_calls is None else int(n_calls))
    if f.failure and f.failure not in KINDS:
        raise ValueError(f"why wrong: '{f.failure}' is not one of {', '.join(KINDS)}")
    for lo, hi, name in ((f.alpha_min, f.alpha_max, "α"), (f.cost_min, f.cost_max, "$")):
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"{name} range: min {lo:g} is above max {hi:g}")
    if f.label and f.label not in LABELS:
        raise ValueError(f"label: '{f.label}' is not one of {', '.join(LABELS)}")
    return f


def parse_step(value: str | None) -> int | None:
    """The annotation form's step box: empty → the whole session, else a step index."""
    v = (value or "").strip()
    if not v:
        return None
    if not v.isdigit():
        raise ValueError(f"step: '{v}' is not a step number (0, 1, 2, …)")
    return int(v)


def why_wrong(failure: Any, labels: list[str] | None) -> str:
    """The table's "why wrong": a person's label wins over the suggested kind (marked ✎ so the two never mix)."""
    if labels:
        return "✎ " + ", ".join(words(lbl) for lbl in dict.fromkeys(labels))
    return "" if failure is None or (isinstance(failure, float) and math.isnan(failure)) else words(str(failure))


def table_of(df: pd.DataFrame, labels: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Store page → the table users read (plain text cells; Gradio shows them as text, not HTML)."""
    labels = labels or {}
    if df.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    return pd.DataFrame({
        "when": [when(t) for t in df["created_at"]], "method": df["policy"].map(method_name),
        "question": df["question"].map(lambda q: shorten(q, 90)),
        "answer": df["answer"].fillna("").map(lambda a: shorten(a, 40)),
        "gold": df["gold"].map(lambda g: shorten(" | ".join(g or []), 40)),
        "EM": df["em"].map(lambda v: "" if pd.isna(v) else f"{v:.0f}"),
        "F1": df["f1"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}"),
        "why wrong": [why_wrong(f, labels.get(i)) for f, i in zip(df["failure"], df["id"])],
        "$": df["cost_usd"].map(money), "calls": df["calls"], "α": df["alpha"].map(lambda v: f"{v:g}"),
        "dataset": df["dataset"].fillna(""), "status": df["status"], "id": df["id"].str.slice(0, 12)})


def page(store: TraceStore, f: SessionFilter, sort: str, page_no: int) -> tuple[pd.DataFrame, list[str], str]:
    col, desc = SORTS.get(sort, SORTS["newest"])
    pg = store.list_sessions(f, sort=col, desc=desc, page=max(0, page_no), page_size=PAGE_SIZE)
    first = page_no * PAGE_SIZE
    n = len(pg.rows)
    info = (f"sessions {first + 1}–{first + n} of {pg.total_text}" if n else
            f"no sessions on this page ({pg.total_text} match)")
    return table_of(pg.rows, store.labels_of(pg.ids)), pg.ids, info


def summary(store: TraceStore, f: SessionFilter) -> tuple[Any, Any, Any]:
    pg = store.list_sessions(f, page_size=SUMMARY_MAX, count_limit=SUMMARY_MAX + 1)
    df, total = pg.rows, pg.total
    usage = usage_by_model(store, list(df["id"])) if not df.empty else {}
    fig1 = charts.cost_vs_correct(df)
    if total > SUMMARY_MAX:
        fig1.update_layout(title=f"Cost vs correctness (newest {SUMMARY_MAX:,} of {total - 1:,}+ sessions)")
    return fig1, charts.model_share(usage), charts.em_by_dataset(df)


EXPORT_DIR = Path(tempfile.gettempdir()) / f"router-studio-exports-{os.getuid()}"
EXPORT_KEEP_S = 600  # a download link lives this long; older export files are deleted


EXPORT_KEEP_FILES = 20  # at most this many export files at once: a new export removes the oldest beyond it
EXPORT_KEEP_BYTES = 200 << 20  # and the folder stays under this size (anyone who can open the page can export)


def visitor_text(store: TraceStore, e: BaseException) -> str:
    """An error as a visitor may read it: the server's database location never shows in the page."""
    return err_text(e).replace(store.where, "this store")


def clean_exports(max_age_s: float = EXPORT_KEEP_S, now: float | None = None, keep: int = EXPORT_KEEP_FILES,
                  keep_bytes: int = EXPORT_KEEP_BYTES) -> int:
    """Delete export files older than `max_age_s`, then the oldest beyond `keep` files or `keep_bytes` in all
    (each new export sweeps before it writes; the app sweeps at exit). Returns how many were deleted."""
    now = time.time() if now is None else now
    files = []
    for p in EXPORT_DIR.glob("router-studio-*"):
        try:
            if p.is_file():
                st = p.stat()
                files.append((st.st_mtime, st.st_size, p))
        except OSError:
            continue
    files.sort(reverse=True)  # newest first
    n, kept, size = 0, 0, 0
    for mtime, nbytes, p in files:
        if now - mtime < max_age_s and kept < keep and size + nbytes <= keep_bytes:
            kept, size = kept + 1, size + nbytes
            continue
        try:
            p.unlink()
            n += 1
        except OSError:
            continue
    return n


# Scrolls the replay's header (which also carries the message for an unknown id) to the top of the window once it is
# shown, and again twice while the page settles: the tab switch, the Explorer's first page and plotly's late load move
# the layout for about a second after a replay opens, and one early scroll was left ~1,700 px short.
SCROLL_TO_REPLAY = """() => new Promise(done => {
  let tries = 0, scrolled = 0;
  const go = () => {
    const h = document.getElementById('rs-replay-header');
    const ready = h && h.offsetParent !== null && h.innerText.trim() !== '';
    if (ready) { h.scrollIntoView({block: 'start'}); scrolled++; }
    if (++tries < 30 && scrolled < 3) setTimeout(go, ready ? 350 : 120); else done([]);
  };
  go();
})"""


def export_file(store: TraceStore, f: SessionFilter, fmt: str) -> str:
    """Write the filtered set to a new file for download (JSONL with steps and annotations, or a CSV of
    sessions); files older than EXPORT_KEEP_S are removed on the way."""
    EXPORT_DIR.mkdir(mode=0o700, exist_ok=True)
    clean_exports(keep=EXPORT_KEEP_FILES - 1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fd, path = tempfile.mkstemp(dir=EXPORT_DIR, prefix=f"router-studio-{stamp}-", suffix=f".{fmt}")
    os.close(fd)

    def write(out) -> None:
        if fmt == "jsonl":
            store.export_jsonl(out, f)
        else:
            write_csv(store, out, f)
    try:
        write_new_file(path, write)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    return path


def load_examples(store: TraceStore) -> str:
    """Import the shipped example sessions (real runs of the embedded default); idempotent."""
    with open(EXAMPLES_FILE, "rb") as f:
        rep = store.import_jsonl(f, source=EXAMPLES_FILE.name)
    return f"Example sessions: {rep.summary()}."


def export_page(store: TraceStore, session_id: str) -> str:
    """A stored session as a standalone HTML page in the export folder (swept like the other exports)."""
    from .export_html import session_page
    try:
        sid = full_session_id(store, session_id, MIN_PREFIX)
        sess, steps, notes = store.load_session(sid)
    except KeyError as e:
        raise KeyError(visitor_text(store, e)) from None
    EXPORT_DIR.mkdir(mode=0o700, exist_ok=True)
    clean_exports(keep=EXPORT_KEEP_FILES - 1)
    path = EXPORT_DIR / f"router-studio-session-{sid[:12]}-{time.strftime('%Y%m%d-%H%M%S')}.html"
    write_new_file(path, lambda f: f.write(session_page(sess, steps, notes)))
    return str(path)


@dataclass
class Replay:
    """One stored session, drawn at step k with the same renderers and charts as the live run."""

    session: dict[str, Any]
    steps: list[Step]
    annotations: list[dict[str, Any]]
    training: list[dict[str, Any]] = field(default_factory=list)  # what training runs did with it (kept/dropped)

    @classmethod
    def load(cls, store: TraceStore, session_id: str) -> "Replay":
        sid = (session_id or "").strip()
        if not sid:
            raise KeyError("type or pick a session id first")
        try:
            sid = full_session_id(store, sid, MIN_PREFIX)  # the whole id, or a unique prefix of 12 characters
            s, steps, ann = store.load_session(sid)
        except KeyError as e:
            raise KeyError(visitor_text(store, e)) from None
        return cls(s, steps, ann, training_of_session(store, sid))

    @property
    def models(self) -> list[str]:
        return [m["name"] for m in (self.session.get("pool") or {}).get("models", [])]

    def at(self, k: int) -> tuple[list[dict], str, Any, Any, Any]:
        """The first k steps with the live renderers: messages, graph, timeline, cost and choice charts."""
        shown = self.steps[:max(0, min(k, len(self.steps)))]
        gold = self.session.get("gold") or []
        return (session_messages(self.session["question"], shown, gold=gold, target="replay"),
                graph_html(graph_of(self.session["question"], shown, gold, float(self.session["alpha"])), "replay"),
                charts.timeline(shown, self.models), charts.cost_by_model([("this session", shown)]),
                charts.choices(shown))

    def caption(self, k: int) -> str:
        """Lesson mode: the caption of the k-th step shown (k = 0: what the class is about to see), as HTML
        for the caption panel: it quotes the question, sub-questions and replies, so it is escaped here."""
        if k <= 0 or not self.steps:
            text = (f"The question: “{self.session['question']}”. Press → (or Forward) to watch the router "
                    f"work on it one step at a time.")
        else:
            text = captions(self.steps, self.session)[min(k, len(self.steps)) - 1]
        return f'<p class="rs-caption-text">{esc(text)}</p>'
    def header(self) -> str:
        s = self.session
        gold = " | ".join(s.get("gold") or []) or "—"
        em = "—" if s.get("em") is None else f"{s['em']:.0f}"
        return (f'<div class="rs-summary"><b>{esc(s["question"])}</b><br>answer {esc(s.get("answer") or "(none)")} · '
                f"gold {esc(gold)} · EM {em} · {money(s.get('cost_usd') or 0)} · {s.get('calls')} call(s) · "
                f"α {s['alpha']:g} · {esc(s['status'])} · policy {esc(s['policy'])} · pool {esc(s['pool_name'])} · "
                f"<code>{esc(s['id'])}</code>{self._why()}{choice_line(s)}{self._trained()}"
                f"{rules_details(s, self.steps)}</div>")

    def _trained(self) -> str:
        """A trajectory of a training run: kept or dropped at each training α, with its reward's terms."""
        return "".join(f'<br><span class="rs-trained">training run <b>{esc(t["run_name"])}</b>: '
                       f"{esc(reward_terms(t))}</span>" for t in self.training)

    def _why(self) -> str:
        """Why it is wrong: the suggested kind, and apart from it the labels people gave (which win)."""
        kind = self.session.get("failure")
        labels = list(dict.fromkeys(a["label"] for a in self.annotations))
        out = ""
        if kind:
            out += f"<br>why wrong (suggested): <b>{esc(words(kind))}</b> — {esc(kind_text(kind, self.session.get('policy') or ''))}"
        if labels:
            over = " (over the suggestion)" if kind else ""
            out += f"<br>labelled by a person: <b>{esc(', '.join(words(x) for x in labels))}</b>{over}"
        return out

    def annotation_table(self) -> pd.DataFrame:
        rows = [{"when": when(a["created_at"]), "step": a["step_idx"],
                 "label": a["label"], "note": a["note"]} for a in self.annotations]
        return pd.DataFrame(rows, columns=["when", "step", "label", "note"])


def build(store: TraceStore) -> dict[str, Any]:
    """The Explorer tab (inside a gr.Tab); returns the handles the app wires to deep links."""
    values = distinct_values(store)
    with gr.Row():
        text = gr.Textbox(label="Text in question or answer", min_width=200, elem_id="rs-f-text")
        dataset = gr.Dropdown([""] + values["datasets"], value="", label="Dataset", allow_custom_value=True,
                              min_width=140, elem_id="rs-f-dataset")
        method = gr.Dropdown([""] + values["policies"], value="", label="Method", allow_custom_value=True,
                             min_width=160, elem_id="rs-f-method")
        correct = gr.Radio(["any", "correct", "wrong"], value="any", label="Correct", min_width=200)
        failure = gr.Dropdown(word_choices(KINDS, blank=True), value="", label="Why wrong", min_width=130, elem_id="rs-f-failure")
        model = gr.Dropdown([""] + values["models"], value="", label="Model used", allow_custom_value=True,
                            min_width=140, elem_id="rs-f-model")
        status = gr.Dropdown(STATUSES, value="", label="Status", min_width=120)
    with gr.Row():
        label = gr.Dropdown(word_choices(LABELS, blank=True), value="", label="Label", min_width=140)
        # Text boxes, not gr.Number: an empty box must mean "no bound", and Number sends 0.
        a_min = gr.Textbox(label="α min", placeholder="any", min_width=90, elem_id="rs-f-amin")
        a_max = gr.Textbox(label="α max", placeholder="any", min_width=90, elem_id="rs-f-amax")
        c_min = gr.Textbox(label="$ min", placeholder="any", min_width=90, elem_id="rs-f-cmin")
        c_max = gr.Textbox(label="$ max", placeholder="any", min_width=90, elem_id="rs-f-cmax")
        calls = gr.Textbox(label="Calls", placeholder="any", min_width=70, elem_id="rs-f-calls")
        gold_box = gr.Textbox(label="Gold has", placeholder="any", min_width=100, elem_id="rs-f-gold")
        run_id = gr.Dropdown([""] + values["run_ids"], value="", label="Eval run", allow_custom_value=True, min_width=140)
        sort = gr.Dropdown(list(SORTS), value="newest", label="Sort", min_width=110)
        page_prev = gr.Button("◀ Prev", size="sm", min_width=70, elem_id="rs-page-prev")
        # no `minimum`: Gradio would refuse 0 with bare "Error" badges; page_number() says what is wrong instead
        page_no = gr.Number(value=1, label="Page", precision=0, min_width=80, elem_id="rs-page-no")
        page_next = gr.Button("Next ▶", size="sm", min_width=70, elem_id="rs-page-next")
        search = gr.Button("Search", variant="primary", elem_id="rs-search", min_width=90)
        examples = gr.Button("Load example sessions", elem_id="rs-load-examples", min_width=120,
                             visible=EXAMPLES_FILE.exists())
    info = gr.Markdown(elem_id="rs-page-info")
    table = gr.Dataframe(headers=TABLE_COLUMNS, interactive=False, wrap=True, elem_id="rs-table", max_height=420,
                         datatype="str", column_widths=TABLE_WIDTHS)
    ids = gr.State([])
    with gr.Accordion("Why the wrong answers are wrong — suggested kinds; click a count to list those sessions",
                      open=True, elem_id="rs-breakdown-box"):
        with gr.Row():
            bd_by = gr.Radio(list(BY), value="method", label="Break down by", elem_id="rs-breakdown-by", scale=1)
            bd_info = gr.Markdown(elem_id="rs-breakdown-info")
        bd_table = gr.Dataframe(interactive=False, elem_id="rs-breakdown", datatype="str", wrap=True)
        bd_methods = gr.State([])
    with gr.Accordion("Summary of the filtered set", open=False):
        with gr.Row():
            s1, s2, s3 = gr.Plot(min_width=280), gr.Plot(min_width=280), gr.Plot(min_width=280)
    with gr.Accordion("Export the filtered set", open=False):
        with gr.Row():
            exp_jsonl = gr.Button("JSONL (sessions with steps and annotations)", size="sm")
            exp_csv = gr.Button("CSV (one row per session)", size="sm")
        exp_file = gr.File(label="Download", interactive=False, height=80)
    with gr.Accordion("Label the filtered set", open=False):
        with gr.Row():
            bulk_label = gr.Dropdown(word_choices(LABELS), value=LABELS[0], label="Label", elem_id="rs-bulk-label",
                                     min_width=160)
            bulk_note = gr.Textbox(label="Note", elem_id="rs-bulk-note", min_width=240, scale=3)
            bulk_btn = gr.Button(f"Label every matching session (up to {BULK_MAX:,})", elem_id="rs-bulk-save",
                                 min_width=200)
        bulk_msg = gr.Markdown(elem_id="rs-bulk-msg")

    gr.Markdown("### Replay")
    with gr.Row():
        open_id = gr.Textbox(label="Session id (or the first 12 characters)", elem_id="rs-open-id", min_width=240)
        open_btn = gr.Button("Open", elem_id="rs-open", min_width=80)
        html_btn = gr.Button("Export as a page", elem_id="rs-export-html", min_width=120)
    html_file = gr.File(label="Standalone page (opens offline)", interactive=False, height=80, visible=False,
                        elem_id="rs-export-html-file")
    header = gr.HTML(elem_id="rs-replay-header")
    with gr.Row():
        lesson = gr.Checkbox(label="Lesson mode (one step at a time, ← →)", value=False, elem_id="rs-lesson",
                             min_width=160)
        prev_btn = gr.Button("◀ Back", elem_id="rs-prev", size="sm", min_width=60)
        # a count beside steps numbered from 0 ("Steps shown 1" next to "Step 0") read as an off-by-one
        k = gr.Slider(0, 1, value=0, step=1, label="Steps shown (from step 0)", elem_id="rs-step", min_width=200)
        next_btn = gr.Button("Forward ▶", elem_id="rs-next", size="sm", min_width=60)
        all_btn = gr.Button("Show all", size="sm", min_width=60)
    caption = gr.HTML(visible=False, elem_id="rs-caption")
    r_graph = gr.HTML(elem_id="decomposition-replay", elem_classes=["rs-decomposition"])
    current = gr.State("")
    chat, p1, p2, p3 = steps_and_charts("Replay", "rs-replay-chat", ("rs-r-timeline", "rs-r-cost", "rs-r-choice"))
    with gr.Accordion("Annotate", open=True):
        with gr.Row():
            ann_label = gr.Dropdown(word_choices(LABELS), value=LABELS[0], label="Label", elem_id="rs-ann-label", min_width=160)
            ann_step = gr.Textbox(label="Step (empty = whole session)", placeholder="whole session",
                                  elem_id="rs-ann-step", min_width=120)
            ann_note = gr.Textbox(label="Note", elem_id="rs-ann-note", min_width=240, scale=3)
            ann_btn = gr.Button("Save annotation", elem_id="rs-ann-save", min_width=120)
        ann_msg = gr.Markdown(elem_id="rs-ann-msg")
        ann_table = gr.Dataframe(headers=["when", "step", "label", "note"], interactive=False, datatype="str",
                                 elem_id="rs-ann-table")
    filters = [text, dataset, correct, model, a_min, a_max, c_min, c_max, status, label, run_id, method, failure,
               calls, gold_box]

    def do_search(*vals):
        *fv, sort_v, page_v, by = vals
        try:
            f = make_filter(*fv)
            tbl, page_ids, msg = page(store, f, sort_v, page_number(page_v))
            figs = summary(store, f)
            bd, bd_m, n_wrong = breakdown(store, f, by or "method")
        except (ValueError, KeyError, StoreError) as e:
            gr.Warning(err_text(e))
            return (gr.update(), gr.update(), f"⚠ {esc(err_text(e))}", *(gr.update(),) * 6)
        bd_msg = (f"{n_wrong:,} wrong session(s) in this set" + (" (the newest counted)" if n_wrong >= 5000 else "")
                  if n_wrong else "No wrong sessions in this set.")
        return tbl, page_ids, msg, *figs, bd, bd_m, bd_msg

    def do_cell(bd: pd.DataFrame, bd_m: list[str], by: str, evt: gr.SelectData):
        """A breakdown count clicked: the Explorer lists those sessions (wrong, that kind, that column's value)."""
        row, col = (evt.index if isinstance(evt.index, (list, tuple)) else (evt.index, 0))
        picked = cell_filter(pd.DataFrame(bd), bd_m or [], int(row), int(col))
        if picked is None:
            return (gr.update(),) * 7
        kind, value = picked
        keep = gr.update()
        sets = {"method": (value, keep, keep, keep), "model": (keep, value, keep, keep),
                "hops": (keep, keep, value, keep), "dataset": (keep, keep, keep, value)}[by or "method"]
        return ("wrong", kind, *sets, 1) if value else ("wrong", kind, keep, keep, keep, keep, 1)

    def do_open(sid: str, k_val: float | None = None, lesson_on: bool = False):
        try:
            r = Replay.load(store, sid)
        except (KeyError, ValueError, StoreError) as e:
            return ("", f'<span class="rs-bad">{esc(err_text(e))}</span>', gr.update(), [], gr.update(),
                    gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), "")
        n = len(r.steps)
        shown = 0 if lesson_on else n if k_val is None else int(k_val)
        msgs, g, f1, f2, f3 = r.at(shown)
        return (r.session["id"], r.header(), gr.update(maximum=max(n, 1), value=shown), msgs, g, f1, f2, f3,
                r.annotation_table(), gr.update(value=r.caption(shown), visible=bool(lesson_on)), "")

    def do_step(sid: str, k_val: float, lesson_on: bool):
        if not sid:
            return [], gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
        try:
            r = Replay.load(store, sid)
        except (KeyError, StoreError) as e:
            gr.Warning(err_text(e))
            return (gr.update(),) * 6
        shown = int(k_val or 0)
        return (*r.at(shown), gr.update(value=r.caption(shown), visible=bool(lesson_on)))

    def move(sid: str, k_val: float, delta: int):
        if not sid:
            return gr.update()
        n = len(store.load_steps(sid))
        return max(0, min(n, int(k_val or 0) + delta))

    def do_lesson(sid: str, on: bool):
        """Lesson mode starts from the question alone; leaving it shows every step again."""
        if not sid:
            return gr.update(), gr.update(visible=bool(on), value="Open a session to start the lesson.")
        return (0 if on else len(store.load_steps(sid))), gr.update(visible=bool(on))

    def do_export_html(sid: str):
        if not sid:
            gr.Warning("Open a session first.")
            return gr.update(visible=False)
        try:
            path = export_page(store, sid)
        except (KeyError, StoreError, OSError) as e:
            gr.Warning(err_text(e))
            return gr.update(visible=False)
        return gr.update(value=path, visible=True)

    def do_select(page_ids: list[str], evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not page_ids or row is None or row >= len(page_ids):
            return gr.update()
        return page_ids[row]

    def do_annotate(sid: str, lab: str, step: str, note: str):
        if not sid:
            return "⚠ open a session first", gr.update()
        try:
            step_idx = parse_step(step)
            store.annotate(sid, lab, note or "", step_idx)
        except (KeyError, ValueError, StoreError) as e:
            return f"⚠ {esc(err_text(e))}", gr.update()
        return f"saved **{esc(lab)}**" + (f" on step {step_idx}" if step_idx is not None else ""), \
            Replay.load(store, sid).annotation_table()

    def do_export(fmt: str, *fv):
        try:
            return export_file(store, make_filter(*fv), fmt)
        except (ValueError, StoreError, OSError) as e:
            gr.Warning(err_text(e))
            return None

    outs = [table, ids, info, s1, s2, s3, bd_table, bd_methods, bd_info]
    search_in = filters + [sort, page_no, bd_by]

    def do_bulk(lab: str, note: str, *fv):
        try:
            f = make_filter(*fv)
            pg = store.list_sessions(f, page_size=BULK_MAX, count_limit=BULK_MAX + 1)
            if pg.total > BULK_MAX:
                return f"⚠ {pg.total_text} sessions match: narrow the filters to {BULK_MAX:,} or fewer first"
            n = store.annotate_many(pg.ids, lab, note or "")
        except (ValueError, KeyError, StoreError) as e:
            return f"⚠ {esc(err_text(e))}"
        return f"labelled **{n}** session(s) **{esc(lab)}**"
    bulk_btn.click(do_bulk, [bulk_label, bulk_note, *filters], bulk_msg, api_name=False).then(
        do_search, search_in, outs, api_name=False)

    def turn(page_v: Any, delta: int) -> int:
        try:
            return max(1, page_number(page_v) + 1 + delta)
        except ValueError:
            return 1
    page_prev.click(lambda v: turn(v, -1), page_no, page_no, api_name=False).then(
        do_search, search_in, outs, api_name=False)
    page_next.click(lambda v: turn(v, +1), page_no, page_no, api_name=False).then(
        do_search, search_in, outs, api_name=False)
    # a choice made in a drop-down or the radio updates the table and its count at once (page 1 again);
    # `.input` fires on a person's choice only, not when a breakdown click sets the filters itself
    for choice in (dataset, method, correct, failure, model, status, label, run_id, sort):
        choice.input(lambda: 1, None, page_no, api_name=False).then(
            do_search, search_in, outs, api_name=False)

    def do_examples(*vals):
        try:
            msg = load_examples(store)
        except (StoreError, OSError) as e:
            gr.Warning(err_text(e))
            return (gr.update(),) * len(outs)
        gr.Info(msg)
        return do_search(*vals)
    examples.click(do_examples, search_in, outs, api_name="load_examples")
    search.click(do_search, search_in, outs, api_name="search")
    text.submit(do_search, search_in, outs, api_name=False)
    for box in (a_min, a_max, c_min, c_max, calls, gold_box):  # Enter in any box runs the search
        box.submit(do_search, search_in, outs, api_name=False)
    to_table = "() => { const t = document.getElementById('rs-page-info'); if (t) t.scrollIntoView({block: 'start'}); }"
    bd_table.select(do_cell, [bd_table, bd_methods, bd_by], [correct, failure, method, model, calls, dataset, page_no],
                    api_name=False).then(do_search, search_in, outs, api_name=False).then(None, None, None, js=to_table)
    bd_by.input(do_search, search_in, outs, api_name=False)
    # opening a session also clears the last session's annotation message
    open_outs = [current, header, k, chat, r_graph, p1, p2, p3, ann_table, caption, ann_msg]
    step_outs = [chat, r_graph, p1, p2, p3, caption]
    scroll = SCROLL_TO_REPLAY
    open_btn.click(do_open, [open_id, gr.State(None), lesson], open_outs, api_name="open_session").then(
        None, None, None, js=scroll)
    open_id.submit(do_open, [open_id, gr.State(None), lesson], open_outs, api_name=False).then(
        None, None, None, js=scroll)
    table.select(do_select, ids, open_id, api_name=False).then(
        do_open, [open_id, gr.State(None), lesson], open_outs, api_name=False).then(None, None, None, js=scroll)
    k.release(do_step, [current, k, lesson], step_outs, api_name=False)
    prev_btn.click(lambda s, v: move(s, v, -1), [current, k], k, api_name=False).then(
        do_step, [current, k, lesson], step_outs, api_name=False)
    next_btn.click(lambda s, v: move(s, v, +1), [current, k], k, api_name=False).then(
        do_step, [current, k, lesson], step_outs, api_name=False)
    all_btn.click(lambda s: len(store.load_steps(s)) if s else 0, current, k, api_name=False).then(
        do_step, [current, k, lesson], step_outs, api_name=False)
    lesson.change(do_lesson, [current, lesson], [k, caption], api_name=False).then(
        do_step, [current, k, lesson], step_outs, api_name=False)
    html_btn.click(do_export_html, current, html_file, api_name="export_html")
    ann_btn.click(do_annotate, [current, ann_label, ann_step, ann_note], [ann_msg, ann_table], api_name="annotate")
    exp_jsonl.click(lambda *v: do_export("jsonl", *v), filters, exp_file, api_name=False)
    exp_csv.click(lambda *v: do_export("csv", *v), filters, exp_file, api_name=False)
    def pickers() -> tuple[Any, ...]:
        """The drop-downs' choices as the store holds them now (built once at startup, they went stale: "Model
        used" offered one model after runs had used three)."""
        v = distinct_values(store)
        return tuple(gr.update(choices=[""] + v[key]) for key in ("datasets", "policies", "models", "run_ids"))

    return {"open_id": open_id, "open_outs": open_outs, "open_ins": [open_id, lesson],
            "pickers": pickers, "picker_outs": [dataset, method, model, run_id], "scroll_to_replay": scroll,
            "do_open": lambda sid, on: do_open(sid, None, on),
            "do_search": do_search, "search_inputs": search_in, "search_outs": outs}
