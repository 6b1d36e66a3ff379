"""A linear figure's measures read back from its committed outputs, so that its claims can
be judged again by the current criteria without training (`reproduce.rejudge`).

What a figure's claims read (`common.Measures`) is in its files: the speed-up
comparisons (`criteria.Comparison`, tuned rates and grid) and each family's best rate
with its iterations to every level in <figure>.json; each grid rate's final relative
excess in the JSON too (runs from 2026-12-06 on), else in <figure>_runs.csv and
<figure>.csv (every run's last finite point is written; for a run that did not diverge,
the budget's last step). The rebuilt
`convergence.SeedSummary` holds iterations only for the best rate, as the JSON does: a
criterion that asked another rate for them would raise KeyError, never read a guess.
"""

import json
import pathlib

import numpy as np

from reproduce.common import Measures
from reproduce.study import outputs
from reproduce.study.criteria import Comparison
from tfovp import convergence

RATE_RTOL = 1e-6  # a rate as the run table prints it (8 significant digits) against the JSON's


def load_config(config_cls, data):
    """`config_cls` with the fields a figure's JSON recorded (lists as tuples); fields it
    lacks keep their defaults, fields the class lacks are ignored."""
    fields = config_cls.__dataclass_fields__
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data["config"].items() if k in fields}
    return config_cls(**values)


class StoredFigure(Measures):
    """The `common.Measures` of a figure's committed run: <stem>.json, <stem>_runs.csv and
    <stem>.csv, with `config` the run's settings (`load_config`)."""

    def __init__(self, stem, config):
        super().__init__(config)
        self.stem = pathlib.Path(stem)
        self.data = json.loads(self.stem.with_suffix(".json").read_text())
        self.comparisons = {
            name: Comparison.from_json(record, name) for name, record in self.data.get("speedup", {}).items()
        }
        self._finals = None

    def summary(self, label, p):
        key = f"{label} (l{p:g})"
        entry = self.data["curves"][key]
        rates = [tuple(r) for r in entry["rates"]] if "rates" in entry else self._grid_finals(label, p)
        if not rates:
            raise KeyError(f"{self.stem}: the run table has no grid rate of {key}")
        best = entry["best_learning_rate"]
        diverged = entry["diverged_rates"]
        summaries, best_index = [], None
        for index, (rate, final) in enumerate(rates):
            is_diverged = any(np.isclose(rate, d, rtol=RATE_RTOL, atol=0.0) for d in diverged)
            is_best = best is not None and np.isclose(rate, best, rtol=RATE_RTOL, atol=0.0)
            iterations = {}
            if is_best:
                best_index = index
                iterations = {float(level): value for level, value in entry["iterations_to_levels"].items()}
            summaries.append(
                convergence.RateSummary(rate, bool(is_diverged), None if is_diverged else final, iterations)
            )
        if best is not None and best_index is None:
            raise KeyError(f"{self.stem}: the best rate {best:g} of {key} is not in its run table")
        return convergence.SeedSummary(float(entry["level"]), tuple(summaries), best_index, entry["at_edge"])

    def _grid_finals(self, label, p):
        """[(rate, final relative excess)] of the family's grid rates in grid order."""
        if self._finals is None:
            points = outputs.read_curves(self.stem.with_suffix(".csv"))
            grid = points[(points["tuning"] == "grid") & (points["seed"] == self.config.seed)]
            self._finals = grid.sort_values(["run", "step"]).groupby("run", sort=True).last()
        rows = self._finals[(self._finals["curve"] == label) & np.isclose(self._finals["loss_p"], p)]
        return [(float(r.learning_rate), float(r.relative_excess)) for r in rows.itertuples()]
