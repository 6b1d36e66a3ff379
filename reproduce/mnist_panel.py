"""Figure 5 (right): the MNIST tutorial, original vs. overparameterized (PAPER Sec. 5).

Both models are trained by `mnist_tutorial.convolutional` with the tutorial's settings;
the panel shows the minibatch loss (raw and a 100-step moving average) and the
validation error. Claims: the overparameterized model converges considerably faster
(its smoothed loss is lower at every quarter of training, and it reaches the original's
final smoothed loss within 3/4 of the steps); the test errors are reported.
"""

import numpy as np
import pandas as pd

from mnist_tutorial import convolutional as tutorial
from reproduce.common import settings_key
from tfovp.claims import Claim, fmt_iterations, verdict
from tfovp.experiment import CurveStore
from tfovp.plotting import smooth

WINDOW = 100  # steps of the moving average
MODELS = {"original": False, "overparameterized": True}
KEPT = ("history", "test_error", "steps", "diverged_at", "seconds", "parameters")  # what a stored run keeps


def train_both(config, out):
    """{name: result of tutorial.train} for both models; per-step CSVs in `out`. Each
    finished model is stored under `out`/.curves/mnist, so that `--resume` after an
    interruption retrains only what had not finished."""
    results, store = {}, CurveStore(f"{out}/.curves/mnist")
    for name, factored in MODELS.items():
        run = tutorial.Config(overparameterize=factored, epochs=config.mnist_epochs, steps=config.mnist_steps or None,
                              data_dir=config.data_dir, l2_on=config.l2_on, seed=config.mnist_seed,
                              self_test=config.mnist_self_test, verbose=not config.quick,
                              out=f"{out}/figure5_mnist_{name}.csv")
        print(f"[figure5] MNIST tutorial, {name} model", flush=True)
        results[name] = train_stored(run, store, config.resume, name)
    return results


def train_stored(run, store, resume, label):
    """tutorial.train(run) without the model, kept in `store` (a CurveStore); with
    `resume`, a run finished earlier with the same settings is read back instead."""
    key = f"{label}-{settings_key(run, ignore=('data_dir', 'out', 'tensorboard', 'verbose'))}"
    result = store.get(key) if resume else None
    if result is None:
        result = {k: v for k, v in tutorial.train(run).items() if k in KEPT}
        store.put(key, result)
    elif run.verbose:
        print(f"resumed {label} from {store.path(key)}", flush=True)
    return result


def panel(results):
    curves = [(f"{name} ({r['parameters']:,} parameters, test error {r['test_error']:.2f}%)",
               r["history"]["step"], r["history"]["minibatch_loss"], r["history"]["validation_error"])
              for name, r in results.items()]
    return {"kind": "minibatch", "title": "right: MNIST tutorial, original vs. overparameterized",
            "window": WINDOW, "curves": curves}


def claims(results, setting):
    smoothed = {name: smooth(r["history"]["minibatch_loss"], WINDOW) for name, r in results.items()}
    steps = len(smoothed["original"])
    quarters = [max(int(steps * q) - 1, 0) for q in (0.25, 0.5, 0.75, 1.0)]
    lower = [smoothed["overparameterized"][i] < smoothed["original"][i] for i in quarters]
    target = smoothed["original"][-1]
    reached = np.flatnonzero(smoothed["overparameterized"] <= target)
    first = int(reached[0]) if reached.size else None
    measured = ", ".join(f"step {i + 1}: {smoothed['original'][i]:.3f} vs {smoothed['overparameterized'][i]:.3f}"
                         for i in quarters)
    errors = ", ".join(f"{name}: {r['test_error']:.2f}%" for name, r in results.items())
    return [
        Claim("figure5", "MNIST: the overparameterized tutorial converges considerably faster",
              f"smoothed ({WINDOW}-step) minibatch loss lower at 1/4, 1/2, 3/4 and the end of training, and the "
              "original's final smoothed loss reached within 3/4 of the steps",
              f"original vs overparameterized at {measured}; original's final level reached at step "
              f"{fmt_iterations(first)} of {steps:,}",
              verdict(all(lower) and first is not None and first <= 0.75 * steps), setting),
        Claim("figure5", "MNIST: both models reach the tutorial's test error (about 0.8 %)",
              "test error < 1.5 % for both models", errors,
              verdict(all(r["test_error"] < 1.5 for r in results.values())), setting),
    ]


def parameter_table(results):
    return pd.DataFrame({"model": list(results), "parameters": [r["parameters"] for r in results.values()],
                         "test_error": [r["test_error"] for r in results.values()]})
