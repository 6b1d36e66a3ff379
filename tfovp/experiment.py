"""Curves of the paper's linear experiments: one model family swept over learning rates
and seeds with `tfovp.train.sweep`, summarized with `tfovp.convergence`, and stored
atomically so that an interrupted figure keeps every finished curve (`CurveStore`).
"""

import dataclasses
import hashlib
import json
import os
import pathlib
import tempfile

import numpy as np

from tfovp import convergence
from tfovp.train import sweep

PAPER_GRID = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1)


@dataclasses.dataclass(frozen=True)
class CurveSpec:
    """One curve: a model family and how it is trained (PAPER Sec. 5).

    update: "gd" (Eq. 4 on the factors), "end_to_end" (Eq. 10 on a linear model) or a
    Keras optimizer name ("adagrad", "adadelta", "adam", "sgd").
    learning_rates: None means the configured grid (best rate selected).
    """

    label: str
    depth: int = 1
    hidden_widths: int = 1
    update: str = "gd"
    initializer: str = "near_zero"
    loss: float = 2.0
    learning_rates: tuple | None = None
    record_end_to_end: bool = False

    def key(self):
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        slug = "".join(c if c.isalnum() else "-" for c in self.label).strip("-").lower()
        return f"{slug}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def record_steps(steps, points=160):
    """Recorded steps: every step up to 100, then log-spaced, plus 100 linear points."""
    dense = np.arange(min(steps, 100) + 1)
    logs = np.geomspace(1, max(steps, 1), points).astype(int)
    linear = np.linspace(0, steps, 101).astype(int)
    return np.unique(np.concatenate([dense, logs, linear, [steps]]))


def _finite_or_none(array):
    return [[None if not np.isfinite(v) else float(v) for v in row] for row in np.asarray(array)]


def run_curve(spec, x, y, optimum, *, steps, grid, seeds, level, reduction="mean",
              dtype="float32", extend_edges=True, progress=False):
    """Sweep one curve over its learning rates x seeds and summarize it.

    Returns a JSON-ready dict: the spec, recorded steps, losses per copy (None after
    divergence), per-seed summaries (best rate, iterations to levels, diverged and
    stalled rates, `at_edge`), and, when a best rate sits on an edge of the grid and
    `extend_edges` is set, the same for the grid extended by one decade on that side.
    """
    rates = list(spec.learning_rates or grid)
    recorded = record_steps(steps)
    result = sweep(
        x, y, rates, steps, depth=spec.depth, hidden_widths=spec.hidden_widths,
        update=spec.update, initializer=spec.initializer, seeds=seeds, loss=spec.loss,
        reduction=reduction, record_steps=recorded, record_end_to_end=spec.record_end_to_end,
        record_balancedness=spec.depth > 1 and spec.update != "end_to_end",
        dtype=dtype, progress=progress,
    )
    record = {
        "spec": dataclasses.asdict(spec),
        "key": spec.key(),
        "steps": recorded.tolist(),
        "learning_rates": result.learning_rates.tolist(),
        "seeds": result.seeds.tolist(),
        "losses": _finite_or_none(result.losses),
        "diverged_at": result.diverged_at.tolist(),
        "elapsed_seconds": result.elapsed,
        "seconds_per_step": result.seconds_per_step,
        "summaries": {},
    }
    if result.end_to_end is not None:
        record["end_to_end"] = result.end_to_end[..., 0].tolist() if result.end_to_end.shape[-1] == 1 \
            else result.end_to_end.tolist()
    record["end_to_end_norm"] = _finite_or_none(result.end_to_end_norm)
    if result.balancedness is not None:
        record["balancedness"] = _finite_or_none(result.balancedness.max(axis=-1))
    for seed in seeds:
        columns = np.flatnonzero(result.seeds == seed)
        record["summaries"][str(seed)] = convergence.summarize_rates(
            recorded, result.losses[:, columns], optimum, result.learning_rates[columns],
            result.diverged[columns], level)
    edges = {s["at_edge"] for s in record["summaries"].values()} - {None}
    if extend_edges and spec.learning_rates is None and edges:
        wider = rates
        for side in sorted(edges):
            wider = convergence.extend_grid(wider, side)
        extended = dataclasses.replace(spec, learning_rates=tuple(wider))
        record["extended"] = run_curve(
            extended, x, y, optimum, steps=steps, grid=grid, seeds=seeds, level=level,
            reduction=reduction, dtype=dtype, extend_edges=False, progress=progress)
    return record


def selected_curve(record, seed=None):
    """(learning rate, steps, losses) of the best rate of one seed (None if all diverged)."""
    seed = str(record["seeds"][0] if seed is None else seed)
    summary = record["summaries"][seed]
    if summary["best_index"] is None:
        return None
    columns = [i for i, s in enumerate(record["seeds"]) if str(s) == seed]
    column = columns[summary["best_index"]]
    losses = np.array([np.nan if row[column] is None else row[column] for row in record["losses"]])
    return summary["best_learning_rate"], np.asarray(record["steps"]), losses


class CurveStore:
    """Finished curves as one JSON file each under `folder`, written atomically."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)

    def path(self, key):
        return self.folder / f"{key}.json"

    def get(self, key):
        path = self.path(key)
        if not path.is_file():
            return None
        with open(path) as handle:
            return json.load(handle)

    def put(self, key, record):
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{key}.", suffix=".partial", dir=self.folder)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(record, handle)
            os.replace(temporary, self.path(key))
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
