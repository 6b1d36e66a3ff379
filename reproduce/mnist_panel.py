"""Figure 5 (right): the MNIST tutorial, original vs. overparameterized (PAPER Sec. 5),
and what the plotted loss is made of.

Both models are trained by `mnist_tutorial.convolutional` with the tutorial's settings,
for every seed of `--mnist-seeds`; with the first seed only, the variants: the factored
model with the L2 term on its factors or on no kernel (the other `--l2-on` choices), and
the original architecture trained with the end-to-end preconditioner (Eq. 10, N = 2)
from the factored model's initial products ("preconditioned"). Every run records the
printed loss, its cross-entropy and L2 parts at every step, and the Frobenius and
spectral norms of the dense kernels (product and factors) every 100 steps.

Figure 5's right panel shows the first seed as the paper does (raw loss and a trailing
100-step mean, the claims' smoothing); figure5_mnist.png the decomposition (printed
loss, cross-entropy, L2 term, validation error; mean over seeds with the min-max band,
smoothed with a centred window so that the line does not lag); figure5_mnist_norms.png
the kernel norms. Claims: `reproduce.study.criteria.mnist` and `mnist_tracking`.

Each finished run is stored under `<workdir>/.curves/mnist` and a run in progress saves
a checkpoint there every 500 steps, so that `--resume` after an interruption retrains
only what had not finished, from its last checkpoint (Figure 5 and Appendix C share it).
"""

import dataclasses
import pathlib
import re

import numpy as np

from mnist_tutorial import config as tutorial
from reproduce.study import criteria
from reproduce.study.plotting import MinibatchCurve, MinibatchPanel
from reproduce.study.progress import MNIST_STEP
from reproduce.study.provenance import settings_key
from reproduce.study.store import RecordStore

MODELS = {"original": False, "overparameterized": True}
PRECONDITIONED = "original, preconditioned (Eq. 10, N = 2)"
CONVOLUTIONS_TOO = "overparameterized, convolutions too"
IGNORED = ("data_dir", "out", "tensorboard", "quiet", "checkpoint", "checkpoint_every")  # change no result
CHECKPOINT_EVERY = 500


def store(workdir):
    return RecordStore(f"{workdir}/.curves/mnist", tutorial.TrainingResult.from_json)


def expect(job, name, configs):
    """Plan the MNIST runs of `configs` as part `name` of `job`."""
    job.plan(name, len(configs), sum(tutorial.planned_steps(c) * MNIST_STEP for c in configs))


def run_key(config, label):
    return f"{label.split(',')[0]}-{settings_key(config, ignore=IGNORED, added=('factor_convs',))}"


def describe(config, label):
    defaults = tutorial.Config()
    changed = [
        f"{text} {getattr(config, field):g}"
        for field, text in (("base_lr", "lr"), ("overparam_init_std", "init std"))
        if getattr(config, field) != getattr(defaults, field)
    ]
    return ", ".join([f"MNIST tutorial, {label} model, seed {config.seed}", *changed])


def units(labelled_configs, runs, resume, job):
    """The `reproduce.study.cluster.Unit`s of the (label, tutorial.Config) runs that
    `train_stored` would train (one GPU each where the cluster has GPUs). A unit on a
    cluster writes no checkpoint: a failed one is retried from its start."""
    from reproduce.study.cluster import Unit

    planned = {}
    for label, config in labelled_configs:
        key = run_key(config, label)
        if not ((resume or runs.path(key) in job.written) and runs.get(key) is not None):
            work = tutorial.planned_steps(config) * MNIST_STEP
            planned[key] = Unit(describe(config, label), runs, key, train, (config,), work, gpu=True)
    return list(planned.values())


def train(config, progress=None):
    """`mnist_tutorial.train.train_and_evaluate`, imported when a run starts (TensorFlow)."""
    from mnist_tutorial.train import train_and_evaluate

    return train_and_evaluate(config, progress)


def train_stored(config, runs, resume, label, job):
    """train(config), kept in `runs` (a RecordStore); a run finished earlier with
    the same settings is reused with `resume`, or when this command trained it; a run in
    progress checkpoints next to the store and, with `resume`, continues from there."""
    key = run_key(config, label)
    result = runs.get(key) if resume or runs.path(key) in job.written else None
    steps = tutorial.planned_steps(config)
    name = describe(config, label)
    if result is not None:
        if not job.counted_on_arrival(runs.path(key)):
            job.reuse(f"{name}: finished earlier, reused", steps * MNIST_STEP)
        return result
    checkpoint = runs.folder / f"{key}.checkpoint.npz"
    if not resume:
        checkpoint.unlink(missing_ok=True)
    task = job.start(f"{name}: {steps:,} steps of 64 images", steps, MNIST_STEP)
    checkpointed = dataclasses.replace(config, checkpoint=str(checkpoint), checkpoint_every=CHECKPOINT_EVERY)
    result = train(checkpointed, progress=task.advance)
    task.done(name)
    job.written.add(runs.put(key, result))
    job.write(f"    {name}: {result_line(result)}")
    checkpoint.unlink(missing_ok=True)
    return result


def result_line(result):
    """What a finished MNIST run reached: the printed loss and its parts at the end (mean
    of the last 100 steps), the test error and the time; or where it diverged."""
    minutes = f"{result.seconds / 60:.1f} min"
    if result.diverged_at is not None:
        return f"diverged at step {result.diverged_at:,} ({minutes})"
    history, tail = result.history, criteria.SMOOTHING_WINDOW

    def last(key):
        values = [v for v in history.get(key, [])[-tail:] if v is not None]
        return f"{np.mean(values):.4f}" if values else "-"

    return (
        f"final loss {last('minibatch_loss')} (cross-entropy {last('cross_entropy')}, L2 term {last('l2_term')}), "
        f"test error {result.test_error:.2f} %, {minutes}"
    )


def _model_config(config, seed, **changes):
    return tutorial.Config(
        epochs=config.mnist_epochs,
        steps=config.mnist_steps or None,
        data_dir=config.data_dir,
        l2_on=config.l2_on,
        seed=seed,
        self_test=config.self_test,
        quiet=True,
        **changes,
    )


def configs(config):
    """{run name: [tutorial.Config per seed]}: both models for every seed, then the
    variants for the first seed."""
    out = {
        name: [_model_config(config, seed, overparameterize=factored) for seed in config.mnist_seeds]
        for name, factored in MODELS.items()
    }
    if config.mnist_variants:
        first = config.mnist_seeds[0]
        for l2_on in tutorial.L2_CHOICES:
            if l2_on != config.l2_on:
                label = f"overparameterized, L2 on {'no kernel' if l2_on == 'none' else l2_on}"
                out[label] = [dataclasses.replace(_model_config(config, first, overparameterize=True), l2_on=l2_on)]
        out[PRECONDITIONED] = [_model_config(config, first, preconditioned=True)]
    if config.mnist_convs:
        out[CONVOLUTIONS_TOO] = [
            _model_config(config, seed, overparameterize=True, factor_convs=True) for seed in config.mnist_seeds
        ]
    return out


def csv_name(name, seed, first_seed):
    """figure5_mnist_<run>[_seed<k>].csv (the first seed of the two models keeps the
    paper's names)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    return f"figure5_mnist_{slug}" + ("" if seed == first_seed else f"_seed{seed}") + ".csv"


def panel_units(config, workdir, job):
    """The cluster units of the runs `train_all` would train."""
    earlier = earlier_outputs(workdir) if config.mnist_reuse_outputs else {}
    labelled = [
        (name, c)
        for name, run_configs in configs(config).items()
        for c in run_configs
        if _rebuilt(earlier, name, c) is None
    ]
    return units(labelled, store(workdir), config.resume, job)


def train_all(config, workdir, job):
    """{run name: [TrainingResult per seed]}; every run's per-step CSV in `workdir`. With
    `--mnist-reuse-outputs`, a run whose outputs an earlier panel wrote to `workdir` is
    rebuilt from them (`earlier_outputs`) instead of trained."""
    from mnist_tutorial.train import write_history_csv

    runs, results = store(workdir), {}
    earlier = earlier_outputs(workdir) if config.mnist_reuse_outputs else {}
    for name, run_configs in configs(config).items():
        results[name] = []
        for run_config in run_configs:
            path = pathlib.Path(workdir) / csv_name(name, run_config.seed, config.mnist_seeds[0])
            result = _rebuilt(earlier, name, run_config)
            if result is not None:
                job.reuse(f"{describe(run_config, name)}: rebuilt from {path.name}", result.steps * MNIST_STEP)
            else:
                result = train_stored(run_config, runs, config.resume, name, job)
            results[name].append(result)
            write_history_csv(path, result.history)
    return results


def _rebuilt(earlier, name, run_config):
    """The run `name` of `run_config`'s seed as rebuilt by `earlier_outputs`, if it ran the
    steps `run_config` plans; else None (it is to be trained)."""
    result = earlier.get((name, run_config.seed))
    return result if result is not None and result.steps == tutorial.planned_steps(run_config) else None


def earlier_outputs(workdir):
    """{(run name, seed): TrainingResult} of the MNIST runs whose outputs are in `workdir`:
    each run's per-step CSV (6 significant digits) with the test error, steps and
    parameters of figure5.json's "mnist" summary and its per-seed share of the time;
    diverged where the CSV is shorter than the steps. The seeds are the summary's
    `seed_numbers`, or (outputs written before it) those named in the setting of the
    folder's MNIST claim rows. Empty where the folder has no such outputs."""
    import json

    import pandas as pd

    folder = pathlib.Path(workdir)
    try:
        models = json.loads((folder / "figure5.json").read_text())["mnist"]
        seeds = models["original"].get("seed_numbers") or _claimed_seeds(folder)
    except (OSError, KeyError, ValueError):
        return {}
    out = {}
    for name, model in models.items():
        for seed, error in zip(seeds, model["test_errors"]):
            try:
                frame = pd.read_csv(folder / csv_name(name, seed, seeds[0]))
            except (OSError, ValueError):
                continue
            history = {c: [None if v != v else v for v in frame[c].tolist()] for c in frame.columns}
            diverged = len(frame) < model["steps"]
            seconds = model["seconds"] / model["seeds"]
            out[name, seed] = tutorial.TrainingResult(
                history, error, model["steps"], len(frame) if diverged else None, seconds, model["parameters"]
            )
    return out


def _claimed_seeds(folder):
    """The seeds named in the setting of the folder's figure5 MNIST claim rows."""
    import json

    rows = json.loads((folder / "claims.json").read_text())
    setting = next(r["setting"] for r in rows if r["figure"] == "figure5" and r["claim"].startswith("MNIST"))
    return [int(s) for s in setting.split("seeds ")[1].split(", ")]


def _series(history, key):
    return np.array([np.nan if v is None else v for v in history[key]], dtype=float)


def panel(results, seeds):
    """The paper's panel: the first seed of both models (the title says which, and over
    which seeds the claims average)."""
    curves = [
        MinibatchCurve(
            f"{name} ({runs[0].parameters:,} parameters, test error {runs[0].test_error:.2f}%)",
            np.asarray(runs[0].history["step"]),
            _series(runs[0].history, "minibatch_loss"),
            _series(runs[0].history, "validation_error"),
        )
        for name, runs in results.items()
        if name in MODELS
    ]
    shown = f"seed {seeds[0]}" + (
        f" (the claims: mean over seeds {', '.join(map(str, seeds))})" if len(seeds) > 1 else ""
    )
    return MinibatchPanel(f"right: MNIST tutorial, {shown}", criteria.SMOOTHING_WINDOW, curves)


def earlier_panel(workdir, first_seed):
    """(panel, JSON summary) of the MNIST panel an earlier run wrote to `workdir` (its
    figure5.json and first-seed CSVs), or None: a run of the left panel alone keeps the
    right one in the figure and its JSON."""
    import json

    import pandas as pd

    folder = pathlib.Path(workdir)
    try:
        summary = json.loads((folder / "figure5.json").read_text())["mnist"]
        curves = []
        for name in MODELS:
            history = pd.read_csv(folder / csv_name(name, first_seed, first_seed))
            curves.append(
                MinibatchCurve(
                    f"{name} ({summary[name]['parameters']:,} parameters, test error "
                    f"{summary[name]['test_errors'][0]:.2f}%)",
                    history["step"].to_numpy(),
                    history["minibatch_loss"].to_numpy(dtype=float),
                    history["validation_error"].to_numpy(dtype=float),
                )
            )
    except (OSError, KeyError, ValueError, IndexError):
        return None
    title = "right: MNIST tutorial (the earlier run in this folder)"
    return MinibatchPanel(title, criteria.SMOOTHING_WINDOW, curves), summary


def outcome(result):
    """What the MNIST criteria need of a TrainingResult."""
    history = result.history
    evaluated = [v for v in history["validation_error"] if v is not None]
    cross_entropy = _series(history, "cross_entropy") if "cross_entropy" in history else None
    return criteria.MnistOutcome(
        _series(history, "minibatch_loss"),
        result.test_error,
        result.diverged_at is not None,
        cross_entropy,
        np.asarray(evaluated, dtype=float),
    )


def claims(results, setting):
    """The claims of both models over the seeds; for each L2 variant the speed claims on the
    printed loss and the cross-entropy; the tracking claim of the preconditioned original."""
    originals = [outcome(r) for r in results["original"]]
    rows = criteria.mnist(originals, [outcome(r) for r in results["overparameterized"]], setting)
    for name, runs in results.items():
        if name in MODELS or name in (PRECONDITIONED, CONVOLUTIONS_TOO):
            continue
        variant = criteria.mnist(originals[:1], [outcome(runs[0])], f"{setting.split(', seeds')[0]}, first seed")
        rows += [dataclasses.replace(c, claim=_variant_claim(c.claim, name)) for c in variant[:2]]
    if CONVOLUTIONS_TOO in results:
        rows += convolution_claims(results, setting)
    if PRECONDITIONED in results:
        rows.append(
            criteria.mnist_tracking(
                outcome(results["overparameterized"][0]),
                outcome(results[PRECONDITIONED][0]),
                f"{setting.split(', seeds')[0]}, first seed",
            )
        )
    return rows


def convolution_claims(results, setting):
    """Factoring the convolutions too (every seed), against the paper's dense-only
    factoring and against the original, by the rules of `criteria.mnist` (the speed rule
    on the printed loss and the cross-entropy, the test-error rules)."""
    convs = [outcome(r) for r in results[CONVOLUTIONS_TOO]]
    rows = []
    for baseline, name in (("overparameterized", "the dense-only factoring"), ("original", "the original")):
        judged = criteria.mnist([outcome(r) for r in results[baseline]], convs, setting)
        for c in judged[:2] + judged[4:]:  # printed loss, cross-entropy, lower test error
            claim = c.claim.replace(
                "MNIST: the overparameterized tutorial's ", "MNIST, convolutions factored too: the "
            ).replace("MNIST: the overparameterized tutorial", "MNIST, convolutions factored too:")
            rows.append(dataclasses.replace(c, claim=f"{claim} (than {name})"))
    return rows


def _variant_claim(claim, name):
    """A claim of the overparameterized model restated for the variant `name`."""
    subject = "MNIST: the overparameterized tutorial"
    return claim.replace(f"{subject}'s ", f"MNIST, {name}: the ").replace(subject, f"MNIST, {name}:")


def summary(results, seeds):
    """The JSON summary of every run: its seeds (`seeds`, the first ones for a variant),
    test errors per seed, their mean and range."""
    out = {}
    for name, runs in results.items():
        errors = [r.test_error for r in runs]
        out[name] = {
            "seeds": len(runs),
            "seed_numbers": seeds[: len(runs)],
            "parameters": runs[0].parameters,
            "steps": runs[0].steps,
            "test_error": errors[0],
            "test_errors": errors,
            "test_error_mean": float(np.mean(errors)),
            "test_error_min": float(np.min(errors)),
            "test_error_max": float(np.max(errors)),
            "seconds": float(np.sum([r.seconds for r in runs])),
            "diverged": [r.diverged_at is not None for r in runs],
        }
    return out


def centred(values, window):
    """Centred moving mean (shorter at the ends), ignoring NaN: no lag behind the data."""
    values = np.asarray(values, dtype=float)
    valid = np.isfinite(values)
    kernel = np.ones(max(1, min(window, len(values))))  # np.convolve's "same" needs the longer input first
    sums = np.convolve(np.where(valid, values, 0.0), kernel, mode="same")
    counts = np.convolve(valid.astype(float), kernel, mode="same")
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def figures(results, workdir, window=criteria.SMOOTHING_WINDOW):
    """figure5_mnist.png/.pdf (the loss decomposition) and figure5_mnist_norms.png/.pdf."""
    _decomposition_figure(results, pathlib.Path(workdir) / "figure5_mnist", window)
    _norms_figure(results, pathlib.Path(workdir) / "figure5_mnist_norms")


def _decomposition_figure(results, path_stem, window):
    """Printed loss, cross-entropy, L2 term and validation error of every model, centred
    means over seeds with their min-max bands."""
    from matplotlib.figure import Figure

    from reproduce.study.plotting import save

    panels = (
        ("minibatch_loss", "printed loss (cross-entropy + L2 term)", True),
        ("cross_entropy", "cross-entropy", True),
        ("l2_term", "L2 term (5e-4 x l2_loss)", True),
        ("validation_error", "validation error (%)", True),
    )
    figure = Figure(figsize=(13, 8.6))
    axes = figure.subplots(2, 2).ravel()
    for axis, (key, title, log) in zip(axes, panels):
        lowest = np.inf  # a log axis only where every plotted value is positive
        for name, runs in results.items():
            steps = np.asarray(runs[0].history["step"])
            if key == "validation_error":  # evaluated every 100 steps: plot the evaluations
                series = [
                    (
                        np.asarray(r.history["step"])[np.isfinite(_series(r.history, key))],
                        _series(r.history, key)[np.isfinite(_series(r.history, key))],
                    )
                    for r in runs
                ]
                steps = series[0][0]
                stacked = np.stack([s for _, s in series if len(s) == len(steps)])
                smoothed = np.stack([centred(s, 5) for s in stacked])
            else:
                stacked = np.stack([_series(r.history, key) for r in runs if len(r.history["step"]) == len(steps)])
                smoothed = np.stack([centred(s, window) for s in stacked])
            style = "-" if name in MODELS else "--"
            label = f"{name} ({len(runs)} seed{'s' * (len(runs) > 1)})"
            (line,) = axis.plot(steps, smoothed.mean(axis=0), ls=style, lw=1.4, label=label)
            lowest = min(lowest, np.nanmin(smoothed, initial=np.inf))
            if len(runs) > 1:
                axis.fill_between(steps, smoothed.min(axis=0), smoothed.max(axis=0), color=line.get_color(), alpha=0.2)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("iteration")
        axis.set_ylabel(title.split(" (")[0])
        if log and lowest > 0:
            axis.set_yscale("log")
        axis.grid(alpha=0.3, which="both", lw=0.5)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    figure.suptitle(
        f"MNIST tutorial: what the plotted loss is made of (centred {window}-step means; validation: "
        "5 evaluations; bands: min-max over seeds)",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0.06, 1, 1))  # the legend below the panels, outside the data
    save(figure, path_stem)


def _norms_figure(results, path_stem):
    """The Frobenius norm of each dense kernel and of each factor, first seed of every model."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from reproduce.study.plotting import save, tidy_log_ticks

    figure = Figure(figsize=(13, 6))
    axes = figure.subplots(1, 2)
    colours = colormaps["tab20"]  # one colour per (model, part): up to 20 distinct lines
    for axis, layer in zip(axes, ("fc1", "fc2")):
        line = 0
        for name, runs in results.items():
            history = runs[0].history
            keys = [k for k in history if k.startswith(f"{layer}_") and k.endswith("_frobenius")]
            for key in keys:
                values = _series(history, key)
                keep = np.isfinite(values)
                part = key[len(layer) + 1 : -len("_frobenius")] or "kernel (product)"
                axis.plot(
                    np.asarray(history["step"])[keep],
                    values[keep],
                    ls="-" if name in MODELS else "--",
                    lw=1.2,
                    color=colours(line % 20),
                    label=f"{name}: {part}",
                )
                line += 1
        axis.set_yscale("log")
        axis.set_xlabel("iteration")
        axis.set_ylabel("Frobenius norm")
        axis.set_title(f"{layer}: Frobenius norm of the kernel and of each factor (first seed)", fontsize=9)
        axis.grid(alpha=0.3, which="both", lw=0.5)
        tidy_log_ticks(axis)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7, frameon=False)
    figure.tight_layout(rect=(0, 0.22, 1, 1))  # the shared legend below, outside the data
    save(figure, path_stem)
