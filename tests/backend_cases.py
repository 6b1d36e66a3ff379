"""Computations run on two Keras backends and compared by tests/test_backends.py: this
process computes them on the backend it was started with (`KERAS_BACKEND`) and writes
them as JSON.

    KERAS_BACKEND=jax JAX_ENABLE_X64=1 python tests/backend_cases.py OUT.json
"""

import json
import sys

import keras
import numpy as np

STEPS = 300
RECORD = [0, 1, 10, 100, 299, 300]


def problem(k=1):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6))
    return x, x @ rng.normal(size=(6, k)) + 0.1 * rng.normal(size=(50, k))


# name -> (outputs, float dtype, sweep arguments): every update rule, loss branch and record.
SWEEPS = {
    "gd l4 float32": (1, "float32", dict(depth=3, hidden_widths=4, loss=4, learning_rates=[1e-3, 1e-2, 0.1, 5.0])),
    # (at 0.1 depth 3 oscillates chaotically at the edge of stability: round-off grows to O(1))
    "gd l2 float64": (1, "float64", dict(depth=3, hidden_widths=4, learning_rates=[1e-3, 1e-2, 0.03, 5.0])),
    "end_to_end": (1, "float64", dict(depth=3, update="end_to_end", learning_rates=[1e-3, 1e-2, 0.1])),
    "end_to_end svd": (2, "float64", dict(depth=2, update="end_to_end", learning_rates=[1e-3, 1e-2])),
    "adam": (1, "float64", dict(depth=2, hidden_widths=3, update="adam", learning_rates=[1e-3, 1e-2])),
    "bias": (1, "float64", dict(depth=2, hidden_widths=3, bias=True, bias_std=0.1, learning_rates=[1e-3, 1e-2])),
}


def sweeps():
    from tfovp.sweep import sweep

    out = {}
    for name, (k, dtype, arguments) in SWEEPS.items():
        x, y = problem(k)
        arguments = dict(arguments)
        rates = arguments.pop("learning_rates")
        result = sweep(
            x,
            y,
            rates,
            STEPS,
            seeds=(0, 1),
            dtype=dtype,
            record_steps=RECORD,
            record_end_to_end=True,
            record_balancedness=True,
            record_window_max=True,
            thresholds=[0.5, 0.1, 0.02],
            **arguments,
        )
        out[name] = {
            "losses": result.losses.tolist(),
            "window_max": result.window_max.tolist(),
            "diverged_at": result.diverged_at.tolist(),
            "last_above": result.last_above.tolist(),
            "end_to_end": result.final_end_to_end().tolist(),
        }
    return out


def end_to_end_linear():
    """EndToEndLinear after one `fit` step (float32: every backend has it) and Eq. 10's
    step in float64 NumPy from the same start, W <- (1 - eta lambda N) W - eta P_W(G),
    P_W(G) through Claim 1's Kronecker matrix (tests/kronecker.py; no tfovp code)."""
    from kronecker import precondition_kronecker

    from tfovp import initializers
    from tfovp.losses import LpLoss
    from tfovp.models import EndToEndLinear

    x, y = problem(3)
    x, y = x.astype(np.float32), y.astype(np.float32)
    start = (0.3 * np.random.default_rng(1).normal(size=(6, 3))).astype(np.float32)
    out = {}
    for depth, decay in ((3, 0.0), (2, 0.05)):
        model = EndToEndLinear(3, depth, weight_decay=decay, kernel_initializer=initializers.Balanced(start, seed=0))
        model.build((None, 6))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LpLoss(2))
        history = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        start64 = start.astype(np.float64)
        gradient = x.T.astype(np.float64) @ (x @ start64 - y) / len(x)
        eta = float(np.float32(0.1))
        expected = (1 - eta * decay * depth) * start64 - eta * precondition_kronecker(start64, gradient, depth)
        out[f"depth {depth} decay {decay}"] = {
            "kernel": keras.ops.convert_to_numpy(model.kernel).tolist(),
            "eq10": expected.tolist(),
            "loss": history.history["loss"][0],
        }
    return out


# The tutorial's variants (dropout off: its masks are drawn by each backend's own RNG).
TUTORIAL = {
    "original": {},
    "overparameterized": {"overparameterize": True},
    "preconditioned": {"preconditioned": True},
}


def tutorial_steps(steps=3):
    """The four printed values of the tutorial's first steps, each variant started from
    the same NumPy-drawn weights on every backend, on a fixed random batch."""
    from mnist_tutorial.config import Config
    from mnist_tutorial.train import make_trainer

    rng = np.random.default_rng(0)
    images = rng.uniform(-0.5, 0.5, size=(64, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, size=64).astype(np.int64)
    out = {}
    for name, settings in TUTORIAL.items():
        trainer = make_trainer(Config(dropout_rate=0.0, **settings), 55000)
        draws = np.random.default_rng(1)
        trainer.model.set_weights(
            [0.05 * draws.standard_normal(w.shape).astype(np.float32) for w in trainer.model.weights]
        )
        out[name] = [[float(np.asarray(v)) for v in trainer.step(images, labels)] for _ in range(steps)]
    return out


def main(path):
    out = {"backend": keras.backend.backend(), "end_to_end_linear": end_to_end_linear()}
    if keras.backend.backend() != "torch":  # the sweep and the tutorial run on TensorFlow and JAX
        out["sweeps"] = sweeps()
        out["tutorial"] = tutorial_steps()
    with open(path, "w") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main(sys.argv[1])
