"""A training run as files beside its adapter (training_run.json + its sessions as trajectories.jsonl), and loading
them into a store: how the shipped adapter's run reaches a fresh clone's Training tab."""
from __future__ import annotations

import json
import os
from pathlib import Path

from router_core.paths import ASSETS
from storage import SessionFilter, TraceStore
from storage import training as stored
from storage.files import write_new_file

RUN_FILE, SESSIONS_FILE = "training_run.json", "trajectories.jsonl"
SHIPPED_DIR = ASSETS / "adapters"


def write_bundle(store: TraceStore, run_id: str, out_dir: str | Path) -> list[Path]:
    """Both files written beside each other first, then moved over any earlier pair: a failed export leaves the
    previous bundle whole (they are the run's data, written again when asked again, not a user's files)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = stored.export_run(store, run_id)
    ids = sorted({t["session_id"] for t in data["trajectories"]})
    parts = [out / f".{RUN_FILE}.part", out / f".{SESSIONS_FILE}.part"]
    try:
        for p in parts:
            p.unlink(missing_ok=True)
        write_new_file(parts[0], lambda f: f.write(json.dumps(data, indent=1, sort_keys=True)))
        write_new_file(parts[1], lambda f: store.export_jsonl(f, SessionFilter(ids=ids)))
        for p, name in zip(parts, (RUN_FILE, SESSIONS_FILE)):
            os.replace(p, out / name)
    finally:
        for p in parts:
            p.unlink(missing_ok=True)
    return [(out / RUN_FILE).resolve(), (out / SESSIONS_FILE).resolve()]


def shipped_bundles() -> list[Path]:
    """Folders under assets/adapters that carry a training run."""
    return sorted(p.parent for p in SHIPPED_DIR.glob(f"*/{RUN_FILE}"))


def load_bundle(store: TraceStore, folder: str | Path) -> tuple[str, str]:
    """Import a bundle's sessions (those present are kept) and its run; (run id, what the import did)."""
    folder = Path(folder)
    run_file, ses_file = folder / RUN_FILE, folder / SESSIONS_FILE
    try:
        data = json.loads(run_file.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"{run_file}: cannot read ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{run_file}: not JSON ({e})") from None
    stored.check_run(data, str(run_file))  # a bad run file stores nothing, not its sessions alone
    try:
        with open(ses_file, "rb") as fh:
            rep = store.import_jsonl(fh, source=str(ses_file))
    except OSError as e:
        raise ValueError(f"{ses_file}: cannot read ({e.strerror or e})") from None
    rid = stored.import_run(store, data, out_dir=str(folder.resolve()), where=str(run_file))
    return rid, rep.summary()
