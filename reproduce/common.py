"""What every figure script shares: the common settings and their flags, the data and
its optimum, resumable curves, and the outputs (CSV, JSON, PNG/PDF, TensorBoard).

Settings the paper leaves open are fields here with documented defaults; results/README.md
records the choices of the committed runs.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

from tfovp import experiment, tensorboard_log
from tfovp.convergence import relative_excess
from tfovp.datasets import PRESETS, REGRESSION_LOADERS, load_regression
from tfovp.experiment import PAPER_GRID, CurveSpec, CurveStore
from tfovp.optimum import optimal_loss


@dataclasses.dataclass
class Common:
    dataset: str = "ethanol"  # "ethanol" (the paper's) or "abalone"
    preprocessing: str = "standardize"  # tfovp.datasets.PRESETS; not stated in the paper
    loss_reduction: str = "mean"  # l_p loss averaged ("mean") or summed ("sum") over examples
    steps: int = 20_000  # iterations per curve; not stated in the paper for Figs. 2-4
    lrs: tuple = PAPER_GRID  # learning-rate grid (PAPER Sec. 5)
    seed: int = 0  # initialization seed
    dtype: str = "float32"  # training precision; optima are float64
    level: float = 0.2  # relative excess loss (L - L*)/(L0 - L*) that counts as converged
    data_dir: str | None = None  # folder searched before $TFOVP_DATA_DIR
    tensorboard: str | None = None  # write TensorBoard scalars here
    resume: bool = False  # reuse curves finished by an earlier (interrupted) run
    quick: bool = False  # tiny run for smoke tests: few steps, three learning rates


QUICK = {"steps": 300, "lrs": (1e-3, 1e-2, 1e-1)}


def _parse_tuple(text):
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    return values


def build_parser(config_cls, description):
    """Flags for every field of `config_cls` (--field-name), plus --out."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results", help="output folder (default: results)")
    names = {f.name for f in dataclasses.fields(config_cls)}
    if "losses" in names:
        parser.add_argument("--loss", type=float, default=None, help="one l_p loss: same as --losses P")
    for field in dataclasses.fields(config_cls):
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=f"(default: {default})")
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=_parse_tuple, default=default,
                                help=f"comma-separated (default: {','.join(f'{v:g}' for v in default)})")
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, type=kind, default=default, help=f"(default: {default})")
    return parser


def parse_config(config_cls, argv, description):
    """(config, out) from the command line; --quick applies QUICK unless overridden."""
    parser = build_parser(config_cls, description)
    args = parser.parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)}
    if getattr(args, "loss", None) is not None and "losses" in values:
        values["losses"] = (args.loss,)
    if values["quick"]:
        given = {a.lstrip("-").split("=")[0].replace("-", "_") for a in (argv or sys.argv[1:])}
        given |= {"losses"} if "loss" in given else set()
        for key, value in {**QUICK, **getattr(config_cls, "QUICK", {})}.items():
            if key not in given:
                values[key] = value
    config = config_cls(**values)
    try:
        validate(config)
    except ValueError as error:
        parser.error(str(error))
    return config, args.out


def validate(config):
    """Raise ValueError naming the setting for values no figure can use."""
    if config.dataset not in REGRESSION_LOADERS:
        raise ValueError(f"--dataset must be one of {sorted(REGRESSION_LOADERS)}. Received: {config.dataset!r}")
    if config.preprocessing not in PRESETS:
        raise ValueError(f"--preprocessing must be one of {sorted(PRESETS)}. Received: {config.preprocessing!r}")
    if config.loss_reduction not in ("mean", "sum"):
        raise ValueError(f"--loss-reduction must be 'mean' or 'sum'. Received: {config.loss_reduction!r}")
    if not config.lrs or any(not np.isfinite(r) or r <= 0 for r in config.lrs):
        raise ValueError(f"--lrs must be a non-empty list of positive numbers. Received: {config.lrs!r}")
    if config.steps < 1:
        raise ValueError(f"--steps must be >= 1. Received: {config.steps}")
    if not 0 < config.level < 1:
        raise ValueError(f"--level must be in (0, 1). Received: {config.level}")
    for p in tuple(getattr(config, "losses", ())) + ((config.loss,) if hasattr(config, "loss") else ()):
        if p < 1:
            raise ValueError(f"--losses (l_p loss) needs p >= 1. Received: {p:g}")


def settings_key(config, ignore=("resume", "tensorboard", "quick", "data_dir", "extra_levels")):
    """A short hash of every field of the dataclass `config` that changes a result (not
    the bookkeeping fields in `ignore`: --resume, --tensorboard, where files go, ...)."""
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in ignore}
    return hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:10]


def versions():
    import keras
    import tensorflow as tf

    import tfovp

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "tfovp": tfovp.__version__}


def machine():
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count()}


class Run:
    """One figure's run: data, optima, curves (resumable) and outputs."""

    def __init__(self, figure, config, out):
        if config.dataset != "ethanol":  # other datasets never overwrite the paper's figures
            figure = f"{figure}-{config.dataset}"
        self.figure, self.config, self.out = figure, config, pathlib.Path(out)
        self.started = time.time()
        self.x, self.y = load_regression(config.dataset, config.data_dir, config.preprocessing)
        self.optima, self.solutions = {}, {}
        self.store = CurveStore(self.out / ".curves" / settings_key(_curve_settings(config)))
        self.records = {}

    def optimum(self, p):
        """L* of the l_p problem (float64)."""
        return self._solve(p)[0]

    def optimal_kernel(self, p):
        """W* (d, k) of the l_p problem (float64)."""
        return self._solve(p)[1]

    def _solve(self, p):
        if p not in self.solutions:
            self.solutions[p] = optimal_loss(self.x, self.y, p, self.config.loss_reduction)
            self.optima[p] = self.solutions[p][0]
        return self.solutions[p]

    def curve(self, spec, seeds=None):
        """Run (or, with --resume, reload) one curve; prints one progress line."""
        seeds = list(seeds or [self.config.seed])
        key = spec.key() + ("" if seeds == [self.config.seed] else "-s" + "-".join(map(str, seeds)))
        record = self.store.get(key) if self.config.resume else None
        if record is None:
            started = time.time()
            record = experiment.run_curve(
                spec, self.x, self.y, self.optimum(spec.loss), steps=self.config.steps,
                grid=self.config.lrs, seeds=seeds, level=self.config.level,
                reduction=self.config.loss_reduction, dtype=self.config.dtype,
                progress=not self.config.quick and self.config.steps >= 50_000)
            self.store.put(key, record)
            how = f"{time.time() - started:6.1f}s"
        else:
            how = "resumed"
        summary = record["summaries"][str(seeds[0])]
        print(f"[{self.figure}] {spec.label:38s} l{spec.loss:g}  {how}  best lr "
              f"{summary['best_learning_rate']}  iterations to {self.config.level:g}: "
              f"{summary['iterations_to_level']}  diverged {summary['diverged_rates']}", flush=True)
        self.records[(spec.label, spec.loss)] = record
        return record

    # ------------------------------------------------------------------ outputs

    def write(self, panels, claims, extra=None):
        """figureN.csv/.json/.png/.pdf, claims rows and TensorBoard; returns the summary."""
        from tfovp import claims as claims_module
        from tfovp.plotting import plot_panels

        self.out.mkdir(parents=True, exist_ok=True)
        claims = [dataclasses.replace(c, figure=self.figure) for c in claims]
        stem = self.out / self.figure
        self._write_csv(f"{stem}.csv")
        plot_panels(panels, str(stem), title=self._title())
        claims_module.write(self.out, self.figure, claims)
        if self.config.tensorboard:
            self._write_tensorboard()
        summary = {
            "figure": self.figure,
            "config": dataclasses.asdict(self.config),
            "versions": versions(),
            "machine": machine(),
            "elapsed_seconds": round(time.time() - self.started, 1),
            "training_seconds": round(sum(_training_seconds(r) for r in self.records.values()), 1),
            "optimum": {f"l{p:g}": v for p, v in self.optima.items()},
            "curves": {f"{label} (l{p:g})": _curve_summary(r) for (label, p), r in self.records.items()},
            "claims": [dataclasses.asdict(c) for c in claims],
            **(extra or {}),
        }
        with open(f"{stem}.json", "w") as handle:
            json.dump(summary, handle, indent=1, default=float)
        return summary

    def _title(self):
        c = self.config
        return (f"{self.figure}: {c.dataset}, preprocessing={c.preprocessing}, "
                f"loss {c.loss_reduction} over examples, {c.steps:,} iterations, {c.dtype}")

    def _write_csv(self, path):
        import pandas as pd

        c = self.config
        frames = []
        for (label, p), record in self.records.items():
            spec = record["spec"]
            steps = np.asarray(record["steps"])
            losses = np.array([[np.nan if v is None else v for v in row] for row in record["losses"]])
            excess = relative_excess(losses, self.optimum(p))
            for column, (rate, seed) in enumerate(zip(record["learning_rates"], record["seeds"])):
                keep = np.isfinite(losses[:, column])
                best = record["summaries"][str(seed)]["best_learning_rate"]
                frames.append(pd.DataFrame({
                    "figure": self.figure, "curve": label, "depth": spec["depth"],
                    "hidden_widths": spec["hidden_widths"], "update": spec["update"],
                    "initializer": spec["initializer"], "loss_p": p, "learning_rate": rate,
                    "seed": seed, "selected": rate == best, "step": steps[keep],
                    "loss": losses[keep, column], "excess_loss": losses[keep, column] - self.optimum(p),
                    "relative_excess": excess[keep, column], "dataset": c.dataset,
                    "preprocessing": c.preprocessing, "loss_reduction": c.loss_reduction,
                    "budget": c.steps, "dtype": c.dtype,
                }))
        if not frames:  # e.g. only Figure 5's MNIST panel, whose steps are in their own CSVs
            pathlib.Path(path).unlink(missing_ok=True)
            return
        pd.concat(frames, ignore_index=True).to_csv(path, index=False, float_format="%.8g")

    def _write_tensorboard(self):
        for (label, p), record in self.records.items():
            selected = experiment.selected_curve(record)
            if selected is None:
                continue
            rate, steps, losses = selected
            column = record["learning_rates"].index(rate)
            norms = [row[column] for row in record["end_to_end_norm"]]
            balance = [row[column] for row in record["balancedness"]] if "balancedness" in record else None
            name = f"{self.figure}/{label} l{p:g}".replace(" ", "_")
            tensorboard_log.log_curve(self.config.tensorboard, name, steps, losses, self.optimum(p), rate,
                                      end_to_end_norm=norms, balancedness=balance,
                                      hparams={**dataclasses.asdict(self.config), **record["spec"]})


def _curve_settings(config):
    """The settings shared by all figures that change a curve (so figures share curves)."""
    return Common(**{f.name: getattr(config, f.name) for f in dataclasses.fields(Common)})


def _training_seconds(record):
    """Seconds spent training a curve (and its extended grid), also if it was resumed."""
    return record["elapsed_seconds"] + (_training_seconds(record["extended"]) if "extended" in record else 0.0)


def _curve_summary(record, seed=None):
    summary = record["summaries"][str(record["seeds"][0] if seed is None else seed)]
    out = {k: summary[k] for k in ("best_learning_rate", "iterations_to_level", "level",
                                   "final_relative_excess", "diverged_rates", "stalled_rates", "at_edge")}
    out["iterations_to_levels"] = (None if summary["best_index"] is None
                                   else summary["per_rate"][summary["best_index"]]["iterations"])
    out["elapsed_seconds"] = round(record["elapsed_seconds"], 2)
    if "extended" in record:
        out["extended_grid"] = _curve_summary(record["extended"], seed)
    return out


def panel(run, title, labels_and_losses, notes=()):
    """A plot panel of the selected (best-rate) curves named by (label, p) pairs."""
    curves, notes = [], list(notes)
    p = labels_and_losses[0][1]
    for label, loss in labels_and_losses:
        record = run.records[(label, loss)]
        selected = experiment.selected_curve(record)
        summary = record["summaries"][str(record["seeds"][0])]
        if selected is None:
            notes.append(f"{label}: every rate diverged")
            continue
        rate, steps, losses = selected
        edge = f", best rate at {summary['at_edge']} edge" if summary["at_edge"] else ""
        curves.append((f"{label} (lr {rate:g}{edge})", steps, losses))
    return {"title": title, "optimum": run.optimum(p), "curves": curves, "notes": notes}


def speed(run, label, p):
    """(iterations to the level or None, final relative excess) of a curve's best rate."""
    summary = run.records[(label, p)]["summaries"][str(run.records[(label, p)]["seeds"][0])]
    return summary["iterations_to_level"], summary["final_relative_excess"]


def faster(a, b, factor=1.0):
    """True if speed `a` beats `b` by `factor` (a * factor <= b), None if undecidable."""
    (ia, _), (ib, _) = a, b
    if ia is not None and ib is not None:
        return ia * factor <= ib
    if ia is not None:
        return True
    if ib is not None:
        return False
    return None


def main_wrapper(run_fn, config_cls, description, argv=None):
    config, out = parse_config(config_cls, argv, description)
    result = run_fn(config, out)
    print(f"wrote {out}/ in {result['elapsed_seconds']} s")
    return result


def setting_text(config):
    """The settings of a run, for claim rows."""
    return (f"{config.dataset}, {config.preprocessing}, {config.loss_reduction}, {config.steps:,} it, "
            f"level {config.level:g}, seed {config.seed}")
