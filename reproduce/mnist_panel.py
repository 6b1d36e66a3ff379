"""Figure 5 (right): the MNIST tutorial, original vs. overparameterized (PAPER Sec. 5).

Both models are trained by `mnist_tutorial.convolutional` with the tutorial's settings;
the panel shows the minibatch loss (raw and a 100-step moving average) and the
validation error. Claims (`tfovp.study.criteria.mnist`): the overparameterized model
converges considerably faster; both reach the tutorial's test error.

Each finished run is stored under `<workdir>/.curves/mnist`, so that `--resume` after an
interruption retrains only what had not finished (Figure 5 and Appendix C share it).
"""

import numpy as np

from mnist_tutorial import convolutional as tutorial
from tfovp.study import criteria
from tfovp.study.plotting import MinibatchCurve, MinibatchPanel
from tfovp.study.progress import MNIST_STEP
from tfovp.study.provenance import settings_key
from tfovp.study.store import RecordStore

MODELS = {"original": False, "overparameterized": True}
IGNORED = ("data_dir", "out", "tensorboard", "quiet")  # tutorial settings that change no result


def store(workdir):
    return RecordStore(f"{workdir}/.curves/mnist", tutorial.TrainingResult.from_json)


def expect(job, name, configs):
    """Plan the MNIST runs of `configs` as part `name` of `job`."""
    job.plan(name, len(configs), sum(tutorial.planned_steps(c) * MNIST_STEP for c in configs))


def train_stored(config, runs, resume, label, job):
    """tutorial.train(config), kept in `runs` (a RecordStore); a run finished earlier with
    the same settings is reused with `resume`, or when this command trained it."""
    key = f"{label}-{settings_key(config, ignore=IGNORED)}"
    result = runs.get(key) if resume or runs.path(key) in job.written else None
    steps = tutorial.planned_steps(config)
    name = f"MNIST tutorial, {label} model"
    if result is not None:
        job.reuse(f"{name}: finished earlier, reused", steps * MNIST_STEP)
        return result
    task = job.start(f"{name}: {steps:,} steps of 64 images", steps, MNIST_STEP)
    result = tutorial.train(config, progress=task.advance)
    task.done(name)
    job.written.add(runs.put(key, result))
    return result


def configs(config):
    """{model name: tutorial.Config} of the two models of Figure 5 (right)."""
    return {
        name: tutorial.Config(
            overparameterize=factored,
            epochs=config.mnist_epochs,
            steps=config.mnist_steps or None,
            data_dir=config.data_dir,
            l2_on=config.l2_on,
            seed=config.mnist_seed,
            self_test=config.self_test,
            quiet=True,
        )
        for name, factored in MODELS.items()
    }


def train_both(config, workdir, job):
    """{name: TrainingResult} for both models; their per-step CSVs in `workdir`."""
    results, runs = {}, store(workdir)
    for name, run_config in configs(config).items():
        results[name] = train_stored(run_config, runs, config.resume, name, job)
        tutorial.write_history_csv(f"{workdir}/figure5_mnist_{name}.csv", results[name].history)
    return results


def _errors(history):
    return np.array([np.nan if e is None else e for e in history["validation_error"]], dtype=float)


def panel(results):
    curves = [
        MinibatchCurve(
            f"{name} ({r.parameters:,} parameters, test error {r.test_error:.2f}%)",
            np.asarray(r.history["step"]),
            np.asarray(r.history["minibatch_loss"], dtype=float),
            _errors(r.history),
        )
        for name, r in results.items()
    ]
    return MinibatchPanel("right: MNIST tutorial, original vs. overparameterized", criteria.SMOOTHING_WINDOW, curves)


def outcome(result):
    """What the MNIST criteria need of a TrainingResult."""
    return criteria.MnistOutcome(
        np.asarray(result.history["minibatch_loss"], dtype=float), result.test_error, result.diverged_at is not None
    )


def claims(results, setting):
    return criteria.mnist(outcome(results["original"]), outcome(results["overparameterized"]), setting)
