"""How far the MNIST tutorial port's training step is from the bare work of that step.

For the original and the overparameterized model, in one run, milliseconds per step of
64 images (batches in the tutorial's order) and GFLOP/s of:
  port   the port's compiled train step (`mnist_tutorial`: loss, L2 term, TF1 momentum,
         the counts it prints), one Python call per step as the tutorial runs it;
  fit    `model.fit` on the same model with `jit_compile=True` and `steps_per_execution`
         = the block's steps (batch 64, SGD momentum 0.9, sparse cross-entropy from
         logits, the same 5e-4 L2 term as Keras regularizers);
  floor  the bare work of a step: the forward and backward passes (convolutions and
         matrix products, dropout, the tutorial's loss with its L2 term, whose product
         kernel 3136x512 . 512x512 is formed for the overparameterized model, and the
         gradient with respect to every weight) in one compiled function over the
         block's batches, no optimizer and no bookkeeping; the faster of a TensorFlow
         graph and XLA.
The port's ratio to the floor says how much a faster port could gain. FLOPs per step
are counted from the layer shapes (multiply-adds x 2: the forward pass, and twice it for
the backward pass, less conv1's input gradient). Compilation is excluded (warm-up); the
three alternate in blocks and the median block is reported, so that a change in the
machine's load hits all of them.

    python bench/mnist_speed.py [--steps 100] [--repeats 3] [--data-dir DIR]
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

from mnist_tutorial.config import BATCH_SIZE, Config  # noqa: E402
from mnist_tutorial.model import build_model, l2_tensors  # noqa: E402
from mnist_tutorial.train import Trainer, batch_offset, load_data  # noqa: E402

WARMUP = 3
BATCH = BATCH_SIZE


def step_flops(overparameterize):
    """FLOPs of one training step of 64 images (2 per multiply-add, the backward pass
    twice the forward)."""
    forward = (
        28 * 28 * 32 * 5 * 5 * 1  # conv1
        + 14 * 14 * 64 * 5 * 5 * 32  # conv2
        + 3136 * 512  # fc1
        + 512 * 10  # fc2
        + (512 * 512 + 10 * 10 if overparameterize else 0)  # the second factors, applied factor by factor
    )
    conv1_input_gradient = 28 * 28 * 32 * 5 * 5 * 1  # not needed: the images are not trained
    l2_products = 3136 * 512 * 512 + 512 * 10 * 10 if overparameterize else 0  # the L2 term's product kernels, once
    return 2 * BATCH * (3 * forward - conv1_input_gradient) + 2 * 3 * l2_products


def batches(train_x, train_y, first, steps):
    """The tutorial's batches `first` ... `first + steps - 1`, stacked."""
    offsets = [batch_offset(s, len(train_x)) for s in range(first, first + steps)]
    return (
        np.stack([train_x[o : o + BATCH] for o in offsets]),
        np.stack([train_y[o : o + BATCH] for o in offsets]),
    )


def port_timer(config, train_x, train_y):
    """ms/step of `steps` more steps of the port's train step."""
    trainer = Trainer(config, len(train_x))
    position = [0]

    def timed(steps):
        images, labels = batches(train_x, train_y, position[0], steps)
        position[0] += steps
        started = time.perf_counter()
        for x, y in zip(images, labels):
            loss, *_ = trainer.train_step(tf.constant(x), tf.constant(y))  # loss, wrong count, the loss's parts
        float(loss)
        return 1000 * (time.perf_counter() - started) / steps

    return timed


def fit_timer(overparameterize, train_x, train_y, steps):
    """ms/step of `model.fit` with XLA and `steps` steps per execution."""
    model = build_model(overparameterize, l2=5e-4)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
        steps_per_execution=steps,
    )
    x, y = train_x[: BATCH * steps], train_y[: BATCH * steps]

    def timed(_steps):
        started = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        return 1000 * (time.perf_counter() - started) / steps

    return timed


def floor_timer(overparameterize, train_x, train_y, steps, jit):
    """ms/step of the forward and backward passes alone, `steps` batches per call."""
    model = build_model(overparameterize)
    images, labels = (tf.constant(a) for a in batches(train_x, train_y, 0, steps))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=jit)
    def run(images, labels):
        def body(i, total):
            with tf.GradientTape() as tape:
                l2 = tf.add_n([tf.nn.l2_loss(t) for t in l2_tensors(model, "product")])
                loss = loss_fn(labels[i], model(images[i], training=True)) + 5e-4 * l2
            grads = tape.gradient(loss, model.trainable_variables)
            return i + 1, total + tf.add_n([tf.reduce_sum(g) for g in grads])  # every gradient is used

        return tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), tf.constant(0.0)))[1]

    def timed(_steps):
        started = time.perf_counter()
        float(run(images, labels))
        return 1000 * (time.perf_counter() - started) / steps

    return timed


def compare(config, train_x, train_y, steps, repeats):
    """{path: [ms/step per block]} after a warm-up of every path."""
    timers = {
        "port": port_timer(config, train_x, train_y),
        "fit": fit_timer(config.overparameterize, train_x, train_y, steps),
        "floor, graph": floor_timer(config.overparameterize, train_x, train_y, steps, jit=False),
        "floor, XLA": floor_timer(config.overparameterize, train_x, train_y, steps, jit=True),
    }
    for name, timer in timers.items():  # tracing and compilation
        timer(WARMUP if name == "port" else steps)
    blocks = {name: [] for name in timers}
    for _ in range(repeats):
        for name, timer in timers.items():
            blocks[name].append(timer(steps))
    return blocks


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=3, help="alternating blocks; the median is shown")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--markdown", default=None, help="append the table to this file")
    args = parser.parse_args()
    (train_x, train_y), _, _ = load_data(Config(data_dir=args.data_dir))
    device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
    lines = [
        f"### MNIST tutorial: the port's step against its floor, batch 64 ({device}, {platform.machine()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, median of {args.repeats} blocks of "
        f"{args.steps} steps)",
        "",
        "| model | GFLOP/step | port (ms, GFLOP/s) | fit, XLA (ms, GFLOP/s) | floor, graph | floor, XLA "
        "| port / floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, factored in (("original", False), ("overparameterized", True)):
        config = Config(overparameterize=factored, quiet=True)
        blocks = compare(config, train_x, train_y, args.steps, args.repeats)
        ms = {k: float(np.median(v)) for k, v in blocks.items()}
        flops = step_flops(factored)
        floor = min(ms["floor, graph"], ms["floor, XLA"])
        cells = {path: f"{ms[path]:.1f} ms, {flops / ms[path] / 1e6:.0f}" for path in ms}
        lines.append(
            f"| {name} | {flops / 1e9:.2f} | {cells['port']} | {cells['fit']} | {cells['floor, graph']} | "
            f"{cells['floor, XLA']} | {ms['port'] / floor:.2f} |"
        )
        print(lines[-1], flush=True)
    publish("\n".join(lines) + "\n", args.markdown)


if __name__ == "__main__":
    main()
