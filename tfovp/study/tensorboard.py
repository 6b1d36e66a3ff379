"""TensorBoard logs of trained curve families, one run per learning rate and seed, with
the settings and final metrics of every run in TensorBoard's HParams dashboard.

Layout under `log_dir`: `<figure>/` holds the HParams experiment (the settings that vary
and the metrics, with descriptions) and one folder per run,
`<figure>/<curve>_l<p>/lr=<rate>[,seed=<s>]`, whose scalars are

- `loss`, `excess_loss` (L - L*), `relative_excess` ((L - L*)/(L0 - L*)), at the
  recorded steps (log-spaced), until the run diverged;
- `end_to_end_norm` (||W_e||_F);
- `balancedness`: the largest Eq. 7 residual ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F over
  factor pairs **relative to the pair's scale** (the larger Frobenius norm of the two
  Gram matrices, about ||W_j||_F^2), so that it reads the same at every init scale;
  families stored before that was recorded log the absolute residual as
  `balancedness_absolute` instead;

and whose HParams are the curve's settings (figure, curve, depth, p, initializer,
update, learning rate, seed, whether it is the rate the figure selected) and metrics
(final loss and relative excess, iterations to the figure's level, the step of
divergence, -1 if none). Point TensorBoard at `log_dir/<figure>` for one figure's
experiment, at `log_dir` for all runs (the dashboard then infers the columns).
"""

import pathlib

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

HPARAMS = {
    "figure": "the figure (output file stem) the run belongs to",
    "curve": "the curve's label in the figure",
    "depth": "N, the number of layers (1: the linear model)",
    "p": "p of the l_p loss",
    "initializer": "initialization of the factors",
    "update": "gd, end_to_end (Eq. 10) or an optimizer",
    "learning_rate": "eta of this run",
    "seed": "initialization seed",
    "selected": "whether this is the rate the figure selected (fastest to the level)",
    "preprocessing": "feature/target scaling",
    "dataset": "regression data",
}
METRICS = {
    "final_loss": "L at the last recorded step before divergence",
    "final_relative_excess": "(L - L*)/(L0 - L*) at the last recorded step before divergence",
    "iterations_to_level": "first recorded step from which the relative excess stays <= the figure's level (-1: never)",
    "diverged_at": "iteration at which the run diverged (-1: it did not)",
}


def experiment(log_dir, figure):
    """Write the HParams experiment (columns and descriptions) of `figure`."""
    with tf.summary.create_file_writer(str(pathlib.Path(log_dir) / figure)).as_default():
        hp.hparams_config(
            hparams=[hp.HParam(name, description=text) for name, text in HPARAMS.items()],
            metrics=[hp.Metric(name, description=text) for name, text in METRICS.items()],
        )


def _run_name(label, p, rate, seed, seeds):
    curve = f"{label}_l{p:g}".replace(" ", "_")
    return f"{curve}/lr={rate:g}" + (f",seed={seed}" if len(seeds) > 1 else "")


def _final(values):
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else float("nan")


def log_family(log_dir, figure, family, level, settings):
    """One run per learning rate and seed of `family` (a CurveFamily) under
    `log_dir/figure`; `settings` adds hparams shared by the figure (dataset,
    preprocessing, ...)."""
    from tfovp.study import convergence

    spec, seeds = family.spec, family.seed_list
    selected = {seed: family.summary(level, seed).best_learning_rate for seed in seeds}
    relative = family.relative_balancedness
    for column, (rate, seed) in enumerate(zip(family.learning_rates, family.seeds)):
        seed = int(seed)
        losses = family.losses[:, column]
        excess = convergence.relative_excess(losses, family.optimum)
        reached = convergence.iterations_to(family.steps, excess, level)
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
            **{k: v for k, v in settings.items() if k in HPARAMS},
        }
        run = pathlib.Path(log_dir) / figure / _run_name(spec.label, spec.loss, float(rate), seed, seeds)
        with tf.summary.create_file_writer(str(run)).as_default():
            hp.hparams(hparams, trial_id=f"{figure}/{run.parent.name}/{run.name}")
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
                elif family.balancedness is not None:
                    tf.summary.scalar(
                        "balancedness_absolute",
                        family.balancedness[i, column],
                        step=step,
                        description="largest Eq. 7 residual ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F over factor pairs",
                    )
            last = int(family.steps[-1])
            tf.summary.scalar("final_loss", _final(losses), step=last)
            tf.summary.scalar("final_relative_excess", _final(excess), step=last)
            tf.summary.scalar("iterations_to_level", -1 if reached is None else reached, step=last)
            tf.summary.scalar("diverged_at", int(family.diverged_at[column]), step=last)
