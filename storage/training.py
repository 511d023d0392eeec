"""Training runs in the trace store: `app.py train` writes its selection, each optimizer step and its card as it goes,
so the Training tab follows a run started from the terminal while it runs, and shows it whole afterwards.

Plain dicts in, plain dicts out: the store knows nothing of how a trajectory was chosen (training/ does).
A run left `running` by a process that died is shown `interrupted` (the same rule as sessions: same host, that pid
gone or reused).
"""
from __future__ import annotations

import os
import socket
import time
from typing import Any, Iterable

from sqlalchemy import delete, insert, select, update

from .models import TrainingPointRow, TrainingRunRow, TrainingTrajectoryRow
from .store import TraceStore, _proc_start

RUN_STATUSES = ("running", "done", "error", "interrupted")
POINT_FIELDS = ("step", "epoch", "loss", "learning_rate", "tokens", "seconds")
TRAJECTORY_FIELDS = ("session_id", "alpha", "reason", "kept", "reward", "em", "r_cost", "format_ok", "raw_cost",
                     "source_alpha", "source_run", "policy", "dataset", "item_id", "question", "answer", "models")


def start_run(store: TraceStore, *, run_id: str, name: str, base: str, out_dir: str | None, source_runs: list[str],
              alphas: list[float], config: dict[str, Any], max_steps: int | None = None, fresh: bool = False) -> str:
    """A new run row, or the same id started again: a resumed run keeps its points, a `fresh` one starts its curve
    anew."""
    now = time.time()
    with store._tx() as conn:
        held = conn.execute(select(TrainingRunRow.id).where(TrainingRunRow.id == run_id)).first()
        values = dict(name=name, updated_at=now, status="running", base=base, out_dir=out_dir,
                      source_runs=list(source_runs), alphas=[float(a) for a in alphas], config=config,
                      max_steps=max_steps, error=None, host=socket.gethostname(), pid=os.getpid(),
                      card=None)  # a run started again shows no card until it ends again
        if held:
            conn.execute(update(TrainingRunRow).where(TrainingRunRow.id == run_id).values(**values))
            if fresh:
                conn.execute(delete(TrainingPointRow).where(TrainingPointRow.run_id == run_id))
        else:
            conn.execute(insert(TrainingRunRow).values(id=run_id, created_at=now, **values))
    return run_id


def record_selection(store: TraceStore, run_id: str, rows: Iterable[dict[str, Any]]) -> int:
    """The trajectories at each training α, kept or dropped (replaces what the run held: the same selection)."""
    data = [{"run_id": run_id, **{k: r[k] for k in TRAJECTORY_FIELDS}} for r in rows]
    with store._tx() as conn:
        conn.execute(delete(TrainingTrajectoryRow).where(TrainingTrajectoryRow.run_id == run_id))
        if data:
            conn.execute(insert(TrainingTrajectoryRow), data)
    return len(data)


def add_point(store: TraceStore, run_id: str, point: dict[str, Any], max_steps: int | None = None) -> None:
    """One optimizer step (a resumed run may write a step again: the later write wins)."""
    row = {k: point[k] for k in POINT_FIELDS}
    with store._tx() as conn:
        conn.execute(delete(TrainingPointRow).where(TrainingPointRow.run_id == run_id,
                                                    TrainingPointRow.step == row["step"]))
        conn.execute(insert(TrainingPointRow).values(run_id=run_id, **row))
        extra = {"max_steps": max_steps} if max_steps else {}
        conn.execute(update(TrainingRunRow).where(TrainingRunRow.id == run_id).values(updated_at=time.time(),
                                                                                         **extra))


def finish_run(store: TraceStore, run_id: str, *, status: str, card: dict[str, Any] | None = None,
               error: str | None = None) -> None:
    if status not in RUN_STATUSES:
        raise ValueError(f"status: '{status}' is not one of {', '.join(RUN_STATUSES)}")
    with store._tx() as conn:
        conn.execute(update(TrainingRunRow).where(TrainingRunRow.id == run_id).values(
            status=status, card=card, error=error, updated_at=time.time()))


def _alive(host: str | None, pid: int | None) -> bool:
    if host != socket.gethostname():
        return True  # another machine's run: trust its status
    return pid is not None and _proc_start(pid) is not None


def list_runs(store: TraceStore) -> list[dict[str, Any]]:
    """Every training run, newest first, with its last step; a dead writer's `running` reads `interrupted`."""
    with store.read() as conn:
        runs = [dict(r._mapping) for r in conn.execute(select(TrainingRunRow).order_by(
            TrainingRunRow.created_at.desc()))]
        last = {r.run_id: dict(r._mapping) for r in conn.execute(
            select(TrainingPointRow).order_by(TrainingPointRow.run_id, TrainingPointRow.step))}
    for r in runs:
        if r["status"] == "running" and not _alive(r["host"], r["pid"]):
            r["status"] = "interrupted"
        r["last"] = last.get(r["id"])
    return runs


def get_run(store: TraceStore, run_id: str) -> dict[str, Any]:
    for r in list_runs(store):
        if r["id"] == run_id:
            return r
    raise KeyError(f"no training run '{run_id}' in {store.where}")


def points(store: TraceStore, run_id: str) -> list[dict[str, Any]]:
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(TrainingPointRow).where(TrainingPointRow.run_id == run_id).order_by(TrainingPointRow.step))]


def trajectories(store: TraceStore, run_id: str, *, kept: bool | None = None, reason: str | None = None,
                 alpha: float | None = None, dataset: str | None = None) -> list[dict[str, Any]]:
    T = TrainingTrajectoryRow
    q = select(T).where(T.run_id == run_id)
    if kept is not None:
        q = q.where(T.kept == kept)
    if reason:
        q = q.where(T.reason == reason)
    if alpha is not None:
        q = q.where(T.alpha == float(alpha))
    if dataset:
        q = q.where(T.dataset == dataset)
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(q.order_by(T.alpha, T.dataset, T.item_id, T.session_id))]


def of_session(store: TraceStore, session_id: str) -> list[dict[str, Any]]:
    """What training runs did with one stored session (kept or dropped at each α), with each run's name."""
    T, R = TrainingTrajectoryRow, TrainingRunRow
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(T, R.name.label("run_name")).join(R, R.id == T.run_id).where(T.session_id == session_id)
            .order_by(R.created_at, T.alpha))]


# ---------------------------------------------------------------------------------------------- a run as a file

BUNDLE_FORMAT = "router-studio-training-run/1"
_RUN_FIELDS = ("id", "name", "created_at", "updated_at", "status", "base", "source_runs", "alphas", "config",
               "max_steps", "card", "error")


def export_run(store: TraceStore, run_id: str) -> dict[str, Any]:
    """A finished run as plain JSON (its row, curve and selection; no host, pid or local folder): shipped beside an
    adapter so a fresh store can show how it was trained. Its sessions travel as the store's JSONL export."""
    r = get_run(store, run_id)
    return {"format": BUNDLE_FORMAT, "run": {k: r[k] for k in _RUN_FIELDS},
            "points": [{k: p[k] for k in POINT_FIELDS}
                       for p in points(store, run_id)],
            "trajectories": [{k: t[k] for k in TRAJECTORY_FIELDS} for t in trajectories(store, run_id)]}


def import_run(store: TraceStore, data: Any, *, out_dir: str | None = None, where: str = "training run") -> str:
    """Store an exported run (again: the same id is replaced whole). ValueError names the first bad field."""
    check_run(data, where)
    run, pts, trajs = data["run"], data["points"], data["trajectories"]
    # no process trains an imported run here: one exported mid-run reads interrupted (not a run to poll forever)
    status = "interrupted" if run["status"] == "running" else run["status"]
    rid = str(run["id"])
    with store._tx() as conn:
        conn.execute(delete(TrainingRunRow).where(TrainingRunRow.id == rid))
        conn.execute(delete(TrainingPointRow).where(TrainingPointRow.run_id == rid))
        conn.execute(delete(TrainingTrajectoryRow).where(TrainingTrajectoryRow.run_id == rid))
        conn.execute(insert(TrainingRunRow).values(**{k: run[k] for k in _RUN_FIELDS if k != "status"}, status=status,
                                                   out_dir=out_dir, host=None, pid=None))
        if pts:
            conn.execute(insert(TrainingPointRow), [{"run_id": rid, **{k: p[k] for k in POINT_FIELDS}} for p in pts])
        if trajs:
            conn.execute(insert(TrainingTrajectoryRow), [{"run_id": rid, **{k: t[k] for k in TRAJECTORY_FIELDS}}
                                                         for t in trajs])
    return rid


def check_run(data: Any, where: str = "training run") -> None:
    """An exported run's shape, before anything is stored: ValueError names the first bad field."""
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"{where}: not a training run export (format must be '{BUNDLE_FORMAT}')")
    run = data.get("run")
    if not isinstance(run, dict) or any(k not in run for k in _RUN_FIELDS):
        missing = [k for k in _RUN_FIELDS if not isinstance(run, dict) or k not in run]
        raise ValueError(f"{where}: run: missing field(s) {', '.join(missing)}")
    if run["status"] not in RUN_STATUSES:
        raise ValueError(f"{where}: run.status: '{run['status']}' is not one of {', '.join(RUN_STATUSES)}")
    pts, trajs = data.get("points"), data.get("trajectories")
    for name, rows, fields in (("points", pts, POINT_FIELDS),
                               ("trajectories", trajs, TRAJECTORY_FIELDS)):
        if not isinstance(rows, list):
            raise ValueError(f"{where}: {name} must be a list")
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or any(k not in row for k in fields):
                raise ValueError(f"{where}: {name}[{i}]: missing field(s) "
                                 f"{', '.join(k for k in fields if not isinstance(row, dict) or k not in row)}")
        key = "step" if name == "points" else ("session_id", "alpha")
        seen = [row[key] if isinstance(key, str) else tuple(row[k] for k in key) for row in rows]
        if len(set(map(str, seen))) != len(seen):
            raise ValueError(f"{where}: {name}: a {' and '.join([key] if isinstance(key, str) else key)} "
                             "appears twice")
    for name, rows, numeric in (("points", pts, POINT_FIELDS),
                                ("trajectories", trajs, ("alpha", "reward", "em", "r_cost", "raw_cost"))):
        for i, row in enumerate(rows):
            bad = [k for k in numeric if not isinstance(row[k], (int, float)) or isinstance(row[k], bool)]
            if bad:
                raise ValueError(f"{where}: {name}[{i}].{bad[0]}: must be a number")
    kinds = {"id": str, "name": str, "base": str, "status": str, "created_at": (int, float),
             "updated_at": (int, float), "source_runs": list, "alphas": list, "config": dict,
             "max_steps": (int, type(None)), "card": (dict, type(None)), "error": (str, type(None))}
    for k, kind in kinds.items():
        if k in run and (not isinstance(run[k], kind) or isinstance(run[k], bool)):
            raise ValueError(f"{where}: run.{k}: {type(run[k]).__name__} is not what a run holds there")
    if any(not isinstance(a, (int, float)) or isinstance(a, bool) for a in run["alphas"]):
        raise ValueError(f"{where}: run.alphas: every α must be a number")
