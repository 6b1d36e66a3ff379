"""Milliseconds per training step of the MNIST tutorial port (its compiled train step,
batches in the tutorial's order) against the same Keras model trained with plain
`model.fit` (batch 64, SGD momentum 0.9, sparse cross-entropy from logits, the same 5e-4
L2 term as Keras regularizers on the fc kernels, i.e. the product, and biases), for the
original and the overparameterized model, in one run. Compilation is excluded (warm-up).

    python bench/mnist_speed.py [--steps 100] [--data-dir DIR] [--markdown results/benchmarks.md]
"""

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mnist_tutorial import convolutional as tutorial  # noqa: E402

WARMUP = 5


def time_port(config, train_x, train_y, steps):
    trainer = tutorial.Trainer(config, len(train_x))
    times = []
    for step in range(WARMUP + steps):
        offset = tutorial.batch_offset(step, len(train_x))
        started = time.perf_counter()
        loss, _ = trainer.train_step(tf.constant(train_x[offset:offset + 64]), tf.constant(train_y[offset:offset + 64]))
        float(loss)
        if step >= WARMUP:
            times.append(time.perf_counter() - started)
    return 1000 * float(np.mean(times))


def time_fit(overparameterize, train_x, train_y, steps):
    model = tutorial.build_model(overparameterize, l2=5e-4)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train_x[: 64 * WARMUP], train_y[: 64 * WARMUP], batch_size=64, epochs=1, verbose=0, shuffle=False)
    started = time.perf_counter()
    model.fit(train_x[: 64 * steps], train_y[: 64 * steps], batch_size=64, epochs=1, verbose=0, shuffle=False)
    return 1000 * (time.perf_counter() - started) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--markdown", default=None, help="append the table to this file")
    args = parser.parse_args()
    (train_x, train_y), _, _ = tutorial.load_data(tutorial.Config(data_dir=args.data_dir))
    device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
    lines = [f"### MNIST tutorial: ms per training step, batch 64 ({device}, {platform.machine()}, "
             f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {args.steps} timed steps)", "",
             "| model | port (ms/step) | model.fit (ms/step) | fit / port |", "|---|---:|---:|---:|"]
    for name, factored in (("original", False), ("overparameterized", True)):
        port = time_port(tutorial.Config(overparameterize=factored, verbose=False), train_x, train_y, args.steps)
        fit = time_fit(factored, train_x, train_y, args.steps)
        lines.append(f"| {name} | {port:.1f} | {fit:.1f} | {fit / port:.2f} |")
        print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    print(table)
    if args.markdown:
        with open(args.markdown, "a") as handle:
            handle.write("\n" + table)


if __name__ == "__main__":
    main()
