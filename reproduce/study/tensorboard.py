"""TensorBoard logs of trained curve families, one run per learning rate and seed (the
rates tuning added included), with the settings and final metrics of every run in
TensorBoard's HParams dashboard, readable as a user reads it.

Layout under `log_dir`: `<figure>/` holds the HParams experiment and one folder per run,
`<figure>/<curve>_l<p>/lr=<rate>[,seed=<s>]`, whose scalars are

- `loss`, `excess_loss` (L - L*), `relative_excess` ((L - L*)/(L0 - L*)), at the
  recorded steps (log-spaced), until the run diverged;
- `end_to_end_norm` (||W_e||_F);
- `balancedness`: the largest Eq. 7 residual ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F over
  factor pairs **relative to the pair's scale** (the larger Frobenius norm of the two
  Gram matrices, about ||W_j||_F^2), so that it reads the same at every init scale.

The experiment's HParams are only the settings that vary between its runs, each with a
domain (`hp.Discrete` for names, integers and flags, `hp.RealInterval` for the learning
rate), integers shown as integers ("2", not "2.0000"); the settings every run shares are
written once as text (`settings`) in the experiment's folder. Metrics: `final_loss` and
`final_relative_excess` of the runs that did not diverge, `iterations_to_level` of the
runs that reached the figure's level, `diverged` (0 or 1) of every run and `diverged_at`
of the runs that diverged: a metric that does not exist for a run is left out, never a
sentinel such as -1, and a diverged run's loss never squashes an axis.
"""

import pathlib

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

# The curve of a run is its folder (and the settings text), not an HParam: TensorBoard
# ticks the first five HParams by name, and the curve would push the ones a reader
# compares (learning_rate, depth, p, selected) out of them.
HPARAMS = {
    "figure": "the figure (output file stem) the run belongs to",
    "depth": "N, the number of layers (1: the linear model)",
    "p": "p of the l_p loss",
    "initializer": "initialization of the factors",
    "update": "gd, end_to_end (Eq. 10) or an optimizer",
    "learning_rate": "eta of this run",
    "seed": "initialization seed",
    "selected": "whether this is the rate of the paper's grid the figure selected (fastest to the level)",
    "tuning": "grid: a rate of the grid; tuning: a rate the tuning added (tfovp.tuning)",
    "preprocessing": "feature/target scaling",
    "dataset": "regression data",
}
METRICS = {
    "final_loss": "L at the last recorded step (runs that did not diverge)",
    "final_relative_excess": "(L - L*)/(L0 - L*) at the last recorded step (runs that did not diverge)",
    "iterations_to_level": "first recorded step from which the relative excess stays <= the figure's level "
    "(runs that reached it)",
    "diverged": "1 if the run diverged, else 0",
    "diverged_at": "iteration at which the run diverged (runs that diverged)",
}


def _plain(value, name):
    """A value as TensorBoard should show it. TensorBoard stores every number as a float
    and prints it with four decimals ("2.0000"), so an integer (depth, p, seed) becomes
    its text ("2"): a discrete column with a filter per value; the learning rate stays a
    number (an interval, a log axis)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if name == "learning_rate":
        return float(value)
    if isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and float(value).is_integer()):
        return str(int(value))
    return str(value) if not isinstance(value, (float, np.floating)) else f"{float(value):g}"


def _domain(values):
    values = sorted(set(values), key=str)
    if all(isinstance(v, float) for v in values):
        return hp.RealInterval(min(values), max(values))
    if all(isinstance(v, bool) for v in values):
        return hp.Discrete([False, True])
    return hp.Discrete(values)


def experiment(log_dir, figure, runs):
    """Write the HParams experiment of `figure`: the hparams that vary over `runs` (a list
    of {name: value}, one per run) with their domains, the metrics, and the constant
    settings as text."""
    names = [name for name in HPARAMS if any(name in r for r in runs)]
    values = {name: [r[name] for r in runs if name in r] for name in names}
    varying = [n for n in names if len(set(values[n])) > 1]
    constant = {n: values[n][0] for n in names if n not in varying and values[n]}
    with tf.summary.create_file_writer(str(pathlib.Path(log_dir) / figure)).as_default():
        hp.hparams_config(
            hparams=[hp.HParam(n, _domain(values[n]), description=HPARAMS[n]) for n in varying],
            metrics=[hp.Metric(name, description=text) for name, text in METRICS.items()],
        )
        settings = "\n".join(f"- {name}: {value}" for name, value in constant.items())
        tf.summary.text("settings", f"Settings every run of {figure} shares:\n\n{settings}", step=0)
    return varying


def _run_name(label, p, rate, seed, seeds):
    curve = f"{label}_l{p:g}".replace(" ", "_")
    return f"{curve}/lr={rate:.6g}" + (f",seed={seed}" if len(seeds) > 1 else "")


def _final(values):
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else float("nan")


def family_runs(figure, family, level, settings):
    """[(run folder, hparams, family, column)] of every learning rate and seed of `family`
    (a CurveFamily), the rates tuning added included."""
    spec, seeds = family.spec, family.seed_list
    selected = {seed: family.summary(level, seed).best_learning_rate for seed in seeds}
    grid = set(np.round(family.learning_rates, 15))
    everything = family.with_tuned()
    out = []
    for column, (rate, seed) in enumerate(zip(everything.learning_rates, everything.seeds)):
        seed = int(seed)
        hparams = {
            "figure": figure,
            "curve": spec.label,
            "depth": spec.depth,
            "p": spec.loss,
            "initializer": str(spec.initializer),
            "update": str(spec.update),
            "learning_rate": float(rate),
            "seed": seed,
            "selected": bool(selected[seed] is not None and np.isclose(selected[seed], rate, rtol=1e-12)),
            "tuning": "grid" if np.round(rate, 15) in grid else "tuning",
            **{k: v for k, v in settings.items() if k in HPARAMS},
        }
        folder = _run_name(spec.label, spec.loss, float(rate), seed, seeds)
        out.append((folder, {k: _plain(v, k) for k, v in hparams.items()}, everything, column))
    return out


def log_runs(log_dir, figure, runs, level, varying):
    """Write every run of `family_runs` (its scalars, its varying hparams, its metrics)."""
    from tfovp import convergence

    for folder, hparams, family, column in runs:
        losses = family.losses[:, column]
        excess = convergence.relative_excess(losses, family.optimum)
        reached = convergence.iterations_to(family.steps, excess, level)
        run = pathlib.Path(log_dir) / figure / folder
        with tf.summary.create_file_writer(str(run)).as_default():
            hp.hparams({k: v for k, v in hparams.items() if k in varying}, trial_id=f"{figure}/{folder}")
            _curves(family, column, losses, excess)
            last = int(family.steps[-1])
            diverged = bool(family.diverged[column])
            tf.summary.scalar("diverged", int(diverged), step=last)
            if diverged:
                tf.summary.scalar("diverged_at", int(family.diverged_at[column]), step=last)
            else:
                tf.summary.scalar("final_loss", _final(losses), step=last)
                tf.summary.scalar("final_relative_excess", _final(excess), step=last)
            if reached is not None:
                tf.summary.scalar("iterations_to_level", reached, step=last)


def _curves(family, column, losses, excess):
    relative = family.relative_balancedness
    for i, step in enumerate(int(s) for s in family.steps):
        if not np.isfinite(losses[i]):
            break
        tf.summary.scalar("loss", losses[i], step=step)
        tf.summary.scalar("excess_loss", losses[i] - family.optimum, step=step)
        tf.summary.scalar("relative_excess", excess[i], step=step)
        tf.summary.scalar("end_to_end_norm", family.end_to_end_norm[i, column], step=step)
        if relative is not None:
            tf.summary.scalar(
                "balancedness",
                relative[i, column],
                step=step,
                description="largest Eq. 7 residual over factor pairs / its scale (about ||W_j||_F^2)",
            )


def log_families(log_dir, figure, families, level, settings):
    """The experiment and every run of `families` (CurveFamily records) of one figure;
    returns the number of runs written."""
    runs = [run for family in families for run in family_runs(figure, family, level, settings)]
    varying = experiment(log_dir, figure, [hparams for _, hparams, _, _ in runs])
    log_runs(log_dir, figure, runs, level, varying)
    return len(runs)
