"""Milliseconds per training step of the MNIST tutorial port (its compiled train step,
batches in the tutorial's order) against the same Keras model trained with plain
`model.fit` (batch 64, SGD momentum 0.9, sparse cross-entropy from logits, the same 5e-4
L2 term as Keras regularizers on the fc kernels, i.e. the product, and biases), for the
original and the overparameterized model, in one run. Compilation is excluded (warm-up);
port and fit alternate in blocks and the median block is reported, so that a change in
the machine's load hits both.

    python bench/mnist_speed.py [--steps 100] [--repeats 3] [--l2-on product] [--data-dir DIR]
        [--markdown results/benchmarks.md]
"""

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _table import publish  # noqa: E402 (this folder: the script's own)

from mnist_tutorial import convolutional as tutorial  # noqa: E402

WARMUP = 5


def port_timer(config, train_x, train_y):
    """A function timing `steps` more steps of the port's compiled train step (ms/step)."""
    trainer = tutorial.Trainer(config, len(train_x))
    position = [0]

    def timed(steps):
        times = []
        for _ in range(steps):
            offset = tutorial.batch_offset(position[0], len(train_x))
            position[0] += 1
            started = time.perf_counter()
            loss, *_ = trainer.train_step(  # the loss, the wrong count, the loss's two parts
                tf.constant(train_x[offset : offset + 64]), tf.constant(train_y[offset : offset + 64])
            )
            float(loss)
            times.append(time.perf_counter() - started)
        return 1000 * float(np.mean(times))

    return timed


def fit_timer(overparameterize, train_x, train_y):
    """The same for `model.fit` on the same model, one epoch of `steps` batches (ms/step)."""
    model = tutorial.build_model(overparameterize, l2=5e-4)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    def timed(steps):
        started = time.perf_counter()
        model.fit(train_x[: 64 * steps], train_y[: 64 * steps], batch_size=64, epochs=1, verbose=0, shuffle=False)
        return 1000 * (time.perf_counter() - started) / steps

    return timed, model


def compare(config, train_x, train_y, steps, repeats):
    """ms/step of port and fit in each of `repeats` alternating blocks, after a warm-up."""
    port = port_timer(config, train_x, train_y)
    fit, model = fit_timer(config.overparameterize, train_x, train_y)
    port(WARMUP), fit(WARMUP)  # tracing and compilation
    ports, fits = [], []
    for _ in range(repeats):
        ports.append(port(steps))
        fits.append(fit(steps))
    return ports, fits, model.jit_compile


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=3, help="alternating port/fit blocks; the median is shown")
    parser.add_argument(
        "--l2-on",
        default="product",
        choices=("product", "factors"),
        help="the port's L2 term for the overparameterized model (fit always penalizes the product)",
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--markdown", default=None, help="append the table to this file")
    args = parser.parse_args()
    (train_x, train_y), _, _ = tutorial.load_data(tutorial.Config(data_dir=args.data_dir))
    device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
    lines = [
        f"### MNIST tutorial: ms per training step, batch 64 ({device}, {platform.machine()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, median of {args.repeats} blocks of "
        f"{args.steps} steps)",
        "",
        "| model | port (ms/step) | model.fit (ms/step) | fit / port | blocks: port / fit |",
        "|---|---:|---:|---:|---|",
    ]
    for name, factored in (("original", False), (f"overparameterized, L2 on {args.l2_on}", True)):
        config = tutorial.Config(overparameterize=factored, l2_on=args.l2_on, quiet=True)
        ports, fits, jit = compare(config, train_x, train_y, args.steps, args.repeats)
        port, fit = np.median(ports), np.median(fits)
        lines.append(
            f"| {name} | {port:.1f} | {fit:.1f} (jit_compile={jit}) | {fit / port:.2f} | "
            f"{', '.join(f'{v:.0f}' for v in ports)} / {', '.join(f'{v:.0f}' for v in fits)} |"
        )
        print(lines[-1], flush=True)
    publish("\n".join(lines) + "\n", args.markdown)


if __name__ == "__main__":
    main()
